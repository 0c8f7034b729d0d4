"""Throughput of the synthetic generator (224x224, FreiHAND layout, JPEG files written).

python bench/bench_synth.py [--num 400] [--workers 1 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from monohand.data.synthetic import SynthConfig, generate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--num", type=int, default=400)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    table = Table(title=f"monohand synth, {args.num} images of 224x224, CPU")
    for col in ("workers", "seconds", "images/s"):
        table.add_column(col, justify="right")
    for w in args.workers:
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            generate(Path(d) / "set", SynthConfig(num=args.num, workers=w))
            dt = time.perf_counter() - t0
        table.add_row(str(w), f"{dt:.1f}", f"{args.num / dt:.1f}")
    Console().print(table)


if __name__ == "__main__":
    main()
