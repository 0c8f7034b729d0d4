"""S2HAND's detection file, the exchange format of 2D keypoint labels (OpenPose's layout):
``[xy (N,21,2) pixels, values (N,21,1) confidences, filenames (N,1)]``. ``save_detections``
writes it (``monohand detect``, the MediaPipe labels of a training set), ``load_detections``
reads it (training, ``predict``'s crops), ``detections_by_name`` finds an image's hand in it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..atomic import atomic_write
from .detection import NUM_JOINTS


def save_detections(
    path: str | Path, xy: np.ndarray, conf: np.ndarray, filenames: list[str]
) -> Path:
    """Write ``[xy (N,21,2), values (N,21,1), filenames (N,1)]`` atomically."""
    xy, conf = (
        np.asarray(xy, dtype=float),
        np.asarray(conf, dtype=float).reshape(len(xy), NUM_JOINTS, 1),
    )
    if xy.shape != (len(filenames), NUM_JOINTS, 2):
        raise ValueError(f"xy must be ({len(filenames)}, 21, 2), got {xy.shape}")
    text = json.dumps([xy.tolist(), conf.tolist(), [[str(f)] for f in filenames]])
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def detections_by_name(names: list[str], split: str | None = None) -> dict[str, int]:
    """Each image's first detection (its most confident hand) by the image's file name.

    A detections file made from a FreiHAND-layout folder names its images with their split
    (``.../training/rgb/00000000.jpg``), and both splits number their images alike: names
    of a split other than ``split`` are left out, so one split's detections never place
    another's crops."""
    out: dict[str, int] = {}
    for k, name in enumerate(names):
        p = Path(name)
        other = p.parent.name == "rgb" and p.parent.parent.name in ("training", "evaluation")
        if split is not None and other and p.parent.parent.name != split:
            continue
        out.setdefault(p.name, k)
    return out


def load_detections(path: str | Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read an S2HAND/OpenPose detection file: xy (N,21,2), confidences (N,21), filenames."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        xy, values, names = json.loads(path.read_text())
        xy = np.asarray(xy, dtype=float)
        conf = np.asarray(values, dtype=float).reshape(len(xy), -1)
    except (ValueError, TypeError) as e:
        raise ValueError(f"{path}: not a detection file [xy, values, filenames] ({e})") from e
    if xy.ndim != 3 or xy.shape[1:] != (NUM_JOINTS, 2) or conf.shape != (len(xy), NUM_JOINTS):
        raise ValueError(
            f"{path}: xy {xy.shape} / values {conf.shape}, expected (N, 21, 2) / (N, 21, 1)"
        )
    if len(names) != len(xy):
        raise ValueError(f"{path}: {len(xy)} detections but {len(names)} file names")
    return xy, conf, [n[0] if isinstance(n, list) else str(n) for n in names]
