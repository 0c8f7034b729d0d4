"""Hands MediaPipe's augmented copies find and the photo's own run does not
(``MediaPipeHands(more_from_views=...)``, ``ReconstructConfig.more_from_views``): hands found
and wrong detections on rendered two-hand scenes, single-hand renders and hand-free photos.

python bench/bench_two_hand_recall.py [--settings 0,1,2] [--scenes 60]
python bench/bench_two_hand_recall.py --settings 2,2s   (s: MediaPipeHands(one_per_side=True))

Two-hand scenes: ``data.twohand_scenes`` (a right hand and its mirror image, random view) with
the hands' nearest joints 1.6, 6 and 16 cm apart (``gap`` 0.008, 0.03, 0.08), seeds 7100 on,
256². Single-hand renders: ``bench/bench_detect.py``'s cached sets (v1 in both framings, v3;
made by that script if absent). Hand-free photos: scikit-image's samples without a hand. A
detection is a hand's when its keypoints lie within half that hand's size of the projected
truth on average, one to one (``evaluate.real.match_hands``); any other is wrong. The
detector runs as ``monohand reconstruct``'s does (four hands, the copies for the
confidences, the bordered retry), without the window search.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from rich.console import Console
from rich.progress import track
from rich.table import Table

from monohand.data.images import read_rgb
from monohand.data.mediapipe_hands import MediaPipeHands
from monohand.data.twohand_scenes import render_scene, two_hand_scene
from monohand.evaluate.real import match_hands
from monohand.models.registry import load_models
from monohand.render.camera import project

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_detect import HANDLESS, renders  # noqa: E402


def two_hand_sets(num: int):
    models = load_models("openhand")
    for gap in (0.008, 0.03, 0.08):
        items = []
        for s in range(num):
            scene = two_hand_scene(models, 7100 + s, gap=gap)
            K = torch.as_tensor(scene.K, dtype=torch.float32)[None].repeat(2, 1, 1)
            items.append((render_scene(scene, models), list(project(scene.joints, K).numpy())))
        yield f"two hands, {200 * gap:g} cm apart", items


def single_hand_sets(cache: Path):
    for fill, style, num, seed in (((0.55, 0.9), "v1", 150, 20261126),
                                   ((0.9, 1.4), "v1", 150, 20261126),
                                   ((0.55, 0.9), "v3", 400, 20261205)):  # fmt: skip
        root, gt = renders(fill, num, seed, cache, style)
        images = [read_rgb(root / "training" / "rgb" / f"{i:08d}.jpg") for i in range(len(gt))]
        yield f"one hand, {style}, fill {fill[0]}-{fill[1]}", list(zip(images, gt[:, None],
                                                                      strict=True))


def hand_free():
    from importlib import resources

    base = Path(str(resources.files("skimage") / "data"))
    yield "hand-free photos", [(np.asarray(Image.open(base / n).convert("RGB")), [])
                               for n in HANDLESS]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--settings", default="0,1,2",
                    help="more_from_views values, each with 's' for one_per_side (e.g. 2,2s)")
    ap.add_argument("--scenes", type=int, default=60, help="two-hand scenes per distance")
    ap.add_argument("--cache", type=Path, default=Path("out/bench-detect"))
    args = ap.parse_args()
    settings = [(int(x.rstrip("s")), x.endswith("s")) for x in args.settings.split(",")]
    table = Table(title="hands found / wrong detections, by more_from_views")
    table.add_column("set")
    table.add_column("images", justify="right")
    table.add_column("hands", justify="right")
    for k, side in settings:
        table.add_column(f"{k}{', one per side' if side else ''}: found / wrong",
                         justify="right")  # fmt: skip
    for sets in (two_hand_sets(args.scenes), single_hand_sets(args.cache), hand_free()):
        for name, items in sets:
            cells = []
            for k, side in settings:
                found = wrong = 0
                with MediaPipeHands(max_hands=4, more_from_views=k, one_per_side=side) as det:
                    for image, truth in track(items, f"{name}, {k}"):
                        hands = det.detect(image, windows=False)
                        hit = sum(m is not None for m in
                                  match_hands([h.keypoints for h in hands], list(truth)))
                        found, wrong = found + hit, wrong + len(hands) - hit
                cells.append(f"{found} / {wrong}")
            table.add_row(name, str(len(items)), str(sum(len(t) for _, t in items)), *cells)
    Console(width=130).print(table)


if __name__ == "__main__":
    main()
