"""The real-photo benchmark: reconstruct annotated photos with their K and score the joints."""

from __future__ import annotations

import csv
import json
import time
import warnings
from pathlib import Path

import numpy as np
from rich.console import Console

from ..atomic import atomic_write
from ..data.detection import hand_size
from ..data.images import read_rgb
from ..data.realhands import load_realhands
from ..progress import track
from .metrics import evaluate_arrays

# A detection is an annotated hand's when its keypoints lie within half the hand's size
# (wrist to middle knuckle, in the image) of the annotation on average: the bar of
# ``bench/bench_detect.py`` for a hand found.
MATCH_GATE = 0.5


def match_hands(detected: list[np.ndarray], annotated: list[np.ndarray],
                gate: float = MATCH_GATE) -> list[int | None]:  # fmt: skip
    """Which detection is each annotated hand's: for each of ``annotated`` (21, 2) pixel
    keypoints, the index into ``detected`` (21, 2) or None (missed). One to one, the pairing
    of least total distance (``scipy.optimize.linear_sum_assignment``) among pairs whose mean
    keypoint distance is under ``gate`` hand sizes of the annotation; so that one detection
    between two overlapping hands, or the other hand of the photo, is not scored as a hand
    it is not."""
    from scipy.optimize import linear_sum_assignment

    out: list[int | None] = [None] * len(annotated)
    if not detected or not annotated:
        return out
    cost = np.array([[np.linalg.norm(d - a, axis=1).mean() / hand_size(a) for d in detected]
                     for a in annotated])  # fmt: skip
    big = 1e6  # pairs over the gate: never taken
    rows, cols = linear_sum_assignment(np.where(cost < gate, cost, big))
    for r, c in zip(rows, cols, strict=True):
        if cost[r, c] < gate:
            out[r] = int(c)
    return out


