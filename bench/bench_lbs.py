"""Speed of the MANO-layout layer, forward and forward+backward, float32, beside smplx.

Runs on a MANO-format model generated with MANO's sizes (778 vertices, 1538 faces, 16 joints,
10 shape and 135 pose-corrective components): the cost does not depend on the values. When
smplx is installed (``pip install --no-deps smplx``: a benchmark dependency only), its MANO
layer runs on the same arrays in the same process, timed in alternating rounds so that both
see the same machine, and the table shows how far its vertices are from ours.

    python bench/bench_lbs.py [--batches 1 4 16 64 256 1024] [--repeats 30] [--device cpu]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import make_mano_arrays  # noqa: E402
from monohand.models.mano import mano_data_from_arrays  # noqa: E402
from monohand.models.skinned import SkinnedHand  # noqa: E402


def smplx_layer(arrays: dict[str, np.ndarray]):
    """smplx's MANO on the same arrays, or None when smplx is not installed."""
    try:
        import smplx
        from smplx.utils import Struct
    except ImportError:
        return None
    keys = ("v_template", "weights", "J_regressor", "shapedirs", "posedirs",
            "hands_components", "hands_mean", "kintree_table")  # fmt: skip
    data = Struct(f=arrays["f"].astype(np.int64), **{k: arrays[k] for k in keys})
    return smplx.MANO("<arrays>", data_struct=data, use_pca=False, flat_hand_mean=True,
                      is_rhand=True, num_betas=10)  # fmt: skip


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_alternating(fns: list, repeats: int, device: torch.device, rounds: int = 5) -> list:
    """Median seconds of each function, timed in ``rounds`` alternating rounds."""
    for fn in fns:
        for _ in range(3):
            fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(rounds):
        for fn, ts in zip(fns, times, strict=True):
            for _ in range(max(1, repeats // rounds)):
                _sync(device)
                t0 = time.perf_counter()
                fn()
                _sync(device)
                ts.append(time.perf_counter() - t0)
    return [float(np.median(ts)) for ts in times]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 4, 16, 64, 256, 1024])
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--model", choices=["mano", "openhand"], default="mano",
                    help="openhand: 1,528 vertices, no pose correctives, no smplx beside it")
    args = ap.parse_args()

    device = torch.device(args.device)
    arrays = make_mano_arrays(0)
    if args.model == "mano":
        ours = SkinnedHand(mano_data_from_arrays(arrays, "<generated MANO-format>")).to(device)
        theirs = smplx_layer(arrays)
    else:
        from monohand.models.openhand import OpenHand

        ours, theirs = OpenHand().to(device), None
    if theirs is not None:
        theirs = theirs.to(device)
    title = (f"{args.model} layer ({ours.num_vertices:,} vertices), float32, {device}, "
             f"torch {torch.__version__}")  # fmt: skip
    if device.type == "cpu":
        title += f", {torch.get_num_threads()} threads"
    table = Table(title=title)
    cols = ["batch", "mode", "monohand ms", "hands/s"]
    if theirs is not None:
        cols += ["smplx ms", "speed-up", "max |Δv| µm"]
    for col in cols:
        table.add_column(col, justify="right")

    for b in args.batches:
        g = torch.Generator().manual_seed(b)
        x = {
            "global_orient": torch.randn(b, 3, generator=g),
            "hand_pose": torch.randn(b, 45, generator=g) * 0.5,
            "betas": torch.randn(b, 10, generator=g),
            "transl": torch.randn(b, 3, generator=g) * 0.1,
        }
        x = {k: v.to(device).requires_grad_() for k, v in x.items()}
        layers = [ours] + ([theirs] if theirs is not None else [])
        diff = ""
        if theirs is not None:
            with torch.no_grad():
                d = (ours(**x).vertices - theirs(**x).vertices).abs().max().item()
            diff = f"{d * 1e6:.3f}"

        def fwd(layer, x=x):
            def run():
                with torch.no_grad():
                    layer(**x)

            return run

        def fwd_bwd(layer, x=x):
            def run():
                o = layer(**x)
                (o.vertices.square().sum() + o.joints.square().sum()).backward()

            return run

        for mode, make in (("fwd", fwd), ("fwd+bwd", fwd_bwd)):
            t = time_alternating([make(layer) for layer in layers], args.repeats, device)
            row = [str(b), mode, f"{t[0] * 1e3:.2f}", f"{b / t[0]:,.0f}"]
            if theirs is not None:
                row += [f"{t[1] * 1e3:.2f}", f"{t[1] / t[0]:.2f}x", diff]
            table.add_row(*row)
    Console().print(table)
    if theirs is None and args.model == "mano":
        Console().print("smplx is not installed: pip install --no-deps smplx to compare")


if __name__ == "__main__":
    main()
