"""Networks on real photos without 3D labels, against the detector: a proxy for choosing.

The synthetic validation split cannot see what a network gains on photos, and the real
evaluation set (``../shared/data/realhands``) must not choose anything. This bench scores
networks on a folder of held-out real photos (public-domain ASL letters, ``data/ASL-data``'s
valid + test splits in the README) against MediaPipe's own results for the same hands: the
3D joints' PA-MPJPE to MediaPipe's world landmarks (about 10 mm from the truth on real
photos), and the projected joints' 2D distance to its keypoints, over the wrist-to-middle-MCP
length. Neither is ground truth; both move when a network reads photos better or worse.

    python bench/bench_photo_proxy.py PHOTOS [PHOTOS ...] --ckpt CKPT [CKPT ...] [--names ...]

``shipped`` as a CKPT is the packaged network. MediaPipe's results are cached (``--cache``),
with the list of photos they belong to.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.progress import track
from rich.table import Table

from monohand.atomic import atomic_write
from monohand.data.detection import HandDetection
from monohand.data.images import read_rgb
from monohand.data.intrinsics import camera_for_image
from monohand.data.mediapipe_hands import MediaPipeHands
from monohand.data.photos import list_photos
from monohand.evaluate.align import procrustes_align
from monohand.hybrid import network_predict
from monohand.nets.handnet import load_network
from monohand.render.camera import project


def detect(files: list[Path], cache: Path) -> dict:
    """MediaPipe (one hand, augmented copies) on every photo, cached in ``cache`` (.npz),
    reused only for the same list of photos."""
    names = np.array([str(f) for f in files])
    if cache.is_file():
        got = dict(np.load(cache, allow_pickle=False))
        if np.array_equal(got["files"], names):
            return got
    keep, kp, conf, world, side = [], [], [], [], []
    with MediaPipeHands(max_hands=1) as det:
        for i, f in enumerate(track(files, description="MediaPipe")):
            hands = det.detect(read_rgb(f))
            if hands and hands[0].world is not None:
                h = hands[0]
                keep.append(i)
                kp.append(h.keypoints)
                conf.append(h.confidence)
                world.append(h.world)
                side.append(h.side == "left")
    out = {"ids": np.array(keep), "keypoints": np.array(kp), "confidence": np.array(conf),
           "world": np.array(world), "left": np.array(side), "files": names}  # fmt: skip
    atomic_write(cache, lambda t: np.savez(t, **out))
    return out


def score(files: list[Path], det: dict, ckpt: str) -> tuple[np.ndarray, np.ndarray]:
    """Per hand: PA-MPJPE (mm) to the world landmarks, and the 2D distance over the hand's
    wrist-to-middle-MCP length in the image."""
    net, size = load_network(None if ckpt == "shipped" else ckpt)
    pa, d2 = [], []
    for n, i in enumerate(det["ids"]):
        image = read_rgb(files[i])
        K, _ = camera_for_image(files[i], image.shape[:2])
        h = HandDetection(det["keypoints"][n], det["confidence"][n], 1.0,
                          "left" if det["left"][n] else "right", det["world"][n])  # fmt: skip
        with torch.no_grad():
            pred = network_predict(image, K, [h], net, size)
        j = np.asarray(pred.joints[0], dtype=np.float64)
        aligned = procrustes_align(j[None], det["world"][n][None])[0]
        pa.append(1000 * np.linalg.norm(aligned - det["world"][n], axis=-1).mean())
        uv = project(torch.as_tensor(j)[None], torch.as_tensor(K)[None])[0].numpy()
        kp = det["keypoints"][n]
        d2.append(np.linalg.norm(uv - kp, axis=-1).mean() / np.linalg.norm(kp[9] - kp[0]))
    return np.array(pa), np.array(d2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("photos", type=Path, nargs="+", help="folders or files of photos")
    ap.add_argument("--ckpt", nargs="+", required=True, help="checkpoints, or 'shipped'")
    ap.add_argument("--names", nargs="*", default=None)
    ap.add_argument("--cache", type=Path, default=Path("out/bench-photo-proxy/detections.npz"))
    args = ap.parse_args()
    files = list_photos(args.photos)
    args.cache.parent.mkdir(parents=True, exist_ok=True)
    det = detect(files, args.cache)
    names = args.names or args.ckpt
    table = Table(title=f"networks on {len(det['ids'])} held-out photos with a hand found "
                        f"(of {len(files)}), against MediaPipe")  # fmt: skip
    for c in ("network", "PA-MPJPE to MediaPipe's 3D mm", "median", "2D to its keypoints",
              "median"):  # fmt: skip
        table.add_column(c, justify="left" if c == "network" else "right")
    for name, ckpt in zip(names, args.ckpt, strict=True):
        pa, d2 = score(files, det, ckpt)
        table.add_row(name, f"{pa.mean():.2f}", f"{np.median(pa):.2f}", f"{d2.mean():.3f}",
                      f"{np.median(d2):.3f}")  # fmt: skip
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
