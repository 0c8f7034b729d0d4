"""Does averaging the network over several crops of a hand help (test-time augmentation)?

Renders a fresh synthetic set (v2 style, its own seed: hands the shipped network never saw),
finds each hand with MediaPipe (no augmented copies, as ``--method network`` does), and runs
the shipped network on MediaPipe's crop and on crops scaled, turned and shifted from it; the
joints, mapped back to the photo's camera frame, are averaged over the views. Prints
PA-MPJPE (FreiHAND's aligned error) and root-relative error per set of views. Chosen on
renders only, never on ``../shared/data/realhands``.

    python bench/bench_network_views.py [--num 400] [--root out/data/v2val]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import track
from rich.table import Table

from monohand.data.crops import hand_crop, mediapipe_roi
from monohand.data.freihand import read_freihand
from monohand.data.images import read_rgb
from monohand.data.mediapipe_hands import MediaPipeHands
from monohand.data.synthetic import SynthConfig, generate
from monohand.evaluate.align import procrustes_align
from monohand.hybrid import network_on_crops
from monohand.nets.handnet import load_network

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_fit import nearest_hand  # noqa: E402

# (scale of the crop's side, turn in degrees, shift along the crop's x and y in sides)
VIEWS = ((1.0, 0, 0, 0), (0.9, 0, 0, 0), (1.1, 0, 0, 0), (1.0, 8, 0, 0), (1.0, -8, 0, 0),
         (1.0, 0, 0.04, 0), (1.0, 0, -0.04, 0), (1.0, 0, 0, 0.04), (1.0, 0, 0, -0.04))  # fmt: skip
SETS = {"MediaPipe's crop alone": [0], "+ 2 scales": [0, 1, 2], "+ 2 turns": [0, 3, 4],
        "+ 2 scales, 2 turns": [0, 1, 2, 3, 4], "+ 4 shifts": [0, 5, 6, 7, 8],
        "all 9": list(range(9))}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=Path("out/data/v2val"))
    ap.add_argument("--num", type=int, default=400)
    ap.add_argument("--seed", type=int, default=99)
    args = ap.parse_args()
    record = args.root / "synth_config.json"
    if not record.is_file():
        generate(args.root, SynthConfig(num=args.num, size=256, seed=args.seed, eval_fraction=0.0,
                                        fill=(0.4, 0.7), style="v2"), overwrite=True)  # fmt: skip
    made = json.loads(record.read_text())
    if (made.get("seed"), made.get("num"), made.get("style")) != (args.seed, args.num, "v2"):
        raise SystemExit(f"{args.root} holds another set ({record}): give a new --root")
    index = read_freihand(args.root, "training")
    net, size = load_network()
    joints, truth = [], []
    with MediaPipeHands(max_hands=2, tta=()) as mp:
        for i in track(range(index.num_samples), description="views"):
            image = read_rgb(index.image_path(i))
            h = nearest_hand(mp.detect(image), index.xyz[i], index.K[i])
            if h is None:
                continue
            centre, side, R2 = mediapipe_roi(h.keypoints)
            crops = []
            for s, deg, dx, dy in VIEWS:
                a = np.deg2rad(deg)
                turn = np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])
                roi = (centre + (np.array([dx, dy]) @ R2) * side, side * s, turn @ R2)
                crops.append(hand_crop(image, index.K[i], h.keypoints, size, roi=roi))
            joints.append(network_on_crops(net, crops).joints)
            truth.append(index.xyz[i])
    J, gt = np.array(joints), np.array(truth)
    table = Table(title=f"the shipped network on the {len(J)} of {index.num_samples} fresh "
                        "renders where MediaPipe found the hand")  # fmt: skip
    for col in ("views", "PA-MPJPE mm", "median", "root-rel. mm"):
        table.add_column(col, justify="right")
    for name, sel in SETS.items():
        m = J[:, sel].mean(1)
        pa = 1000 * np.linalg.norm(procrustes_align(m, gt) - gt, axis=-1).mean(-1)
        rr = 1000 * np.linalg.norm((m - m[:, :1]) - (gt - gt[:, :1]), axis=-1).mean(-1)
        table.add_row(name, f"{pa.mean():.2f}", f"{np.median(pa):.2f}", f"{rr.mean():.1f}")
    Console().print(table)


if __name__ == "__main__":
    main()
