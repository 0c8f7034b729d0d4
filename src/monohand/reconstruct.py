"""The main job: 3D hands from photos. Detect, crop, fit, and write what people can use.

``reconstruct_image`` turns one RGB image (+ K) into ``HandReconstruction``s (every hand
found, left and right); ``write_outputs`` writes ``<stem>_<i>.glb`` (textured), optional
``.obj``/``.ply``, ``<stem>_overlay.png`` and ``<stem>.json``; ``camera_for_image`` picks K from
the user, the photo's EXIF focal length, or a default field of view.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import trimesh
from PIL import Image, ImageDraw
from torch import Tensor

from .atomic import atomic_write
from .data.augment import crop_around
from .data.keypoints import HandDetection, MediaPipeHands
from .fit import FitConfig, FitInputs, FitResult, fit_hands
from .models.base import HandModel, has_texture_space
from .models.registry import load_models
from .nets.handnet import load_network
from .render import Renderer
from .render.camera import project, resize_K
from .render.shade import default_light
from .viz import draw_skeleton

DEFAULT_FOV_DEG = 55.0  # horizontal field of view of a typical phone's main camera
SKIN_RGB = (0.80, 0.62, 0.52)  # the uniform albedo of models without a texture space
# What a reconstruction records of the model's inputs (a fit's or a network's).
PARAMETER_NAMES = ("global_orient", "hand_pose", "betas", "transl", "texture", "light")


@dataclass
class ReconstructConfig:
    model: str = "openhand"  # openhand | mano | nimble
    model_path: str | None = None  # MANO file/folder or NIMBLE folder/.npz
    # method "network": a checkpoint of ``monohand train``; None: the shipped network
    checkpoint: str | None = None
    method: str = "fit"
    max_hands: int = 4
    crop_size: int = 128
    # Per-joint confidences from test-time augmentation (3 more detector runs): the fit
    # weighs its keypoints by them; the network only needs the crop. None: fit only.
    tta: bool | None = None
    fit: FitConfig = field(default_factory=FitConfig)


@dataclass
class HandReconstruction:
    """One hand, camera frame of the input image (metres, OpenCV)."""

    side: str
    detection: HandDetection
    joints3d: np.ndarray  # (21, 3)
    joints2d: np.ndarray  # (21, 2) projection of joints3d
    vertices: np.ndarray  # (V, 3)
    faces: np.ndarray  # (F, 3)
    vertex_colors: np.ndarray  # (V, 3)
    texture: np.ndarray | None  # (h, w, 3) albedo map (models with a texture space)
    uvs: np.ndarray | None  # (T, 2)
    face_uvs: np.ndarray | None  # (F, 3)
    parameters: dict[str, list]
    fit: dict[str, float]
    track: int | None = None  # the hand's track in a video


# -- camera -------------------------------------------------------------------------------


def exif_focal_px(path: str | Path, width: int, height: int) -> float | None:
    """Focal length in pixels from EXIF's 35 mm-equivalent focal length, if present."""
    try:
        with Image.open(path) as im:
            exif = im.getexif()
            f35 = exif.get_ifd(0x8769).get(41989) or exif.get(41989)
    except Exception:  # noqa: BLE001 - any EXIF trouble means: no focal length
        return None
    if not f35:
        return None
    return float(f35) * math.hypot(width, height) / math.hypot(36.0, 24.0)


def camera_for_image(
    path: str | Path | None,
    size: tuple[int, int],
    K: np.ndarray | None = None,
    fov_deg: float = DEFAULT_FOV_DEG,
) -> tuple[np.ndarray, str]:
    """K (3, 3) for an image of (H, W) and where it came from: 'given', 'exif' or 'default'."""
    h, w = size
    if K is not None:
        return np.asarray(K, dtype=np.float64), "given"
    f = exif_focal_px(path, w, h) if path is not None else None
    source = "exif"
    if f is None:
        f, source = 0.5 * w / math.tan(math.radians(fov_deg) / 2), "default"
    return np.array([[f, 0, (w - 1) / 2], [0, f, (h - 1) / 2], [0, 0, 1.0]]), source


