"""Video reconstruction: frames/s, PA-MPJPE and jitter with and without warm start and
smoothing.

python bench/bench_video.py --source ge      # Ge et al.'s real sequence, frames 0-149
python bench/bench_video.py --source clip    # a rendered OpenHand clip (choosing settings)

Jitter is the mean joint acceleration |x[t+1] - 2x[t] + x[t-1]| (mm/frame²) of the camera-frame
joints over frames where the hand was found; the ground truth's own value is the real motion
(plus its annotation noise). Acceleration error is |acc(pred) - acc(gt)|, the usual video
metric. Timing covers detection and fitting (not writing files).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import track
from rich.table import Table

from monohand.data.images import read_rgb
from monohand.evaluate.align import procrustes_align
from monohand.reconstruct import ReconstructConfig, Reconstructor
from monohand.video.clip import jitter_mm, render_clip
from monohand.video.sequence import SequenceConfig, SequenceReconstructor

REALHANDS = Path(__file__).resolve().parents[2] / "shared" / "data" / "realhands"


def load_source(name: str, n: int):
    """(frames, Ks, gt joints (N, 21, 3), fps)."""
    if name == "clip":
        c = render_clip(n)
        return list(c.frames), [c.K] * n, c.joints3d, c.fps
    ann = json.loads((REALHANDS / "annotations.json").read_text())
    s = [x for x in ann["samples"] if x["image"].startswith("images/ge2019/")]
    s = sorted(s, key=lambda x: x["image"])[:n]
    frames = [read_rgb(REALHANDS / x["image"]) for x in s]
    return frames, [np.array(x["K"]) for x in s], np.array([x["joints3d"] for x in s]), 30.0


def run(rec, frames, Ks, fps, warm: bool, smooth: bool, label: str,
        warm_from: str = "network"):  # fmt: skip
    cfg = SequenceConfig(warm_start=warm, network_each_frame=warm_from == "network")
    cfg.smoothing.enabled = smooth
    seq = SequenceReconstructor(rec, cfg, fps)
    pred = np.full((len(frames), 21, 3), np.nan)
    t0 = time.perf_counter()
    for i, (img, K) in enumerate(track(list(zip(frames, Ks, strict=True)), description=label)):
        r = seq.step(img, K)
        if r.hands:
            pred[i] = r.hands[0].joints3d
    return pred, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", choices=("ge", "clip"), default="ge")
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--warm-from", choices=("network", "fit"), default="network",
                    help="a warm hybrid frame starts from this frame's network prediction "
                         "(the default) or from the previous frame's fit")  # fmt: skip
    args = ap.parse_args()
    frames, Ks, gt, fps = load_source(args.source, args.frames)
    table = Table(title=f"monohand video, {args.source}: {len(frames)} frames, CPU")
    for col in ("warm start", "smoothing", "found", "frames/s", "PA-MPJPE mm", "MPJPE mm",
                "jitter mm/f²", "accel err mm/f²"):  # fmt: skip
        table.add_column(col, justify="right")
    with Reconstructor(ReconstructConfig()) as rec:
        for warm, smooth in ((False, False), (True, False), (False, True), (True, True)):
            pred, sec = run(rec, frames, Ks, fps, warm, smooth, f"warm={warm} smooth={smooth}",
                            args.warm_from)  # fmt: skip
            ok = ~np.isnan(pred[:, 0, 0])
            aligned = procrustes_align(pred[ok], gt[ok])
            pa = np.linalg.norm(aligned - gt[ok], axis=-1).mean() * 1000
            abs_err = np.linalg.norm(pred[ok] - gt[ok], axis=-1).mean() * 1000
            acc_err = np.linalg.norm(np.diff(pred, 2, axis=0) - np.diff(gt, 2, axis=0), axis=-1)
            table.add_row("yes" if warm else "no", "yes" if smooth else "no",
                          f"{ok.sum()}/{len(ok)}", f"{len(frames) / sec:.2f}", f"{pa:.2f}",
                          f"{abs_err:.1f}", f"{jitter_mm(pred):.2f}",
                          f"{np.nanmean(acc_err) * 1000:.2f}")  # fmt: skip
    table.add_row("ground truth", "", "", "", "", "", f"{jitter_mm(gt):.2f}", "0")
    Console(width=140).print(table)


if __name__ == "__main__":
    main()
