"""Fitting on synthetic photos with exact 3D joints: accuracy of each fit setting, and speed.

python bench/bench_fit.py                       # 200 renders, default fit vs MediaPipe world
python bench/bench_fit.py --variants all        # every variant of VARIANTS below
python bench/bench_fit.py --hybrid all          # + the shipped network and HYBRID's variants

The calibration set for the fit's settings: OpenHand rendered in FreiHAND's layout
(``data.synthetic``, frontal views, 256², a separate seed), so the fit's choices are made on
data with exact labels and never on ``../shared/data/realhands`` (evaluation only). MediaPipe's
detections (with the reconstructor's augmentations) are computed once and cached; each variant
then fits every found hand in batches, without the appearance stage (it does not move the
joints). The hybrid's variants start from the shipped network's prediction for MediaPipe's
crop of each hand (``hybrid.network_start``). "worse than MediaPipe" is the share of hands
whose PA-MPJPE is above that of MediaPipe's own world landmarks; ``--out``/<set>/per_image.csv
has each hand's errors and whether each setting ends further from the truth than MediaPipe.
Speed is timed separately, one hand at a time as ``monohand reconstruct`` does, with the
appearance stage.
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

from monohand.data.detection import HandDetection
from monohand.data.freihand import read_freihand
from monohand.data.images import read_rgb
from monohand.data.mediapipe_hands import MediaPipeHands
from monohand.data.synthetic import SynthConfig, generate
from monohand.evaluate.align import procrustes_align
from monohand.fit import FitConfig, FitInputs, fit_hands
from monohand.hybrid import NetworkPrediction, network_predict, network_start
from monohand.models.registry import load_models
from monohand.nets.handnet import load_network
from monohand.nets.heads import HeadOutput
from monohand.reconstruct import (
    ReconstructConfig,
    fit_inputs,
    hybrid_fit_config,
    reconstruct_image,
)

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
    "60 steps (30 with 3D)": {"iters": 60, "iters_3d": 30},
    "50 steps (25 with 3D)": {"iters": 50, "iters_3d": 25},
    "40 steps (20 with 3D)": {"iters": 40, "iters_3d": 20},
    "60 steps, lr 0.05": {"iters": 60, "iters_3d": 30, "lr": 0.05},
    "50 steps, lr 0.05": {"iters": 50, "iters_3d": 25, "lr": 0.05},
    "50 steps, lr 0.06": {"iters": 50, "iters_3d": 25, "lr": 0.06},
    "60 steps, lr 0.06": {"iters": 60, "iters_3d": 30, "lr": 0.06},
    "w_world 1": {"w_world": 1.0},
    "robust sigma 0.05": {"robust_sigma": 0.05},
    "robust sigma 0.2": {"robust_sigma": 0.2},
    "w_shape 1e-2": {"w_shape": 1e-2},
    "w_limits 0.1": {"w_limits": 0.1},
    "one start (PnP on MediaPipe's 3D only)": {"two_starts": False},
    "no 3D start steps": {"iters_3d": 0},
    "120 steps": {"iters": 120},
    "200 steps": {"iters": 200},
    "no silhouette stage (as until 2026-12-05)": {"silhouette_iters": 0},
    "palm hand size": {"hand_size": "palm"},
}

# name -> (FitConfig overrides, network_start options) of the hybrid, each over the shipped
# hybrid_fit_config(); rows named before 2026-12-05 were measured over 40 steps and no
# silhouette stage (the last row gives that base), so their numbers in docs/RESULTS.md are not
# what they give today. VARIANTS above are over FitConfig(), which has the silhouette stage
# since that day.
HYBRID: dict[str, tuple[dict, dict]] = {
    "hybrid": ({}, {}),
    "hybrid, no prior": ({}, {"prior": False}),
    "hybrid, w_prior_pose 1": ({"w_prior_pose": 1.0}, {}),
    "hybrid, w_prior_pose 10": ({"w_prior_pose": 10.0}, {}),
    "hybrid, w_prior_shape 1": ({"w_prior_shape": 1.0}, {}),
    "hybrid, no world term": ({"w_world": 0.0}, {}),
    "hybrid, priors 10 / 1, w_world 0.25, 20 steps, lr 0.02": (
        {"w_prior_pose": 10.0, "w_prior_shape": 1.0, "w_world": 0.25, "iters": 20, "lr": 0.02},
        {}),
    "hybrid, priors 10 / 1, w_world 0.25, 40 steps, lr 0.02": (
        {"w_prior_pose": 10.0, "w_prior_shape": 1.0, "w_world": 0.25, "iters": 40, "lr": 0.02},
        {}),
    "hybrid, priors 10 / 1, 40 steps, lr 0.02": (
        {"w_prior_pose": 10.0, "w_prior_shape": 1.0, "iters": 40, "lr": 0.02}, {}),
    "hybrid, priors 10 / 10, 40 steps, lr 0.02": (
        {"w_prior_pose": 10.0, "w_prior_shape": 10.0, "iters": 40, "lr": 0.02}, {}),
    "hybrid, priors 30 / 1, w_world 0.25, 40 steps, lr 0.02": (
        {"w_prior_pose": 30.0, "w_prior_shape": 1.0, "w_world": 0.25, "iters": 40, "lr": 0.02},
        {}),
    "hybrid, w_world 0.25": ({"w_world": 0.25}, {}),
    "hybrid + both PnP starts": ({}, {"pnp_start": True}),
    "hybrid, 40 steps": ({"iters": 40}, {}),
    "hybrid, 40 steps, lr 0.02": ({"iters": 40, "lr": 0.02}, {}),
    "hybrid, lr 0.02": ({"lr": 0.02}, {}),
    "hybrid, w_prior_pose 3": ({"w_prior_pose": 3.0}, {}),
    "hybrid, w_prior_pose 30": ({"w_prior_pose": 30.0}, {}),
    "hybrid, w_prior_pose 10, w_world 0.25": ({"w_prior_pose": 10.0, "w_world": 0.25}, {}),
    "hybrid, w_prior_pose 10, 40 steps": ({"w_prior_pose": 10.0, "iters": 40}, {}),
    "hybrid, w_prior_pose 10, 40 steps, lr 0.02": (
        {"w_prior_pose": 10.0, "iters": 40, "lr": 0.02}, {}),
    "hybrid, w_prior_pose 10, 20 steps, lr 0.02": (
        {"w_prior_pose": 10.0, "iters": 20, "lr": 0.02}, {}),
    "hybrid, w_prior_pose 10, + PnP starts": ({"w_prior_pose": 10.0}, {"pnp_start": True}),
    "hybrid, w_prior_pose 10, w_prior_shape 1": (
        {"w_prior_pose": 10.0, "w_prior_shape": 1.0}, {}),
    "hybrid, w_prior_pose 10, robust sigma 0.05": (
        {"w_prior_pose": 10.0, "robust_sigma": 0.05}, {}),
    # "hybrid" itself (w_world 1, w_prior_pose 3, robust sigma 0.2, 40 steps, then) was chosen on
    # real photos on 2026-12-05 (bench/bench_real_val.py); the renders' own choice before it:
    "hybrid, the renders' choice (priors 10 / 1, w_world 0.25, 20 steps)": (
        {"w_prior_pose": 10.0, "w_world": 0.25, "iters": 20, "robust_sigma": 0.1,
         "silhouette_iters": 0}, {}),
    # the silhouette stage came on 2026-12-05 (chosen on the real validation frames too)
    "hybrid, no silhouette stage (40 steps, as until 2026-12-05)": (
        {"iters": 40, "silhouette_iters": 0}, {}),
    "hybrid, palm hand size": ({"hand_size": "palm"}, {}),
}


def dataset(root: Path, num: int, size: int, seed: int, style: str = "v1"):
    if not (root / "synth_config.json").is_file():
        cfg = SynthConfig(num=num, size=size, seed=seed, eval_fraction=0.0, occluder_prob=0.1,
                          style=style)  # fmt: skip
        generate(root, cfg, overwrite=True)
    return read_freihand(root, "training")


def nearest_hand(hands: list[HandDetection], xyz: np.ndarray, K: np.ndarray):
    """The detection whose keypoints lie nearest the true joints xyz (21, 3) seen through K,
    or None: no detection, or the nearest more than half a hand size off (another hand, a
    background false positive)."""
    uv = xyz @ K.T
    uv = uv[:, :2] / uv[:, 2:]
    if not hands:
        return None
    h = min(hands, key=lambda h: np.linalg.norm(h.keypoints - uv, axis=1).mean())
    return h if np.linalg.norm(h.keypoints - uv, axis=1).mean() <= 0.5 * h.size else None


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
            h = nearest_hand(hands, index.xyz[i], index.K[i])
            if h is None:
                continue
            found[i], kp[i], conf[i], world[i] = True, h.keypoints, h.confidence, h.world
    out = {"found": found, "keypoints": kp, "confidence": conf, "world": world}
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, **out)
    return out


def pa_mm(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(N,) PA-MPJPE in mm."""
    return 1000 * np.linalg.norm(procrustes_align(pred, gt) - gt, axis=-1).mean(-1)


