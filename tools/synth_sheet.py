"""The README's contact sheet of synthetic samples: images with their projected keypoints.

python tools/synth_sheet.py [--out docs/synth_sheet.png] [--num 24]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from monohand.data.freihand import FreiHANDDataset
from monohand.data.synthetic import SynthConfig, generate
from monohand.viz import draw_skeleton


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("docs/synth_sheet.png"))
    ap.add_argument("--num", type=int, default=24)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        generate(Path(d) / "s", SynthConfig(num=args.num, eval_fraction=0.0, seed=1))
        ds = FreiHANDDataset(Path(d) / "s")
        tiles = []
        for i in range(args.num):
            it = ds[i]
            img = Image.fromarray((it["image"].permute(1, 2, 0).numpy() * 255).astype(np.uint8))
            draw = ImageDraw.Draw(img)
            kp = it["joints2d"].numpy()
            draw_skeleton(draw, kp)
            tiles.append(np.asarray(img))
    cols = 8
    rows = [np.concatenate(tiles[r * cols : (r + 1) * cols], 1) for r in range(len(tiles) // cols)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(rows, 0)).save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
