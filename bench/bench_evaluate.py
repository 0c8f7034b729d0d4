"""Speed of the FreiHAND evaluation at the full test-set size.

3,960 samples x 21 keypoints and 778 vertices (random hands, predictions with ~8 mm noise):
the metrics alone (aligned + unaligned + root-relative, PCK/AUC, F@5/F@15), and the whole
``monohand evaluate`` command with its JSON files.

    python bench/bench_evaluate.py [--samples 3960]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from monohand.evaluate import evaluate_arrays
from monohand.evaluate.io import save_prediction


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=3960)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    n = args.samples
    xyz = rng.normal(scale=0.04, size=(n, 21, 3)) + [0, 0, 0.6]
    verts = rng.normal(scale=0.04, size=(n, 778, 3)) + [0, 0, 0.6]
    xyz_p = xyz + rng.normal(scale=0.008, size=xyz.shape)
    verts_p = verts + rng.normal(scale=0.008, size=verts.shape)

    t0 = time.perf_counter()
    evaluate_arrays(xyz_p, xyz, verts_p, verts)
    t_metrics = time.perf_counter() - t0

    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        (d / "gt").mkdir()
        (d / "gt" / "evaluation_xyz.json").write_text(json.dumps(xyz.tolist()))
        (d / "gt" / "evaluation_verts.json").write_text(json.dumps(verts.tolist()))
        save_prediction(d / "pred.json", xyz_p, verts_p)
        t0 = time.perf_counter()
        cmd = [sys.executable, "-m", "monohand", "evaluate", str(d / "pred.json"), str(d / "gt")]
        subprocess.run([*cmd, "--out", str(d / "out")], check=True, capture_output=True)
        t_cli = time.perf_counter() - t0

    table = Table(title=f"FreiHAND evaluation, {n} samples x (21 joints, 778 vertices), CPU")
    table.add_column("what")
    table.add_column("seconds", justify="right")
    table.add_row("metrics (evaluate_arrays)", f"{t_metrics:.2f}")
    table.add_row("monohand evaluate (JSON in, report out)", f"{t_cli:.2f}")
    Console().print(table)


if __name__ == "__main__":
    main()
