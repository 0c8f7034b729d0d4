"""Pictures people look at: meshes and keypoints drawn with matplotlib (no GPU, no display), and
the reconstruction's overlay (the photo with the meshes rendered over it, PIL only)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from .atomic import atomic_write
from .models.joints import FREIHAND_PARENTS
from .plotting import pyplot
from .render import Renderer
from .render.camera import resize_K
from .render.shade import default_light

if TYPE_CHECKING:
    import matplotlib.pyplot as plt

    from .record import HandReconstruction


# Per hand of a photo (its index, cycled): its detected keypoints' rings and its name, so that
# a reader of two overlapping hands sees which rings are whose. 0-255 RGB; the first white.
HAND_COLOURS = ((255, 255, 255), (255, 215, 0), (0, 220, 255), (255, 90, 220))
TRUTH_COLOUR = (40, 230, 60)  # annotated joints (a benchmark's pictures), as crosses
# One colour per finger (FreiHAND order: wrist, thumb, index, middle, ring, little), 0-255 RGB.
FINGER_COLOURS = (
    (230, 230, 230),
    (214, 39, 40),
    (44, 160, 44),
    (31, 119, 180),
    (148, 103, 189),
    (255, 127, 14),
)
_FINGER_COLORS = tuple("#{:02x}{:02x}{:02x}".format(*c) for c in FINGER_COLOURS)


# The side views' and the view from above's render size at most, pixels (a tall photo's
# panels are enlarged from it): 512 is sharp enough at 960 and costs a quarter of a 960 render
# (0.2 s more per two-hand photo at 960).
RENDER_SIDE = 512


@functools.cache
def label_font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's own font at ``size`` pixels (shipped with Pillow; its fixed 11-pixel bitmap
    where Pillow has no FreeType)."""
    try:
        return ImageFont.load_default(size=size)
    except (ImportError, OSError, TypeError):
        return ImageFont.load_default()


def label_size(height: int) -> int:
    """The overlay's text height in pixels for a panel ``height`` pixels tall: readable when
    the sheet (a photo and three panels as tall, for two hands) is shown whole on a screen
    1,600 pixels wide (Pillow's 11-pixel font on a 960-pixel panel shrinks to 5 there)."""
    return max(11, round(height / 40))


