"""Speed of the encoders and of the whole network, CPU float32 (and CUDA when present).

Rows: each encoder (ResNet-18/50 from scratch, EfficientNet-Lite0 with ImageNet weights,
MediaPipe's hand-landmark network) at its input size, contiguous and channels_last, in
inference (batch 1 and ``--batch``) and training (forward+backward, ``--batch``; frozen
encoders are only run forward, so that row is the same as inference); and the shipped
network end to end on one hand (encoder, heads, hand model), which is what ``monohand
reconstruct --method network`` pays per hand after detection.

python bench/bench_nets.py [--batch 16] [--repeats 5]
"""

from __future__ import annotations

import argparse
import time

import torch
from rich.console import Console
from rich.table import Table

from monohand.nets.handnet import build_encoder, load_network


def _time(fn, repeats: int) -> float:
    """Median seconds of ``fn()`` after two warm-up calls."""
    fn()
    fn()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        ts.append(time.perf_counter() - t0)
    return sorted(ts)[len(ts) // 2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    console = Console()
    table = Table(title=f"Encoders, {torch.get_num_threads()} threads (ms per image)")
    for col in ("device", "encoder", "input", "layout", "infer b=1", f"infer b={args.batch}",
                f"train b={args.batch}"):  # fmt: skip
        table.add_column(col, justify="right")
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    encoders = (("resnet18", 224), ("resnet50", 224), ("efficientnet_lite0", 224),
                ("mediapipe", 224))  # fmt: skip
    for device in devices:
        for name, size in encoders:
            try:
                net, norm = build_encoder(name, pretrained=not name.startswith("resnet"))
            except ImportError as e:  # the weight package is a training extra
                console.print(f"[yellow]{name}: {e}[/yellow]")
                continue
            net = net.to(device)
            for layout in ("contiguous", "channels_last"):
                fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
                net = net.to(memory_format=fmt)
                x1 = torch.rand(1, 3, size, size, device=device).contiguous(memory_format=fmt)
                xb = torch.rand(args.batch, 3, size, size, device=device).contiguous(
                    memory_format=fmt
                )
                net.eval()
                with torch.inference_mode():
                    t1 = _time(lambda n=net, x=x1, f=norm: n.feature_map(f(x)), args.repeats)
                    tb = _time(lambda n=net, x=xb, f=norm: n.feature_map(f(x)), args.repeats)
                net.train()

                def step(n=net, x=xb, f=norm):
                    n.zero_grad(set_to_none=True)
                    n.feature_map(f(x)).mean().backward()

                tt = _time(step, max(args.repeats // 2, 2))
                table.add_row(str(device), name, f"{size}²", layout, f"{1e3 * t1:.1f}",
                              f"{1e3 * tb / args.batch:.1f}",
                              f"{1e3 * tt / args.batch:.1f}")  # fmt: skip
    console.print(table)
    try:
        net, size = load_network()
    except ValueError as e:
        console.print(f"[yellow]shipped network: {e}[/yellow]")
        return
    t = Table(title="The shipped network on one hand (ms)")
    for col in ("device", "layout", "encoder + heads + hand model"):
        t.add_column(col, justify="right")
    for device in devices:
        for layout in ("contiguous", "channels_last"):
            fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
            net = net.to(device).to(memory_format=fmt)
            x = torch.rand(1, 3, size, size, device=device).contiguous(memory_format=fmt)
            K = torch.tensor([[[300.0, 0, 111.5], [0, 300.0, 111.5], [0, 0, 1]]], device=device)
            with torch.inference_mode():
                ms = 1e3 * _time(lambda n=net, x=x, K=K: n(x, K), args.repeats * 4)
            t.add_row(str(device), layout, f"{ms:.1f}")
    console.print(t)


if __name__ == "__main__":
    main()
