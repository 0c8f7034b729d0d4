"""Cameras: OpenCV 3x3 K in pixels, and every conversion the project needs.

The one place where conventions meet. monohand's camera is OpenCV's: x right, y down, z
forward; ``uv = (K @ X)[:2] / (K @ X)[2]`` in pixels, with pixel centres at integer
coordinates (the top-left pixel covers [-0.5, 0.5]^2). NDC here is ``grid_sample``'s
(``align_corners=False``): x, y in [-1, 1] across the image's outer edges, y down.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def project(points: Tensor, K: Tensor) -> Tensor:
    """Perspective projection.

    Args:
        points: (B, N, 3) camera-frame points, metres, z > 0.
        K: (B, 3, 3) intrinsics in pixels (any 2D affine of an upper-triangular K works).
    Returns:
        (B, N, 2) pixel coordinates.
    """
    p = points @ K.transpose(-1, -2)
    return p[..., :2] / p[..., 2:3]


def crop_K(K: Tensor, x0: float | Tensor, y0: float | Tensor) -> Tensor:
    """K of the crop whose top-left pixel is pixel (x0, y0) of the original image."""
    K = K.clone()
    K[..., 0, 2] = K[..., 0, 2] - x0
    K[..., 1, 2] = K[..., 1, 2] - y0
    return K


def project_affine(points: Tensor, K_to: Tensor, K_from: Tensor) -> Tensor:
    """(B, N, 2) pixels of the image of ``K_from`` -> those of the image of ``K_to`` (B, 3, 3)
    each, where the two differ by a 2D affine map (a crop: ``K_to = A K_from``)."""
    A = K_to @ torch.linalg.inv(K_from)
    return points @ A[:, :2, :2].transpose(1, 2) + A[:, None, :2, 2]


def resize_K(K: Tensor, sx: float, sy: float | None = None) -> Tensor:
    """K after resizing the image by (sx, sy): pixel edges scale, centres move by half a pixel:
    u' = (u + 0.5) sx - 0.5."""
    sy = sx if sy is None else sy
    scale = torch.tensor([sx, sy, 1.0], dtype=K.dtype, device=K.device)
    shift = torch.tensor([0.5 * (sx - 1), 0.5 * (sy - 1), 0.0], dtype=K.dtype, device=K.device)
    K = K * scale[:, None]
    K[..., :2, :] = K[..., :2, :] + shift[:2, None] * K[..., 2:3, :]
    return K


def rotation_2d(
    angle: float | Tensor, center: tuple[float, float] | Tensor, dtype=torch.float32
) -> Tensor:
    """(3, 3) (or (B, 3, 3)) affine map of pixels rotating the image by ``angle`` radians
    (counter-clockwise as seen on screen, y down) about ``center`` (pixels)."""
    a = torch.as_tensor(angle, dtype=dtype)
    c = torch.as_tensor(center, dtype=dtype)
    cos, sin = torch.cos(a), torch.sin(a)
    # On screen with y down, a counter-clockwise turn is the matrix [[c, s], [-s, c]].
    r = torch.stack([torch.stack([cos, sin], -1), torch.stack([-sin, cos], -1)], -2)
    t = c - (r @ c[..., None])[..., 0]
    out = torch.zeros(*r.shape[:-2], 3, 3, dtype=dtype)
    out[..., :2, :2] = r
    out[..., :2, 2] = t
    out[..., 2, 2] = 1
    return out


def rotate_K(K: Tensor, angle: float | Tensor, center: tuple[float, float] | Tensor) -> Tensor:
    """K of the image rotated by ``angle`` about ``center`` (pixels): A @ K (no longer upper
    triangular unless ``center`` is the principal point; ``project`` handles any such K)."""
    return rotation_2d(angle, center, K.dtype).to(K.device) @ K


def rotate_camera_about_axis(K: Tensor, angle: float | Tensor) -> tuple[Tensor, Tensor]:
    """S2HAND's rotation augmentation, 3D-consistent: turning the image by ``angle`` about the
    principal point (with fx == fy) equals turning the camera about its optical axis. Returns
    (K unchanged, R (3, 3)) such that ``project(X @ R.T, K)`` is the rotated image's projection.
    """
    a = torch.as_tensor(angle, dtype=K.dtype)
    cos, sin = torch.cos(a), torch.sin(a)
    o, i = torch.zeros_like(a), torch.ones_like(a)
    r = torch.stack([cos, sin, o, -sin, cos, o, o, o, i], -1).reshape(*a.shape, 3, 3)
    return K, r.to(K.device)


def pixels_to_ndc(uv: Tensor, size: tuple[int, int]) -> Tensor:
    """Pixel coordinates (..., 2) to NDC (``grid_sample``, ``align_corners=False``)."""
    h, w = size
    scale = torch.tensor([2.0 / w, 2.0 / h], dtype=uv.dtype, device=uv.device)
    return (uv + 0.5) * scale - 1.0


