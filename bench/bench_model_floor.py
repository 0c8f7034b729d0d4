"""How close can a hand model come to annotated 3D joints at all? (the floor under any fit)

python bench/bench_model_floor.py [--model openhand] [--steps 600]

Fits pose (the fit's own parametrisation), shape and orientation of the model straight to the
root-relative annotated joints of ``../shared/data/realhands`` (left hands mirrored; no prior
but the anatomical limits, lightly) and reports PA-MPJPE per joint: the error no detector can
remove, because the model's joint centres or proportions differ from the annotators'. A
measurement, not a fit of anything kept: the set is for evaluation only.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from monohand.evaluate.align import procrustes_align
from monohand.fit import PoseParams, _kabsch
from monohand.models.joints import FREIHAND_JOINT_NAMES
from monohand.models.registry import load_models

REALHANDS = Path(__file__).resolve().parents[2] / "shared" / "data" / "realhands"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="openhand")
    ap.add_argument("--model-path", default=None)
    ap.add_argument("--steps", type=int, default=600)
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
    go = torch.as_tensor(
        np.stack(
            [
                cv2.Rodrigues(_kabsch(j0[i] - j0[i, :1], gt[i] - gt[i, :1]))[0].ravel()
                for i in range(b)
            ]
        ),  # fmt: skip
        dtype=torch.float32,
    ).requires_grad_()
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
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
