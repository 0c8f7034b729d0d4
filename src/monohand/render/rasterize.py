"""Rasterisation: which face covers each pixel, where on it, how far, and how much.

Two primitives, as nvdiffrast keeps ``rasterize`` and ``antialias`` apart, each useful
alone, in plain PyTorch with no loop over pixels, faces or samples; ``rasterize`` is the two
in sequence, what the renderer uses:

1. ``zbuffer``: every face enumerates the pixel centres of its screen bounding box
   (``repeat_interleave`` over the batch's faces), tests them with edge functions and keeps
   the nearest by a ``scatter_reduce`` z-buffer. Only the winners are re-evaluated with
   autograd, so gradients reach the vertices through the barycentrics at little cost;
2. ``antialias``: the silhouette is made differentiable at the contour: the edges between a
   front- and a back-facing face (or open boundary edges) are the contour; each pixel within
   ``band`` pixels of one gets coverage sigmoid(+-distance / sigma) (+ inside, - outside), so
   moving a contour edge changes the coverage of the pixels it crosses - the gradient SoftRas
   and nvdiffrast's antialias give, restricted to the few pixels where it is not zero. Pixels
   just outside the hard coverage take their attributes from the closest point of that edge.

``silhouette`` is ``rasterize``'s anti-aliased coverage alone, for silhouette losses: any
front face covering a pixel centre covers it, so it needs no depth test and no barycentrics.

Conventions: OpenCV camera and pixels (``render.camera``); faces counter-clockwise seen from
outside; back faces are culled (exact for closed meshes, whose visible surface is all front
faces). Faces with a vertex at z <= ``near`` are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor

from .camera import project


@dataclass
class Fragments:
    """Per-pixel results, (B, H, W) unless stated.

    Attributes:
        face_ids: long, the face covering the pixel, or for pixels just outside the contour
            the front face of the nearest contour edge; -1 elsewhere.
        bary: (B, H, W, 3) perspective-correct barycentrics in that face (differentiable).
        depth: camera z of the covering surface, metres; 0 where not covered.
        mask: bool, hard coverage.
        alpha: float in [0, 1], anti-aliased coverage (differentiable at the contour).
    """

    face_ids: Tensor
    bary: Tensor
    depth: Tensor
    mask: Tensor
    alpha: Tensor


@dataclass
class MeshTopology:
    """Edges of a triangle mesh: ``edges`` (E, 2) vertex ids, ``edge_faces`` (E, 2) the faces
    on either side (-1 for an open boundary), ``corners`` (E, 2, 2) the corner (0-2) of each
    edge vertex in each of those faces."""

    edges: Tensor
    edge_faces: Tensor
    corners: Tensor


def mesh_topology(faces: Tensor) -> MeshTopology:
    """Edge adjacency of a triangle mesh (each edge shared by at most two faces)."""
    f = faces.long()
    n_f = f.shape[0]
    corner_pairs = torch.tensor([[0, 1], [1, 2], [2, 0]], device=f.device)
    e = f[:, corner_pairs].reshape(-1, 2)  # (3F, 2) directed
    fid = torch.arange(n_f, device=f.device).repeat_interleave(3)
    cpair = corner_pairs.repeat(n_f, 1)
    key_sorted, _ = e.sort(1)
    uniq, inverse, counts = torch.unique(key_sorted, dim=0, return_inverse=True, return_counts=True)
    if counts.max() > 2:
        raise ValueError("mesh has edges shared by more than two faces (non-manifold)")
    # Slot 0 or 1 of each edge: the first occurrence gets 0.
    order = torch.argsort(inverse, stable=True)
    slot = torch.zeros_like(inverse)
    first = torch.ones_like(inverse, dtype=torch.bool)
    first[order[1:]] = inverse[order[1:]] != inverse[order[:-1]]
    slot[~first] = 1
    n_e = uniq.shape[0]
    edge_faces = torch.full((n_e, 2), -1, dtype=torch.long, device=f.device)
    corners = torch.zeros((n_e, 2, 2), dtype=torch.long, device=f.device)
    edge_faces[inverse, slot] = fid
    # Corners in the orientation of ``uniq`` (sorted vertex ids).
    same = e[:, 0] == uniq[inverse, 0]
    c = torch.where(same[:, None], cpair, cpair.flip(1))
    corners[inverse, slot] = c
    return MeshTopology(uniq, edge_faces, corners)


def _cross2(a: Tensor, b: Tensor) -> Tensor:
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def _face_pixel_pairs(lo: Tensor, hi: Tensor, keep: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Enumerate the integer pixel centres of boxes [lo, hi] (N, 2) where ``keep``.

    Returns (box index, x, y) of every pair, long.
    """
    size = (hi - lo + 1).clamp_min(0)
    count = torch.where(keep, size[:, 0] * size[:, 1], torch.zeros_like(size[:, 0]))
    box = torch.repeat_interleave(torch.arange(len(count), device=lo.device), count)
    start = torch.cumsum(count, 0) - count
    local = torch.arange(box.shape[0], device=lo.device) - start[box]
    w = size[box, 0]
    return box, lo[box, 0] + local % w, lo[box, 1] + local // w


