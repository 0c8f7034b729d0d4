"""Speed of the MANO-layout layer: forward and forward+backward, float32, CPU (and CUDA).

Runs on a MANO-format model generated with MANO's sizes (778 vertices, 1538 faces, 16 joints,
10 shape and 135 pose-corrective components): the cost does not depend on the values.

    python bench/bench_lbs.py [--batches 1 64 1024] [--repeats 20]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import make_mano_arrays  # noqa: E402
from monohand.models.mano import mano_data_from_arrays  # noqa: E402
from monohand.models.skinned import SkinnedHand  # noqa: E402


def _time(fn, repeats: int, device: torch.device) -> float:
    """Median seconds of ``fn`` over ``repeats`` runs after warm-up."""
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 64, 1024])
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()

    data = mano_data_from_arrays(make_mano_arrays(0), "<generated MANO-format>")
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    threads = torch.get_num_threads()
    table = Table(title=f"MANO layer, float32, torch {torch.__version__}, {threads} CPU threads")
    for col in ("device", "batch", "forward ms", "fwd+bwd ms", "hands/s (fwd+bwd)"):
        table.add_column(col, justify="right")
    for device in devices:
        model = SkinnedHand(data).to(device)
        for b in args.batches:
            g = torch.Generator().manual_seed(0)
            x = {
                "global_orient": torch.randn(b, 3, generator=g),
                "hand_pose": torch.randn(b, 45, generator=g) * 0.5,
                "betas": torch.randn(b, 10, generator=g),
                "transl": torch.randn(b, 3, generator=g),
            }
            x = {k: v.to(device).requires_grad_() for k, v in x.items()}

            def fwd(model=model, x=x):
                with torch.no_grad():
                    model(**x)

            def fwd_bwd(model=model, x=x):
                o = model(**x)
                (o.vertices.square().sum() + o.joints.square().sum()).backward()

            t_f = _time(fwd, args.repeats, device)
            t_fb = _time(fwd_bwd, args.repeats, device)
            ms = (f"{t_f * 1e3:.2f}", f"{t_fb * 1e3:.2f}")
            table.add_row(str(device), str(b), *ms, f"{b / t_fb:,.0f}")
    Console().print(table)


if __name__ == "__main__":
    main()