def run_real_benchmark(
    annotations: str | Path,
    out_dir: str | Path,
    every: int = 1,
    console: Console | None = None,
    worst: int = 5,
    config=None,
    best: int = 2,
) -> dict:
    """Reconstruct every ``every``-th 3D-annotated hand's photo with its K (``config``: a
    ``ReconstructConfig``; default: ``ReconstructConfig()``, the hybrid) and score the joints.

    A photo with several annotated hands is reconstructed once and its hands matched to them
    (``match_hands``). Writes ``metrics.json``: ``method``, ``annotations``, ``every``,
    ``protocol``, ``hands`` (annotated hands scored), ``photos`` (their photos),
    ``detected`` (hands matched), ``aligned`` {``mpjpe_mm``, ``auc_j``}, ``root_relative``
    {``mpjpe_mm``}, ``detector_3d`` {``aligned_mpjpe_mm``, ``hands``,
    ``worse_than_detector``} (the detector's own 3D landmarks of the same hands, and the
    hands whose reconstruction is further from the truth than them) and
    ``seconds_per_image`` (per photo); a missed hand counts as infinite error in the AUC.
    Also ``per_image.csv`` (a row per annotated hand), and ``worst_<k>_overlay.png`` and
    ``best_<k>_overlay.png`` captioned with their image and errors, the annotated joints
    drawn as green crosses (no image as both; an
    earlier run's pictures in ``out_dir`` are removed); ``predictions.json`` (per annotated
    hand: its ``index``, ``image`` and the matched hand's ``joints3d``, metres, or null) and
    ``pck.png`` (the aligned 3D PCK over all annotated hands, the method's and the detector's
    3D)."""
    from ..reconstruct import Reconstructor
    from ..viz import captioned, overlay_image

    samples = load_realhands(annotations, require_3d=True)[::every]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # A photo with several annotated hands is reconstructed once, its hands matched to them
    # (a photo named with two cameras is two photos: each is reconstructed with its own K).
    photos: dict[tuple, list[int]] = {}
    for i, s in enumerate(samples):
        K = None if s.K is None else np.asarray(s.K, np.float64).tobytes()
        photos.setdefault((s.image, K), []).append(i)
    matched: dict[int, object] = {}  # sample -> its reconstructed hand
    seconds, kept = [], {}
    with Reconstructor(config) as rec:
        method, network = rec.cfg.method, rec.network_name
        model, model_path = rec.cfg.model, rec.model_path
        for (path, _), idx in track(list(photos.items()), f"reconstructing ({method})",
                                    console):  # fmt: skip
            image = read_rgb(path)
            t0 = time.perf_counter()
            hands = rec(image, samples[idx[0]].K)
            seconds.append(time.perf_counter() - t0)
            which = match_hands([h.detection.keypoints for h in hands],
                                [samples[i].joints2d for i in idx])  # fmt: skip
            for i, k in zip(idx, which, strict=True):
                if k is not None:
                    matched[i] = hands[k]
                    kept[i] = (image, samples[i].K, hands, k)
    found = sorted(matched)
    preds = [matched[i].joints3d.astype(np.float64) for i in found]
    cues = [matched[i].detection.world for i in found]
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
    cue_res = None
    if has_cue:
        gt = np.stack([samples[found[k]].joints3d for k in has_cue])
        with warnings.catch_warnings():  # (hand-centred, knowingly: its aligned row is used)
            warnings.filterwarnings("ignore", message="xyz_pred: ", category=UserWarning)
            cue_res = evaluate_arrays(np.stack([cues[k] for k in has_cue]).astype(np.float64),
                                      gt)  # fmt: skip
        cue[has_cue] = cue_res.per_sample["mpjpe_mm_aligned"]
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
        **({} if network is None else {"network": network}),
        "model": model,
        **({} if model_path is None else {"model_path": model_path}),
        "annotations": str(annotations),
        "every": every,
        "protocol": "aligned: after the best similarity transform (FreiHAND's PA-MPJPE); "
                    "root_relative: wrists at the origin; mm",
        "hands": len(samples),
        "photos": len(photos),
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
    # The predictions themselves, per annotated hand (null: not found), for other metrics
    # without reconstructing again; FreiHAND's pred.json has no place for a missed hand.
    predictions = {"units": "metres, each photo's camera frame (OpenCV)",
                   "hands": [{"index": i, "image": str(s.image), "joints3d": (
                       np.round(matched[i].joints3d.astype(np.float64), 6).tolist()
                       if i in matched else None)} for i, s in enumerate(samples)]}  # fmt: skip
    atomic_write(out / "predictions.json", lambda t: t.write_text(json.dumps(predictions)))
    _write_pck(out / "pck.png", {f"monohand ({method})": (res, len(found)),
                                 "the detector's 3D (MediaPipe's world landmarks)":
                                     (cue_res, len(has_cue))}, len(samples))  # fmt: skip
    # One picture per photo (its worst-scored hand stands for it), none shown as both best
    # and worst.
    shown: set[Path] = set()
    ranked = [i for i in sorted(kept, key=lambda i: -by_image[i][0])
              if not (samples[i].image in shown or shown.add(samples[i].image))]  # fmt: skip
    # Few images: each shown once, the best as asked (but one image left to be the worst).
    n_best = min(best, max(len(ranked) - 1, 0))
    best_picked = ranked[::-1][:n_best]
    worst_picked = ranked[: min(worst, len(ranked) - n_best)]
    written = set()
    for name, picked in (("worst", worst_picked), ("best", best_picked)):
        for k, i in enumerate(picked):
            e, _, c = by_image[i]
            image, K, hands, h = kept[i]
            text = (f"{name} {k}: {samples[i].image} (index {i}"
                    + (f", hand {h}" if len(hands) > 1 else "") + f"), PA-MPJPE {e:.2f} mm"
                    + ("" if np.isnan(c) else f", the detector's 3D {c:.2f} mm")
                    + f", {method}; green crosses: the annotated joints")
            truth = samples[i].joints3d @ K.T
            sheet = captioned(overlay_image(image, K, hands, truth=[truth[:, :2] /
                                                                    truth[:, 2:]]), text)
            written.add(out / f"{name}_{k}_overlay.png")
            atomic_write(out / f"{name}_{k}_overlay.png", lambda t, im=sheet: im.save(t, "PNG"))
    # An earlier run's overlays in the same folder would pass for this run's.
    for old in [*out.glob("worst_*_overlay.png"), *out.glob("best_*_overlay.png")]:
        if old not in written:
            old.unlink()
    return metrics


def _write_pck(path: Path, curves: dict, total: int) -> None:
    """The aligned 3D PCK of each entry of ``curves`` ({label: (EvalResult or None, hands
    it scored)}) over all ``total`` annotated hands (a missed one is under no threshold)."""
    from ..plotting import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.2), dpi=110)
    for (label, (res, n)), style in zip(curves.items(), ("-", "--"), strict=False):
        if res is None:
            continue
        pck = res.curves["joints_aligned"] * n / total
        auc = float(np.trapezoid(pck, res.thresholds) / res.thresholds[-1])
        ax.plot(res.thresholds * 1000, pck, style, label=f"{label}: AUC_J {auc:.3f}")
    ax.set_xlabel("threshold (mm), after the best similarity transform")
    ax.set_ylabel("PCK (all annotated hands)")
    ax.set_ylim(0, 1)
    ax.set_xlim(0, 50)
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    ax.set_title(f"3D PCK on {total} annotated hands")
    fig.tight_layout()
    try:
        atomic_write(path, lambda t: fig.savefig(t, format="png"))
    finally:
        plt.close(fig)
