"""Tissue collision for layered hand models (NIMBLE's skin against its muscles).

NIMBLE's own handling is a per-sample CPU loop through trimesh (inside test, ray casting) with
no gradient. Here both steps are batched tensor code on the model's device:

1. ``inside_mesh``: generalised winding numbers of query points w.r.t. a closed mesh, chunked
   so memory stays bounded (a discrete decision: no gradient needed);
2. ``push_out``: every skin vertex found inside the muscles moves along its normal to where the
   normal's ray leaves the muscle surface, plus a margin (NIMBLE: 2 mm). The exit face is chosen
   without gradient; the hit point is then recomputed differentiably (ray-plane intersection),
   so gradients reach the skin, its normals and the muscle vertices;
3. ``spread_weights`` / ``soften``: NIMBLE blends that "hard" result with a "soft" one, each
   vertex moved by a geodesic-weighted sum of its neighbours' offsets (``0.7 hard + 0.3
   soft``); the weights are a sparse matrix here (NIMBLE's is dense, n_skin^2).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def inside_mesh(points: Tensor, verts: Tensor, faces: Tensor, chunk: int = 2048) -> Tensor:
    """Which points lie inside a closed, outward-oriented mesh.

    Args:
        points: (B, N, 3); verts: (B, M, 3); faces: (F, 3) long.
    Returns:
        (B, N) bool (winding number > 0.5).
    """
    with torch.no_grad():
        tri = verts[:, faces]  # (B, F, 3, 3)
        out = []
        for s in range(0, points.shape[1], chunk):
            p = points[:, s : s + chunk, None, None]  # (B, n, 1, 1, 3)
            d = tri[:, None] - p  # (B, n, F, 3, 3)
            a, b, c = d.unbind(3)
            la, lb, lc = a.norm(dim=-1), b.norm(dim=-1), c.norm(dim=-1)
            num = (a * torch.cross(b, c, dim=-1)).sum(-1)
            den = la * lb * lc + (a * b).sum(-1) * lc + (a * c).sum(-1) * lb + (b * c).sum(-1) * la
            w = 2 * torch.atan2(num, den).sum(-1) / (4 * torch.pi)
            out.append(w > 0.5)
        return torch.cat(out, 1)


def _ray_exit(origin: Tensor, direction: Tensor, tri: Tensor) -> tuple[Tensor, Tensor]:
    """Farthest forward hit of rays (N, 3) against triangles (N, F, 3, 3) (Moller-Trumbore):
    returns (face index (N,), hit found (N,)). The last crossing is where the ray leaves."""
    e1, e2 = tri[:, :, 1] - tri[:, :, 0], tri[:, :, 2] - tri[:, :, 0]
    d = direction[:, None].expand_as(e1)
    h = torch.cross(d, e2, dim=-1)
    det = (e1 * h).sum(-1)
    ok = det.abs() > 1e-18
    inv = torch.where(ok, 1 / torch.where(ok, det, torch.ones_like(det)), torch.zeros_like(det))
    s = origin[:, None] - tri[:, :, 0]
    u = inv * (s * h).sum(-1)
    q = torch.cross(s, e1, dim=-1)
    v = inv * (d * q).sum(-1)
    t = inv * (e2 * q).sum(-1)
    hit = ok & (u >= 0) & (v >= 0) & (u + v <= 1) & (t > 0)
    t = torch.where(hit, t, torch.full_like(t, -1.0))
    best = t.argmax(1)
    return best, hit.any(1)


def push_out(skin: Tensor, normals: Tensor, muscle: Tensor, muscle_faces: Tensor,
             candidates: Tensor | None = None, margin: float = 0.002) -> Tensor:  # fmt: skip
    """Move skin vertices that are inside the muscles out along their normals.

    Args:
        skin: (B, N, 3) skin vertices; normals: (B, N, 3) unit outward normals.
        muscle: (B, M, 3) muscle vertices; muscle_faces: (F, 3).
        candidates: (N,) bool, the vertices allowed to move (NIMBLE: its surface mask).
        margin: distance kept outside the muscle, metres.
    Returns:
        (B, N, 3) corrected skin vertices (differentiable).
    """
    inside = inside_mesh(skin, muscle, muscle_faces)
    if candidates is not None:
        inside &= candidates.to(inside.device)[None]
    bi, vi = torch.nonzero(inside, as_tuple=True)
    if bi.numel() == 0:
        return skin
    tri = muscle[:, muscle_faces]  # (B, F, 3, 3)
    o, n = skin[bi, vi], normals[bi, vi]
    with torch.no_grad():
        face, found = _ray_exit(o.detach(), n.detach(), tri[bi].detach())
    # Differentiable ray-plane intersection with the chosen face.
    t3 = tri[bi, face]  # (K, 3, 3)
    pn = torch.cross(t3[:, 1] - t3[:, 0], t3[:, 2] - t3[:, 0], dim=-1)
    # The face may be wound either way: keep the denominator's sign, only bound its size.
    den = (n * pn).sum(-1)
    den = torch.where(den.abs() < 1e-12, torch.full_like(den, 1e-12), den)
    t = ((t3[:, 0] - o) * pn).sum(-1) / den
    target = o + (t + margin)[:, None] * n
    moved = torch.where(found[:, None], target, o)
    return skin.index_put((bi, vi), moved)


def spread_weights(
    geodesic_mm: np.ndarray, cutoff_mm: float = 30.0, sigma_mm: float = 50.0
) -> tuple[np.ndarray, np.ndarray]:
    """NIMBLE's soft-collision weights from its geodesic distances ``skin_v_gd`` (N, N), mm.

    ``w_ij = exp(-d_ij / sigma)`` for ``0 < d_ij <= cutoff`` (a vertex's own distance, 0, and
    far pairs get none), each row then divided by its L2 norm (NIMBLE's normalisation; rows
    with no neighbour stay 0). Returns the sparse matrix as (indices (2, nnz), values (nnz,)).
    """
    d = np.asarray(geodesic_mm, dtype=np.float64)
    rows, cols = np.nonzero((d > 0) & (d <= cutoff_mm))
    vals = np.exp(-d[rows, cols] / sigma_mm)
    norm = np.sqrt(np.bincount(rows, weights=vals**2, minlength=len(d)))
    return np.stack([rows, cols]), vals / (norm[rows] + 1e-6)


def soften(skin: Tensor, hard: Tensor, weights: Tensor, hard_share: float = 0.7) -> Tensor:
    """``hard_share * hard + (1 - hard_share) * (skin + W @ (hard - skin))``.

    Args:
        skin: (B, N, 3) before collision handling; hard: (B, N, 3) after ``push_out``.
        weights: (N, N) sparse spreading matrix (``spread_weights``).
    """
    b, n, _ = skin.shape
    offset = (hard - skin).permute(1, 0, 2).reshape(n, b * 3)
    spread = torch.sparse.mm(weights, offset).reshape(n, b, 3).permute(1, 0, 2)
    return hard_share * hard + (1 - hard_share) * (skin + spread)