def fit_all(model, index, det, cfg: FitConfig, batch: int, pred=None, net=None,
            start: dict | None = None) -> np.ndarray:  # fmt: skip
    """Joints (N, 21, 3) of the fit of every found hand; from the network's prediction
    ``pred`` (one row per found hand) when given."""
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
        if cfg.silhouette_iters > 0:  # the silhouette stage needs each hand's crop and mask
            inputs = with_masks(inputs, index, det, sel)
        rows = list(range(s, s + len(sel)))
        init = None if pred is None else network_start(model, net.hand, pred, rows, **start)
        res = fit_hands(model, inputs, cfg, init)
        joints[s : s + len(sel)] = res.output.joints.numpy()
    return joints


def with_masks(inputs: FitInputs, index, det, sel: np.ndarray) -> FitInputs:
    """``inputs`` with each hand's crop, crop camera and mask, as ``monohand reconstruct``
    makes them (``methods.fit_inputs``)."""
    crop_size = ReconstructConfig().crop_size
    per = []
    for i in sel:
        d = HandDetection(det["keypoints"][i], det["confidence"][i], 1.0, "right", det["world"][i])
        per.append(fit_inputs(read_rgb(index.image_path(i)), index.K[i], [d], crop_size, True))
    parts = {k: torch.cat([getattr(x, k) for x in per])
             for k in ("crop", "crop_K", "mask", "mask_weight")}  # fmt: skip
    return dataclasses.replace(inputs, **parts)


