"""Fitting on synthetic photos with exact 3D joints: accuracy of each fit setting, and speed.

python bench/bench_fit.py                       # 200 renders, default fit vs MediaPipe world
python bench/bench_fit.py --variants all        # every variant of VARIANTS below

The calibration set for the fit's settings: OpenHand rendered in FreiHAND's layout
(``data.synthetic``, frontal views, 256², a separate seed), so the fit's choices are made on
data with exact labels and never on ``../shared/data/realhands`` (evaluation only). MediaPipe's
detections (with the reconstructor's augmentations) are computed once and cached; each variant
then fits every found hand in batches, without the appearance stage (it does not move the
joints). Speed is timed separately, one hand at a time as ``monohand reconstruct`` does, with
the appearance stage.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.progress import track
from rich.table import Table

from monohand.data.freihand import read_freihand
from monohand.data.images import read_rgb
from monohand.data.keypoints import HandDetection, MediaPipeHands
from monohand.data.synthetic import SynthConfig, generate
from monohand.evaluate.align import procrustes_align
from monohand.fit import FitConfig, FitInputs, fit_hands
from monohand.models.registry import load_models
from monohand.reconstruct import ReconstructConfig, fit_inputs, reconstruct_image

# name -> FitConfig overrides
VARIANTS: dict[str, dict] = {
    "default": {},
    "before (camera frame, w_pca 1e-3, 120 steps)": {
        "world_frame": "camera",
        "w_pca": 1e-3,
        "iters": 120,
    },
    "world term in the camera frame": {"world_frame": "camera"},
    "w_pca 1e-3": {"w_pca": 1e-3},
    "w_pca 3e-2": {"w_pca": 3e-2},
    "w_world 0.25": {"w_world": 0.25},
    "w_world 1": {"w_world": 1.0},
    "robust sigma 0.05": {"robust_sigma": 0.05},
    "robust sigma 0.2": {"robust_sigma": 0.2},
    "w_shape 1e-2": {"w_shape": 1e-2},
    "w_limits 0.1": {"w_limits": 0.1},
    "one start (PnP on MediaPipe's 3D only)": {"two_starts": False},
    "no 3D start steps": {"iters_3d": 0},
    "120 steps": {"iters": 120},
    "200 steps": {"iters": 200},
}


def dataset(root: Path, num: int, size: int, seed: int):
    if not (root / "synth_config.json").is_file():
        cfg = SynthConfig(num=num, size=size, seed=seed, eval_fraction=0.0, occluder_prob=0.1)
        generate(root, cfg, overwrite=True)
    return read_freihand(root, "training")


def detections(index, cache: Path, average: bool) -> dict[str, np.ndarray]:
    """Per image: the detection nearest the true 2D joints (or none), cached in ``cache``."""
    if cache.is_file():
        return dict(np.load(cache))
    n = index.num_samples
    found = np.zeros(n, bool)
    kp, conf, world = np.zeros((n, 21, 2)), np.zeros((n, 21)), np.zeros((n, 21, 3))
    with MediaPipeHands(max_hands=2, average=average) as det:
        for i in track(range(n), description="MediaPipe"):
            hands = [h for h in det.detect(read_rgb(index.image_path(i))) if h.world is not None]
            if not hands:
                continue
            uv = index.xyz[i] @ index.K[i].T
            uv = uv[:, :2] / uv[:, 2:]
            h = min(hands, key=lambda h: np.linalg.norm(h.keypoints - uv, axis=1).mean())
            if np.linalg.norm(h.keypoints - uv, axis=1).mean() > 0.5 * h.size:
                continue  # a wrong hand (or a background false positive)
            found[i], kp[i], conf[i], world[i] = True, h.keypoints, h.confidence, h.world
    out = {"found": found, "keypoints": kp, "confidence": conf, "world": world}
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, **out)
    return out


def pa_mm(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(N,) PA-MPJPE in mm."""
    return 1000 * np.linalg.norm(procrustes_align(pred, gt) - gt, axis=-1).mean(-1)


