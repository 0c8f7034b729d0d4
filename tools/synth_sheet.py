"""The README's contact sheet of synthetic samples: images with their projected keypoints.

python tools/synth_sheet.py [--out docs/synth_sheet.png] [--num 24]
python tools/synth_sheet.py --style v3 --fill 0.4,0.7 --num 16 --out docs/synth_sheet_v3.png
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
    ap.add_argument("--style", default="v1", help="v1 | v2 | v3 (see data.synthetic)")
    ap.add_argument("--fill", default="0.55,0.9", help="the hand's share of the image: LO,HI")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    fill = tuple(float(x) for x in args.fill.split(","))
    with tempfile.TemporaryDirectory() as d:
        generate(Path(d) / "s", SynthConfig(num=args.num, eval_fraction=0.0, seed=args.seed,
                                            style=args.style, fill=fill))  # fmt: skip
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
