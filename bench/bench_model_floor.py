"""How close can a hand model come to annotated 3D joints at all? (the floor under any fit)

python bench/bench_model_floor.py [--model openhand] [--steps 600]
python bench/bench_model_floor.py --compare out/real/per_image.csv [--start out/net/per_image.csv]

Fits pose (the fit's own parametrisation), shape and orientation of the model straight to the
root-relative annotated joints of ``../shared/data/realhands`` (left hands mirrored; no prior
but the anatomical limits, lightly) and reports PA-MPJPE per joint: the error no detector can
remove, because the model's joint centres or proportions differ from the annotators'. A
measurement, not a fit of anything kept: the set is for evaluation only.

``--compare``: the ``per_image.csv`` of ``monohand evaluate-real``; each hand whose
reconstruction ends further from the truth than the detector's own 3D is put down to the
model's floor (the model cannot come as close as the detector's landmarks: floor >= detector's
error), a bad detection (the detector's 3D more than 15 mm off), the start (``--start``: the
``per_image.csv`` of the network alone, the hybrid's start, was already further off than the
detector), or else the combination of cues and the optimiser. Both files must come from runs
over every image (``--every 1``): rows are matched by index.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from monohand.evaluate.align import procrustes_align
from monohand.fit import PoseParams
from monohand.geometry import kabsch, rotmat_to_axis_angle
from monohand.models.joints import FREIHAND_JOINT_NAMES
from monohand.models.registry import load_models

REALHANDS = Path(__file__).resolve().parents[2] / "shared" / "data" / "realhands"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="openhand")
    ap.add_argument("--model-path", default=None)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--compare", type=Path, default=None, help="evaluate-real's per_image.csv")
    ap.add_argument("--start", type=Path, default=None, help="per_image.csv of the start")
    args = ap.parse_args()
    ann = json.loads((REALHANDS / "annotations.json").read_text())
    samples = [s for s in ann["samples"] if s["joints3d"] is not None]
    gt = np.array([s["joints3d"] for s in samples])
    gt[[s["hand"] == "left" for s in samples], :, 0] *= -1  # mirrored to right hands
    target = torch.as_tensor(gt - gt[:, :1], dtype=torch.float32)
    model = load_models(args.model, args.model_path)["right"]
    b = len(gt)
    params = PoseParams(model, b, torch.float32)
    angles = params.init.clone()
    with torch.no_grad():
        j0 = model(hand_pose=params.hand_pose(angles)).joints.double().numpy()
    rot = kabsch(torch.as_tensor(j0 - j0[:, :1]), torch.as_tensor(gt - gt[:, :1]))
    go = rotmat_to_axis_angle(rot).float().requires_grad_()
    angles.requires_grad_()
    betas = torch.zeros(b, model.num_shape_params, requires_grad=True)
    opt = torch.optim.Adam([{"params": [angles, go], "lr": 0.02}, {"params": [betas], "lr": 0.05}])
    for _ in range(args.steps):
        opt.zero_grad()
        hand_pose = params.hand_pose(angles)
        j = model(global_orient=go, hand_pose=hand_pose, betas=betas).joints
        loss = ((j - j[:, :1] - target) ** 2).sum(-1).mean()
        prior = params.prior(angles, hand_pose).get("limits")
        (loss + (0.0 if prior is None else 1e-6 * prior.mean())).backward()
        opt.step()
    pred = (j - j[:, :1]).detach().double().numpy()
    t = target.double().numpy()
    e = 1000 * np.linalg.norm(procrustes_align(pred, t) - t, axis=-1)
    table = Table(title=f"{args.model} fitted to {b} annotated hands: PA-MPJPE {e.mean():.2f} mm")
    table.add_column("joint")
    table.add_column("mm", justify="right")
    for name, v in zip(FREIHAND_JOINT_NAMES, e.mean(0), strict=True):
        table.add_row(name, f"{v:.1f}")
    sources = np.array([s.get("source", "") for s in samples])
    for src in sorted(set(sources)):
        table.add_row(f"[dim]{src[:40]}[/dim]", f"{e[sources == src].mean():.2f}")
    table.add_row("largest |beta|", f"{betas.abs().max().item():.1f}")
    console = Console(width=120)
    console.print(table)
    if args.compare:
        compare(args.compare, e.mean(1), console, args.start)


def _rows(path: Path) -> dict[int, dict]:
    with path.open() as f:
        return {int(r["index"]): r for r in csv.DictReader(f)
                if r["detected"] == "1" and r["worse_than_detector"]}  # fmt: skip


def compare(path: Path, floor: np.ndarray, console: Console, start: Path | None = None) -> None:
    """Why hands end further from the truth than the detector's 3D (see the module doc)."""
    rows = _rows(path)
    if len(floor) != max(rows, default=-1) + 1 and max(rows, default=0) >= len(floor):
        raise SystemExit(f"{path}: more images than the annotated set: run with --every 1")
    starts = _rows(start) if start else {}
    names = ("model floor", "bad detection", "start already worse", "cues / optimiser")
    causes: dict[str, list[float]] = {n: [] for n in names}
    for k, r in rows.items():
        if r["worse_than_detector"] != "1":
            continue
        own, cue = float(r["pa_mpjpe_mm"]), float(r["detector_pa_mpjpe_mm"])
        first = float(starts[k]["pa_mpjpe_mm"]) if k in starts else -np.inf
        cause = ("model floor" if floor[k] >= cue else "bad detection" if cue > 15
                 else "start already worse" if first > cue else "cues / optimiser")  # fmt: skip
        causes[cause].append(own - cue)
    worse = sum(len(v) for v in causes.values())
    table = Table(title=f"{path}: {worse} of {len(rows)} hands further from the truth than the "
                        "detector's 3D")  # fmt: skip
    for c in ("cause", "hands", "mean excess mm"):
        table.add_column(c, justify="left" if c == "cause" else "right")
    for cause, v in causes.items():
        table.add_row(cause, str(len(v)), f"{np.mean(v):.2f}" if v else "")
    console.print(table)


if __name__ == "__main__":
    main()
