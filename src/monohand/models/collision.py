"""Collision: NIMBLE's skin against its muscles, one hand against another, a hand's fingers.

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

Between two hands (``twohands``, ``evaluate.metrics.penetration_depth``): ``inside_depths``
gives how deep each vertex of one mesh lies inside the other (holes such as MANO's open wrist
capped by ``capped_faces``), ``deepest_penetration`` the deepest of them both ways,
``mesh_penetration`` the penalty on them, and ``separating_shift`` the shortest shift that
parts them.

Within one hand (the fit's prior, and the rendered test scenes' check that their fingers do
not cross): ``finger_collision``, spheres along the fingers' bones.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from torch import Tensor

from ..render.shade import vertex_normals
from .joints import FINGER_CHAINS


@functools.lru_cache(maxsize=8)
@torch.inference_mode(False)  # cached: must serve autograd too, even if first made under it
def _sphere_pair_offsets(samples: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """(P, 21): row p gives centre_i - centre_j of the p-th pair of spheres on different
    fingers as a combination of the 21 joints (every centre is a point on a bone)."""
    t = torch.linspace(0, 1, samples + 1, dtype=torch.float64)[1:]
    rows, finger = [], []
    for f, chain in enumerate(FINGER_CHAINS):
        for a, b in zip(chain[:-1], chain[1:], strict=True):
            for s in t:
                r = torch.zeros(21, dtype=torch.float64)
                r[a], r[b] = 1 - s, s
                rows.append(r)
                finger.append(f)
    centres = torch.stack(rows)
    fing = torch.tensor(finger)
    i, j = torch.triu_indices(len(rows), len(rows), 1)
    keep = fing[i] != fing[j]
    return (centres[i[keep]] - centres[j[keep]]).to(dtype=dtype, device=device)


def finger_collision(joints: Tensor, radius: float = 0.0075, samples: int = 4) -> Tensor:
    """Interpenetration of fingers, modelled as chains of spheres along their bones.

    Spheres of ``radius`` metres are placed at ``samples`` points along each of the three
    segments of every finger (skipping the base joint, shared with the palm); any two spheres
    of different fingers closer than 2 radius contribute (2 radius - distance)^2. The
    centres' differences are linear in the joints: one (P, 21) matrix gives all of them.

    Args:
        joints: (B, 21, 3) metres.
    Returns:
        (B,) metres^2.
    """
    b = joints.shape[0]
    pairs = _sphere_pair_offsets(samples, joints.dtype, joints.device)
    offsets = pairs @ joints.transpose(0, 1).reshape(21, b * 3)  # (P, B * 3): one GEMM
    d = torch.linalg.vector_norm(offsets.view(pairs.shape[0], b, 3), dim=-1)
    return (torch.relu(2 * radius - d) ** 2).sum(0)


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


def capped_faces(faces: np.ndarray, num_verts: int) -> tuple[np.ndarray, np.ndarray]:
    """Close a mesh's holes (a hand's open wrist): every boundary edge (a, b) of a face gets
    the triangle (b, a, c), c a new vertex at its hole's centroid, so orientations agree.

    Returns:
        (faces (F + E, 3), holes (H, V) 0/1 rows: the new vertex c_h = holes[h] @ verts /
        holes[h].sum()).
    """
    faces = np.asarray(faces, dtype=np.int64)
    edges = faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2)
    key = np.minimum(edges[:, 0], edges[:, 1]) * num_verts + np.maximum(edges[:, 0], edges[:, 1])
    uniq, counts = np.unique(key, return_counts=True)
    boundary = edges[np.isin(key, uniq[counts == 1])]
    if not len(boundary):
        return faces, np.zeros((0, num_verts))
    # the holes: connected components of the boundary edges
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(boundary)), tuple(boundary.T)), shape=(num_verts,) * 2)
    _, component = connected_components(graph, directed=False)
    labels, hole = np.unique(component[boundary[:, 0]], return_inverse=True)
    holes = np.zeros((len(labels), num_verts))
    holes[hole, boundary[:, 0]] = 1.0
    caps = np.stack([boundary[:, 1], boundary[:, 0], num_verts + hole], 1)
    return np.concatenate([faces, caps]), holes


def inside_depths(points: Tensor, verts: Tensor, faces: Tensor, reach: float = float("inf"),
                  front: float = float("inf"),
                  caps: tuple[np.ndarray | Tensor, np.ndarray] | None = None,
                  ) -> Tensor:  # fmt: skip
    """How deep points lie inside a mesh: for each point inside (the mesh's holes capped,
    ``capped_faces``), its distance to the mesh's nearest vertex; 0 outside. An upper bound of
    the distance to the surface by the mesh's vertex spacing.

    The inside test (``inside_mesh``) is a discrete decision without gradient; the depth is
    differentiable in ``points`` and ``verts``, so a penalty on it pushes both apart.

    Args:
        points: (B, N, 3); verts: (B, M, 3); faces: (F, 3) long.
        reach, front: only points within ``reach`` (metres) of a vertex and at most
            ``front`` in front of that vertex's tangent plane are tested (the inside test
            costs N x F): a point inside a hand is near its surface, and a point just inside
            is behind its nearest vertex's plane (``front`` > 0 keeps a margin for creases).
            The defaults test every point (exact).
        caps: ``capped_faces(faces, M)``, when already at hand (its faces may be a tensor).
    Returns:
        (B, N) metres.
    """
    f, holes = caps if caps is not None else capped_faces(faces.cpu().numpy(), verts.shape[1])
    closed = verts
    if len(holes):
        w = torch.as_tensor(holes / holes.sum(1, keepdims=True).clip(1), dtype=verts.dtype,
                            device=verts.device)  # fmt: skip
        closed = torch.cat([verts, torch.einsum("hv,bvc->bhc", w, verts)], 1)
    f = torch.as_tensor(f, device=verts.device)
    inside = torch.zeros(points.shape[:2], dtype=torch.bool, device=points.device)
    with torch.no_grad():
        # centred: cdist's matrix-product form loses sub-millimetre distances at ~1 m
        c = verts.mean(1, keepdim=True)
        dist, nearest = torch.cdist(points - c, verts - c).min(2)  # (B, N)
        near = dist < reach
        if front != float("inf"):
            q = torch.gather(verts, 1, nearest[..., None].expand(-1, -1, 3))
            n = torch.gather(vertex_normals(verts, faces), 1, nearest[..., None].expand(-1, -1, 3))
            near &= ((points - q) * n).sum(-1) < front
    cand = near.any(0).nonzero()[:, 0]
    if cand.numel():
        inside[:, cand] = inside_mesh(points[:, cand], closed, f, chunk=256) & near[:, cand]
    bi, vi = inside.nonzero(as_tuple=True)
    # zeros (+0, not -0), part of the graph even when nothing is inside
    depth = torch.zeros(points.shape[:2], dtype=points.dtype, device=points.device)
    depth = depth + 0.0 * points[..., 0]
    if bi.numel():
        d = (points[bi, vi][:, None] - verts[bi]).norm(dim=-1).amin(1)
        depth = depth.index_put((bi, vi), d)
    return depth


def deepest_penetration(verts_a: Tensor, faces_a: Tensor, verts_b: Tensor, faces_b: Tensor,
                        reach: float = float("inf"), front: float = float("inf"),
                        ) -> Tensor:  # fmt: skip
    """How deep two meshes interpenetrate: the largest ``inside_depths`` of either mesh's
    vertices inside the other (its candidates' ``reach`` and ``front``; the defaults exact).
    (B, Va, 3), (Fa, 3), (B, Vb, 3), (Fb, 3) -> (B,) metres (0: neither enters the other)."""
    return torch.maximum(inside_depths(verts_a, verts_b, faces_b, reach, front).amax(1),
                         inside_depths(verts_b, verts_a, faces_a, reach, front).amax(1))


def separating_shift(verts_a: Tensor, faces_a: Tensor, verts_b: Tensor, faces_b: Tensor,
                     reach: float = float("inf"), front: float = float("inf"), steps: int = 7,
                     longest: float = float("inf")) -> Tensor:  # fmt: skip
    """The shortest shift of mesh b, along one of three directions, after which neither mesh
    has a vertex inside the other (of the vertices that ``inside_depths`` tests, its
    ``reach`` and ``front``): (B, 3) metres, zeros where they do not interpenetrate.

    The directions, from the vertices inside the other mesh (``inside_depths``, its
    ``reach`` and ``front``): away from the surface that b's deepest vertex entered (a's
    outward normal at that vertex's nearest vertex), the same for a's deepest (b's normal,
    reversed), and the mean of such normals over all those vertices, weighted by their
    squared depth; for two palms pressed into each other all three are about their normal,
    and the two deepest settle what the mean would blur where the overlap is thin and wide.
    Along each, the length is bisected (``steps`` halvings) between 0 and the first of twice
    the deepest depth (plus 1 mm), doubled (up to 8 times) while under ``longest``, then
    ``longest`` itself, that separates them; the shortest wins. A pair that no direction
    separates within ``longest`` keeps a zero shift (the depth is a vertex's distance to
    the other's nearest vertex, which stays small for meshes deep into each other).
    (B, Va, 3), (Fa, 3), (B, Vb, 3), (Fb, 3).
    """
    with torch.no_grad():
        caps_a = capped_faces(faces_a.cpu().numpy(), verts_a.shape[1])
        caps_b = capped_faces(faces_b.cpu().numpy(), verts_b.shape[1])

        def depths(va: Tensor, vb: Tensor) -> tuple[Tensor, Tensor]:
            """b's vertices' depths inside a, a's inside b: (n, Vb), (n, Va)."""
            return (inside_depths(vb, va, faces_a, reach, front, caps_a),
                    inside_depths(va, vb, faces_b, reach, front, caps_b))  # fmt: skip

        zero = torch.zeros(verts_b.shape[0], 3, dtype=verts_b.dtype, device=verts_b.device)
        d_b, d_a = depths(verts_a, verts_b)
        deep = torch.maximum(d_b.amax(1), d_a.amax(1))
        cross = (deep > 0).nonzero()[:, 0]  # only these go on: the inside tests cost
        if not len(cross):
            return zero
        va, vb, d_b, d_a, deep = (t[cross] for t in (verts_a, verts_b, d_b, d_a, deep))

        def normals_at(points: Tensor, verts: Tensor, normals: Tensor) -> Tensor:
            c = verts.mean(1, keepdim=True)  # centred, as in inside_depths
            nearest = torch.cdist(points - c, verts - c).argmin(2)
            return torch.gather(normals, 1, nearest[..., None].expand(-1, -1, 3))

        n_b = normals_at(vb, va, vertex_normals(va, faces_a))  # a's, where b's vertices are
        n_a = -normals_at(va, vb, vertex_normals(vb, faces_b))  # b's reversed, where a's are
        rows = torch.arange(len(cross))
        dirs = torch.stack([n_b[rows, d_b.argmax(1)] * (d_b.amax(1) > 0)[:, None],
                            n_a[rows, d_a.argmax(1)] * (d_a.amax(1) > 0)[:, None],
                            ((d_b**2)[..., None] * n_b).sum(1) + ((d_a**2)[..., None] * n_a).sum(1),
                            ], 1)  # fmt: skip  (n, 3 directions, 3)
        norm = dirs.norm(dim=-1, keepdim=True)
        usable = norm[..., 0] > 1e-12
        u = (dirs / norm.clamp_min(1e-12)).reshape(-1, 3)
        m = len(cross) * 3
        va3, vb3 = va.repeat_interleave(3, 0), vb.repeat_interleave(3, 0)

        def crossing(length: Tensor) -> Tensor:
            da, db = depths(va3, vb3 + (u * length[:, None])[:, None])
            return (da > 0).any(1) | (db > 0).any(1)

        hi = (2 * deep + 1e-3).clamp_max(longest).repeat_interleave(3)
        still = crossing(hi)
        for _ in range(8):  # at most 256 times the first bracket
            grown = still & (hi < longest)
            if not grown.any():
                break
            hi = torch.where(grown, (2 * hi).clamp_max(longest), hi)
            still = crossing(hi)
        lo = torch.zeros(m, dtype=hi.dtype, device=hi.device)
        for _ in range(steps):
            mid = (lo + hi) / 2
            apart = ~crossing(mid)
            hi, lo = torch.where(apart, mid, hi), torch.where(apart, lo, mid)
        length = torch.where(still | ~usable.reshape(-1), torch.inf, hi).view(-1, 3)
        best = length.argmin(1)
        shift = (u.view(-1, 3, 3)[rows, best] * length[rows, best, None])
        out = zero.clone()
        found = torch.isfinite(length[rows, best])
        out[cross[found]] = shift[found]
        return out


# Between two hands, the vertices worth the inside test (``inside_depths``): within 3 cm of
# the other hand and at most 2 mm in front of its nearest vertex's tangent plane.
HAND_REACH, HAND_FRONT = 0.03, 0.002


def mesh_penetration(verts_a: Tensor, faces_a: Tensor, verts_b: Tensor, faces_b: Tensor,
                     reach: float = HAND_REACH, front: float = HAND_FRONT,
                     caps_a: tuple[np.ndarray | Tensor, np.ndarray] | None = None,
                     caps_b: tuple[np.ndarray | Tensor, np.ndarray] | None = None,
                     ) -> Tensor:  # fmt: skip
    """Two meshes' interpenetration as a penalty: the summed squared depth
    (``inside_depths``, its candidates' ``reach`` and ``front``) of each mesh's vertices
    inside the other. (B, Va, 3), (Fa, 3), (B, Vb, 3), (Fb, 3) -> (B,) metres^2; ``caps_*``:
    ``capped_faces`` of each mesh."""
    da = inside_depths(verts_a, verts_b, faces_b, reach, front, caps_b)
    db = inside_depths(verts_b, verts_a, faces_a, reach, front, caps_a)
    return (da**2).sum(1) + (db**2).sum(1)


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