def draw_skeleton(draw, keypoints: np.ndarray, width: int = 2) -> None:
    """Draw 21 FreiHAND-order keypoints (21, 2) as coloured bones on a ``PIL.ImageDraw``."""
    for k, p in enumerate(FREIHAND_PARENTS):
        if p >= 0:
            seg = [tuple(map(float, keypoints[p])), tuple(map(float, keypoints[k]))]
            draw.line(seg, fill=FINGER_COLOURS[(k - 1) // 4 + 1], width=width)


def _shade(
    vertices: np.ndarray,
    faces: np.ndarray,
    light: np.ndarray,
    vertex_colors: np.ndarray | None = None,
) -> np.ndarray:
    tri = vertices[faces]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    n /= np.linalg.norm(n, axis=1, keepdims=True) + 1e-12
    lambert = np.clip(n @ (light / np.linalg.norm(light)), 0.0, 1.0)
    base = np.array([0.93, 0.75, 0.63]) if vertex_colors is None else vertex_colors[faces].mean(1)
    return np.clip((0.35 + 0.65 * lambert)[:, None] * base, 0, 1)


def draw_hand(
    ax: plt.Axes,
    vertices: np.ndarray,
    faces: np.ndarray,
    joints: np.ndarray | None,
    title: str = "",
    vertex_colors: np.ndarray | None = None,
    view: tuple[float, float] = (55, -60),
) -> None:
    """Draw a shaded mesh (V, 3) / (F, 3), optionally coloured per vertex (V, 3) in [0, 1], and
    its 21 FreiHAND-order keypoints on a 3D axis; ``view`` is (elevation, azimuth) degrees."""
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection

    colors = _shade(vertices, faces, np.array([0.3, 1.0, 0.6]), vertex_colors)
    ax.add_collection3d(
        Poly3DCollection(
            vertices[faces],
            facecolors=colors,
            linewidths=0.0,
            alpha=0.55 if joints is not None else 1.0,
        )
    )
    if joints is not None:
        for k, p in enumerate(FREIHAND_PARENTS):
            if p >= 0:
                seg = joints[[p, k]]
                ax.plot(*seg.T, color=_FINGER_COLORS[(k - 1) // 4 + 1], lw=2)
        ax.scatter(*joints.T, s=8, c="k", depthshade=False)
    lo, hi = vertices.min(0), vertices.max(0)
    c, r = (lo + hi) / 2, (hi - lo).max() / 2
    ax.set_xlim(c[0] - r, c[0] + r)
    ax.set_ylim(c[1] - r, c[1] + r)
    ax.set_zlim(c[2] - r, c[2] + r)
    ax.set_box_aspect((1, 1, 1))
    ax.view_init(elev=view[0], azim=view[1])
    ax.set_title(title, fontsize=9)
    ax.set_axis_off()


def save_hand_figure(
    path: str | Path,
    panels: list[tuple],
    columns: int | None = None,
    view: tuple[float, float] = (55, -60),
) -> Path:
    """Save 3D hand panels ``(vertices, faces, joints, title[, vertex_colors])`` as a grid
    (``columns`` per row, default one row) in a PNG, atomically."""
    path = Path(path)
    cols = columns or len(panels)
    rows = -(-len(panels) // cols)
    plt = pyplot()
    fig = plt.figure(figsize=(3.2 * cols, 3.2 * rows), dpi=110)
    for i, (v, f, j, title, *vc) in enumerate(panels):
        ax = fig.add_subplot(rows, cols, i + 1, projection="3d")
        draw_hand(ax, v, f, j, title, vc[0] if vc else None, view)
    fig.tight_layout()
    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
    finally:
        plt.close(fig)


# -- the reconstruction's overlay (PIL and the renderer; no matplotlib) -------------------

def overlay_image(
    image: np.ndarray,
    K: np.ndarray,
    hands: list[HandReconstruction],
    max_side: int = 960,
    side_views: bool = True,
    truth: list[np.ndarray] | None = None,
) -> Image.Image:
    """The photo with the reconstructed meshes rendered over it, each hand's joints (the
    result, projected) as a coloured skeleton with the detector's keypoints as rings, and its
    name ("hand 0 (right)", the order of the JSON; a video's hand "track 1 (left)", by its
    track), rings and name in the hand's colour (``HAND_COLOURS``: white, then yellow, cyan,
    pink; by index, a video's hand by its track); plus a side view of each hand and,
    for two hands or more, all of them seen from above (``side_views``; a video's frames go
    without, to keep one size). ``truth``: annotated joints to show beside them, (21, 2)
    pixels per hand, as green crosses (a benchmark's pictures)."""
    h, w = image.shape[:2]
    s = min(1.0, max_side / max(h, w))
    hs, ws = max(int(round(h * s)), 1), max(int(round(w * s)), 1)
    small = np.asarray(Image.fromarray(image).resize((ws, hs), Image.BILINEAR)) if s < 1 else image
    Ks = resize_K(torch.as_tensor(K, dtype=torch.float32)[None], ws / w, hs / h)
    canvas = Image.fromarray(small)
    font = label_font(label_size(hs))
    if hands:
        v, f, vc = _one_mesh(hands)
        r = Renderer((hs, ws))(torch.as_tensor(v, dtype=torch.float32)[None], torch.as_tensor(f),
                               Ks, vertex_colors=torch.as_tensor(vc, dtype=torch.float32)[None],
                               light=default_light(1))  # fmt: skip
        a = 0.75 * r.silhouette[0, ..., None].numpy()
        blend = (1 - a) * small / 255.0 + a * r.rgb[0].numpy()
        canvas = Image.fromarray((np.clip(blend, 0, 1) * 255).astype(np.uint8))
        draw = ImageDraw.Draw(canvas)
        scale = np.array([ws / w, hs / h])  # photo pixels -> canvas pixels
        for i, hd in enumerate(hands):
            # The result's joints as the skeleton; the detector's keypoints as rings sized by
            # their confidence, so that a reader sees where the two disagree.
            draw_skeleton(draw, hd.joints2d * scale)
            colour = _hand_colour(i, hd)
            for pt, c in zip(hd.detection.keypoints * scale, hd.detection.confidence, strict=True):
                rr = 2 + 3 * c
                draw.ellipse([pt[0] - rr, pt[1] - rr, pt[0] + rr, pt[1] + rr], outline=colour)
        # The names last, over every skeleton, and never over each other (two wrists close).
        taken: list[tuple[float, float, float, float]] = []
        for i, hd in enumerate(hands):
            taken.append(_label(draw, hd.joints2d[0] * scale + [6, 4], _hand_name(i, hd), taken,
                                _hand_colour(i, hd), font))  # fmt: skip
    if truth:
        draw = ImageDraw.Draw(canvas)
        for joints in truth:
            for x, y in np.asarray(joints, dtype=float) * [ws / w, hs / h]:
                draw.line([x - 4, y - 4, x + 4, y + 4], fill=TRUTH_COLOUR, width=2)
                draw.line([x - 4, y + 4, x + 4, y - 4], fill=TRUTH_COLOUR, width=2)
    panels = [canvas]
    # Side views: turned 90 degrees about the vertical through the hand, rendered at up to
    # RENDER_SIDE pixels and enlarged to the photo's height.
    side = min(hs, RENDER_SIDE)
    for i, hd in enumerate(hands if side_views else []):
        c = hd.vertices.mean(0)
        rot = np.array([[0, 0, -1.0], [0, 1, 0], [1.0, 0, 0]])
        v = (hd.vertices - c) @ rot.T
        ext = np.abs(v[:, :2]).max() * 2.4
        z = 0.6
        fpx = side * z / ext
        Kv = torch.tensor([[[fpx, 0, (side - 1) / 2], [0, fpx, (side - 1) / 2], [0, 0, 1.0]]])
        vv = torch.as_tensor(v + [0, 0, z], dtype=torch.float32)[None]
        r = Renderer((side, side), background=(1.0, 1.0, 1.0))(
            vv,
            torch.as_tensor(hd.faces),
            Kv,
            vertex_colors=torch.as_tensor(hd.vertex_colors, dtype=torch.float32)[None],
        )
        panel = Image.fromarray((np.clip(r.rgb[0].numpy(), 0, 1) * 255).astype(np.uint8))
        panel = panel.resize((hs, hs), Image.BICUBIC) if side != hs else panel
        _label(ImageDraw.Draw(panel), (4, 4), f"{_hand_name(i, hd)}, from the side", font=font)
        panels.append(panel)
    if side_views and len(hands) > 1:
        panels.append(_from_above(hands, hs))
    total_w = sum(p.width for p in panels)
    sheet = Image.new("RGB", (total_w, max(p.height for p in panels)), (255, 255, 255))
    x = 0
    for p in panels:
        sheet.paste(p, (x, 0))
        x += p.width
    return sheet


def _one_mesh(hands: list[HandReconstruction]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The hands as one mesh: vertices (V, 3), faces (F, 3) renumbered, vertex colours (V, 3)."""
    offsets = np.cumsum([0] + [len(hd.vertices) for hd in hands[:-1]])
    return (np.concatenate([hd.vertices for hd in hands]),
            np.concatenate([hd.faces + o for hd, o in zip(hands, offsets, strict=True)]),
            np.concatenate([hd.vertex_colors for hd in hands]))  # fmt: skip


def _from_above(hands: list[HandReconstruction], height: int) -> Image.Image:
    """The hands of one photo together, seen from above with the photo's camera at the bottom
    (farther from it is higher up), nearly orthographic: how they sit in depth relative to
    each other, which the photo cannot show (two interlocked hands merged, or 30 cm apart).
    Each hand keeps its colours; the label gives the wrists' depths (camera z). A square
    panel ``height`` pixels wide (rendered at up to ``RENDER_SIDE``)."""
    side = min(height, RENDER_SIDE)
    # Camera frame (x right, y down, z forward) -> the view's: x stays, the view looks down
    # (+y) and its up is the photo's forward (+z).
    rot = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])
    v, f, vc = _one_mesh(hands)
    v = v @ rot.T
    lo, hi = v[:, :2].min(0), v[:, :2].max(0)
    ext = max(float((hi - lo).max()), 1e-3) * 1.25
    z = 20 * ext  # far away, as through a telephoto lens: depth differences read as such
    fpx = side * z / ext
    c = np.append((lo + hi) / 2, 0.0)
    Kv = torch.tensor([[[fpx, 0, (side - 1) / 2], [0, fpx, (side - 1) / 2], [0, 0, 1.0]]])
    vv = torch.as_tensor(v - c + [0, 0, z - v[:, 2].min() + ext], dtype=torch.float32)[None]
    r = Renderer((side, side), background=(1.0, 1.0, 1.0))(
        vv, torch.as_tensor(f), Kv, vertex_colors=torch.as_tensor(vc, dtype=torch.float32)[None]
    )
    panel = Image.fromarray((np.clip(r.rgb[0].numpy(), 0, 1) * 255).astype(np.uint8))
    panel = panel.resize((height, height), Image.BICUBIC) if side != height else panel
    side = height
    draw, font = ImageDraw.Draw(panel), label_font(label_size(side))
    _label(draw, (4, 4), "from above, camera below", font=font)
    wrists = " / ".join(f"{i}: {hd.joints3d[0, 2]:.2f} m" for i, hd in enumerate(hands))
    _label(draw, (4, side - label_size(side) - 6), f"wrist depths (z) {wrists}", font=font)
    return panel


def _hand_name(i: int, hd: HandReconstruction) -> str:
    """How the overlay names hand ``i``: its index in the JSON and its side; a video's
    hand by its track, which stays the hand's from frame to frame."""
    if hd.track is not None:
        return f"track {hd.track} ({hd.side})"
    return f"hand {i} ({hd.side})"


def _hand_colour(i: int, hd: HandReconstruction) -> tuple[int, int, int]:
    """Hand ``i``'s colour (rings, name): by its index, a video's hand by its track."""
    k = hd.track if hd.track is not None else i
    return HAND_COLOURS[k % len(HAND_COLOURS)]


def _label(draw, xy, text: str, avoid: list | tuple = (), colour: tuple = (255, 255, 255),
           font=None) -> tuple[float, float, float, float]:  # fmt: skip
    """``text`` at ``xy`` (pixels) in ``colour`` (light) on a dark box, readable on any photo,
    moved down a line at a time until its box overlaps none of the boxes ``avoid``; returns
    its box. ``font``: ``label_font``'s (None: Pillow's 11-pixel default)."""
    x, y = (float(v) for v in xy)

    def boxed(y: float) -> tuple[float, float, float, float]:
        b = draw.textbbox((x, y), text, font=font)
        return b[0] - 2, b[1] - 1, b[2] + 2, b[3] + 1

    def clash(b, o) -> bool:
        return b[0] < o[2] and o[0] < b[2] and b[1] < o[3] and o[1] < b[3]

    box = boxed(y)
    for _ in range(2 * len(avoid)):  # each other label can push it down at most twice
        hit = [o for o in avoid if clash(box, o)]
        if not hit:
            break
        y += max(o[3] for o in hit) - box[1] + 1
        box = boxed(y)
    draw.rectangle(box, fill=(30, 30, 30))
    draw.text((x, y), text, fill=colour, font=font)
    return box


def captioned(image: Image.Image, text: str, line: int = 14) -> Image.Image:
    """``image`` under a white strip that carries ``text`` (what the picture shows, for
    pictures read without their table: a benchmark's best and worst), wrapped to the image's
    width in lines ``line`` pixels apart."""
    draw = ImageDraw.Draw(image.copy())
    room = image.width - 8
    lines: list[str] = []
    for word in text.split():  # greedy, by each word's measured width
        while draw.textlength(word) > room and len(word) > 1:  # a word wider than the image
            cut = max(k for k in range(1, len(word) + 1) if draw.textlength(word[:k]) <= room
                      or k == 1)  # fmt: skip
            lines.append(word[:cut])
            word = word[cut:]
        if lines and draw.textlength(f"{lines[-1]} {word}") <= room:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    lines = lines or [""]
    height = 8 + line * len(lines)
    out = Image.new("RGB", (image.width, image.height + height), "white")
    out.paste(image, (0, height))
    ImageDraw.Draw(out).multiline_text((4, 4), "\n".join(lines), fill=(0, 0, 0),
                                       spacing=line - 11)  # fmt: skip
    return out
