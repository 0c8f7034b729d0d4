"""Handedness on renders of known side: MediaPipe's label on the image alone against the vote
of the image and its augmented copies (``MediaPipeHands(side_from_views=True)``).

python bench/bench_handedness.py            # v1 training framing (150) and v3 (400), + mirrors

OpenHand is a right hand, so every render is a right hand and its mirror image a left one:
each render is read as it is and mirrored. A found hand (the best one, the plain image, no
bordered retry, no windows) counts as right or wrong by its side; the table says how many of
each set's hands were found and how many of them got the wrong side, per setting. The renders
are ``bench/bench_detect.py``'s (cached under ``out/bench-detect``); nothing here is chosen on
``../shared/data/realhands``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import track
from rich.table import Table

from monohand.data.images import read_rgb
from monohand.data.mediapipe_hands import MediaPipeHands

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_detect import renders  # noqa: E402  (the same cached renders)

SETS = {"v1, training framing": ("v1", 150, 20261126), "v3 (objects, forearms)": ("v3", 400,
                                                                                  20261205)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=Path("out/bench-detect"))
    args = ap.parse_args()
    table = Table(title="handedness of the best hand in renders (right) and their mirrors (left)")
    for col in ("set", "setting", "found (right / left)", "wrong side (right / left)",
                "wrong share"):  # fmt: skip
        table.add_column(col, justify="right")
    for name, (style, num, seed) in SETS.items():
        root, _ = renders((0.55, 0.9), num, seed, args.cache, style)
        images = sorted((root / "training" / "rgb").glob("*.jpg"))[:num]
        for setting, vote in (("the image's label", False), ("vote of the views", True)):
            found, wrong = {"right": 0, "left": 0}, {"right": 0, "left": 0}
            with MediaPipeHands(max_hands=1, retry_pad=0.0, side_from_views=vote) as mp:
                for path in track(images, description=f"{name}, {setting}"):
                    image = read_rgb(path)
                    for truth, img in (("right", image), ("left", image[:, ::-1])):
                        hands = mp.detect(np.ascontiguousarray(img), windows=False)
                        if hands:
                            found[truth] += 1
                            wrong[truth] += hands[0].side != truth
            total = sum(found.values())
            table.add_row(name, setting, f"{found['right']} / {found['left']}",
                          f"{wrong['right']} / {wrong['left']}",
                          f"{sum(wrong.values()) / max(total, 1):.1%}")  # fmt: skip
    Console().print(table)


if __name__ == "__main__":
    main()
