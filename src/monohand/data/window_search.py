"""Hands that MediaPipe's palm detector misses, found by its landmark network alone.

MediaPipe finds a hand in two steps: a palm detector over the whole image (192 x 192), then
the landmark network on a crop around each palm. The palm detector is the weak step on hands
that hold something or wear gloves (a trumpet player's, a gardener's): the landmark network,
shown a crop of such a hand, still says "hand" with its presence head. (Of the qualitative
photos' misses it finds one gloved hand; the trumpet player's two stay missed: their
windows' candidates score under the bar, and the second opinion puts their joints 0.17-0.34
hand sizes away; docs/RESULTS.md, *Recall*.) ``search_windows``
asks it directly: square windows of a few sizes over the image, each also turned by quarter
turns (the network expects fingers up), scored in batches; each window it accepts is then
re-cropped from its own landmarks as MediaPipe's tracking step does (``data.crops``:
MediaPipe's region of interest) until it settles, and the refined hands are merged (one
detection per hand, the most confident).

The detections carry what ``MediaPipeHands`` gives: 2D keypoints, world landmarks (turned to
the image's axes), the side (the network's handedness, the bundle's convention), and per-joint
confidences from how far each joint moved in the last re-crop (a joint that stays put is
probably right; the same rule as the detector's test-time augmentation).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from .crops import mediapipe_roi, roi_affine
from .detection import NUM_JOINTS, HandDetection, hand_size, same_hand, spread_confidence

MIN_SIDE = 32  # pixels: a smaller image holds no hand the network could read

# (image (H, W, 3) uint8, N candidates) -> (N,) mean keypoint disagreement in hand sizes
SecondOpinion = Callable[[np.ndarray, list[HandDetection]], np.ndarray]


@dataclass
class WindowSearchConfig:
    """Where and how hard ``search_windows`` looks.

    Attributes:
        scales: window sides as fractions of the image's shorter side.
        stride: the step between windows, as a fraction of their side.
        turns: quarter turns (counter-clockwise) each window is also shown at.
        presence: the presence a window needs to be refined; ``accept``: the presence the
            refined crop needs. 0.9, chosen on renders where MediaPipe finds nothing
            (``bench/bench_detect.py --windows``): its hands there are 16-17 px off at 256²,
            about as MediaPipe's own; at 0.5 more come back, but 27-50 px off.
        settled: a refined crop under ``accept`` (but above ``presence``) is kept too when
            its last re-crop moved the keypoints by less than this many hand sizes (wrist
            to middle knuckle) on average: a hand's landmarks settle where they are, a
            non-hand's wander. 0.03, chosen on the candidates of renders where MediaPipe
            finds nothing and of 20 hand-free photos (2026-12-05): 3 more rendered hands
            found, no wrong one, none in the hand-free photos (their closest, a cat's
            face, moves 0.056-0.11). 0 turns this rule (settled keypoints) off.
        min_size: a refined candidate whose hand (wrist to middle knuckle) is shorter than
            this share of the smallest window's side is dropped: its landmarks collapsed onto
            a speck, which the re-crops then magnify (a well-framed hand is about a fifth of
            its window, so hands under ~3 % of the image's shorter side are not looked for:
            no window frames them; realhands' smallest is 1.5 times the bar). ``wander``: one
            whose last re-crop moved its keypoints by this many hand sizes or more on average
            is dropped whatever its presence: it converged on nothing (``inf``: never).
            0.1 and 1.0, chosen on renders with held objects, forearms and
            photographic effects (style v3; ``bench/bench_detect.py --style v3``, 2026-12-05):
            of the 93 of 400 that MediaPipe misses, they drop 10 of the windows' 30 wrong
            detections and none of their 41 correct ones; on the v1 renders of both framings
            they change nothing.
        confirm: a refined crop under ``accept`` but above this presence (and neither
            too small nor wandering) is also kept when a second network, asked for the
            same crop (``search_windows``'s ``second_opinion``: the shipped ``HandNet``
            under ``monohand reconstruct``), puts the joints within ``agree`` hand sizes
            of its keypoints on average (not an independent check: the shipped network's
            encoder is this landmark network, frozen, with heads trained on renders and
            photos; the bar rests on measurement). 0.8 and 0.15, chosen on the candidates of renders
            where MediaPipe finds nothing (2026-12-05, from a grid of presence 0.5 / 0.7 /
            0.8 x agreement 0.1 / 0.15 / 0.2, the most hands with no more wrong ones on any
            set): v3 41 -> 42 hands, v1 training framing 21 -> 22, close-ups 19 -> 21, wrong
            ones unchanged (20, 2, 1); no candidate of the hand-free photos comes near
            (their most present, 0.796, is 0.41 hand sizes off). Calibrated on the shipped
            network only: a network of one's own is not asked.
        refine: re-crops from the landmarks (MediaPipe's tracking step).
        batch: windows per forward pass.
    """

    scales: tuple[float, ...] = (0.3, 0.45, 0.65, 0.9)
    stride: float = 1 / 3
    turns: tuple[int, ...] = (0, 1, 3)
    presence: float = 0.5
    accept: float = 0.9
    settled: float = 0.03
    min_size: float = 0.1
    wander: float = 1.0
    confirm: float = 0.8
    agree: float = 0.15
    refine: int = 2
    batch: int = 64


def windows(h: int, w: int, cfg: WindowSearchConfig) -> np.ndarray:
    """(N, 3) integer windows (x0, y0, side) of an h x w image, every scale, inside it and
    covering it (each scale's last row and column flush with the border), without repeats."""
    m = min(h, w)
    out = []
    for frac in cfg.scales:
        s = min(max(int(frac * m), 8), m)
        step = max(int(cfg.stride * s), 1)
        # the last window flush with the far border, so that no strip goes unseen
        ys = sorted({*range(0, h - s + 1, step), h - s})
        xs = sorted({*range(0, w - s + 1, step), w - s})
        out += [(x, y, s) for y in ys for x in xs]
    return np.unique(np.array(out, dtype=np.int64).reshape(-1, 3), axis=0)


def unturn(uv: np.ndarray, k: int, n: int) -> np.ndarray:
    """Pixels (..., 2) of an n x n crop turned ``k`` quarter turns counter-clockwise
    (``np.rot90(crop, k)``) -> the unturned crop's pixels."""
    u, v = uv[..., 0], uv[..., 1]
    for _ in range(k % 4):  # one turn back: (u', v') -> (n - 1 - v', u')
        u, v = n - 1 - v, u
    return np.stack([u, v], -1)


def _run(net, crops: list[np.ndarray], batch: int):
    x = torch.as_tensor(np.stack(crops)).permute(0, 3, 1, 2).float() / 255.0
    with torch.no_grad():
        parts = [net(x[i : i + batch]) for i in range(0, len(x), batch)]
    return (torch.cat([p.screen for p in parts]).double().numpy(),
            torch.cat([p.world for p in parts]).double().numpy(),
            torch.cat([p.presence for p in parts]).double().numpy(),
            torch.cat([p.handedness for p in parts]).double().numpy())  # fmt: skip


def accepted(presence: float, movement: float, cfg: WindowSearchConfig) -> bool:
    """Whether a refined candidate is a hand: its presence above ``cfg.accept``, or above
    ``cfg.presence`` with its keypoints settled (``movement``: their mean move in the last
    re-crop, in hand sizes, below ``cfg.settled``); never when they moved ``cfg.wander`` or
    more."""
    if movement >= cfg.wander:
        return False
    return presence > cfg.accept or (presence > cfg.presence and movement < cfg.settled)


def search_windows(image: np.ndarray, net, max_hands: int = 2,
                   cfg: WindowSearchConfig | None = None,
                   second_opinion: SecondOpinion | None = None) -> list[HandDetection]:  # fmt: skip
    """Hands in an RGB uint8 image (H, W, 3) found by the landmark network ``net``
    (``nets.mediapipe_litert.LiteRTHandNet`` under ``monohand reconstruct``, or the PyTorch
    port ``nets.mediapipe_hand``) over windows (see the module doc); best first, at most
    ``max_hands``, [] when none. ``second_opinion(image, detections)``: for the refined
    candidates in doubt (presence between ``cfg.confirm`` and ``cfg.accept``), how far
    another network puts each one's joints from its keypoints, (N,) in hand sizes
    (``hybrid.network_agreement``); None: those stay out."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"search_windows: expected an RGB uint8 image (H, W, 3), got "
                         f"{image.dtype} {image.shape}")  # fmt: skip
    cfg = cfg or WindowSearchConfig()
    c = candidates(image, net, cfg)
    if c is None:
        return []
    keep = c.sane & np.array([accepted(float(p), float(m), cfg)
                              for p, m in zip(c.presence, c.movement, strict=True)], bool)
    doubt = (c.sane & ~keep & (c.movement < cfg.wander) & (c.presence > cfg.confirm)
             & (second_opinion is not None))  # fmt: skip
    found: list[HandDetection] = []
    for i in np.argsort(-c.presence):
        if not (keep[i] or doubt[i]):
            continue
        d = _detection(c.keypoints[i], c.previous[i], c.presence[i], c.right[i], c.world[i],
                       c.affines[i])  # fmt: skip
        if any(same_hand(d, f) for f in found):
            continue
        # A candidate in doubt is asked about only when it would add a hand.
        if not keep[i] and not float(np.asarray(second_opinion(image, [d]))[0]) < cfg.agree:
            continue
        found.append(d)
        if len(found) == max_hands:
            break
    return found


@dataclass
class Candidates:
    """The window search's refined candidates of one image, before its rules: N of them.

    Attributes:
        keypoints: (N, 21, 2) pixels after the last re-crop; ``previous``: before it.
        presence: (N,) the landmark network's presence; ``right``: (N,) its right-hand
            probability.
        world: (N, 21, 3) world landmarks in the last crop's axes, metres.
        affines: (N, 3, 3) the last crops' maps, image pixels -> crop pixels.
        movement: (N,) the keypoints' mean move in the last re-crop, in hand sizes.
        sane: (N,) neither collapsed (``cfg.min_size``) nor under ``cfg.presence``.
    """

    keypoints: np.ndarray
    previous: np.ndarray
    presence: np.ndarray
    right: np.ndarray
    world: np.ndarray
    affines: np.ndarray
    movement: np.ndarray
    sane: np.ndarray


def candidates(image: np.ndarray, net, cfg: WindowSearchConfig) -> Candidates | None:
    """Every window of ``image`` (RGB uint8) the landmark network ``net`` finds a hand in
    (presence above ``cfg.presence``, at any of ``cfg.turns``), refined (``_refined``);
    None when the image is too small or no window is."""
    h, w = image.shape[:2]
    n = net.input_size
    if min(h, w) < MIN_SIDE:
        return None
    wins = windows(h, w, cfg)
    base = [cv2.resize(image[y : y + s, x : x + s], (n, n), interpolation=cv2.INTER_AREA)
            for x, y, s in wins]  # fmt: skip
    starts = []
    for k in cfg.turns:
        screen, _, presence, _ = _run(net, [np.ascontiguousarray(np.rot90(c, k)) for c in base],
                                      cfg.batch)  # fmt: skip
        for i in np.nonzero(presence > cfg.presence)[0]:
            x, y, s = wins[i]
            starts.append(unturn(screen[i, :, :2], k, n) * (s / n) + [x, y])
    if not starts:
        return None
    kp, prev, presence, right, world, affines = _refined(image, net, np.stack(starts), cfg)
    sizes = np.linalg.norm(kp[:, 9] - kp[:, 0], axis=1)
    movement = np.linalg.norm(kp - prev, axis=2).mean(1) / np.maximum(sizes, 1.0)
    sane = (sizes >= cfg.min_size * wins[:, 2].min()) & (presence > cfg.presence)
    return Candidates(kp, prev, presence, right, world, affines, movement, sane)


def _refined(image: np.ndarray, net, kp: np.ndarray, cfg: WindowSearchConfig) -> tuple:
    """Candidates' keypoints (N, 21, 2) pixels re-cropped ``cfg.refine`` times (at least
    once) from their own landmarks, MediaPipe's tracking step: (keypoints, the previous
    round's, presence (N,), right-hand probability (N,), world landmarks (N, 21, 3), the last
    crops' affines (N, 3, 3) image -> crop)."""
    n = net.input_size
    prev = kp
    for _ in range(max(cfg.refine, 1)):
        affines = [roi_affine(*mediapipe_roi(p), n) for p in kp]
        crops = [cv2.warpAffine(image, A[:2], (n, n), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT) for A in affines]  # fmt: skip
        screen, world, presence, right = _run(net, crops, cfg.batch)
        inv = np.linalg.inv(np.stack(affines))  # crop pixels -> image pixels
        uv1 = np.concatenate([screen[..., :2], np.ones((len(kp), NUM_JOINTS, 1))], -1)
        prev, kp = kp, np.einsum("nij,nkj->nki", inv, uv1)[..., :2]
    return kp, prev, presence, right, world, np.stack(affines)


def follow_hands(image: np.ndarray, net, last: list[np.ndarray],
                 cfg: WindowSearchConfig | None = None) -> list[HandDetection | None]:  # fmt: skip
    """Hands seen in the previous frame of a video, looked for again where they were: the
    landmark network re-cropped from each hand's last keypoints ``last`` ((21, 2) pixels
    each), MediaPipe's own tracking step, for frames where its palm detector loses a hand
    that is still there. Per hand, its ``HandDetection`` when the window search's rule
    accepts it (``accepted``) and it kept at least half its size, else None."""
    cfg = cfg or WindowSearchConfig()
    if not last:
        return []
    image = np.ascontiguousarray(image)
    kp, prev, presence, right, world, affines = _refined(image, net, np.stack(last), cfg)
    out: list[HandDetection | None] = []
    for i, start in enumerate(last):
        size = hand_size(kp[i])
        moved = float(np.linalg.norm(kp[i] - prev[i], axis=1).mean() / max(size, 1.0))
        ok = size >= 0.5 * hand_size(start) and accepted(float(presence[i]), moved, cfg)
        out.append(_detection(kp[i], prev[i], presence[i], right[i], world[i], affines[i])
                   if ok else None)  # fmt: skip
    return out


def _detection(kp: np.ndarray, prev: np.ndarray, presence: float, right: float,
               world: np.ndarray, affine: np.ndarray) -> HandDetection:  # fmt: skip
    """A refined candidate as a ``HandDetection``: per-joint confidences from how far each
    joint moved in the last re-crop (``prev`` -> ``kp``), the world landmarks turned from the
    crop's axes (``affine``: image -> crop) to the image's (x right, y down), as MediaPipe's
    own are."""
    size = hand_size(kp)
    R2 = affine[:2, :2] / np.linalg.norm(affine[0, :2])
    wl = world.copy()
    wl[:, :2] = wl[:, :2] @ R2
    conf = spread_confidence(float(presence), np.linalg.norm(kp - prev, axis=1), size)
    return HandDetection(kp, conf, float(presence), "right" if right > 0.5 else "left", wl)


def window_searcher(net, cfg: WindowSearchConfig | None = None,
                    second_opinion: SecondOpinion | None = None
                    ) -> Callable[[np.ndarray, int], list[HandDetection]]:  # fmt: skip
    """``search_windows`` with ``net``, ``cfg`` and ``second_opinion`` bound:
    ``MediaPipeHands``'s ``retry_windows``."""

    def search(image: np.ndarray, max_hands: int) -> list[HandDetection]:
        return search_windows(image, net, max_hands, cfg, second_opinion)

    return search