def parse_K(text: str) -> np.ndarray:
    """``fx,fy,cx,cy`` or a JSON file holding ``{"K": [[...]]}`` or a 3x3 list."""
    p = Path(text)
    if p.suffix == ".json" and p.is_file():
        data = json.loads(p.read_text())
        K = np.asarray(data["K"] if isinstance(data, dict) else data, dtype=np.float64)
    else:
        fx, fy, cx, cy = (float(x) for x in text.split(","))
        K = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1.0]])
    if K.shape != (3, 3) or not np.all(np.isfinite(K)) or K[0, 0] <= 0 or K[1, 1] <= 0:
        raise ValueError(f"{text}: not a valid camera matrix")
    return K


# -- reconstruction ------------------------------------------------------------------------


class Reconstructor:
    """Holds the detector and the models; ``__call__(image, K)`` -> hands."""

    def __init__(self, cfg: ReconstructConfig | None = None) -> None:
        self.cfg = cfg or ReconstructConfig()
        self.net = None
        if self.cfg.method == "network":
            self.net, self.net_size = load_network(self.cfg.checkpoint, self.cfg.model_path)
            self.models = {"right": self.net.hand}
        elif self.cfg.method == "fit":
            self.models = load_models(self.cfg.model, self.cfg.model_path)
        else:
            raise ValueError(f"unknown method {self.cfg.method!r}: fit or network")
        use_tta = self.cfg.method == "fit" if self.cfg.tta is None else self.cfg.tta
        tta = ("mirror", "rot+", "rot-") if use_tta else ()
        self.detector = MediaPipeHands(max_hands=self.cfg.max_hands, tta=tta)

    def close(self) -> None:
        self.detector.close()

    def __enter__(self) -> Reconstructor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __call__(self, image: np.ndarray, K: np.ndarray) -> list[HandReconstruction]:
        return self.reconstruct(image, K, self.detector.detect(image)[: self.cfg.max_hands])

    def reconstruct(
        self, image: np.ndarray, K: np.ndarray, detections: list[HandDetection]
    ) -> list[HandReconstruction]:
        """The hands of ``detections`` by this reconstructor's method (network or fit)."""
        if self.net is not None:
            return network_reconstruct(image, K, detections, self.net, self.net_size)
        return reconstruct_image(image, K, detections, self.models, self.cfg)


def network_reconstruct(
    image: np.ndarray, K: np.ndarray, detections: list[HandDetection], net, size: int
) -> list[HandReconstruction]:
    """The network's hands: one batched forward pass over the detected hands' crops.

    Each crop's camera is the image's turned and scaled (``data.crops``: MediaPipe's crop for
    the MediaPipe encoder, else a square box), so the network's output is mapped back to the
    image's camera frame exactly. Left hands: the crop is mirrored, the right-hand network
    run, and its output mirrored back (their triangles re-wound to keep outward normals).
    """
    if not detections:
        return []
    hand = net.hand
    crops = [_network_crop(image, K, d, net, size) for d in detections]
    img = torch.as_tensor(np.stack([c.image for c in crops]), dtype=torch.float32)
    img = img.permute(0, 3, 1, 2) / 255.0
    Ks = torch.as_tensor(np.stack([c.K for c in crops]), dtype=torch.float32)
    with torch.no_grad():
        p, ho = net(img, Ks)
        tex_map, vcols = hand.albedo(p.texture) if has_texture_space(hand) else (None, None)
    faces = hand.faces.numpy()
    face_uvs = None if hand.face_uvs is None else hand.face_uvs.numpy()
    out = []
    for k, (d, c) in enumerate(zip(detections, crops, strict=True)):
        f, fu = faces, face_uvs
        if c.mirrored:
            f = faces[:, [0, 2, 1]]
            fu = None if face_uvs is None else face_uvs[:, [0, 2, 1]]
        out.append(
            hand_record(
                hand, d, c.to_camera(ho.joints[k].double().numpy()),
                c.to_camera(ho.vertices[k].double().numpy()), K, f, fu,
                texture=None if tex_map is None else tex_map[k].numpy(),
                vertex_colors=None if vcols is None else vcols[k].numpy(),
                parameters={n: getattr(p, n)[k].tolist() for n in PARAMETER_NAMES},
                fit={},
            )
        )  # fmt: skip
    return out


