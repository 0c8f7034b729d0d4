"""The real-photo benchmark: reconstruct annotated photos with their K and score the joints."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import track

from ..atomic import atomic_write
from ..data.images import read_rgb
from ..data.realhands import load_realhands
from .metrics import evaluate_arrays


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
    (``{"method", "annotations", "every", "protocol", "num_images", "detected", "aligned":
    {"mpjpe_mm", "auc_j"}, "root_relative": {"mpjpe_mm"}, "detector_3d": {"aligned_mpjpe_mm",
    "hands", "worse_than_detector"}, "seconds_per_image"}``; a missed hand counts as infinite
    error in the AUC; "detector_3d" scores the detector's own 3D landmarks of the same hands,
    and counts the hands whose reconstruction is further from the truth than them),
    ``per_image.csv``, and ``worst_<k>_overlay.png`` and ``best_<k>_overlay.png`` captioned
    with their image and errors (no image as both; an earlier run's pictures in ``out_dir``
    are removed)."""
    from ..reconstruct import Reconstructor
    from ..viz import captioned, overlay_image

    samples = load_realhands(annotations, require_3d=True)[::every]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    preds, cues, found, seconds, kept = [], [], [], [], {}
    with Reconstructor(config) as rec:
        method = rec.cfg.method
        for i, s in enumerate(track(samples, description=f"reconstructing ({method})",
                                    console=console)):  # fmt: skip
            image = read_rgb(s.image)
            t0 = time.perf_counter()
            hands = rec(image, s.K)
            seconds.append(time.perf_counter() - t0)
            same_side = [h for h in hands if h.side == s.hand] or hands
            if not same_side:
                continue
            h = min(same_side, key=lambda h: np.abs(h.detection.keypoints - s.joints2d).mean())
            preds.append(h.joints3d.astype(np.float64))
            cues.append(h.detection.world)
            found.append(i)
            kept[i] = (image, s.K, hands)
    # FreiHAND's protocol on the found hands; a missed hand scores 0 at every PCK threshold,
    # so the AUC over all images is the found hands' AUC times the share found.
    res = evaluate_arrays(np.stack(preds), np.stack([samples[i].joints3d for i in found])
                          ) if found else None  # fmt: skip
    pa = res.per_sample["mpjpe_mm_aligned"] if res else np.zeros(0)
    rr = res.per_sample["mpjpe_mm_root_relative"] if res else np.zeros(0)
    # The detector's own 3D (MediaPipe's world landmarks), scored the same way: a
    # reconstruction should never be further from the truth than the cue it starts from.
    cue = np.full(len(found), np.nan)
    has_cue = [k for k, c in enumerate(cues) if c is not None]
    if has_cue:
        gt = np.stack([samples[found[k]].joints3d for k in has_cue])
        cue[has_cue] = evaluate_arrays(np.stack([cues[k] for k in has_cue]).astype(np.float64),
                                       gt).per_sample["mpjpe_mm_aligned"]  # fmt: skip
    worse = pa[has_cue] > cue[has_cue]
    by_image = {i: (pa[k], rr[k], cue[k]) for k, i in enumerate(found)}

    def cells(i: int) -> tuple:
        if i not in by_image:
            return "", "", "", "", 0
        e, r, c = by_image[i]
        return (f"{e:.2f}", f"{r:.2f}", "" if np.isnan(c) else f"{c:.2f}",
                "" if np.isnan(c) else int(e > c), 1)  # fmt: skip

    rows = [[i, str(s.image), *cells(i)] for i, s in enumerate(samples)]
    metrics = {
        "method": method,
        "annotations": str(annotations),
        "every": every,
        "protocol": "aligned: after the best similarity transform (FreiHAND's PA-MPJPE); "
                    "root_relative: wrists at the origin; mm",
        "num_images": len(samples),
        "detected": len(found),
        "aligned": {
            "mpjpe_mm": res.aligned.mpjpe_mm if res else None,
            "auc_j": res.aligned.auc_j * len(found) / len(samples) if res else 0.0,
        },
        "root_relative": {"mpjpe_mm": res.root_relative.mpjpe_mm if res else None},
        "detector_3d": {
            "aligned_mpjpe_mm": float(cue[has_cue].mean()) if has_cue else None,
            "hands": len(has_cue),
            "worse_than_detector": int(worse.sum()),
        },
        "seconds_per_image": float(np.mean(seconds)),
    }
    atomic_write(out / "metrics.json", lambda t: t.write_text(json.dumps(metrics, indent=2)))

    def write_csv(tmp: Path) -> None:
        with tmp.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["index", "image", "pa_mpjpe_mm", "root_relative_mpjpe_mm",
                        "detector_pa_mpjpe_mm", "worse_than_detector", "detected"])  # fmt: skip
            w.writerows(rows)

    atomic_write(out / "per_image.csv", write_csv)
    ranked = sorted(kept, key=lambda i: -by_image[i][0])
    # Few images: each shown once, the best as asked (but one image left to be the worst).
    n_best = min(best, max(len(ranked) - 1, 0))
    best_picked = ranked[::-1][:n_best]
    worst_picked = ranked[: min(worst, len(ranked) - n_best)]
    written = set()
    for name, picked in (("worst", worst_picked), ("best", best_picked)):
        for k, i in enumerate(picked):
            e, _, c = by_image[i]
            text = (f"{name} {k}: {samples[i].image} (index {i}), PA-MPJPE {e:.2f} mm"
                    + ("" if np.isnan(c) else f", the detector's 3D {c:.2f} mm")
                    + f", {method}")
            sheet = captioned(overlay_image(*kept[i]), text)
            written.add(out / f"{name}_{k}_overlay.png")
            atomic_write(out / f"{name}_{k}_overlay.png", lambda t, im=sheet: im.save(t, "PNG"))
    # An earlier run's overlays in the same folder would pass for this run's.
    for old in [*out.glob("worst_*_overlay.png"), *out.glob("best_*_overlay.png")]:
        if old not in written:
            old.unlink()
    return metrics
