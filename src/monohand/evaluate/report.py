"""What an evaluation leaves behind: metrics.json, a per-sample CSV, a PCK plot, a table."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ..atomic import atomic_write
from ..plotting import pyplot
from .metrics import EvalResult


def _atomic_write(path: Path, data: bytes) -> None:
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


def write_report(result: EvalResult, out_dir: str | Path, sample_ids: list[int] | None = None,
                 inputs: dict | None = None) -> dict[str, Path]:  # fmt: skip
    """Write ``metrics.json``, ``per_sample.csv`` and ``pck.png`` into ``out_dir``.
    ``sample_ids``: each sample's index in the ground truth (a selection's; default 0..N-1),
    the CSV's ``sample`` column; ``inputs``: what was scored (files, split, selection),
    recorded in metrics.json under ``inputs``."""
    ids = list(range(result.num_samples)) if sample_ids is None else list(sample_ids)
    if len(ids) != result.num_samples:
        raise ValueError(f"sample_ids: {len(ids)} for {result.num_samples} samples")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "metrics": out / "metrics.json",
        "per_sample": out / "per_sample.csv",
        "pck": out / "pck.png",
    }
    doc = {**({"inputs": inputs} if inputs else {}), **result.to_json()}
    _atomic_write(paths["metrics"], json.dumps(doc, indent=2).encode())

    buf = io.StringIO()
    names = sorted(result.per_sample)
    w = csv.writer(buf)
    w.writerow(["sample", *names])
    for i, sample in enumerate(ids):
        w.writerow([sample, *(f"{result.per_sample[n][i]:.6f}" for n in names)])
    _atomic_write(paths["per_sample"], buf.getvalue().encode())

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.2), dpi=110)
    t_mm = result.thresholds * 1000
    for key, curve in sorted(result.curves.items()):
        what, variant = key.split("_", 1)
        if variant == "root_relative":
            continue
        ax.plot(
            t_mm,
            curve,
            ls="-" if variant == "aligned" else "--",
            color="tab:blue" if what == "joints" else "tab:orange",
            label=f"{what}, {variant} (AUC {_auc(result, what, variant):.3f})",
        )
    ax.set_xlabel("threshold (mm)")
    ax.set_ylabel("PCK")
    ax.set_ylim(0, 1)
    ax.set_xlim(0, 50)
    ax.grid(alpha=0.3)
    ax.legend(loc="best")  # (lower right hid a low unaligned curve)
    ax.set_title(f"3D PCK, {result.num_samples} samples")
    fig.tight_layout()
    try:
        atomic_write(paths["pck"], lambda tmp: fig.savefig(tmp, format="png"))
    finally:
        plt.close(fig)
    return paths


def _auc(result: EvalResult, what: str, variant: str) -> float:
    """The AUC (0-50 mm) of one curve of ``result``: its joints' or vertices', one variant."""
    metrics = getattr(result, variant)
    return metrics.auc_j if what == "joints" else metrics.auc_v


def print_table(result: EvalResult, console: Console | None = None) -> None:
    """The seed's table: AUC_J MPJPE AUC_V MPVPE F5 F15, errors in cm."""
    console = console or Console()
    table = Table(title=f"FreiHAND-style evaluation, {result.num_samples} samples (errors in cm)")
    for col in ("", "AUC_J ↑", "MPJPE ↓", "AUC_V ↑", "MPVPE ↓", "F5 ↑", "F15 ↑"):
        table.add_column(col, justify="right")

    def fmt(v, scale=1.0, digits=3):
        return "—" if v is None else f"{v * scale:.{digits}f}"

    for name in ("aligned", "unaligned", "root_relative"):
        m = getattr(result, name)
        table.add_row(name.replace("_", "-"), fmt(m.auc_j), fmt(m.mpjpe_mm, 0.1, 2), fmt(m.auc_v),
                      fmt(m.mpvpe_mm, 0.1, 2), fmt(m.f5), fmt(m.f15))  # fmt: skip
    console.print(table)