def _network_crop(image: np.ndarray, K: np.ndarray, d: HandDetection, net, size: int):
    """The crop of one detected hand that ``net`` takes (``HandCrop``)."""
    from .data.crops import HandCrop, hand_crop

    left = d.side == "left"
    if net.input_crop == "mediapipe":
        return hand_crop(image, K, d.keypoints, size, mirror=left)
    crop, Kc = crop_around(image, K, d.keypoints, size)
    if left:
        crop = np.ascontiguousarray(crop[:, ::-1])
        Kc = np.array([[-1.0, 0, size - 1], [0, 1, 0], [0, 0, 1]]) @ Kc @ np.diag([-1.0, 1, 1])
    return HandCrop(crop, np.eye(3), Kc, np.eye(3), left)


def fit_inputs(
    image: np.ndarray, K: np.ndarray, dets: list[HandDetection], crop_size: int
) -> FitInputs:
    """``FitInputs`` of hands detected in one image (crops for the appearance stage)."""
    pairs = [crop_around(image, K, d.keypoints, crop_size) for d in dets]
    crops, crop_ks = zip(*pairs, strict=True)
    f32 = torch.float32
    world = None if any(d.world is None for d in dets) else np.stack([d.world for d in dets])
    return FitInputs(
        keypoints=torch.as_tensor(np.stack([d.keypoints for d in dets]), dtype=f32),
        confidence=torch.as_tensor(np.stack([d.confidence for d in dets]), dtype=f32),
        K=torch.as_tensor(K, dtype=f32)[None].repeat(len(dets), 1, 1),
        world=None if world is None else torch.as_tensor(world, dtype=f32),
        crop=torch.as_tensor(np.stack(crops), dtype=f32) / 255.0,
        crop_K=torch.as_tensor(np.stack(crop_ks), dtype=f32),
    )


def hands_from_fit(
    model: HandModel, res: FitResult, dets: list[HandDetection], K: Tensor
) -> list[HandReconstruction]:
    """One ``HandReconstruction`` per fitted hand of ``res`` (K: (B, 3, 3))."""
    if has_texture_space(model):
        tex_maps, vcols = (t.detach().numpy() for t in model.albedo(res.texture))
    else:  # no texture space: a uniform skin colour
        tex_maps, vcols = None, [None] * len(dets)
    faces = model.faces.numpy()
    face_uvs = None if model.face_uvs is None else model.face_uvs.numpy()
    return [
        hand_record(
            model, d, res.output.joints[k].numpy(), res.output.vertices[k].numpy(),
            K[k].numpy(), faces, face_uvs,
            texture=None if tex_maps is None else tex_maps[k],
            vertex_colors=vcols[k],
            parameters={name: getattr(res, name)[k].tolist() for name in PARAMETER_NAMES},
            fit={"reprojection_px": float(res.reprojection_px[k]),
                 **{name: float(v[k]) for name, v in res.losses.items()}},
        )
        for k, d in enumerate(dets)
    ]  # fmt: skip


def hand_record(
    model: HandModel,
    d: HandDetection,
    joints: np.ndarray,
    vertices: np.ndarray,
    K: np.ndarray,
    faces: np.ndarray,
    face_uvs: np.ndarray | None,
    texture: np.ndarray | None,
    vertex_colors: np.ndarray | None,
    parameters: dict[str, list],
    fit: dict[str, float],
) -> HandReconstruction:
    """One ``HandReconstruction`` (the joints projected with ``K`` (3, 3); a uniform skin where
    ``vertex_colors`` is None; the mean 2D distance to the detection as ``reprojection_px``
    unless ``fit`` has it)."""
    j2 = project(torch.as_tensor(joints)[None], torch.as_tensor(K)[None])[0].numpy()
    if vertex_colors is None:
        vertex_colors = np.tile(SKIN_RGB, (len(vertices), 1))
    fit = {"reprojection_px": float(np.linalg.norm(j2 - d.keypoints, axis=1).mean()), **fit}
    return HandReconstruction(
        side=d.side,
        detection=d,
        joints3d=joints,
        joints2d=j2,
        vertices=vertices,
        faces=faces,
        vertex_colors=vertex_colors,
        texture=texture,
        uvs=None if model.uvs is None else model.uvs.numpy(),
        face_uvs=face_uvs,
        parameters=parameters,
        fit=fit,
    )


