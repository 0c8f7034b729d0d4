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
from .augment import crop_around
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


SPLITS = ("train", "evaluation")  # HO-3D's folder names (FreiHAND: "training")


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


class HO3DDataset:
    """HO-3D's annotated training frames as training items, cropped around the hand.

    HO-3D's frames are 640x480 with a small hand; each item is a square crop (``size``)
    around the projected ground-truth joints (margin 1.5, as reconstruction crops), with K
    mapped into the crop, so items look like ``FreiHANDDataset``'s: ``image`` (3, size, size)
    in [0, 1], ``K``, ``joints3d`` (21, 3) metres, ``joints2d``, ``keypoints`` / ``confidence``
    (ground truth, or a detections file on the full frames, mapped into the crop), ``index``.
    No masks or vertices (HO-3D's meta files carry MANO parameters, not meshes).
    """

    def __init__(self, root: str | Path, split: str = "train", size: int = 128,
                 labels: str | Path = "gt") -> None:  # fmt: skip
        self.frames = [f for f in read_ho3d(root, split) if f.joints3d is not None]
        if not self.frames:
            raise DatasetError(f"{root}: no annotated {split} frames")
        self.size = size
        self.det = None
        if str(labels) != "gt":
            from .detection_file import load_detections

            xy, conf, names = load_detections(labels)
            # Frames share file names across sequences: match on sequence/rgb/name.
            key = {"/".join(Path(n).parts[-3:]): k for k, n in enumerate(names)}
            self.det = (xy, conf, key, Path(labels))

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, i: int) -> dict:
        import torch

        from ..render.camera import project
        from .freihand import to_tensors
        from .images import read_rgb

        f = self.frames[i]
        image = read_rgb(f.image)
        j2_full = project(torch.as_tensor(f.joints3d)[None], torch.as_tensor(f.K)[None])[0]
        crop, Kc = crop_around(image, f.K, j2_full.numpy(), self.size)
        A = Kc @ np.linalg.inv(f.K)  # full-frame pixels -> crop pixels
        j2 = project(torch.as_tensor(f.joints3d)[None], torch.as_tensor(Kc)[None])[0].numpy()
        item = {"image": crop, "K": Kc, "joints3d": f.joints3d, "joints2d": j2, "index": i}
        if self.det is None:
            item["keypoints"], item["confidence"] = j2.copy(), np.ones(21)
        else:
            xy, conf, key, src = self.det
            k = key.get("/".join(f.image.parts[-3:]))
            if k is None:
                raise DatasetError(f"{src}: no detection for {f.image}")
            item["keypoints"] = xy[k] @ A[:2, :2].T + A[:2, 2]
            item["confidence"] = conf[k]
        return to_tensors(item)