def _screen_faces(vertices: Tensor, faces: Tensor, K: Tensor, near: float
                  ) -> tuple[Tensor, Tensor, Tensor]:  # fmt: skip
    """Projected vertices uv (B, V, 2) (differentiable), depths z (B, V), and which faces
    face the camera (B, F) bool (y-down pixels: front faces are clockwise; faces with a
    vertex nearer than ``near`` are dropped)."""
    uv = project(vertices, K)
    z = vertices[..., 2]
    with torch.no_grad():
        tri = uv[:, faces]
        area = _cross2(tri[:, :, 1] - tri[:, :, 0], tri[:, :, 2] - tri[:, :, 0])
        front = (area < 0) & (z[:, faces] > near).all(-1)
    return uv, z, front


def zbuffer(
    vertices: Tensor,
    faces: Tensor,
    K: Tensor,
    image_size: tuple[int, int],
    near: float = 1e-3,
) -> Fragments:
    """Hard rasterisation of a batch of meshes sharing one topology: for every pixel centre
    the nearest front face covering it, its perspective-correct barycentrics and depth
    (differentiable in the vertices), and ``alpha`` = the hard mask.

    Args:
        vertices: (B, V, 3) camera-frame vertices, metres.
        faces: (F, 3) long, counter-clockwise seen from outside.
        K: (B, 3, 3) intrinsics, pixels.
        image_size: (H, W).
        near: faces with a vertex nearer than this (metres) are dropped.
    Returns:
        ``Fragments``.
    """
    faces = faces.long().to(vertices.device)
    return _zbuffer(*_screen_faces(vertices, faces, K, near), faces, image_size)