def ndc_to_pixels(ndc: Tensor, size: tuple[int, int]) -> Tensor:
    """Inverse of ``pixels_to_ndc``."""
    h, w = size
    scale = torch.tensor([w / 2.0, h / 2.0], dtype=ndc.dtype, device=ndc.device)
    return (ndc + 1.0) * scale - 0.5


def weak_perspective_to_K(
    scale: Tensor, trans: Tensor, size: tuple[int, int], depth: float = 0.6
) -> tuple[Tensor, Tensor]:
    """A weak-perspective camera (HMR/S2HAND style: ``ndc = scale * X[:2] + trans``, NDC of
    ``pixels_to_ndc``) as a perspective camera at ``depth`` metres.

    Returns (K (B, 3, 3), transl (B, 3)) such that ``project(X + transl, K)`` equals the
    weak-perspective image for points at the root depth (z = 0 before ``transl``); other
    points differ by the perspective effect (their relative depth / ``depth``).
    """
    h, w = size
    b = scale.shape[0]
    K = torch.zeros(b, 3, 3, dtype=scale.dtype, device=scale.device)
    K[:, 0, 0] = scale * depth * w / 2.0
    K[:, 1, 1] = scale * depth * h / 2.0
    K[:, 0, 2] = w / 2.0 - 0.5
    K[:, 1, 2] = h / 2.0 - 0.5
    K[:, 2, 2] = 1
    transl = torch.zeros(b, 3, dtype=scale.dtype, device=scale.device)
    transl[:, :2] = trans / scale[:, None]
    transl[:, 2] = depth
    return K, transl


def perspective_to_weak(K: Tensor, transl: Tensor, size: tuple[int, int]) -> tuple[Tensor, Tensor]:
    """Inverse of ``weak_perspective_to_K``: (scale (B,), trans (B, 2))."""
    w = size[1]
    scale = 2.0 * K[:, 0, 0] / (transl[:, 2] * w)
    return scale, transl[:, :2] * scale[:, None]


def opencv_to_pytorch3d(
    R: Tensor, tvec: Tensor, K: Tensor, size: tuple[int, int]
) -> dict[str, Tensor]:
    """Arguments of PyTorch3D's ``PerspectiveCameras(in_ndc=False)`` for an OpenCV camera.

    PyTorch3D uses row vectors (X_view = X_world @ R + T) and a view frame with +X left, +Y up:
    its R is the transpose of OpenCV's with the x and y axes negated, its T is OpenCV's with x
    and y negated; focal length and principal point stay in pixels with ``image_size`` (H, W).
    ``transform_points_screen`` then gives OpenCV's pixel coordinates. PyTorch3D's rasteriser
    samples pixel (row i, column j) at screen point (j + 0.5, i + 0.5): to render the same
    pixel grid as monohand, add 0.5 to the principal point.
    """
    b = K.shape[0]
    h, w = size
    flip = torch.tensor([-1.0, -1.0, 1.0], dtype=K.dtype, device=K.device)
    r = R.transpose(-1, -2) * flip  # negate the first two columns
    t = tvec * flip
    return {
        "R": r,
        "T": t,
        "focal_length": torch.stack([K[:, 0, 0], K[:, 1, 1]], -1),
        "principal_point": torch.stack([K[:, 0, 2], K[:, 1, 2]], -1),
        "image_size": torch.tensor([[h, w]] * b, device=K.device),
    }


def pytorch3d_to_opencv(cam: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
    """Inverse of ``opencv_to_pytorch3d``: (R (B,3,3), tvec (B,3), K (B,3,3))."""
    r, t = cam["R"], cam["T"]
    flip = torch.tensor([-1.0, -1.0, 1.0], dtype=r.dtype, device=r.device)
    R = (r * flip).transpose(-1, -2)
    tvec = t * flip
    b = r.shape[0]
    K = torch.zeros(b, 3, 3, dtype=r.dtype, device=r.device)
    K[:, 0, 0], K[:, 1, 1] = cam["focal_length"][:, 0], cam["focal_length"][:, 1]
    K[:, 0, 2], K[:, 1, 2] = cam["principal_point"][:, 0], cam["principal_point"][:, 1]
    K[:, 2, 2] = 1
    return R, tvec, K


DEFAULT_FOV_DEG = 55.0  # horizontal field of view of a typical phone's main camera


def default_K(size: tuple[int, int], fov_degrees: float = DEFAULT_FOV_DEG, batch: int = 1
              ) -> Tensor:  # fmt: skip
    """A K with the given horizontal field of view, principal point at the image centre."""
    h, w = size
    f = 0.5 * w / math.tan(math.radians(fov_degrees) / 2)
    K = torch.tensor([[f, 0, w / 2 - 0.5], [0, f, h / 2 - 0.5], [0, 0, 1.0]])
    return K.expand(batch, 3, 3).clone()
