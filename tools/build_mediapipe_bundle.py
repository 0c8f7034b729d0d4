"""Rebuild ``src/monohand/data/assets/hand_landmarker.task`` from MediaPipe's registry wheel.

MediaPipe >= 0.10.30 ships no model files, and nothing may be downloaded at run time.
0.10.21 (Apache-2.0) is the newest wheel with the hand models inside. This script takes its
``palm_detection_full.tflite`` and ``hand_landmark_full.tflite`` and stores them, uncompressed
and 64-byte aligned (MediaPipe memory-maps them), as ``hand_detector.tflite`` and
``hand_landmarks_detector.tflite`` in a ``.task`` bundle that the current Tasks API's
``HandLandmarker`` runs offline. The bundle is committed, so set-up needs none of this.

    python tools/build_mediapipe_bundle.py [--wheel mediapipe-0.10.21-...whl]
        (without --wheel: pip downloads the wheel, no dependencies, into a temporary folder)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "src/monohand/data/assets/hand_landmarker.task"
MEMBERS = {
    "hand_detector.tflite": "mediapipe/modules/palm_detection/palm_detection_full.tflite",
    "hand_landmarks_detector.tflite": "mediapipe/modules/hand_landmark/hand_landmark_full.tflite",
}
ALIGN = 64
FIXED_TIME = (2025, 1, 31, 0, 0, 0)  # deterministic bytes


def write_bundle(wheel: Path, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as dst:
        for name, member in MEMBERS.items():
            data = src.read(member)
            info = zipfile.ZipInfo(name, FIXED_TIME)
            info.compress_type = zipfile.ZIP_STORED
            # Pad the local header's extra field so the file data starts on a 64-byte boundary.
            header_end = dst.fp.tell() + 30 + len(name.encode())
            pad = (-(header_end + 4)) % ALIGN
            info.extra = (0xD935).to_bytes(2, "little") + pad.to_bytes(2, "little") + bytes(pad)
            dst.writestr(info, data)
    tmp.replace(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wheel", type=Path)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    if args.wheel:
        write_bundle(args.wheel, args.out)
    else:
        with tempfile.TemporaryDirectory() as d:
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q",
                            "mediapipe==0.10.21", "-d", d], check=True)  # fmt: skip
            write_bundle(next(Path(d).glob("mediapipe-0.10.21-*.whl")), args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
