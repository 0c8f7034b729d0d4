"""Choose the hybrid's fit weights on real photos that are not the evaluation set.

The real validation set: Ge et al.'s real-world test set (hand-graph-cnn, CVPR 2019; 583
256² crops of one subject, 3D joints in cm, the original frame's camera) has its frames
0-149 in ``../shared/data/realhands`` (the evaluation set). Frames from ``--first`` (200: a
gap of 50 frames after the evaluation's last, so that no validation frame is a near copy of
an evaluated one) to the end are written here in realhands' format, from a local mirror of
the repository (``fetch github:3d-hand-shape/hand-graph-cnn``: nothing is downloaded at run
time). Same subject, camera and session as the evaluation's frames: a gain measured here may
overstate the gain on other photos. Research licence (Snap Inc., non-commercial): the
written set stays under ``out/`` and is never shipped.

The conversion is checked against realhands' own copies of frames 0-149 (K, 2D and 3D
joints to 1e-6) when that file is at hand. Then every ``--set`` (``key=value,...`` of the
hybrid's ``FitConfig``; ``network`` for the network alone) is measured by the same code as
``monohand evaluate-real``, one after the other, and printed as a table.

    python bench/bench_real_val.py --repo /work/.mirror/3d-hand-shape+hand-graph-cnn/repo/.git \
        --set default "w_world=1,w_prior_pose=3" network [--every 2]
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import tarfile
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from monohand.atomic import atomic_write
from monohand.config import with_overrides
from monohand.evaluate.real import run_real_benchmark
from monohand.reconstruct import ReconstructConfig, hybrid_fit_config

SOURCE = "hand-graph-cnn real_world_testset (Ge et al. CVPR 2019)"
FOLDER = "data/real_world_testset"
LICENSE = "Snap Inc. non-commercial research license (repo LICENSE)"
CROP = 256  # the images are 256² crops of the 1280x720 frames, from params.mat's bbox


def _git(repo: Path, *args: str) -> bytes:
    """Standard output of ``git --git-dir repo args``; a failure names the repository."""
    run = subprocess.run(["git", "--git-dir", str(repo), *args], capture_output=True)
    if run.returncode != 0:
        raise SystemExit(f"{repo}: git {' '.join(args)} failed (is it hand-graph-cnn's mirror, "
                         f"from fetch github:3d-hand-shape/hand-graph-cnn?): "
                         f"{run.stderr.decode(errors='replace').strip()}")  # fmt: skip
    return run.stdout


def ge_samples(repo: Path) -> list[dict]:
    """Every frame of the set in realhands' sample format (image named images/NNNNN.jpg)."""
    from scipy.io import loadmat

    params = loadmat(io.BytesIO(_git(repo, "show", f"HEAD:{FOLDER}/params.mat")))
    gt = loadmat(io.BytesIO(_git(repo, "show", f"HEAD:{FOLDER}/pose_gt.mat")))["pose_gt"]
    out = []
    for i, (name, (x, y, w, h), (fx, fy, u0, v0)) in enumerate(
        zip(params["image_path"], params["bbox"], params["cam_param"], strict=True)
    ):
        if w != h:
            raise ValueError(f"params.mat: frame {i}'s box is not square ({w}x{h})")
        s = CROP / float(w)
        K = np.array([[fx * s, 0, (u0 - x) * s], [0, fy * s, (v0 - y) * s], [0, 0, 1]])
        j3 = gt[i].astype(np.float64) / 100.0  # cm -> m, FreiHAND's joint order already
        uvw = j3 @ K.T
        out.append({"image": str(name).strip(), "K": K.tolist(), "joints3d": j3.tolist(),
                    "joints2d": (uvw[:, :2] / uvw[:, 2:]).tolist(), "hand": "left",
                    "source": SOURCE, "license": LICENSE})  # fmt: skip
    return out


def check_against(samples: list[dict], realhands: Path) -> int:
    """Compare the conversion with realhands' copies of the same frames; the number checked."""
    data = json.loads(realhands.read_text())
    theirs = {Path(s["image"]).name: s for s in data["samples"] if s.get("source") == SOURCE}
    n = 0
    for s in samples:
        t = theirs.get(Path(s["image"]).name)
        if t is None:
            continue
        for key in ("K", "joints3d", "joints2d"):
            d = np.abs(np.asarray(s[key]) - np.asarray(t[key])).max()
            tol = 1e-3 if key == "joints2d" else 1e-6  # pixels / metres
            if d > tol:
                raise ValueError(f"{s['image']}: {key} differs from realhands' by {d:g}")
        n += 1
    return n


def write_val_set(repo: Path, dest: Path, first: int, realhands: Path | None) -> Path:
    samples = ge_samples(repo)
    if realhands is not None and realhands.is_file():
        n = check_against(samples, realhands)
        Console().print(f"conversion matches realhands on its {n} frames of this set")
    keep = samples[first:]
    (dest / "images").mkdir(parents=True, exist_ok=True)
    tar = _git(repo, "archive", "HEAD", f"{FOLDER}/images")
    wanted = {s["image"] for s in keep}
    with tarfile.open(fileobj=io.BytesIO(tar)) as t:
        for m in t.getmembers():
            rel = m.name[len(FOLDER) + 1 :]
            if m.isfile() and rel in wanted:
                (dest / rel).write_bytes(t.extractfile(m).read())
    ann = dest / "annotations.json"
    atomic_write(ann, lambda t: t.write_text(json.dumps({"units": "metres", "samples": keep})))
    return ann


def parse_set(spec: str) -> tuple[str, ReconstructConfig]:
    """``network``, ``default`` (the hybrid as shipped) or ``key=value,...`` of its FitConfig."""
    if spec == "network":
        return spec, ReconstructConfig(method="network")
    fit = hybrid_fit_config()
    if spec != "default":
        fit = with_overrides(fit, spec.split(","))
    return spec, ReconstructConfig(method="hybrid", hybrid_fit=fit)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repo", type=Path, required=True, help="git dir of hand-graph-cnn's mirror")
    ap.add_argument("--out", type=Path, default=Path("out/real-val"))
    ap.add_argument("--first", type=int, default=200)
    ap.add_argument("--every", type=int, default=1)
    ap.add_argument(
        "--realhands", type=Path, default=Path("../shared/data/realhands/annotations.json")
    )
    ap.add_argument("--set", nargs="+", default=["default"], dest="sets")
    args = ap.parse_args()

    ann = write_val_set(args.repo, args.out / "data", args.first, args.realhands)
    table = Table(title=f"hybrid on Ge et al. frames {args.first}+ (every {args.every})")
    for col in ("setting", "found", "PA-MPJPE mm", "AUC_J", "root-rel. mm",
                "detector's 3D mm", "worse than detector", "s/image"):  # fmt: skip
        table.add_column(col, justify="right")
    for spec in args.sets:
        name, cfg = parse_set(spec)
        m = run_real_benchmark(ann, args.out / name.replace("=", "").replace(",", "_"),
                               every=args.every, config=cfg, worst=0, best=0)  # fmt: skip
        det = m["detector_3d"]
        table.add_row(name, f"{m['detected']}/{m['hands']}",
                      f"{m['aligned']['mpjpe_mm']:.2f}", f"{m['aligned']['auc_j']:.3f}",
                      f"{m['root_relative']['mpjpe_mm']:.1f}",
                      f"{det['aligned_mpjpe_mm']:.2f}", str(det["worse_than_detector"]),
                      f"{m['seconds_per_image']:.2f}")  # fmt: skip
        Console().print(table)


if __name__ == "__main__":
    main()
