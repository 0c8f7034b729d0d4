"""FreiHAND's metrics: per-point errors, PCK and AUC, F-scores; aligned and unaligned.

Conventions of the official evaluation, kept exactly: errors are Euclidean distances in
metres; the PCK curve uses 100 thresholds ``linspace(0, 0.05, 100)`` and ``error <= t``; the
AUC is the trapezoid integral of the curve divided by that of 1, computed per keypoint (or
vertex) and then averaged; the mean error is averaged per point, then over points; F-scores
use nearest-neighbour distances in both directions with ``distance < t`` and F = 2PR/(P+R)
per sample, averaged over samples. "Unaligned" is the raw camera-frame distance.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.spatial import cKDTree

from .align import procrustes_align

THRESHOLDS = np.linspace(0.0, 0.05, 100)
FSCORE_THRESHOLDS = (0.005, 0.015)


def point_errors(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(B, N, 3), (B, N, 3) -> (B, N) Euclidean distances."""
    return np.linalg.norm(pred - gt, axis=-1)


def pck_curves(errors: np.ndarray, thresholds: np.ndarray = THRESHOLDS) -> np.ndarray:
    """Fraction of samples with ``error <= t`` for every threshold and point.

    Args:
        errors: (B, N) distances.
        thresholds: (T,) increasing.
    Returns:
        (T, N) PCK of each point.
    """
    b, n = errors.shape
    # Bin k holds errors in (t[k-1], t[k]] (the same <= as the official script); a running
    # sum over bins counts errors <= t[k]. Exact, and one pass over the data.
    bins = np.digitize(errors, thresholds, right=True)  # (B, N) in [0, T]
    t = len(thresholds)
    counts = np.zeros((t + 1, n))
    np.add.at(counts, (bins, np.broadcast_to(np.arange(n), (b, n))), 1.0)
    return np.cumsum(counts[:t], axis=0) / b


def auc(curves: np.ndarray, thresholds: np.ndarray = THRESHOLDS) -> np.ndarray:
    """Normalised trapezoid area under (T, N) PCK curves -> (N,) per point."""
    return np.trapezoid(curves, thresholds, axis=0) / np.trapezoid(
        np.ones_like(thresholds), thresholds
    )


_SAMPLE_SPACING = 10.0  # metres between samples in the shared KD-tree


def _shifted(x: np.ndarray) -> np.ndarray:
    """(B, N, 3) -> (B * N, 3), sample b moved by 10 b metres along x."""
    offset = np.zeros((x.shape[0], 1, 3))
    offset[:, 0, 0] = _SAMPLE_SPACING * np.arange(x.shape[0])
    return (x + offset).reshape(-1, 3)


def batch_tree(points: np.ndarray) -> cKDTree:
    """One KD-tree over every sample of (B, N, 3) ``points``, samples 10 m apart.

    With a query bound well below 10 m no neighbour can come from another sample, so one
    vectorised query serves the whole batch (no loop over samples).
    """
    return cKDTree(_shifted(points), balanced_tree=False, compact_nodes=False)


def nearest_distances(query: np.ndarray, tree: cKDTree, bound: float) -> np.ndarray:
    """Distance from every point of (B, N, 3) ``query`` to the nearest point of the same
    sample in ``tree`` (from ``batch_tree``), or inf beyond ``bound`` metres -> (B, N)."""
    if bound >= _SAMPLE_SPACING / 2:
        raise ValueError("bound must stay well below the spacing between samples")
    d, _ = tree.query(_shifted(query), distance_upper_bound=bound, workers=-1)
    return d.reshape(query.shape[:2])


