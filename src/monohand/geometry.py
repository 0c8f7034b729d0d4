"""Rotations and rigid alignment, batched and differentiable: what the models, the networks,
the fit and the losses share. (FreiHAND's evaluation keeps its own similarity Procrustes in
``evaluate/align.py``, written exactly as the official script.)"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def rotmat_to_axis_angle(r: Tensor) -> Tensor:
    """(..., 3, 3) rotations -> (..., 3) axis-angle, exact up to angle pi (via quaternions)."""
    tr = r[..., 0, 0] + r[..., 1, 1] + r[..., 2, 2]
    # Shepperd's method: pick the largest quaternion component for stability.
    qw = 0.5 * torch.sqrt(torch.clamp(1 + tr, min=1e-12))
    qx = 0.5 * torch.sqrt(torch.clamp(1 + r[..., 0, 0] - r[..., 1, 1] - r[..., 2, 2], min=1e-12))
    qy = 0.5 * torch.sqrt(torch.clamp(1 - r[..., 0, 0] + r[..., 1, 1] - r[..., 2, 2], min=1e-12))
    qz = 0.5 * torch.sqrt(torch.clamp(1 - r[..., 0, 0] - r[..., 1, 1] + r[..., 2, 2], min=1e-12))
    d21, d02, d10 = (
        r[..., 2, 1] - r[..., 1, 2],
        r[..., 0, 2] - r[..., 2, 0],
        r[..., 1, 0] - r[..., 0, 1],
    )
    s01, s02, s12 = (
        r[..., 0, 1] + r[..., 1, 0],
        r[..., 0, 2] + r[..., 2, 0],
        r[..., 1, 2] + r[..., 2, 1],
    )
    cands = torch.stack(
        [
            torch.stack([qw, d21 / (4 * qw), d02 / (4 * qw), d10 / (4 * qw)], -1),
            torch.stack([d21 / (4 * qx), qx, s01 / (4 * qx), s02 / (4 * qx)], -1),
            torch.stack([d02 / (4 * qy), s01 / (4 * qy), qy, s12 / (4 * qy)], -1),
            torch.stack([d10 / (4 * qz), s02 / (4 * qz), s12 / (4 * qz), qz], -1),
        ],
        -2,
    )
    best = torch.stack([qw, qx, qy, qz], -1).argmax(-1)
    q = torch.gather(cands, -2, best[..., None, None].expand(*best.shape, 1, 4))[..., 0, :]
    q = q * torch.where(q[..., :1] < 0, -1.0, 1.0)  # w >= 0: angle in [0, pi]
    vec = q[..., 1:]
    sin_half = vec.norm(dim=-1, keepdim=True)
    angle = 2 * torch.atan2(sin_half, q[..., :1])
    # angle / sin(angle / 2) -> 2 as the angle -> 0
    scale = torch.where(
        sin_half > 1e-8, angle / sin_half.clamp_min(1e-12), torch.full_like(angle, 2.0)
    )
    return vec * scale


def rotation_6d_to_matrix(x: Tensor) -> Tensor:
    """(..., 6) -> (..., 3, 3): Gram-Schmidt on two 3-vectors, which become the rotation's
    first two columns (Zhou et al., "On the continuity of rotation representations", CVPR
    2019). Unlike axis-angle, this map from R^6 onto the rotations is continuous: a network
    regressing it has no wrap-around at angle pi to learn.
    """
    a, b = x[..., :3], x[..., 3:]
    c0 = F.normalize(a, dim=-1)
    c1 = F.normalize(b - (c0 * b).sum(-1, keepdim=True) * c0, dim=-1)
    return torch.stack([c0, c1, torch.linalg.cross(c0, c1, dim=-1)], -1)


def kabsch(src: Tensor, dst: Tensor, weight: Tensor | None = None) -> Tensor:
    """The rotation R (B, 3, 3), det +1, minimising sum_j w_j |R (src_j - c_s) - (dst_j - c_d)|^2
    with c the weighted centroids (the Kabsch solution; no scale, no reflection).

    Args:
        src, dst: (B, N, 3) corresponding points; weight: (B, N) non-negative, or None.
    """
    w = torch.ones_like(src[..., 0]) if weight is None else weight
    wn = (w / w.sum(1, keepdim=True).clamp_min(1e-12))[..., None]
    a = src - (wn * src).sum(1, keepdim=True)
    b = dst - (wn * dst).sum(1, keepdim=True)
    return kabsch_centred(a, b, wn)


def kabsch_centred(a: Tensor, b: Tensor, wn: Tensor) -> Tensor:
    """``kabsch`` for points already centred on their weighted centroids.

    Args:
        a, b: (B, N, 3) centred source and target; wn: (B, N, 1) weights summing to 1.
    Returns:
        (B, 3, 3) R, det +1, minimising sum_j wn_j |R a_j - b_j|^2.
    """
    u, _, vt = torch.linalg.svd((wn * b).transpose(1, 2) @ a)
    # U diag(1, 1, d) V^T with d = det(U V^T) = +-1: no reflection
    uvt = u @ vt
    d = torch.linalg.det(uvt)
    return uvt - (1.0 - d)[:, None, None] * (u[:, :, 2:] @ vt[:, 2:, :])
