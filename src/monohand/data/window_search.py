"""Hands that MediaPipe's palm detector misses, found by its landmark network alone.

MediaPipe finds a hand in two steps: a palm detector over the whole image (192 x 192), then
the landmark network on a crop around each palm. The palm detector is the weak step on hands
that hold something or wear gloves (a trumpet player's, a gardener's): the landmark network,
shown a crop of such a hand, still says "hand" with its presence head. ``search_windows``
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
from .keypoints import NUM_JOINTS, HandDetection, spread_confidence

MIN_SIDE = 32  # pixels: a smaller image holds no hand the network could read


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
            face, moves 0.056-0.11). 0 turns this second opinion off.
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


def _same_hand(a: HandDetection, b: HandDetection) -> bool:
    """Two detections of one hand: keypoints on average within half a hand size, or (of one
    side: a left and a right hand may clasp) keypoint boxes overlapping by more than half the
    smaller one."""
    if np.linalg.norm(a.keypoints - b.keypoints, axis=1).mean() < 0.5 * max(a.size, b.size):
        return True
    if a.side != b.side:
        return False
    lo = np.maximum(a.keypoints.min(0), b.keypoints.min(0))
    hi = np.minimum(a.keypoints.max(0), b.keypoints.max(0))
    inter = np.prod(np.clip(hi - lo, 0, None))
    areas = [np.prod(d.keypoints.max(0) - d.keypoints.min(0)) for d in (a, b)]
    return inter > 0.5 * max(min(areas), 1e-9)


def search_windows(image: np.ndarray, net, max_hands: int = 2,
                   cfg: WindowSearchConfig | None = None) -> list[HandDetection]:  # fmt: skip
    """Hands in an RGB uint8 image (H, W, 3) found by the landmark network ``net``
    (``nets.mediapipe_hand``) over windows (see the module doc); best first, at most
    ``max_hands``, [] when none."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"search_windows: expected an RGB uint8 image (H, W, 3), got "
                         f"{image.dtype} {image.shape}")  # fmt: skip
    cfg = cfg or WindowSearchConfig()
    h, w = image.shape[:2]
    n = net.input_size
    if min(h, w) < MIN_SIDE:
        return []
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
        return []
    kp = np.stack(starts)
    prev = kp
    for _ in range(max(cfg.refine, 1)):
        affines = [roi_affine(*mediapipe_roi(p), n) for p in kp]
        crops = [cv2.warpAffine(image, A[:2], (n, n), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT) for A in affines]  # fmt: skip
        screen, world, presence, right = _run(net, crops, cfg.batch)
        inv = np.linalg.inv(np.stack(affines))  # crop pixels -> image pixels
        uv1 = np.concatenate([screen[..., :2], np.ones((len(kp), NUM_JOINTS, 1))], -1)
        prev, kp = kp, np.einsum("nij,nkj->nki", inv, uv1)[..., :2]
    found = []
    min_size = cfg.min_size * wins[:, 2].min()
    for i in np.argsort(-presence):
        if presence[i] <= cfg.presence:
            break
        size = np.linalg.norm(kp[i, 9] - kp[i, 0])
        if size < min_size:
            continue
        size = max(size, 1.0)
        spread = np.linalg.norm(kp[i] - prev[i], axis=1)
        if not accepted(float(presence[i]), float(spread.mean() / size), cfg):
            continue
        R2 = affines[i][:2, :2] / np.linalg.norm(affines[i][0, :2])
        conf = spread_confidence(float(presence[i]), spread, size)
        # World landmarks are in the crop's axes: turned back to the image's (x right,
        # y down), as MediaPipe's own are.
        wl = world[i].copy()
        wl[:, :2] = wl[:, :2] @ R2
        d = HandDetection(kp[i], conf, float(presence[i]),
                          "right" if right[i] > 0.5 else "left", wl)  # fmt: skip
        if not any(_same_hand(d, f) for f in found):
            found.append(d)
        if len(found) == max_hands:
            break
    return found


def window_searcher(net, cfg: WindowSearchConfig | None = None
                    ) -> Callable[[np.ndarray, int], list[HandDetection]]:  # fmt: skip
    """``search_windows`` with ``net`` and ``cfg`` bound: ``MediaPipeHands``'s
    ``retry_windows``."""

    def search(image: np.ndarray, max_hands: int) -> list[HandDetection]:
        return search_windows(image, net, max_hands, cfg)

    return search
