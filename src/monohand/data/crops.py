"""The hand crops a network sees: MediaPipe's region of interest, warped and its camera split.

MediaPipe's landmark network was trained on crops made from the hand's own landmarks
(``HandLandmarksToRectCalculator`` + ``RectTransformationCalculator`` of its hand graph): the
crop turned so that the wrist lies below the knuckles, around the box of the palm and the
proximal joints, enlarged 2x and shifted 0.1 of its height towards the fingers. Feeding
the network such crops keeps its features in the distribution it knows, on real photos as
on renders. ``hand_crop`` applies the same map to an image and returns the crop's camera:
the map A is a rotation, a scale and a shift, so A K = K' R with K' intrinsic and R a roll
about the optical axis (``augment.split_roll``); a network predicting in the crop's camera
frame gives X' = R X, and X = R^T X'.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .augment import split_roll

# Wrist, the thumb's CMC/MCP/IP, and each finger's MCP and PIP: MediaPipe's "partial"
# landmarks for the box (fingertips left out, so a curled or spread finger does not move it).
ROI_JOINTS = (0, 1, 2, 3, 5, 6, 9, 10, 13, 14, 17, 18)
ROI_SCALE = 2.0
ROI_SHIFT_Y = -0.1


@dataclass
class HandCrop:
    """A square crop of one hand.

    Attributes:
        image: (size, size, 3) uint8 RGB.
        A: (3, 3) the pixel map image -> crop (crop pixel centres at integers).
        K: (3, 3) the crop's intrinsics K' (A K = K' R).
        R: (3, 3) the roll from the image's camera frame to the crop's (X' = R X).
        mirrored: the crop is the mirror image (a left hand shown as a right one); then
            A K diag(-1, 1, 1) = K' R, i.e. X' = R diag(-1, 1, 1) X.
    """

    image: np.ndarray
    A: np.ndarray
    K: np.ndarray
    R: np.ndarray
    mirrored: bool = False

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """(..., 3) points of the crop's camera frame -> the image's camera frame."""
        x = points @ self.R  # R^T X' for row vectors
        return x * np.array([-1.0, 1.0, 1.0]) if self.mirrored else x


def mediapipe_roi(keypoints: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """MediaPipe's region of interest from 21 2D keypoints (pixels, FreiHAND order).

    Returns:
        centre (2,) pixels, side (pixels, square), and R2 (2, 2): rows are the crop's x and
        y axes in image coordinates (the crop's "up", -y, points from the wrist to the
        middle of the knuckles).
    """
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.shape != (21, 2) or not np.all(np.isfinite(kp)):
        raise ValueError(f"keypoints must be finite (21, 2), got {kp.shape}")
    knuckles = 0.25 * (kp[5] + kp[13]) + 0.5 * kp[9]
    up = knuckles - kp[0]
    n = np.linalg.norm(up)
    up = up / n if n > 1e-9 else np.array([0.0, -1.0])
    y_axis = -up
    x_axis = np.array([y_axis[1], -y_axis[0]])  # (0, 1) -> (1, 0): a turn, no mirror
    R2 = np.stack([x_axis, y_axis])
    pts = kp[list(ROI_JOINTS)] @ R2.T
    lo, hi = pts.min(0), pts.max(0)
    mid = 0.5 * (lo + hi)
    w, h = hi - lo
    mid = mid + [0.0, ROI_SHIFT_Y * h]
    side = max(w, h, 4.0) * ROI_SCALE
    return mid @ R2, float(side), R2


def roi_affine(centre: np.ndarray, side: float, R2: np.ndarray, size: int) -> np.ndarray:
    """(3, 3) pixel map of the square ROI onto a (size, size) crop (pixel centres at
    integers: the ROI's centre lands on (size - 1) / 2)."""
    s = size / side
    A = np.eye(3)
    A[:2, :2] = s * R2
    A[:2, 2] = (size - 1) / 2 - s * R2 @ np.asarray(centre, dtype=np.float64)
    return A


def jitter_roi(
    centre: np.ndarray, side: float, R2: np.ndarray, rng: np.random.Generator,
    scale: float = 0.1, shift: float = 0.05, rotation_deg: float = 10.0,
) -> tuple[np.ndarray, float, np.ndarray]:  # fmt: skip
    """A randomly perturbed ROI (the detector's keypoints are not the truth): side times
    exp(N(0, scale)), centre moved by N(0, shift) sides, turned by N(0, rotation_deg)."""
    a = np.deg2rad(rng.normal(0.0, rotation_deg))
    c, s_ = np.cos(a), np.sin(a)
    turn = np.array([[c, s_], [-s_, c]])
    return (
        np.asarray(centre) + rng.normal(0.0, shift, 2) * side,
        float(side * np.exp(rng.normal(0.0, scale))),
        turn @ R2,
    )


def hand_crop(
    image: np.ndarray,
    K: np.ndarray,
    keypoints: np.ndarray,
    size: int = 224,
    mirror: bool = False,
    roi: tuple[np.ndarray, float, np.ndarray] | None = None,
) -> HandCrop:
    """MediaPipe's crop of the hand whose 2D keypoints are given.

    Args:
        image: (H, W, 3) uint8 RGB; K: (3, 3) its intrinsics.
        keypoints: (21, 2) pixels; used for the ROI unless ``roi`` is given.
        mirror: flip the crop left-right (left hands, for a right-hand network).
        roi: (centre, side, R2) as ``mediapipe_roi`` returns (e.g. jittered).
    Outside the image the crop is black, as MediaPipe pads it.
    """
    centre, side, R2 = roi if roi is not None else mediapipe_roi(keypoints)
    A = roi_affine(centre, side, R2, size)
    if mirror:
        A = np.array([[-1.0, 0, size - 1], [0, 1, 0], [0, 0, 1]]) @ A
    crop = cv2.warpAffine(image, A[:2], (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))  # fmt: skip
    P = A @ np.asarray(K, dtype=np.float64)
    if mirror:
        P = P @ np.diag([-1.0, 1.0, 1.0])
    Kc, R = split_roll(P)
    return HandCrop(crop, A, Kc, R, mirror)


class MediaPipeCrop:
    """Callable for ``FreiHANDDataset(augment=...)``: an item becomes MediaPipe's crop of its
    hand, as reconstruction makes it from detected keypoints.

    The ROI comes from the projected ground truth, perturbed by ``jitter_roi`` (the detector's
    keypoints are not the truth); image and mask are warped, 2D labels mapped by the pixel
    map A, K replaced by the crop's K', and 3D labels (joints3d, vertices) turned by the roll
    R (see the module doc). ``colour``: an ``AugmentConfig`` for colour jitter after cropping.
    """

    def __init__(self, size: int = 224, jitter: bool = True, colour=None) -> None:
        self.size, self.jitter, self.colour = size, jitter, colour

    def __call__(self, item: dict, rng: np.random.Generator) -> dict:
        roi = mediapipe_roi(item["joints2d"])
        if self.jitter:
            roi = jitter_roi(*roi, rng)
        c = hand_crop(item["image"], item["K"], item["joints2d"], self.size, roi=roi)
        out = dict(item)
        out["image"] = c.image
        if self.colour is not None:
            from .augment import color_jitter

            out["image"] = color_jitter(c.image, self.colour, rng)
        if "mask" in item:
            out["mask"] = cv2.warpAffine(item["mask"], c.A[:2], (self.size, self.size),
                                         flags=cv2.INTER_NEAREST)  # fmt: skip
        out["K"] = c.K
        for k in ("joints3d", "vertices"):
            if k in item:
                out[k] = item[k] @ c.R.T
        for k in ("joints2d", "keypoints"):
            if k in item:
                out[k] = item[k] @ c.A[:2, :2].T + c.A[:2, 2]
        out["affine"] = c.A
        return out
