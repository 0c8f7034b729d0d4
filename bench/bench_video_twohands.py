"""Touching hands in a video: each hand fitted alone (as videos were until 2026-12-06) against
the pair refined together in every frame (``monohand.twohands``, as in a photo).

python bench/bench_video_twohands.py [--seed 2026] [--clips 4] [--frames 30]
    [--out out/bench-video-twohands] [--seq NAME=VALUE (SequenceConfig)] [--together-only]

Each clip (``data.twohand_scenes.moving_pair``): a palms-together scene of
``bench/bench_twohands.py`` (the same seeds give the same pairs) turned back and forth by 25
degrees about the camera's vertical axis, so that each hand passes in front of the other, and
drifting sideways; rendered at 256². Its detections are simulated per frame from the truth
(2D keypoints with 2 px of noise, world landmarks with 5 mm; ``simulated_detections``), the
same draws for every row, and given to ``SequenceReconstructor.step`` (MediaPipe rarely finds
both of two rendered hands pressed together). The hybrid (the default), warm start and
smoothing on. Per frame: the relative depth error |(z_right - z_left) - truth| of the hands'
mean joint depths, how deep one mesh enters the other, PA-MPJPE (each hand aligned);
hands further than the detector's 3D: PA-MPJPE above that of the simulated world
landmarks; jitter: the mean joint acceleration per hand (mm/frame², the truth's own beside it);
frames/s: the reconstruction's calls alone (not the metrics). The last
row fits each frame as a photo (``reconstruct_image``: no track, no warm start, no smoothing)
for reference. About 6 minutes for the default on two cores; per frame numbers go to
``--out``/frames.json.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import track
from rich.table import Table

from monohand.atomic import atomic_write
from monohand.config import with_overrides
from monohand.data.twohand_scenes import (
    moving_pair,
    render_scene,
    simulated_detections,
    two_hand_scene,
)
from monohand.evaluate.align import procrustes_align
from monohand.evaluate.metrics import penetration_depth
from monohand.reconstruct import ReconstructConfig, Reconstructor
from monohand.video.clip import jitter_mm
from monohand.video.sequence import SequenceConfig, SequenceReconstructor


def clips(models, seed: int, num: int, frames: int):
    """Per clip: (its scenes, their rendered frames, their simulated detections)."""
    for c in range(num):
        scenes = moving_pair(two_hand_scene(models, seed + c), models, frames)
        rng = np.random.default_rng(seed + c)
        yield (scenes, [render_scene(s, models) for s in scenes],
               [simulated_detections(s, rng) for s in scenes])  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--clips", type=int, default=4)
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--out", type=Path, default=Path("out/bench-video-twohands"))
    ap.add_argument("--seq", action="append", default=[], metavar="NAME=VALUE",
                    help="a SequenceConfig setting for the 'together' row (repeatable)")
    ap.add_argument("--together-only", action="store_true",
                    help="only the video's 'together' row (for choosing)")
    args = ap.parse_args()
    seq_set = {f.name: getattr(with_overrides(SequenceConfig(), args.seq), f.name)
               for f in fields(SequenceConfig) if any(o.split("=")[0] == f.name
                                                      for o in args.seq)}  # fmt: skip
    together = "video, together" + (f" ({', '.join(args.seq)})" if args.seq else
                                     " (the default)")  # fmt: skip
    rows = {
        "video, each hand alone (until 2026-12-06)": ("video", {"together": False}, {}),
        together: ("video", {}, seq_set),
        "each frame as a photo, together": ("photo", {}, {}),
    }
    if args.together_only:
        rows = {together: rows[together]}
    # "worse": per frame with both hands, how many end further from the truth (PA-MPJPE)
    # than their simulated world landmarks, the detector's 3D
    res = {n: {"rel_depth": [], "pen": [], "pa": [], "worse": [], "jitter": [], "seconds": 0.0,
               "frames": 0} for n in rows}  # fmt: skip
    truth_jitter = []
    with Reconstructor(ReconstructConfig()) as rec:
        models = rec.models
        faces = [models[s].faces.numpy() for s in ("right", "left")]
        base = rec.cfg
        for scenes, images, dets in track(list(clips(models, args.seed, args.clips,
                                                     args.frames)), description="clips"):
            truth = np.stack([s.joints.double().numpy() for s in scenes])  # (N, 2, 21, 3)
            truth_jitter += [jitter_mm(truth[:, k]) for k in range(2)]
            for name, (kind, rc_set, seq_set) in rows.items():
                rec.cfg = replace(base, **rc_set)
                seq = SequenceReconstructor(rec, replace(SequenceConfig(), **seq_set), 30.0)
                pred = np.full(truth.shape, np.nan)
                r = res[name]
                for k, (image, scene, d) in enumerate(zip(images, scenes, dets, strict=True)):
                    t0 = time.perf_counter()
                    hands = (seq.step(image, scene.K, d).hands if kind == "video"
                             else rec.reconstruct(image, scene.K, d))  # fmt: skip
                    r["seconds"] += time.perf_counter() - t0
                    if [h.side for h in hands] != ["right", "left"]:
                        continue
                    j = np.stack([h.joints3d for h in hands]).astype(np.float64)
                    pred[k] = j
                    v = [h.vertices[None].astype(np.float64) for h in hands]
                    dz = truth[k, 0, :, 2].mean() - truth[k, 1, :, 2].mean()
                    r["rel_depth"].append(abs(j[0, :, 2].mean() - j[1, :, 2].mean() - dz))
                    r["pen"].append(penetration_depth(v[0], faces[0], v[1], faces[1])[0])
                    per_hand = np.linalg.norm(procrustes_align(j, truth[k]) - truth[k],
                                              axis=-1).mean(-1)  # fmt: skip
                    world = np.stack([x.world for x in d]).astype(np.float64)
                    cue = np.linalg.norm(procrustes_align(world, truth[k]) - truth[k],
                                         axis=-1).mean(-1)  # fmt: skip
                    r["pa"].append(per_hand.mean())
                    r["worse"].append(int((per_hand > cue).sum()))
                r["frames"] += len(images)
                r["jitter"] += [jitter_mm(pred[:, k]) for k in range(2)]
        rec.cfg = base
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write(args.out / "frames.json", lambda t: Path(t).write_text(json.dumps(
        {"seed": args.seed, "clips": args.clips, "frames": args.frames,
         "rows": {n: {k: np.asarray(v).round(6).tolist() for k, v in r.items()}
                  for n, r in res.items()}}, indent=1)))  # fmt: skip
    table = Table(title=f"{args.clips} clips of {args.frames} frames, touching hands turning "
                        "and drifting, 2D noise 2 px, world noise 5 mm; hybrid")  # fmt: skip
    for c in ("row", "frames with both", "rel. depth err. cm (mean / max)", "frames > 3 cm",
              "penetration mm (mean / max)", "frames > 5 mm", "PA-MPJPE mm",
              "hands further than the detector's 3D", "jitter mm/f²", "frames/s"):  # fmt: skip
        table.add_column(c, justify="left" if c == "row" else "right")
    for name, r in res.items():
        rd, pen = 100 * np.array(r["rel_depth"]), 1000 * np.array(r["pen"])
        table.add_row(name, f"{len(rd)}/{r['frames']}", f"{rd.mean():.2f} / {rd.max():.2f}",
                      str(int((rd > 3).sum())), f"{pen.mean():.2f} / {pen.max():.2f}",
                      str(int((pen > 5).sum())), f"{1000 * np.mean(r['pa']):.2f}",
                      f"{sum(r['worse'])} / {2 * len(rd)}",
                      f"{np.nanmean(r['jitter']):.2f}", f"{r['frames'] / r['seconds']:.2f}")
    table.add_row("truth", "", "", "", "", "", "", "", f"{np.mean(truth_jitter):.2f}", "")
    Console(width=170).print(table)


if __name__ == "__main__":
    main()