def fit_all(model, index, det, cfg: FitConfig, batch: int) -> np.ndarray:
    ids = np.flatnonzero(det["found"])
    joints = np.zeros((len(ids), 21, 3))
    f32 = torch.float32
    for s in range(0, len(ids), batch):
        sel = ids[s : s + batch]
        inputs = FitInputs(
            keypoints=torch.as_tensor(det["keypoints"][sel], dtype=f32),
            confidence=torch.as_tensor(det["confidence"][sel], dtype=f32),
            K=torch.as_tensor(index.K[sel], dtype=f32),
            world=torch.as_tensor(det["world"][sel], dtype=f32),
        )
        res = fit_hands(model, inputs, cfg)
        joints[s : s + len(sel)] = res.output.joints.numpy()
    return joints


def time_one_by_one(index, det, n: int) -> float:
    """Seconds per hand of the reconstructor's fit (appearance stage included)."""
    rcfg = ReconstructConfig()
    models = load_models("openhand")
    ids = np.flatnonzero(det["found"])[:n]
    t = 0.0
    for i in ids:
        image = read_rgb(index.image_path(i))
        d = HandDetection(det["keypoints"][i], det["confidence"][i], 1.0, "right", det["world"][i])
        fit_inputs(image, index.K[i], [d], rcfg.crop_size)  # warm caches
        t0 = time.perf_counter()
        reconstruct_image(image, index.K[i], [d], models, rcfg)
        t += time.perf_counter() - t0
    return t / len(ids)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("out/bench-fit"))
    ap.add_argument("--num", type=int, default=200)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--seed", type=int, default=20261126)
    ap.add_argument("--variants", default="default", help="comma list of VARIANTS, or all")
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--average", action="store_true", help="detector's view-averaged landmarks")
    ap.add_argument("--time", type=int, default=10, help="hands timed one by one (0: none)")
    args = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    console = Console(width=140)
    work = args.out / f"n{args.num}-s{args.size}-seed{args.seed}"  # one cache per set
    index = dataset(work / "data", args.num, args.size, args.seed)
    # Named by the detector's settings (the bordered retry came later: its own cache).
    pad = inspect.signature(MediaPipeHands).parameters["retry_pad"].default
    name = f"detections{'_average' if args.average else ''}_pad{pad:g}.npz"
    det = detections(index, work / name, args.average)
    ids = np.flatnonzero(det["found"])
    gt = index.xyz[ids]
    mp = pa_mm(det["world"][ids], gt)
    model = load_models("openhand")["right"]
    names = list(VARIANTS) if args.variants == "all" else args.variants.split(",")
    table = Table(title=f"fit on {len(ids)}/{index.num_samples} synthetic hands found")
    for c in ("setting", "PA-MPJPE mm", "median", "90th pct", "root-rel. MPJPE mm", "s/hand"):
        table.add_column(c, justify="left" if c == "setting" else "right")
    table.add_row("MediaPipe world", f"{mp.mean():.2f}", f"{np.median(mp):.2f}",
                  f"{np.percentile(mp, 90):.2f}", "", "")  # fmt: skip
    for name in names:
        cfg = dataclasses.replace(FitConfig(), **VARIANTS[name], photo_iters=0)
        t0 = time.perf_counter()
        pred = fit_all(model, index, det, cfg, args.batch)
        dt = (time.perf_counter() - t0) / len(ids)
        e = pa_mm(pred, gt)
        rr = 1000 * np.linalg.norm((pred - pred[:, :1]) - (gt - gt[:, :1]), axis=-1).mean()
        stats = (f"{e.mean():.2f}", f"{np.median(e):.2f}", f"{np.percentile(e, 90):.2f}")
        table.add_row(name, *stats, f"{rr:.1f}", f"{dt:.3f} (batched)")
    if args.time:
        table.add_row("default, one by one, appearance", "", "", "", "",
                      f"{time_one_by_one(index, det, args.time):.2f}")  # fmt: skip
    console.print(table)


if __name__ == "__main__":
    main()
