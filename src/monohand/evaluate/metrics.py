"""FreiHAND's metrics: per-point errors, PCK and AUC, F-scores; aligned and unaligned.

Conventions of the official evaluation, kept exactly: errors are Euclidean distances in
metres; the PCK curve uses 100 thresholds ``linspace(0, 0.05, 100)`` and ``error <= t``; the
AUC is the trapezoid integral of the curve divided by that of 1, computed per keypoint (or
vertex) and then averaged; the mean error is averaged per point, then over points; F-scores
use nearest-neighbour distances in both directions with ``distance < t`` and F = 2PR/(P+R)
per sample, averaged over samples. "Unaligned" is the raw camera-frame distance.
"""

from __future__ import annotations

import numbers
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

from .align import procrustes_align

THRESHOLDS = np.linspace(0.0, 0.05, 100)
FSCORE_THRESHOLDS = (0.005, 0.015)


def point_errors(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(B, N, 3), (B, N, 3) -> (B, N) Euclidean distances."""
    d = pred - gt
    return np.sqrt(np.einsum("bnc,bnc->bn", d, d))  # as norm(axis=-1), 3x faster


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
    counts = np.bincount((bins * n + np.arange(n)).ravel(), minlength=(t + 1) * n)
    return np.cumsum(counts.reshape(t + 1, n)[:t], axis=0) / b


def auc(curves: np.ndarray, thresholds: np.ndarray = THRESHOLDS) -> np.ndarray:
    """Normalised trapezoid area under (T, N) PCK curves -> (N,) per point."""
    return np.trapezoid(curves, thresholds, axis=0) / np.trapezoid(
        np.ones_like(thresholds), thresholds
    )


# Query points per tile of the nearest-neighbour search: a (192, 778) float32 tile of squared
# distances (600 KB) stays in a core's L2 cache between the product that writes it and the two
# minima that read it; a whole (778, 778) matrix (2.4 MB) does not (FreiHAND's 3,960 samples:
# 1.3-1.45 -> 0.95 s on one core, 1.18-1.36 -> 1.05-1.2 s on two, the same values).
_ROWS = 192
_RECHECK = 256  # points decided again in float64 at a time


def _within(query: np.ndarray, points: np.ndarray, thresholds) -> tuple[np.ndarray, np.ndarray]:
    """For every point of either set, whether the other set of its sample has a point closer
    than each threshold (strictly, as FreiHAND's ``distance < t``).

    Exact, without a KD-tree: squared distances of every pair come in float32 from one
    batched matrix product per block of samples (coordinates centred per sample first; NumPy,
    so an evaluation imports no torch), which decides every point farther than a safe margin
    from a threshold; the few within it are decided again from float64 differences, the
    official script's arithmetic. Twice as fast as one KD-tree over all samples.

    Args:
        query: (B, N, 3), points: (B, M, 3), metres.
    Returns:
        (B, N, T) and (B, M, T) booleans: query -> points and points -> query.
    """
    b = query.shape[0]
    if query.shape[1] == 0 or points.shape[1] == 0:
        raise ValueError("F-scores need at least one point on each side")
    # One thread per core over a share of the samples, each with a one-thread BLAS: for
    # products this small that is 1.7x faster than BLAS's own threads.
    workers = max(1, min(os.cpu_count() or 1, b // 32))
    edges = np.linspace(0, b, workers + 1).astype(int)
    shares = [slice(lo, hi) for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
    with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(workers) as pool:
        parts = list(pool.map(lambda j: _within_share(query[j], points[j], thresholds), shares))
    return np.concatenate([q for q, _ in parts]), np.concatenate([p for _, p in parts])


def _within_share(query: np.ndarray, points: np.ndarray, thresholds):
    """``_within`` for some samples, on one thread."""
    # d^2 = |a|^2 + |b|^2 - 2 a.b as one product: [a, |a|^2, 1] . [-2b, 1, |b|^2], the rows
    # written in place (centred in float64, then rounded to float32)
    b, n, m = query.shape[0], query.shape[1], points.shape[1]
    centre = points.mean(1, keepdims=True)  # (B, 1, 3) float64
    qa = np.empty((b, n, 5), np.float32)
    pa = np.empty((b, 5, m), np.float32)
    q, p = qa[..., :3], pa[:, :3]
    np.subtract(query, centre, out=q, casting="same_kind")
    np.subtract(points.transpose(0, 2, 1), centre.transpose(0, 2, 1), out=p, casting="same_kind")
    nq, np_ = np.einsum("bnc,bnc->bn", q, q), np.einsum("bcm,bcm->bm", p, p)
    qa[..., 3], qa[..., 4], pa[:, 3], pa[:, 4] = nq, 1.0, 1.0, np_
    p *= -2.0  # exact
    # the sample's largest |x|^2 (float32's rounding of it covered by the margin's slack)
    r2 = np.maximum(nq.max(1), np_.max(1)).astype(np.float64)
    min_q, min_p = np.empty((b, n), np.float32), np.empty((b, m), np.float32)
    tile, col_min = np.empty((min(_ROWS, n), m), np.float32), np.empty(m, np.float32)
    for i in range(b):
        for r in range(0, n, _ROWS):  # the points' minima run over the tiles
            d2 = np.matmul(qa[i, r : r + _ROWS], pa[i], out=tile[: min(_ROWS, n - r)])
            d2.min(1, out=min_q[i, r : r + _ROWS])
            if r == 0:
                d2.min(0, out=min_p[i])
            else:
                np.minimum(min_p[i], d2.min(0, out=col_min), out=min_p[i])
    # The float32 d^2 errs by at most 17 eps r2 (r2: the sample's largest centred |x|^2): the
    # 5-term product <= 5 u 4 r2 (u = eps / 2; the 1s and the -2 are exact), |a|^2 and |b|^2
    # <= 3 u r2 each, the inputs' rounding <= 4 u d sqrt(r2) <= 8 u r2. 32 eps r2 is safe.
    margin = (32 * np.finfo(np.float32).eps * r2)[:, None]
    out = []
    for approx, a64, b64 in ((min_q.astype(np.float64), query, points),
                             (min_p.astype(np.float64), points, query)):  # fmt: skip
        res = np.empty((*approx.shape, len(thresholds)), dtype=bool)
        for k, t in enumerate(thresholds):
            res[..., k] = approx < t * t
            s, i = np.nonzero(np.abs(approx - t * t) <= margin)  # too close to call: float64
            for c in range(0, len(s), _RECHECK):  # blocks of points bound the memory
                sc, ic = s[c : c + _RECHECK], i[c : c + _RECHECK]
                diff = (a64[sc, ic] - centre[sc, 0])[:, None] - (b64[sc] - centre[sc])
                res[sc, ic, k] = np.sqrt(np.einsum("kmc,kmc->km", diff, diff).min(1)) < t
        out.append(res)
    return out[0], out[1]


def fscores(pred: np.ndarray, gt: np.ndarray, thresholds=FSCORE_THRESHOLDS) -> np.ndarray:
    """Per-sample F-scores at each threshold.

    Args:
        pred: (B, N, 3), gt: (B, M, 3) vertices, metres.
    Returns:
        (B, len(thresholds)) F = 2PR/(P+R), 0 where P + R = 0.
    """
    near_pr, near_gt = _within(pred, gt, thresholds)  # each predicted point to the truth, back
    recall = near_pr.mean(1)  # (B, T), named as in FreiHAND's script; F is symmetric
    precision = near_gt.mean(1)
    s = recall + precision
    return np.where(s > 0, 2 * recall * precision / np.where(s > 0, s, 1), 0.0)


@dataclass
class Metrics:
    """One column of the seed's table (aligned or not), as FreiHAND's script computes it.

    Attributes:
        mpjpe_mm: mean joint error over the samples' 21 joints, millimetres (aligned:
            PA-MPJPE).
        auc_j: area under the joints' PCK curve over 0-50 mm (``THRESHOLDS``), in [0, 1].
        mpvpe_mm, auc_v: the same of the mesh's vertices (None without predicted meshes).
        f5, f15: F-scores of the vertices at 5 and 15 mm, in [0, 1] (None likewise).
    """

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

    def __repr__(self) -> str:
        # The metrics, not hundreds of lines of curves and per-sample arrays.
        def one(m: Metrics) -> str:
            mesh = "" if m.mpvpe_mm is None else f", MPVPE {m.mpvpe_mm:.2f} mm"
            return f"MPJPE {m.mpjpe_mm:.2f} mm, AUC_J {m.auc_j:.3f}{mesh}"

        return (f"EvalResult({self.num_samples} samples; aligned: {one(self.aligned)}; "
                f"unaligned: {one(self.unaligned)}; root-relative: "
                f"{one(self.root_relative)}; curves {sorted(self.curves)}, per_sample "
                f"{sorted(self.per_sample)})")
    thresholds: np.ndarray = field(default_factory=lambda: THRESHOLDS)

    def to_json(self) -> dict:
        return {
            "num_samples": self.num_samples,
            "aligned": asdict(self.aligned),
            "unaligned": asdict(self.unaligned),
            "root_relative": asdict(self.root_relative),
        }


def check_points(value, name: str, n_points: int | None = None,
                 error: type[ValueError] = ValueError) -> np.ndarray:
    """``value`` as a finite float64 (N, P, 3) array (P = ``n_points`` where given), or
    ``error`` naming ``name`` and what is wrong. The one check of every point set that
    evaluation reads (``evaluate.io``) or is given (``evaluate_arrays``)."""
    try:
        arr = np.asarray(value)
        text = arr.dtype.kind in "USO"  # ("0.1" in a JSON file: text, which float() takes)
        arr = arr if text else arr.astype(np.float64, copy=False)
    except (TypeError, ValueError) as e:
        raise error(f"{name} is not a numeric array ({e})") from e
    if text:
        raise error(f"{name} holds text or other objects, not numbers (dtype {arr.dtype})")
    if arr.ndim != 3 or arr.shape[2] != 3 or (n_points is not None and arr.shape[1] != n_points):
        raise error(f"{name} must have shape (N, {n_points or 'P'}, 3), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        bad = np.flatnonzero(~np.isfinite(arr).all((1, 2)))
        raise error(f"{name} has NaN or inf values (samples {bad[:5].tolist()}...)")
    return arr


def units_doubt(xyz_pred: np.ndarray, xyz_gt: np.ndarray) -> tuple[str, str] | None:
    """Why predictions (N, 21, 3) look like they are not in the ground truth's units or frame
    (metres, the camera's, z forward), as (kind, text), or None. "units": their hands 20 times
    the ground truth's size or more (millimetres or centimetres, whatever the frame:
    alignment hides a scale, so the aligned row would look right and the rest absurd); "frame":
    at or behind the camera where the ground truth is in front (OpenGL's -z, as HO-3D's files;
    root-relative joints). ``evaluate_arrays`` warns of either; ``monohand evaluate`` refuses
    the first (``--any-units``) and notes the second (root-relative joints are fair for the
    aligned row, which FreiHAND ranks by)."""

    def size(xyz: np.ndarray) -> float:  # the hands' median RMS spread about their centroid
        return float(np.median(np.sqrt(((xyz - xyz.mean(1, keepdims=True)) ** 2).sum(-1)
                                       .mean(1))))  # fmt: skip

    spread, gt_spread = size(xyz_pred), size(xyz_gt)
    if gt_spread > 0 and spread > 20 * gt_spread:
        return "units", (f"the predictions' hands are {spread / gt_spread:.3g} times the ground "
                         f"truth's size ({spread:.3g} against {gt_spread:.3g} m from their "
                         "centres): millimetres or centimetres? (divide by 1000 or 100)")
    depth, gt_depth = float(np.median(xyz_pred[..., 2])), float(np.median(xyz_gt[..., 2]))
    if gt_depth > 0 and depth <= 0.2 * gt_depth:
        return "frame", (f"the predictions' median depth is {depth:.3g} m, the ground "
                         f"truth's {gt_depth:.3g} m: joints at or behind the camera (OpenGL's "
                         "-z, as HO-3D's files, or root-relative joints? the unaligned row "
                         "needs the camera's frame, x right, y down, z forward)")  # fmt: skip
    return None


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

    "aligned" is FreiHAND's similarity Procrustes (``align.procrustes_align``), which, as
    the official script, allows a reflection: a mirror image of the truth scores as the truth
    there (the unaligned and root-relative variants see it).

    Args:
        xyz_pred, xyz_gt: (B, 21, 3) keypoints, metres, camera frame (OpenCV: z forward).
            Predictions that look like millimetres or centimetres, or that lie at or behind
            the camera (``units_doubt``), and a ground truth that looks like millimetres are
            warned of, and scored as given.
        verts_pred, verts_gt: (B, V, 3) vertices of a shared topology, or None (joint-only:
            mesh metrics are reported as None, not zero).
        root: keypoint subtracted for the root-relative variant (0, the wrist, by default;
            as in Human3.6M's protocol the root stays among the joints averaged, its error
            0 there).
    Raises:
        ValueError: wrong shapes, mismatched sample counts, NaN/inf.
    """
    xyz_pred, xyz_gt = check_points(xyz_pred, "xyz_pred", 21), check_points(xyz_gt, "xyz_gt", 21)
    if xyz_pred.shape != xyz_gt.shape:
        raise ValueError(f"xyz_pred {xyz_pred.shape} and xyz_gt {xyz_gt.shape} differ")
    b = xyz_gt.shape[0]
    if b == 0:
        raise ValueError("no samples to evaluate")
    if isinstance(root, bool) or not isinstance(root, numbers.Integral) or not 0 <= root < 21:
        raise ValueError(f"root: the index of a keypoint, 0-20 (0: the wrist), got {root!r}")
    if (m := float(np.median(np.abs(xyz_gt)))) > 10:
        warnings.warn(f"xyz_gt: a median coordinate of {m:.3g}, millimetres? evaluate_arrays "
                      "takes metres (and reports millimetres)", stacklevel=2)  # fmt: skip
    elif (doubt := units_doubt(xyz_pred, xyz_gt)) is not None:
        warnings.warn(f"xyz_pred: {doubt[1]}; scored as given", stacklevel=2)
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
        verts_gt = check_points(verts_gt, "verts_gt")
        verts_pred = check_points(verts_pred, "verts_pred", verts_gt.shape[1])
        if verts_pred.shape[0] != b or verts_gt.shape[0] != b:
            raise ValueError(
                f"sample counts differ: {b} keypoint sets, {verts_pred.shape[0]} predicted and "
                f"{verts_gt.shape[0]} ground-truth meshes"
            )
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
            f = fscores(p, verts_gt)
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


def penetration_depth(verts_a, faces_a, verts_b, faces_b) -> np.ndarray:
    """How deep two hand meshes interpenetrate: per sample, the largest distance from a
    vertex of one mesh lying inside the other (its holes capped) to the other's nearest
    vertex (0 if none is inside), metres; an upper bound of the distance to the surface, by
    the meshes' vertex spacing (``models.collision.deepest_penetration``).

    Args:
        verts_a: (B, Va, 3); faces_a: (Fa, 3); verts_b: (B, Vb, 3); faces_b: (Fb, 3).
    Returns:
        (B,) metres.
    """
    import torch

    from ..models.collision import deepest_penetration

    va, vb = torch.as_tensor(verts_a).double(), torch.as_tensor(verts_b).double()
    fa, fb = torch.as_tensor(np.asarray(faces_a)), torch.as_tensor(np.asarray(faces_b))
    return deepest_penetration(va, fa, vb, fb).numpy()