def reconstruct_image(
    image: np.ndarray,
    K: np.ndarray,
    detections: list[HandDetection],
    models: dict[str, HandModel],
    cfg: ReconstructConfig,
) -> list[HandReconstruction]:
    """Fit every detected hand of one image (batched per side)."""
    out: list[HandReconstruction | None] = [None] * len(detections)
    for side in ("right", "left"):
        idx = [i for i, d in enumerate(detections) if d.side == side]
        if not idx or side not in models:  # NIMBLE has no left hand
            continue
        model = models[side]
        dets = [detections[i] for i in idx]
        inputs = fit_inputs(image, K, dets, cfg.crop_size)
        res = fit_hands(model, inputs, cfg.fit)
        for k, hand in enumerate(hands_from_fit(model, res, dets, inputs.K)):
            out[idx[k]] = hand
    return [h for h in out if h is not None]


# -- outputs ------------------------------------------------------------------------------

# OpenCV camera (y down, z forward) -> glTF's y-up frame seen from +z: the photo's view.
_CV_TO_GL = np.diag([1.0, -1.0, -1.0])


def textured_mesh(hand: HandReconstruction) -> trimesh.Trimesh:
    """A trimesh with UVs and the fitted albedo map (vertices split along UV seams), or with
    vertex colours for models without a texture space; glTF's y-up frame."""
    if hand.texture is None or hand.uvs is None:
        colors = (np.clip(hand.vertex_colors, 0, 1) * 255).astype(np.uint8)
        return trimesh.Trimesh(
            hand.vertices @ _CV_TO_GL.T, hand.faces, vertex_colors=colors, process=False
        )
    geo_of_uv = np.zeros(len(hand.uvs), dtype=np.int64)
    geo_of_uv[hand.face_uvs.ravel()] = hand.faces.ravel()
    verts = hand.vertices[geo_of_uv] @ _CV_TO_GL.T
    # Normals of the unsplit surface, so that shading stays smooth across UV seams (without
    # them viewers shade every triangle flat).
    normals = trimesh.Trimesh(hand.vertices @ _CV_TO_GL.T, hand.faces, process=False)
    image = Image.fromarray((np.clip(hand.texture, 0, 1) * 255).astype(np.uint8))
    material = trimesh.visual.material.PBRMaterial(
        baseColorTexture=image, metallicFactor=0.0, roughnessFactor=0.8
    )
    visual = trimesh.visual.TextureVisuals(uv=hand.uvs, material=material)
    return trimesh.Trimesh(verts, hand.face_uvs, visual=visual, process=False,
                           vertex_normals=normals.vertex_normals[geo_of_uv])  # fmt: skip