def fscores(
    pred: np.ndarray, gt: np.ndarray, thresholds=FSCORE_THRESHOLDS, gt_tree: cKDTree | None = None
) -> np.ndarray:
    """Per-sample F-scores at each threshold.

    Args:
        pred: (B, N, 3), gt: (B, M, 3) vertices, metres.
        gt_tree: ``batch_tree(gt)`` when several predictions are scored against one ``gt``.
    Returns:
        (B, len(thresholds)) F = 2PR/(P+R), 0 where P + R = 0.
    """
    bound = max(thresholds) * 1.01
    gt_tree = gt_tree if gt_tree is not None else batch_tree(gt)
    d_gt = nearest_distances(gt, batch_tree(pred), bound)  # each gt point to the prediction
    d_pr = nearest_distances(pred, gt_tree, bound)  # each predicted point to the ground truth
    out = np.zeros((pred.shape[0], len(thresholds)))
    for k, t in enumerate(thresholds):
        recall = (d_pr < t).mean(1)  # named as in FreiHAND's script; F is symmetric
        precision = (d_gt < t).mean(1)
        s = recall + precision
        out[:, k] = np.where(s > 0, 2 * recall * precision / np.where(s > 0, s, 1), 0.0)
    return out


@dataclass
class Metrics:
    """One column of the seed's table. Errors in millimetres; absent mesh metrics are None."""

    mpjpe_mm: float
    auc_j: float
    mpvpe_mm: float | None = None
    auc_v: float | None = None
    f5: float | None = None
    f15: float | None = None


@dataclass
class EvalResult:
    """Aligned and unaligned metrics, PCK curves and per-sample errors.

    ``per_sample`` maps names to (B,) arrays (mean joint/vertex error in mm, F-scores);
    ``curves`` maps 'joints_aligned' etc. to (T,) mean PCK curves.
    """

    num_samples: int
    aligned: Metrics
    unaligned: Metrics
    root_relative: Metrics
    curves: dict[str, np.ndarray] = field(default_factory=dict)
    per_sample: dict[str, np.ndarray] = field(default_factory=dict)
    thresholds: np.ndarray = field(default_factory=lambda: THRESHOLDS)

    def to_json(self) -> dict:
        return {
            "num_samples": self.num_samples,
            "aligned": asdict(self.aligned),
            "unaligned": asdict(self.unaligned),
            "root_relative": asdict(self.root_relative),
        }