@torch.no_grad()
def _covering_pairs(uv: Tensor, front: Tensor, faces: Tensor, image_size: tuple[int, int]
                    ) -> tuple[Tensor, Tensor, Tensor]:  # fmt: skip
    """Every (front face, pixel centre inside it) pair of the batch, without gradients:
    the face's flat index into (B, F), the pixel's into (B, H, W), and its screen-space
    barycentrics (N, 3)."""
    h, w = image_size
    n_f = faces.shape[0]
    tri = uv[:, faces]  # (B, F, 3, 2)
    area = _cross2(tri[:, :, 1] - tri[:, :, 0], tri[:, :, 2] - tri[:, :, 0])
    lo = torch.ceil(tri.min(2).values).long()
    hi = torch.floor(tri.max(2).values).long()
    lo = torch.maximum(lo, torch.zeros_like(lo))
    hi = torch.minimum(hi, torch.tensor([w - 1, h - 1], device=uv.device))
    keep = front & (hi >= lo).all(-1)
    box, px, py = _face_pixel_pairs(lo.reshape(-1, 2), hi.reshape(-1, 2), keep.reshape(-1))
    t = tri.reshape(-1, 3, 2)[box]
    p = torch.stack([px, py], -1).to(uv.dtype)
    a = area.reshape(-1)[box]
    l0 = _cross2(t[:, 1] - p, t[:, 2] - p) / a
    l1 = _cross2(t[:, 2] - p, t[:, 0] - p) / a
    bary = torch.stack([l0, l1, 1.0 - l0 - l1], 1)
    inside = (bary >= 0).all(1)
    key = ((box // n_f) * h + py) * w + px
    return box[inside], key[inside], bary[inside]


def _zbuffer(uv: Tensor, z: Tensor, front: Tensor, faces: Tensor, image_size: tuple[int, int]
             ) -> Fragments:  # fmt: skip
    h, w = image_size
    b = uv.shape[0]
    n_f = faces.shape[0]
    dev, dt = uv.device, uv.dtype
    with torch.no_grad():
        box, key, bary = _covering_pairs(uv, front, faces, image_size)
        fi = box % n_f
        zz = z[:, faces].reshape(-1, 3)[box]
        depth = 1.0 / (bary / zz).sum(1)
        zbuf = torch.full((b * h * w,), float("inf"), dtype=dt, device=dev)
        zbuf.scatter_reduce_(0, key, depth, "amin")
        win = depth <= zbuf[key]
        fbuf = torch.full((b * h * w,), -1, dtype=torch.long, device=dev)
        fbuf.scatter_reduce_(0, key[win], fi[win], "amax")  # ties: one face, deterministically

    covered = torch.nonzero(fbuf >= 0).squeeze(1)
    pix_b = covered // (h * w)
    pix_y = (covered // w) % h
    pix_x = covered % w
    face_of = fbuf[covered]
    # Differentiable barycentrics and depth for the covering faces only.
    bary_c, depth_c = _perspective_bary(uv, z, faces, pix_b, face_of, pix_x, pix_y)

    bary = torch.zeros(b * h * w, 3, dtype=dt, device=dev)
    bary = bary.index_put((covered,), bary_c)
    depth_img = torch.zeros(b * h * w, dtype=dt, device=dev).index_put((covered,), depth_c)
    mask = fbuf >= 0
    return Fragments(
        face_ids=fbuf.view(b, h, w),
        bary=bary.view(b, h, w, 3),
        depth=depth_img.view(b, h, w),
        mask=mask.view(b, h, w),
        alpha=mask.to(dt).view(b, h, w),
    )


def antialias(
    frags: Fragments,
    vertices: Tensor,
    faces: Tensor,
    K: Tensor,
    topology: MeshTopology | None = None,
    sigma: float = 0.5,
    band: float = 2.0,
    near: float = 1e-3,
) -> Fragments:
    """Coverage made differentiable at the silhouette's outer contour (``zbuffer``'s
    fragments in, the same with a soft ``alpha`` out).

    Contour edges lie between a front and a back face (or on an open boundary) with
    background just outside; every pixel within ``band`` pixels of one gets coverage
    sigmoid(+-distance / ``sigma``) (+ inside, - outside), differentiable in the vertices, and
    the pixels just outside the hard mask take the barycentrics and face of the edge's closest
    point, so that attributes interpolated there (colour, normals) are the edge's.

    Args:
        frags: ``zbuffer(vertices, faces, K, ...)``.
        vertices, faces, K: as given to ``zbuffer``.
        topology: ``mesh_topology(faces)``, passed in to avoid recomputing it.
        sigma: softness of the silhouette edge, pixels.
        band: pixels from a contour edge that get anti-aliased coverage.
        near: as given to ``zbuffer``.
    Returns:
        ``Fragments`` (``mask`` and ``depth`` unchanged).
    """
    faces = faces.long().to(vertices.device)
    topology = topology if topology is not None else mesh_topology(faces)
    uv, _, front = _screen_faces(vertices, faces, K, near)
    return _antialias(frags, uv, front, faces, topology, sigma, band)


def _antialias(frags: Fragments, uv: Tensor, front: Tensor, faces: Tensor,
               topology: MeshTopology, sigma: float, band: float,
               attributes: bool = True) -> Fragments:  # fmt: skip
    """``antialias``; without ``attributes`` only ``alpha`` is made (the rest as given)."""
    b, h, w = frags.mask.shape
    dev, dt = uv.device, uv.dtype
    mask = frags.mask.reshape(-1)
    alpha = frags.alpha.reshape(-1)
    if not attributes:
        bary = face_ids = None
    else:
        bary = frags.bary.reshape(-1, 3)
        face_ids = frags.face_ids.reshape(-1).clone()
    ef = topology.edge_faces.to(dev)
    f0, f1 = ef[:, 0], ef[:, 1]
    front0 = front[:, f0]
    front1 = torch.where(f1 >= 0, front[:, f1.clamp_min(0)], torch.zeros_like(front0))
    contour = front0 ^ front1  # (B, E)
    ce_b, ce_e = torch.nonzero(contour, as_tuple=True)
    side = torch.where(front0[ce_b, ce_e], 0, 1)  # which slot holds the front face
    e_faces = ef[ce_e, side]
    e_corners = topology.corners.to(dev)[ce_e, side]  # (N, 2)
    ev = topology.edges.to(dev)[ce_e]  # (N, 2)
    with torch.no_grad():
        # Keep the outer contour: edges with background just outside their midpoint. A
        # finger's contour over the palm is not the silhouette's boundary.
        p0, p1 = uv[ce_b, ev[:, 0]], uv[ce_b, ev[:, 1]]
        third = faces[e_faces].gather(1, (3 - e_corners.sum(1, keepdim=True)))[:, 0]
        p2 = uv[ce_b, third]
        mid = 0.5 * (p0 + p1)
        normal = torch.stack([p1[:, 1] - p0[:, 1], p0[:, 0] - p1[:, 0]], -1)
        normal = normal / normal.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        normal = torch.where(((p2 - mid) * normal).sum(-1, keepdim=True) > 0, -normal, normal)
        probe = torch.round(mid + normal).long()
        in_img = (probe[:, 0] >= 0) & (probe[:, 0] < w) & (probe[:, 1] >= 0) & (probe[:, 1] < h)
        pkey = (ce_b * h + probe[:, 1].clamp(0, h - 1)) * w + probe[:, 0].clamp(0, w - 1)
        outer = ~(in_img & mask[pkey])
    ce_b, ce_e, e_faces, e_corners, ev = (
        ce_b[outer],
        ce_e[outer],
        e_faces[outer],
        e_corners[outer],
        ev[outer],
    )
    if ce_b.numel():
        with torch.no_grad():
            p0, p1 = uv[ce_b, ev[:, 0]], uv[ce_b, ev[:, 1]]
            elo = torch.ceil(torch.minimum(p0, p1) - band).long()
            ehi = torch.floor(torch.maximum(p0, p1) + band).long()
            elo = torch.maximum(elo, torch.zeros_like(elo))
            ehi = torch.minimum(ehi, torch.tensor([w - 1, h - 1], device=dev))
            ebox, ex, ey = _face_pixel_pairs(elo, ehi, (ehi >= elo).all(-1))
            q = torch.stack([ex, ey], -1).to(dt)
            d, _ = _segment_distance(q, p0[ebox], p1[ebox])
            near_band = d < band
            ebox, ex, ey, d = ebox[near_band], ex[near_band], ey[near_band], d[near_band]
            ekey = (ce_b[ebox] * h + ey) * w + ex
            dbuf = torch.full((b * h * w,), float("inf"), dtype=dt, device=dev)
            dbuf.scatter_reduce_(0, ekey, d, "amin")
            best = d <= dbuf[ekey]
            pick = torch.full((b * h * w,), -1, dtype=torch.long, device=dev)
            pair_id = torch.arange(ebox.shape[0], device=dev)
            pick.scatter_reduce_(0, ekey[best], pair_id[best], "amax")
            pix = torch.nonzero(pick >= 0).squeeze(1)
            sel = pick[pix]
            n_idx = ebox[sel]
        q = torch.stack([ex[sel], ey[sel]], -1).to(dt)
        eb = ce_b[n_idx]
        d, tpar = _segment_distance(q, uv[eb, ev[n_idx, 0]], uv[eb, ev[n_idx, 1]])
        inside_px = mask[pix]
        sd = torch.where(inside_px, d, -d)
        alpha = alpha.index_put((pix,), torch.sigmoid(sd / sigma))
        # Pixels outside the hard coverage take the edge's front face at the closest point.
        out_px = ~inside_px
        if attributes and out_px.any():
            po = pix[out_px]
            cor = e_corners[n_idx[out_px]]
            tt = tpar[out_px]
            bb = torch.zeros(po.shape[0], 3, dtype=dt, device=dev)
            bb = bb.scatter(1, cor[:, :1], (1 - tt)[:, None]).scatter(1, cor[:, 1:], tt[:, None])
            bary = bary.index_put((po,), bb)
            face_ids[po] = e_faces[n_idx[out_px]]

    if not attributes:
        return replace(frags, alpha=alpha.view(b, h, w))
    return Fragments(
        face_ids=face_ids.view(b, h, w),
        bary=bary.view(b, h, w, 3),
        depth=frags.depth,
        mask=frags.mask,
        alpha=alpha.view(b, h, w),
    )


def rasterize(
    vertices: Tensor,
    faces: Tensor,
    K: Tensor,
    image_size: tuple[int, int],
    topology: MeshTopology | None = None,
    sigma: float = 0.5,
    band: float = 2.0,
    near: float = 1e-3,
) -> Fragments:
    """``antialias(zbuffer(...))``: hard fragments with a differentiable contour, the
    renderer's rasterisation. Arguments as theirs."""
    faces = faces.long().to(vertices.device)
    topology = topology if topology is not None else mesh_topology(faces)
    uv, z, front = _screen_faces(vertices, faces, K, near)  # once for both
    return _antialias(_zbuffer(uv, z, front, faces, image_size), uv, front, faces, topology,
                      sigma, band)  # fmt: skip


def silhouette(
    vertices: Tensor,
    faces: Tensor,
    K: Tensor,
    image_size: tuple[int, int],
    topology: MeshTopology | None = None,
    sigma: float = 0.5,
    band: float = 2.0,
    near: float = 1e-3,
) -> Tensor:
    """``rasterize(...).alpha`` alone: the anti-aliased coverage (B, H, W), differentiable
    at the contour, without the depth test, barycentrics and depths that a silhouette does
    not need (which face covers a pixel does not change whether one does): forward and
    backward in 15-40 % less time (``bench/bench_render.py``).
    Arguments as ``rasterize``'s."""
    faces = faces.long().to(vertices.device)
    topology = topology if topology is not None else mesh_topology(faces)
    uv, _, front = _screen_faces(vertices, faces, K, near)
    (h, w), b = image_size, uv.shape[0]
    with torch.no_grad():
        mask = torch.zeros(b * h * w, dtype=torch.bool, device=uv.device)
        mask[_covering_pairs(uv, front, faces, image_size)[1]] = True
    mask = mask.view(b, h, w)
    hard = Fragments(None, None, None, mask, mask.to(uv.dtype))  # type: ignore[arg-type]
    return _antialias(hard, uv, front, faces, topology, sigma, band, attributes=False).alpha


def _segment_distance(q: Tensor, p0: Tensor, p1: Tensor) -> tuple[Tensor, Tensor]:
    """Distance (N,) from points q (N, 2) to segments p0-p1 (N, 2), and the segment parameter
    t in [0, 1] of the closest point."""
    d = p1 - p0
    t = (((q - p0) * d).sum(-1) / (d * d).sum(-1).clamp_min(1e-12)).clamp(0, 1)
    closest = p0 + t[:, None] * d
    return torch.sqrt(((q - closest) ** 2).sum(-1) + 1e-12), t


def _perspective_bary(
    uv: Tensor, z: Tensor, faces: Tensor, b: Tensor, f: Tensor, x: Tensor, y: Tensor
) -> tuple[Tensor, Tensor]:
    """Perspective-correct barycentrics (N, 3) and depth (N,) of pixel centres (x, y) in faces
    f of batch items b, differentiable w.r.t. ``uv`` and ``z``."""
    vid = faces[f]  # (N, 3)
    t = uv[b[:, None], vid]  # (N, 3, 2)
    zz = z[b[:, None], vid]  # (N, 3)
    p = torch.stack([x, y], -1).to(uv.dtype)
    a = _cross2(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0])
    l0 = _cross2(t[:, 1] - p, t[:, 2] - p) / a
    l1 = _cross2(t[:, 2] - p, t[:, 0] - p) / a
    lam = torch.stack([l0, l1, 1.0 - l0 - l1], -1) / zz
    inv_z = lam.sum(-1)
    return lam / inv_z[:, None], 1.0 / inv_z


def interpolate_face_attr(face_attr: Tensor, frags: Fragments) -> Tensor:
    """Interpolate per-face-corner attributes (e.g. UVs across seams).

    Args:
        face_attr: (B or 1, F, 3, C) attribute of each face's three corners.
        frags: from ``rasterize``.
    Returns:
        (B, H, W, C), zeros where ``face_ids`` is -1.
    """
    b, h, w = frags.face_ids.shape
    fid = frags.face_ids.reshape(-1)
    pix = torch.nonzero(fid >= 0).squeeze(1)  # only pixels with a face: most are empty
    bi = pix // (h * w) if face_attr.shape[0] > 1 else torch.zeros_like(pix)
    vals = face_attr[bi, fid[pix]]  # (N, 3, C)
    bary = frags.bary.reshape(-1, 3)[pix]
    out = torch.zeros(b * h * w, face_attr.shape[-1], dtype=vals.dtype, device=vals.device)
    out = out.index_put((pix,), torch.einsum("nkc,nk->nc", vals, bary))
    return out.view(b, h, w, -1)


def interpolate(attr: Tensor, faces: Tensor, frags: Fragments) -> Tensor:
    """Interpolate per-vertex attributes at every pixel with a face.

    Args:
        attr: (B, V, C) vertex attributes.
        faces: (F, 3).
        frags: from ``rasterize``.
    Returns:
        (B, H, W, C), zeros where ``face_ids`` is -1.
    """
    b, h, w = frags.face_ids.shape
    fid = frags.face_ids.reshape(-1)
    pix = torch.nonzero(fid >= 0).squeeze(1)
    bi = pix // (h * w)
    vid = faces.long().to(attr.device)[fid[pix]]  # (N, 3)
    vals = attr[bi[:, None], vid]  # (N, 3, C)
    bary = frags.bary.reshape(-1, 3)[pix]
    out = torch.zeros(b * h * w, attr.shape[-1], dtype=attr.dtype, device=attr.device)
    out = out.index_put((pix,), torch.einsum("nkc,nk->nc", vals, bary))
    return out.view(b, h, w, -1)