def overlay_image(
    image: np.ndarray,
    K: np.ndarray,
    hands: list[HandReconstruction],
    max_side: int = 960,
    side_views: bool = True,
) -> Image.Image:
    """The photo with the fitted meshes rendered over it and the keypoints, plus a side view
    of each hand (``side_views``; a video's frames go without, to keep one size)."""
    h, w = image.shape[:2]
    s = min(1.0, max_side / max(h, w))
    hs, ws = max(int(round(h * s)), 1), max(int(round(w * s)), 1)
    small = np.asarray(Image.fromarray(image).resize((ws, hs), Image.BILINEAR)) if s < 1 else image
    Ks = resize_K(torch.as_tensor(K, dtype=torch.float32)[None], ws / w, hs / h)
    canvas = Image.fromarray(small)
    if hands:
        offs = np.cumsum([0] + [len(hd.vertices) for hd in hands])
        v = torch.as_tensor(np.concatenate([hd.vertices for hd in hands]), dtype=torch.float32)[
            None
        ]
        f = torch.as_tensor(
            np.concatenate([hd.faces + o for hd, o in zip(hands, offs, strict=False)])
        )
        vc = torch.as_tensor(
            np.concatenate([hd.vertex_colors for hd in hands]), dtype=torch.float32
        )[None]
        r = Renderer((hs, ws))(v, f, Ks, vertex_colors=vc, light=default_light(1))
        a = 0.75 * r.silhouette[0, ..., None].numpy()
        blend = (1 - a) * small / 255.0 + a * r.rgb[0].numpy()
        canvas = Image.fromarray((np.clip(blend, 0, 1) * 255).astype(np.uint8))
        draw = ImageDraw.Draw(canvas)
        for hd in hands:
            kp = hd.detection.keypoints * [ws / w, hs / h]
            draw_skeleton(draw, kp)
            for pt, c in zip(kp, hd.detection.confidence, strict=True):
                rr = 2 + 3 * c
                draw.ellipse(
                    [pt[0] - rr, pt[1] - rr, pt[0] + rr, pt[1] + rr], outline=(255, 255, 255)
                )
    panels = [canvas]
    # Side views: turned 90 degrees about the vertical through the hand.
    for hd in hands if side_views else []:
        side = 256
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
        panel = panel.resize((int(side * hs / side), hs)) if hs != side else panel
        panels.append(panel)
    total_w = sum(p.width for p in panels)
    sheet = Image.new("RGB", (total_w, max(p.height for p in panels)), (255, 255, 255))
    x = 0
    for p in panels:
        sheet.paste(p, (x, 0))
        x += p.width
    return sheet


def write_outputs(
    out_dir: str | Path,
    stem: str,
    image: np.ndarray,
    K: np.ndarray,
    hands: list[HandReconstruction],
    k_source: str,
    image_path: str = "",
    mesh_formats: tuple[str, ...] = (".glb",),
    model_name: str = "openhand",
    overlay: bool = True,
) -> list[Path]:
    """Write the meshes, ``<stem>.json`` and (``overlay``) ``<stem>_overlay.png``; returns
    the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, hd in enumerate(hands):
        for fmt in mesh_formats:
            p = out / f"{stem}_{i}{fmt}"
            if fmt == ".glb":
                mesh = textured_mesh(hd)
                paths.append(atomic_write(
                    p, lambda t, m=mesh: m.export(t, file_type="glb", include_normals=True)
                ))  # fmt: skip
            else:
                colors = (np.clip(hd.vertex_colors, 0, 1) * 255).astype(np.uint8)
                m = trimesh.Trimesh(hd.vertices, hd.faces, process=False, vertex_colors=colors)
                paths.append(atomic_write(p, lambda t, m=m, f=fmt: m.export(t, file_type=f[1:])))
    record = {
        "image": image_path,
        "K": K.tolist(),
        "K_source": k_source,
        "hands": [
            {
                "side": hd.side,
                "model": model_name,
                "joints3d": hd.joints3d.tolist(),
                "joints2d": hd.joints2d.tolist(),
                "keypoints2d_detected": hd.detection.keypoints.tolist(),
                "confidence": hd.detection.confidence.tolist(),
                "detection_score": hd.detection.score,
                "vertices": hd.vertices.tolist(),
                "parameters": hd.parameters,
                "fit": hd.fit,
                **({} if hd.track is None else {"track": hd.track}),
            }
            for hd in hands
        ],
    }
    paths.append(atomic_write(out / f"{stem}.json", lambda t: t.write_text(json.dumps(record))))
    if overlay:
        sheet = overlay_image(image, K, hands)
        paths.append(atomic_write(out / f"{stem}_overlay.png", lambda t: sheet.save(t, "PNG")))
    return paths
