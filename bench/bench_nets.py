"""Speed of the ResNet encoders, forward+backward, float32, CPU (and CUDA).

python bench/bench_nets.py [--batch 16] [--sizes 128 224]
"""

from __future__ import annotations

import argparse
import time

import torch
from rich.console import Console
from rich.table import Table

from monohand.nets import resnet


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--sizes", type=int, nargs="+", default=[128, 224])
    ap.add_argument("--depths", type=int, nargs="+", default=[18, 50])
    args = ap.parse_args()
    table = Table(title=f"ResNet forward+backward, batch {args.batch}")
    for col in ("device", "depth", "size", "images/s"):
        table.add_column(col, justify="right")
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    for device in devices:
        for depth in args.depths:
            net = resnet(depth).to(device)
            for s in args.sizes:
                x = torch.randn(args.batch, 3, s, s, device=device)
                net(x).sum().backward()
                t0 = time.perf_counter()
                for _ in range(3):
                    net(x).sum().backward()
                if device.type == "cuda":
                    torch.cuda.synchronize()
                dt = (time.perf_counter() - t0) / 3
                table.add_row(str(device), str(depth), f"{s}²", f"{args.batch / dt:.1f}")
    Console().print(table)


if __name__ == "__main__":
    main()
