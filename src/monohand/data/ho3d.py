"""HO-3D (v2/v3): per-frame ``meta/*.pkl`` annotations, converted to monohand's conventions.

Layout: ``root/{train,evaluation}/<sequence>/rgb/<frame>.{jpg,png}`` and
``.../meta/<frame>.pkl``, with ``root/{train,evaluation}.txt`` listing ``<sequence>/<frame>``.
A meta file holds ``camMat`` (3, 3) and, for training frames, ``handJoints3D`` (21, 3) in
HO-3D's OpenGL camera (y up, z backwards) and MANO's joint order with the fingertips (thumb,
index, middle, ring, little) appended; evaluation frames give only the root joint (3,) and
``handBoundingBox``. Pickles are read with ``models.assets.load_pickle`` (never plain pickle).
HO-3D's hands are right hands.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..models.assets import AssetError, load_pickle
from ..models.joints import NATIVE_TO_FREIHAND
from .freihand import DatasetError

# OpenGL camera (x right, y up, z backwards) -> OpenCV (x right, y down, z forwards).
GL_TO_CV = np.diag([1.0, -1.0, -1.0])


@dataclass
class HO3DFrame:
    image: Path
    K: np.ndarray  # (3, 3)
    joints3d: np.ndarray | None  # (21, 3) FreiHAND order, OpenCV camera, metres
    root3d: np.ndarray | None  # (3,) evaluation frames: the root joint only
    bbox: np.ndarray | None  # (4,) evaluation frames


def opengl_to_opencv(points: np.ndarray) -> np.ndarray:
    """(..., 3) points from HO-3D's OpenGL camera frame to OpenCV's."""
    return points @ GL_TO_CV.T


def read_ho3d_frame(root: str | Path, split: str, name: str) -> HO3DFrame:
    """One frame ``<sequence>/<frame>`` of ``split`` ("train" or "evaluation")."""
    root = Path(root)
    seq, frame = name.split("/")
    meta_path = root / split / seq / "meta" / f"{frame}.pkl"
    try:
        meta = load_pickle(meta_path)
    except AssetError as e:
        raise DatasetError(str(e)) from e
    rgb = root / split / seq / "rgb"
    image = next(
        (rgb / f"{frame}{ext}" for ext in (".jpg", ".png") if (rgb / f"{frame}{ext}").is_file()),
        None,
    )
    if image is None:
        raise DatasetError(f"{rgb}: no image for frame {frame}")
    if not isinstance(meta, dict) or meta.get("camMat") is None:
        raise DatasetError(f"{meta_path}: no 'camMat'")
    K = np.asarray(meta["camMat"], dtype=np.float64)
    joints = meta.get("handJoints3D")
    j3 = root3 = bbox = None
    if joints is not None:
        joints = np.asarray(joints, dtype=np.float64)
        if joints.shape == (21, 3):
            j3 = opengl_to_opencv(joints)[list(NATIVE_TO_FREIHAND)]
        elif joints.shape == (3,):
            root3 = opengl_to_opencv(joints)
        else:
            raise DatasetError(f"{meta_path}: handJoints3D has shape {joints.shape}")
    if meta.get("handBoundingBox") is not None:
        bbox = np.asarray(meta["handBoundingBox"], dtype=np.float64)
    return HO3DFrame(image, K, j3, root3, bbox)


def read_ho3d(root: str | Path, split: str = "train") -> list[HO3DFrame]:
    """Every frame listed in ``root/{split}.txt``."""
    root = Path(root)
    listing = root / f"{split}.txt"
    if not listing.is_file():
        raise DatasetError(f"{listing}: missing")
    names = [ln.strip() for ln in listing.read_text().splitlines() if ln.strip()]
    return [read_ho3d_frame(root, split, n) for n in names]
