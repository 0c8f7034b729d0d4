"""Speed of the NIMBLE layer at NIMBLE's sizes (random arrays in its format, not its data):
14,970 vertices (5,990 skin), 25 joints, 30 pose / 20 shape / 10 texture components, texture
maps decoded at 1024² and at 256². Forward and forward+backward, float32, CPU (and CUDA).

    python bench/bench_nimble.py [--batches 1 64]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from monohand.models.nimble import NIMBLE


def nimble_sized_arrays(tex: int = 1024, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    n, n_bone, n_skin = 14970, 4000, 5990
    sw = rng.random((n, 25)).astype(np.float32) ** 8
    sw /= sw.sum(1, keepdims=True)
    a = {
        "vert": rng.normal(scale=0.03, size=(n, 3)),
        "all_sw": sw,
        "all_pbs": rng.normal(scale=1e-4, size=(n, 3, 171)).astype(np.float32),
        "jreg_bone": np.full((25, n_bone), 1 / n_bone),
        "jreg_mano": np.full((21, n_skin), 1 / n_skin),
        "shape_basis": rng.normal(scale=1e-4, size=(20, n * 3)).astype(np.float32),
        "shape_pm_std": np.ones(20),
        "shape_pm_mean": np.zeros(20),
        "pose_basis": rng.normal(scale=0.1, size=(30, 57)),
        "pose_mean": np.zeros(57),
        "pose_pm_std": np.ones(30),
        "pose_pm_mean": np.zeros(30),
        "bone_f": rng.integers(0, n_bone, size=(8000, 3)),
        "muscle_f": rng.integers(0, 4980, size=(9000, 3)),
        "skin_f": rng.integers(0, n_skin, size=(11000, 3)),
        "bone_v_sep": n_bone,
        "skin_v_sep": -n_skin,
        "skin_v_surface_mask": np.ones(n_skin, bool),
        "tex_size": tex,
        "lmk_faces_idx": rng.integers(0, 11000, size=(20, 778)),
        "lmk_bary_coords": np.full((20, 778, 3), 1 / 3),
    }
    for kind in ("diffuse", "normal", "spec"):
        a[f"tex_{kind}_basis"] = rng.normal(scale=0.02, size=(tex * tex * 3, 10)).astype(np.float32)
        a[f"tex_{kind}_mean"] = np.full(tex * tex * 3, 0.5, np.float32)
        a[f"tex_{kind}_std"] = np.ones(10)
    return a


def _time(fn, repeats: int) -> float:
    fn()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t0) / repeats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 64])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    arrays = nimble_sized_arrays()
    table = Table(title="NIMBLE layer at NIMBLE's sizes, float32, forward (+ backward)")
    for col in ("device", "batch", "texture", "forward ms", "fwd+bwd ms"):
        table.add_column(col, justify="right")
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    for device in devices:
        for tex_size in (1024, 256):
            model = NIMBLE(arrays, texture_size=tex_size).to(device)
            for b in args.batches:
                x = {
                    "hand_pose": torch.randn(b, 30, device=device, requires_grad=True),
                    "betas": torch.randn(b, 20, device=device, requires_grad=True),
                    "texture": torch.randn(b, 10, device=device, requires_grad=True),
                }

                def fwd(model=model, x=x):
                    with torch.no_grad():
                        model(**x)

                def fwd_bwd(model=model, x=x):
                    o = model(**x)
                    (o.vertices.square().sum() + o.texture_maps.mean()).backward()

                table.add_row(
                    str(device),
                    str(b),
                    f"{tex_size}²",
                    f"{_time(fwd, args.repeats) * 1e3:.0f}",
                    f"{_time(fwd_bwd, args.repeats) * 1e3:.0f}",
                )
    Console().print(table)


if __name__ == "__main__":
    main()
