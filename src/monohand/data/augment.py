"""S2HAND-style augmentation: rotation about the image centre, scale and shift jitter, colour
jitter. Geometry is one 2D affine map A applied to the image, the mask and the 2D keypoints;
the camera and the 3D labels follow exactly: A K = K' R with K' an intrinsic matrix (upper
triangular) and R a rotation about the optical axis (``split_roll``), so the item gets K' and
its 3D joints and vertices turned by R, as S2HAND turns its 3D labels. (K' = A K alone would
re-project correctly too, but leave the 3D labels un-turned while the image turns: a network,
which sees the image and not the rotation hidden in K, could not learn them.)
``crop_around`` is the same idea for the square hand crops of reconstruction and HO-3D.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class AugmentConfig:
    rotation_deg: float = 90.0  # uniform in [-r, r]
    scale: tuple[float, float] = (0.9, 1.1)
    shift: float = 0.05  # fraction of the image size
    brightness: float = 0.25
    contrast: float = 0.25
    saturation: float = 0.25
    hue_deg: float = 6.0


def random_affine(
    size: tuple[int, int], cfg: AugmentConfig, rng: np.random.Generator
) -> np.ndarray:
    """(3, 3) pixel map: rotate and scale about the image centre, then shift."""
    h, w = size
    c = np.array([(w - 1) / 2, (h - 1) / 2])
    a = np.deg2rad(rng.uniform(-cfg.rotation_deg, cfg.rotation_deg))
    s = rng.uniform(*cfg.scale)
    t = rng.uniform(-cfg.shift, cfg.shift, size=2) * [w, h]
    r = s * np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])
    m = np.eye(3)
    m[:2, :2] = r
    m[:2, 2] = c - r @ c + t
    return m


def warp(
    image: np.ndarray, A: np.ndarray, size: tuple[int, int], nearest: bool = False
) -> np.ndarray:
    """Apply the pixel map A (3, 3) to an image, output (h, w) = ``size``; reflect at borders."""
    h, w = size
    flags = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    border = cv2.BORDER_CONSTANT if nearest else cv2.BORDER_REFLECT
    return cv2.warpAffine(image, A[:2], (w, h), flags=flags, borderMode=border)


def crop_around(
    image: np.ndarray, K: np.ndarray, keypoints: np.ndarray, size: int, margin: float = 1.5
) -> tuple[np.ndarray, np.ndarray]:
    """A square crop around keypoints and its K; pads outside the image.

    Args:
        image: (H, W, 3); K: (3, 3) its intrinsics, pixels; keypoints: (21, 2) pixels.
        size: the crop's side, pixels; margin: the crop's side over the keypoints' extent.
    Returns:
        (size, size, 3) crop and (3, 3) its intrinsics.
    """
    lo, hi = keypoints.min(0), keypoints.max(0)
    c = 0.5 * (lo + hi)
    side = max((hi - lo).max() * margin, 16.0)
    x0, y0 = c - side / 2
    s = size / side
    # Crop pixel j has its centre at x0 + (j + 0.5) / s in the image: u' = s u - s x0 - 0.5.
    A = np.array([[s, 0, -s * x0 - 0.5], [0, s, -s * y0 - 0.5], [0, 0, 1.0]])
    crop = cv2.warpAffine(
        image,
        A[:2],
        (size, size),
        flags=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return crop, A @ K


def split_roll(P: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split a camera P (3, 3) whose last row is (0, 0, 1), such as A K, into an intrinsic
    matrix K' (upper triangular, positive diagonal) and a rotation R about the optical axis
    with P = K' R (an RQ decomposition of the 2x2 block)."""
    if np.linalg.det(P[:2, :2]) <= 0:
        raise ValueError("split_roll: the 2x2 block of P mirrors or is singular")
    row1 = P[1, :2]
    fy = np.linalg.norm(row1)
    s, c = -row1[0] / fy, row1[1] / fy
    q = np.array([[c, s], [-s, c]])
    K = np.eye(3)
    K[0, :2] = [P[0, :2] @ q[0], P[0, :2] @ q[1]]
    K[1, 1] = fy
    K[:2, 2] = P[:2, 2]
    R = np.eye(3)
    R[:2, :2] = q
    return K, R


def color_jitter(image: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """Brightness, contrast, saturation and hue jitter of an RGB uint8 image."""
    img = image.astype(np.float32) / 255.0
    img = img * rng.uniform(1 - cfg.brightness, 1 + cfg.brightness)
    mean = img.mean()
    img = (img - mean) * rng.uniform(1 - cfg.contrast, 1 + cfg.contrast) + mean
    grey = img.mean(-1, keepdims=True)
    img = (img - grey) * rng.uniform(1 - cfg.saturation, 1 + cfg.saturation) + grey
    hsv = cv2.cvtColor(np.clip(img, 0, 1), cv2.COLOR_RGB2HSV)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-cfg.hue_deg, cfg.hue_deg)) % 360
    return (np.clip(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB), 0, 1) * 255).astype(np.uint8)


class Augment:
    """Callable for ``FreiHANDDataset(augment=...)``: (item, rng) -> item with image, mask,
    joints2d and keypoints moved by the affine map, K and the 3D labels (joints3d, vertices)
    by its split into intrinsics and a roll (see the module doc)."""

    def __init__(self, cfg: AugmentConfig | None = None) -> None:
        self.cfg = cfg or AugmentConfig()

    def __call__(self, item: dict, rng: np.random.Generator) -> dict:
        img = item["image"]
        size = img.shape[:2]
        A = random_affine(size, self.cfg, rng)
        out = dict(item)
        out["image"] = color_jitter(warp(img, A, size), self.cfg, rng)
        if "mask" in item:
            out["mask"] = warp(item["mask"], A, size, nearest=True)
        out["K"], R = split_roll(A @ item["K"])
        for k in ("joints3d", "vertices"):
            if k in item:
                out[k] = item[k] @ R.T
        for k in ("joints2d", "keypoints"):
            if k in item:
                out[k] = item[k] @ A[:2, :2].T + A[:2, 2]
        out["affine"] = A
        return out
