"""The real-photo benchmark: reconstruct annotated photos with their K and score the joints."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import track

from ..data.images import read_rgb
from ..data.realhands import load_realhands
from .align import procrustes_align
from .metrics import THRESHOLDS, auc, pck_curves


def run_real_benchmark(
    annotations: str | Path,
    out_dir: str | Path,
    every: int = 1,
    console: Console | None = None,
    worst: int = 5,
    config=None,
    best: int = 2,
) -> dict:
    """Reconstruct (``config``: a ``ReconstructConfig``; default: fitting) every ``every``-th
    3D-annotated image with its K; write ``metrics.json``
    (``{"num_images", "detected", "aligned": {"mpjpe_mm", "auc_j"}, "root_relative":
    {"mpjpe_mm"}, "seconds_per_image"}``; a missed hand counts as infinite error in the AUC),
    ``per_image.csv``, ``worst_<k>_overlay.png`` and ``best_<k>_overlay.png``."""
    from ..reconstruct import Reconstructor, overlay_image

    samples = load_realhands(annotations, require_3d=True)[::every]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    errs, rr_errs, rows, seconds, kept = [], [], [], [], {}
    with Reconstructor(config) as rec:
        for i, s in enumerate(track(samples, description="fitting", console=console)):
            image = read_rgb(s.image)
            t0 = time.perf_counter()
            hands = rec(image, s.K)
            seconds.append(time.perf_counter() - t0)
            same_side = [h for h in hands if h.side == s.hand] or hands
            if not same_side:
                errs.append(np.full(21, np.inf))
                rr_errs.append(np.full(21, np.nan))
                rows.append([i, str(s.image), "", "", 0])
                continue
            h = min(same_side, key=lambda h: np.abs(h.detection.keypoints - s.joints2d).mean())
            pred = h.joints3d.astype(np.float64)
            aligned = procrustes_align(pred[None], s.joints3d[None])[0]
            e = np.linalg.norm(aligned - s.joints3d, axis=1)
            rr = np.linalg.norm((pred - pred[0]) - (s.joints3d - s.joints3d[0]), axis=1)
            errs.append(e)
            rr_errs.append(rr)
            rows.append([i, str(s.image), f"{1000 * e.mean():.2f}", f"{1000 * rr.mean():.2f}", 1])
            kept[i] = (image, s.K, hands, 1000 * e.mean())
    e, rr = np.stack(errs), np.stack(rr_errs)
    found = np.isfinite(e).all(1)
    metrics = {
        "num_images": len(samples),
        "detected": int(found.sum()),
        "aligned": {
            "mpjpe_mm": float(1000 * e[found].mean()) if found.any() else None,
            "auc_j": float(auc(pck_curves(e), THRESHOLDS).mean()),
        },
        "root_relative": {"mpjpe_mm": float(1000 * np.nanmean(rr[found])) if found.any() else None},
        "seconds_per_image": float(np.mean(seconds)),
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    with (out / "per_image.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["index", "image", "pa_mpjpe_mm", "root_relative_mpjpe_mm", "detected"])
        w.writerows(rows)
    ranked = sorted(kept.values(), key=lambda t: -t[3])
    for k, (image, K, hands, _) in enumerate(ranked[:worst]):
        overlay_image(image, K, hands).save(out / f"worst_{k}_overlay.png")
    for k, (image, K, hands, _) in enumerate(ranked[::-1][:best]):
        overlay_image(image, K, hands).save(out / f"best_{k}_overlay.png")
    return metrics