def _check(name: str, arr: np.ndarray, n_points: int | None = None) -> np.ndarray:
    arr = np.asarray(arr, dtype=np.float64)
    if arr.ndim != 3 or arr.shape[2] != 3 or (n_points is not None and arr.shape[1] != n_points):
        want = f"(N, {n_points if n_points else 'P'}, 3)"
        raise ValueError(f"{name} must have shape {want}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        bad = np.flatnonzero(~np.isfinite(arr).all((1, 2)))
        raise ValueError(f"{name} has NaN or inf values (samples {bad[:5].tolist()}...)")
    return arr


def _set_metrics(pred: np.ndarray, gt: np.ndarray) -> tuple[float, float, np.ndarray, np.ndarray]:
    """Mean error (per point, then over points), AUC, mean PCK curve, per-sample mean error."""
    err = point_errors(pred, gt)
    curves = pck_curves(err)
    return float(err.mean(0).mean()), float(auc(curves).mean()), curves.mean(1), err.mean(1)


def evaluate_arrays(
    xyz_pred: np.ndarray,
    xyz_gt: np.ndarray,
    verts_pred: np.ndarray | None = None,
    verts_gt: np.ndarray | None = None,
    root: int = 0,
) -> EvalResult:
    """FreiHAND's evaluation of keypoints and (optionally) vertices.

    Args:
        xyz_pred, xyz_gt: (B, 21, 3) keypoints, metres, camera frame.
        verts_pred, verts_gt: (B, V, 3) vertices of a shared topology, or None (joint-only:
            mesh metrics are reported as None, not zero).
        root: keypoint subtracted for the root-relative variant.
    Raises:
        ValueError: wrong shapes, mismatched sample counts, NaN/inf.
    """
    xyz_pred, xyz_gt = _check("xyz_pred", xyz_pred, 21), _check("xyz_gt", xyz_gt, 21)
    if xyz_pred.shape != xyz_gt.shape:
        raise ValueError(f"xyz_pred {xyz_pred.shape} and xyz_gt {xyz_gt.shape} differ")
    b = xyz_gt.shape[0]
    if b == 0:
        raise ValueError("no samples to evaluate")
    res: dict[str, dict] = {"aligned": {}, "unaligned": {}, "root_relative": {}}
    curves, per = {}, {}
    variants = {
        "aligned": procrustes_align(xyz_pred, xyz_gt),
        "unaligned": xyz_pred,
        "root_relative": xyz_pred - xyz_pred[:, root : root + 1] + xyz_gt[:, root : root + 1],
    }
    for name, p in variants.items():
        mean, a, curve, ps = _set_metrics(p, xyz_gt)
        res[name].update(mpjpe_mm=1000 * mean, auc_j=a)
        curves[f"joints_{name}"], per[f"mpjpe_mm_{name}"] = curve, 1000 * ps
    if (verts_pred is None) != (verts_gt is None):
        raise ValueError("vertices must be given for both prediction and ground truth, or neither")
    if verts_pred is not None:
        verts_gt = _check("verts_gt", verts_gt)
        verts_pred = _check("verts_pred", verts_pred, verts_gt.shape[1])
        if verts_pred.shape[0] != b or verts_gt.shape[0] != b:
            raise ValueError(
                f"sample counts differ: {b} keypoint sets, {verts_pred.shape[0]} predicted and "
                f"{verts_gt.shape[0]} ground-truth meshes"
            )
        gt_tree = batch_tree(verts_gt)
        vvariants = {
            "aligned": procrustes_align(verts_pred, verts_gt),
            "unaligned": verts_pred,
            "root_relative": verts_pred - xyz_pred[:, root : root + 1] + xyz_gt[:, root : root + 1],
        }
        for name, p in vvariants.items():
            mean, a, curve, ps = _set_metrics(p, verts_gt)
            res[name].update(mpvpe_mm=1000 * mean, auc_v=a)
            curves[f"vertices_{name}"], per[f"mpvpe_mm_{name}"] = curve, 1000 * ps
            if name == "root_relative":
                continue  # F-scores are FreiHAND's aligned/unaligned measures only
            f = fscores(p, verts_gt, gt_tree=gt_tree)
            res[name].update(f5=float(f[:, 0].mean()), f15=float(f[:, 1].mean()))
            per[f"f5_{name}"], per[f"f15_{name}"] = f[:, 0], f[:, 1]
    return EvalResult(
        num_samples=b,
        aligned=Metrics(**res["aligned"]),
        unaligned=Metrics(**res["unaligned"]),
        root_relative=Metrics(**res["root_relative"]),
        curves=curves,
        per_sample=per,
    )


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
    # the holes: connected components of the boundary edges (union-find over vertices)
    parent = np.arange(num_verts)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in boundary:
        parent[find(a)] = find(b)
    roots = np.array([find(a) for a in boundary[:, 0]])
    labels, hole = np.unique(roots, return_inverse=True)
    holes = np.zeros((len(labels), num_verts))
    holes[hole, boundary[:, 0]] = 1.0
    caps = np.stack([boundary[:, 1], boundary[:, 0], num_verts + hole], 1)
    return np.concatenate([faces, caps]), holes


def penetration_depth(verts_a, faces_a, verts_b, faces_b) -> np.ndarray:
    """How deep two hand meshes interpenetrate: per sample, the largest distance from a
    vertex of one mesh lying inside the other (its holes capped, ``capped_faces``) to the
    other's nearest vertex (0 if none is inside), metres; an upper bound of the distance to
    the surface, by the meshes' vertex spacing.

    Args:
        verts_a: (B, Va, 3); faces_a: (Fa, 3); verts_b: (B, Vb, 3); faces_b: (Fb, 3).
    Returns:
        (B,) metres.
    """
    import torch

    from ..models.collision import inside_mesh

    va, vb = torch.as_tensor(verts_a).double(), torch.as_tensor(verts_b).double()
    depth = torch.zeros(va.shape[0], dtype=torch.float64)
    for p, q, fq in ((va, vb, faces_b), (vb, va, faces_a)):
        f, holes = capped_faces(np.asarray(fq), q.shape[1])
        w = torch.as_tensor(holes / holes.sum(1, keepdims=True).clip(1))
        closed = torch.cat([q, torch.einsum("hv,bvc->bhc", w, q)], 1)
        inside = inside_mesh(p, closed, torch.as_tensor(f))
        d = torch.cdist(p, q).amin(2)
        depth = torch.maximum(depth, torch.where(inside, d, 0.0).amax(1))
    return depth.numpy()
