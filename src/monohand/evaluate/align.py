"""Similarity Procrustes alignment in FreiHAND's form, batched."""

from __future__ import annotations

import numpy as np


def procrustes_align(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Align each predicted point set to its ground truth by scale, rotation and translation.

    FreiHAND's ``align_w_scale``, for a batch: centre both sets, divide each by its Frobenius
    norm + 1e-8, take the rotation of ``scipy.linalg.orthogonal_procrustes`` (U V^T of the SVD
    of gt^T pred; no determinant correction, so reflections are allowed) and the scale = sum
    of the singular values, then undo the ground truth's normalisation. Because of the 1e-8, a
    perfect prediction comes back off by ~1e-10 m, exactly as in the official script.

    Args:
        pred: (B, N, 3) predicted points, float64 recommended.
        gt: (B, N, 3) ground-truth points.
    Returns:
        (B, N, 3) aligned predictions.
    """
    pred, gt = np.asarray(pred), np.asarray(gt)
    if pred.ndim != 3 or pred.shape[-1] != 3 or pred.shape != gt.shape:
        one = " (one set: x[None])" if pred.ndim == 2 or gt.ndim == 2 else ""
        raise ValueError(f"pred and gt must have one shape (B, N, 3), got {pred.shape} and "
                         f"{gt.shape}{one}")  # fmt: skip
    t1, t2 = gt.mean(1, keepdims=True), pred.mean(1, keepdims=True)
    a, b = gt - t1, pred - t2
    s1 = np.linalg.norm(a, axis=(1, 2), keepdims=True) + 1e-8
    s2 = np.linalg.norm(b, axis=(1, 2), keepdims=True) + 1e-8
    a, b = a / s1, b / s2
    u, w, vt = np.linalg.svd(np.swapaxes(a, 1, 2) @ b)
    r = u @ vt
    scale = w.sum(-1)[:, None, None]
    return (b @ np.swapaxes(r, 1, 2)) * scale * s1 + t1
