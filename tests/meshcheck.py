"""Independent mesh checks for the tests: self-intersection, inside/outside, manifoldness."""

from __future__ import annotations

import numpy as np


def edges_of(faces: np.ndarray) -> np.ndarray:
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    return np.unique(np.sort(e, axis=1), axis=0)


def is_closed_manifold(faces: np.ndarray) -> bool:
    """Every edge is shared by exactly two faces, used once in each direction."""
    directed = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    undirected = np.sort(directed, axis=1)
    _, counts = np.unique(undirected, axis=0, return_counts=True)
    _, dcounts = np.unique(directed, axis=0, return_counts=True)
    return bool(np.all(counts == 2) and np.all(dcounts == 1))


def self_intersections(v: np.ndarray, faces: np.ndarray, chunk: int = 200) -> int:
    """Number of (edge, triangle) pairs that cross, ignoring pairs sharing a vertex.

    Two non-adjacent triangles intersect iff an edge of one crosses the other, so zero means
    no self-intersection. Segment-triangle test (Moller-Trumbore) with a bounding-box filter.
    """
    e = edges_of(faces)
    tri = v[faces]
    tmin, tmax = tri.min(1), tri.max(1)
    count = 0
    for s in range(0, len(e), chunk):
        ee = e[s : s + chunk]
        p0, p1 = v[ee[:, 0]], v[ee[:, 1]]
        emin, emax = np.minimum(p0, p1), np.maximum(p0, p1)
        overlap = np.all((emin[:, None] <= tmax[None]) & (emax[:, None] >= tmin[None]), -1)
        shares = (ee[:, None, :, None] == faces[None, :, None, :]).any((-1, -2))
        ei, fi = np.nonzero(overlap & ~shares)
        if len(ei) == 0:
            continue
        o, d = p0[ei], p1[ei] - p0[ei]
        a, b, c = tri[fi, 0], tri[fi, 1], tri[fi, 2]
        e1, e2 = b - a, c - a
        h = np.cross(d, e2)
        det = np.einsum("ij,ij->i", e1, h)
        ok = np.abs(det) > 1e-18
        inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
        sv = o - a
        u = inv * np.einsum("ij,ij->i", sv, h)
        q = np.cross(sv, e1)
        w = inv * np.einsum("ij,ij->i", d, q)
        t = inv * np.einsum("ij,ij->i", e2, q)
        hit = ok & (u > 0) & (w > 0) & (u + w < 1) & (t > 0) & (t < 1)
        count += int(hit.sum())
    return count


def winding_number(v: np.ndarray, faces: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Generalised winding number of each point (~1 inside a closed outward mesh, ~0 outside)."""
    out = []
    for p in points:
        t = v[faces] - p
        a, b, c = t[:, 0], t[:, 1], t[:, 2]
        la, lb, lc = (np.linalg.norm(x, axis=1) for x in (a, b, c))
        num = np.einsum("ij,ij->i", a, np.cross(b, c))
        den = (
            la * lb * lc
            + np.einsum("ij,ij->i", a, b) * lc
            + np.einsum("ij,ij->i", a, c) * lb
            + np.einsum("ij,ij->i", b, c) * la
        )
        out.append(2 * np.arctan2(num, den).sum() / (4 * np.pi))
    return np.array(out)
