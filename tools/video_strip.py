"""The README's video picture: the rendered clip (``monohand.video.clip``, CC0 sources) through
``monohand reconstruct`` as an MP4, then every 4th frame of ``<stem>_overlay.mp4`` side by side.

    python tools/video_strip.py [--out docs/video_strip.png]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from monohand.video.clip import render_clip
from monohand.video.frames import read_frames, write_video


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("docs/video_strip.png"))
    args = ap.parse_args()
    clip = render_clip(16, back=True)
    with tempfile.TemporaryDirectory() as d:
        video = write_video(Path(d) / "clip.mp4", list(clip.frames), clip.fps)
        K = clip.K
        subprocess.run([sys.executable, "-m", "monohand", "reconstruct", str(video), "--out", d,
                        "--K", f"{K[0, 0]},{K[1, 1]},{K[0, 2]},{K[1, 2]}"], check=True)  # fmt: skip
        frames = list(read_frames(Path(d) / "clip_overlay.mp4"))
    strip = np.concatenate(frames[::4], axis=1)
    Image.fromarray(strip).save(args.out, optimize=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