def predict_all(index, det, net, size: int) -> NetworkPrediction:
    """The network's prediction for MediaPipe's crop of every found hand, one row each."""
    preds = []
    for i in track(np.flatnonzero(det["found"]), description="network"):
        d = HandDetection(det["keypoints"][i], det["confidence"][i], 1.0, "right", det["world"][i])
        preds.append(network_predict(read_rgb(index.image_path(i)), index.K[i], [d], net, size))
    params = HeadOutput(**{k: torch.cat([getattr(p.params, k) for p in preds])
                           for k in ("global_orient", "hand_pose", "betas", "texture", "light",
                                     "transl")})  # fmt: skip
    return NetworkPrediction(params, None, [c for p in preds for c in p.crops],
                             np.concatenate([p.joints for p in preds]),
                             np.concatenate([p.vertices for p in preds]),
                             np.concatenate([p.evaluation_vertices for p in preds]))  # fmt: skip


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
    ap.add_argument("--style", default="v1", help="the generator's style: v1 or v2 (see data)")
    ap.add_argument("--variants", default="default", help="semicolon list of VARIANTS, or all")
    ap.add_argument("--hybrid", default="", help="semicolon list of HYBRID, or all")
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--average", action="store_true", help="detector's view-averaged landmarks")
    ap.add_argument("--time", type=int, default=10, help="hands timed one by one (0: none)")
    args = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    console = Console(width=140)
    style = "" if args.style == "v1" else f"-{args.style}"
    work = args.out / f"n{args.num}-s{args.size}-seed{args.seed}{style}"  # one cache per set
    index = dataset(work / "data", args.num, args.size, args.seed, args.style)
    # Named by the detector's settings (the bordered retry came later: its own cache).
    pad = inspect.signature(MediaPipeHands).parameters["retry_pad"].default
    name = f"detections{'_average' if args.average else ''}_pad{pad:g}.npz"
    det = detections(index, work / name, args.average)
    ids = np.flatnonzero(det["found"])
    gt = index.xyz[ids]
    mp = pa_mm(det["world"][ids], gt)
    model = load_models("openhand")["right"]
    names = list(VARIANTS) if args.variants == "all" else [v for v in args.variants.split(";") if v]
    table = Table(title=f"fit on {len(ids)}/{index.num_samples} synthetic hands found")
    columns = ("setting", "PA-MPJPE mm", "median", "90th pct", "root-rel. MPJPE mm",
               "worse than MediaPipe", "s/hand")  # fmt: skip
    for c in columns:
        table.add_column(c, justify="left" if c == "setting" else "right")
    table.add_row("MediaPipe world", f"{mp.mean():.2f}", f"{np.median(mp):.2f}",
                  f"{np.percentile(mp, 90):.2f}", "", "", "")  # fmt: skip

    per_image = {"image": ids, "MediaPipe world": mp}  # PA-MPJPE mm per found hand

    def add_row(name: str, pred: np.ndarray, seconds: str) -> None:
        e = pa_mm(pred, gt)
        per_image[name] = e
        rr = 1000 * np.linalg.norm((pred - pred[:, :1]) - (gt - gt[:, :1]), axis=-1).mean()
        stats = (f"{e.mean():.2f}", f"{np.median(e):.2f}", f"{np.percentile(e, 90):.2f}")
        table.add_row(name, *stats, f"{rr:.1f}", f"{100 * np.mean(e > mp):.0f}%", seconds)

    for name in names:
        cfg = dataclasses.replace(FitConfig(), **VARIANTS[name], photo_iters=0)
        t0 = time.perf_counter()
        pred = fit_all(model, index, det, cfg, args.batch)
        add_row(name, pred, f"{(time.perf_counter() - t0) / len(ids):.3f} (batched)")
    hybrid = list(HYBRID) if args.hybrid == "all" else [h for h in args.hybrid.split(";") if h]
    if hybrid:
        net, size = load_network()
        t0 = time.perf_counter()
        npred = predict_all(index, det, net, size)
        add_row("shipped network alone", npred.joints,
                f"{(time.perf_counter() - t0) / len(ids):.3f} (with crops)")
        for name in hybrid:
            over, start = HYBRID[name]
            cfg = dataclasses.replace(hybrid_fit_config(), **over, photo_iters=0)
            t0 = time.perf_counter()
            pred = fit_all(model, index, det, cfg, args.batch, npred, net, start)
            add_row(name, pred, f"{(time.perf_counter() - t0) / len(ids):.3f} (batched)")
    if args.time:
        table.add_row("default, one by one, appearance", "", "", "", "", "",
                      f"{time_one_by_one(index, det, args.time):.3f}")  # fmt: skip
    console.print(table)
    csv_path = work / f"per_image{'_average' if args.average else ''}.csv"
    write_per_image(csv_path, per_image)
    console.print(f"per image (PA-MPJPE mm of each setting, and whether it is further from "
                  f"the truth than MediaPipe's world landmarks): {csv_path}")


def write_per_image(path: Path, columns: dict[str, np.ndarray]) -> None:
    """One row per found hand: its image, MediaPipe's PA-MPJPE (mm), then per setting its
    PA-MPJPE and ``worse: <setting>`` (1 where it is above MediaPipe's)."""
    import csv

    from monohand.atomic import atomic_write

    mp = columns["MediaPipe world"]
    settings = [k for k in columns if k not in ("image", "MediaPipe world")]
    header = ["image", "MediaPipe world"] + [c for k in settings for c in (k, f"worse: {k}")]

    def write(tmp: Path) -> None:
        with tmp.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(header)
            for r in range(len(mp)):
                row = [int(columns["image"][r]), f"{mp[r]:.3f}"]
                for k in settings:
                    row += [f"{columns[k][r]:.3f}", int(columns[k][r] > mp[r])]
                w.writerow(row)

    atomic_write(path, write)


if __name__ == "__main__":
    main()
