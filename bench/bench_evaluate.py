"""Speed of the FreiHAND evaluation at the full test-set size.

3,960 samples x 21 keypoints and 778 vertices (random hands, predictions with ~8 mm noise):
reading the files, the metrics (aligned + unaligned + root-relative, PCK/AUC, F@5/F@15; the
F-scores also against the KD-tree search they replaced), the report, and the whole
``monohand evaluate`` command in a fresh process.

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
import orjson
from rich.console import Console
from rich.table import Table
from scipy.spatial import cKDTree

from monohand.evaluate import evaluate_arrays, procrustes_align
from monohand.evaluate.io import load_freihand_gt, load_prediction, save_prediction
from monohand.evaluate.metrics import fscores
from monohand.evaluate.report import write_report


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

    rows = []
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        (d / "gt").mkdir()
        (d / "gt" / "evaluation_xyz.json").write_text(json.dumps(xyz.tolist()))
        (d / "gt" / "evaluation_verts.json").write_text(json.dumps(verts.tolist()))
        save_prediction(d / "pred.json", xyz_p, verts_p)
        mb = sum(f.stat().st_size for f in d.rglob("*.json")) / 1e6

        t0 = time.perf_counter()
        load_freihand_gt(d / "gt")
        load_prediction(d / "pred.json")
        rows.append((f"read the JSON files ({mb:.0f} MB; simdjson)", time.perf_counter() - t0))
        t0 = time.perf_counter()
        for f in [d / "gt" / "evaluation_xyz.json", d / "gt" / "evaluation_verts.json",
                  d / "pred.json"]:  # fmt: skip
            np.asarray(orjson.loads(f.read_bytes()), dtype=object)
        rows.append(("  the same through orjson and Python lists", time.perf_counter() - t0))

        t0 = time.perf_counter()
        result = evaluate_arrays(xyz_p, xyz, verts_p, verts)
        rows.append(("metrics (evaluate_arrays)", time.perf_counter() - t0))
        t0 = time.perf_counter()
        for p in (verts_p, procrustes_align(verts_p, verts)):
            fscores(p, verts)
        rows.append(("  of which F@5/F@15, aligned + unaligned", time.perf_counter() - t0))
        t0 = time.perf_counter()
        for p in (verts_p, procrustes_align(verts_p, verts)):
            _kdtree_nearest(p, verts)
        rows.append(("  the same by one KD-tree (before)", time.perf_counter() - t0))
        t0 = time.perf_counter()
        write_report(result, d / "report")
        rows.append(("report (metrics.json, CSV, pck.png)", time.perf_counter() - t0))

        t0 = time.perf_counter()
        cmd = [sys.executable, "-m", "monohand", "evaluate", str(d / "pred.json"), str(d / "gt")]
        subprocess.run([*cmd, "--out", str(d / "out")], check=True, capture_output=True)
        rows.append(("monohand evaluate, end to end (a fresh process)", time.perf_counter() - t0))

    table = Table(title=f"FreiHAND evaluation, {n} samples x (21 joints, 778 vertices), CPU")
    table.add_column("what")
    table.add_column("seconds", justify="right")
    for what, seconds in rows:
        table.add_row(what, f"{seconds:.2f}")
    Console().print(table)


def _kdtree_nearest(pred: np.ndarray, gt: np.ndarray) -> None:
    """Both directions' nearest neighbours as monohand found them before: one KD-tree over
    all samples, placed 10 m apart (the reference row of the table)."""
    off = np.zeros((len(gt), 1, 3))
    off[:, 0, 0] = 10.0 * np.arange(len(gt))
    g, p = (gt + off).reshape(-1, 3), (pred + off).reshape(-1, 3)
    for tree_of, query in ((g, p), (p, g)):
        tree = cKDTree(tree_of, balanced_tree=False, compact_nodes=False)
        tree.query(query, distance_upper_bound=0.01515, workers=-1)


if __name__ == "__main__":
    main()
