"""FreiHAND's layout: reading (and the names the synthetic generator writes).

``root/{split}_K.json`` (N, 3, 3), ``{split}_xyz.json`` (N, 21, 3) metres, ``{split}_verts.json``
(N, V, 3), ``{split}_mano.json`` (N, 1, 61), ``{split}_scale.json`` (N,);
``root/{split}/rgb/%08d.jpg`` for N x k images (k versions, image i shows sample i mod N:
FreiHAND's training set has 32,560 samples x 4 backgrounds), ``root/{split}/mask/%08d.jpg``
for the first N. ``split`` is "training" or "evaluation".

A *photo set* (``data.photos``: real photos without 3D labels, made by ``monohand
import-photos``) has the same layout without ``{split}_xyz.json``: its 2D labels are the
detector's (``detections_mediapipe.json`` beside it), and its items say ``has_3d`` = 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ..jsonfile import read_json
from ..models.skinned import SkinnedHand
from ..render.camera import project
from .detection_file import detections_by_name, load_detections
from .images import read_rgb

SPLITS = ("training", "evaluation")
# What marks a photo set (see the module doc): its sources and their licence, JSON.
PHOTO_SET_FILE = "photo_set.json"
# MediaPipe's 2D labels of a set's training images (a photo set's only labels), beside them.
DETECTIONS_FILE = "detections_mediapipe.json"


class DatasetError(ValueError):
    """A dataset file is missing or inconsistent; the message names it."""


def _array(path: Path, shape_tail: tuple, n: int | None = None) -> np.ndarray:
    a = np.asarray(read_json(path, DatasetError), dtype=np.float64)
    if a.size == 0:  # a set made without this split
        raise DatasetError(f"{path}: the split is empty (the set was made with no samples in "
                           "it, e.g. synth's eval_fraction 0)")  # fmt: skip
    if a.ndim != 1 + len(shape_tail) or any(
        s is not None and a.shape[1 + i] != s for i, s in enumerate(shape_tail)
    ):
        raise DatasetError(
            f"{path}: shape {a.shape}, expected (N, {', '.join(str(s or 'V') for s in shape_tail)})"
        )
    if n is not None and len(a) != n:
        raise DatasetError(f"{path}: {len(a)} entries, but {n} in the split's K file")
    return a


@dataclass
class FreiHANDIndex:
    """The annotations of one split and where its images are. Arrays per sample id."""

    root: Path
    split: str
    K: np.ndarray  # (N, 3, 3)
    xyz: np.ndarray | None  # (N, 21, 3); None in a photo set (no 3D labels)
    verts: np.ndarray | None  # (N, V, 3)
    mano: np.ndarray | None  # (N, 61)
    scale: np.ndarray | None  # (N,)
    num_images: int

    @property
    def num_samples(self) -> int:
        return len(self.K)

    def image_path(self, i: int) -> Path:
        return self.root / self.split / "rgb" / f"{i:08d}.jpg"

    def mask_path(self, i: int) -> Path:
        return self.root / self.split / "mask" / f"{i % self.num_samples:08d}.jpg"


def read_freihand(root: str | Path, split: str = "training") -> FreiHANDIndex:
    """Index a FreiHAND-layout folder, checking that its files agree.

    Raises:
        DatasetError: a missing file, a shape or count mismatch, or missing images (named).
    """
    if split not in SPLITS:
        raise DatasetError(f"split must be one of {SPLITS}, got {split!r}")
    root = Path(root)
    if (not (root / f"{split}_K.json").is_file() and root.name in SPLITS
            and (root.parent / f"{split}_K.json").is_file()):  # fmt: skip
        raise DatasetError(f"{root}: a split's image folder; give the set's own folder "
                           f"{root.parent} (its {split} split is read from there)")  # fmt: skip
    if not (root / f"{split}_K.json").is_file():
        other = "evaluation" if split == "training" else "training"
        if (root / f"{other}_K.json").is_file():  # a set without this split
            raise DatasetError(f"{root}: has no {split} split ({split}_K.json), only its "
                               f"{other} one (monohand synth --eval-fraction sets how many "
                               "samples each gets)")  # fmt: skip
        raise DatasetError(f"{root}: not in FreiHAND's layout (no {split}_K.json; a set has "
                           f"{{split}}_K.json, {{split}}_xyz.json and {{split}}/rgb/; monohand "
                           "synth makes one, monohand import-photos makes one of photos)")
    K = _array(root / f"{split}_K.json", (3, 3))
    n = len(K)
    photos = (root / PHOTO_SET_FILE).is_file()
    xyz = None if photos else _array(root / f"{split}_xyz.json", (21, 3), n)
    vp = root / f"{split}_verts.json"
    verts = _array(vp, (None, 3), n) if vp.is_file() else None
    mp = root / f"{split}_mano.json"
    mano = _array(mp, (None, 61), n)[:, 0] if mp.is_file() else None
    sp_ = root / f"{split}_scale.json"
    scale = None
    if sp_.is_file():
        scale = np.asarray(read_json(sp_, DatasetError), dtype=np.float64).reshape(-1)
    if scale is not None and len(scale) != n:
        raise DatasetError(f"{sp_}: {len(scale)} entries, but {n} in the split's K file")
    rgb = root / split / "rgb"
    if not rgb.is_dir():
        raise DatasetError(f"{rgb}: missing image folder")
    count = sum(1 for f in rgb.iterdir() if f.suffix == ".jpg")
    if count == 0 or count % n:
        raise DatasetError(f"{rgb}: {count} images is not a multiple of the {n} samples")
    return FreiHANDIndex(root, split, K, xyz, verts, mano, scale, count)


class FreiHANDDataset(Dataset):
    """A torch Dataset over a FreiHAND-layout folder.

    Each item: ``image`` (3, H, W) float in [0, 1], ``K`` (3, 3), ``joints3d`` (21, 3) metres,
    ``joints2d`` (21, 2) pixels (the projection), ``vertices`` (V, 3) if present, ``mask``
    (H, W) float if present, ``keypoints`` (21, 2) and ``confidence`` (21,) from the chosen
    label source, ``has_3d`` (1.0), ``index``. In a photo set (no 3D labels) ``joints3d`` is
    zero, ``joints2d`` the detector's keypoints and ``has_3d`` 0.0.

    Args:
        root, split: see ``read_freihand``.
        labels: "gt" (projected ground truth, confidence 1) or a detections file
            (S2HAND/OpenPose JSON, matched by image file name).
        augment: optional callable (item dict of numpy arrays, rng) -> item dict.
        seed: seed of the augmentation's random generator: item i of epoch e draws from
            (seed, e, i), so epochs differ and a resumed run repeats them (``epoch``).
    """

    def __init__(self, root: str | Path, split: str = "training", labels: str | Path = "gt",
                 augment=None, seed: int = 0) -> None:  # fmt: skip
        self.index = read_freihand(root, split)
        self.augment, self.seed = augment, seed
        self.epoch = 0  # set by the training loop before each epoch
        self.det = None
        if self.index.xyz is None and str(labels) == "gt":
            raise DatasetError(f"{root}: a photo set has no 3D labels; give its detections "
                               "(labels=...detections_mediapipe.json)")  # fmt: skip
        if str(labels) != "gt":
            xy, conf, names = load_detections(labels)
            by_name = detections_by_name(names, split)
            if names and not by_name:  # (each image would fail at its first batch)
                raise DatasetError(f"{labels}: detections of another split's images (e.g. "
                                   f"{names[0]}), not of {root}'s {split} split")  # fmt: skip
            self.det = (xy, conf, by_name, Path(labels))

    def __len__(self) -> int:
        return self.index.num_images

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < len(self):
            raise IndexError(i)
        ix = self.index
        sid = i % ix.num_samples
        path = ix.image_path(i)
        image = read_rgb(path)
        K = ix.K[sid]
        if ix.xyz is None:  # a photo set: the detector's 2D stands in for the projection
            j3, j2 = np.zeros((21, 3)), None
        else:
            j3 = ix.xyz[sid]
            j2 = project(torch.as_tensor(j3)[None], torch.as_tensor(K)[None])[0].numpy()
        item = {"image": image, "K": K, "joints3d": j3, "joints2d": j2, "index": i,
                "has_3d": np.float32(ix.xyz is not None)}  # fmt: skip
        if ix.verts is not None:
            item["vertices"] = ix.verts[sid]
        mpath = ix.mask_path(i)
        if mpath.is_file():
            item["mask"] = (read_rgb(mpath)[..., 0] > 127).astype(np.float32)
        if self.det is None:
            item["keypoints"], item["confidence"] = j2.copy(), np.ones(21)
        else:
            xy, conf, by_name, src = self.det
            k = by_name.get(path.name)
            if k is None:
                raise DatasetError(f"{src}: no detection for {path.name}")
            item["keypoints"], item["confidence"] = xy[k], conf[k]
            if j2 is None:
                item["joints2d"] = xy[k].copy()
        if self.augment is not None:
            item = self.augment(item, np.random.default_rng([self.seed, self.epoch, i]))
        return to_tensors(item)


def to_tensors(item: dict) -> dict:
    """numpy item -> tensors: image (3, H, W) float in [0, 1], others float32."""
    out = {}
    for k, v in item.items():
        if k == "image":
            out[k] = torch.from_numpy(np.array(v)).permute(2, 0, 1).float() / 255.0
        elif isinstance(v, np.ndarray | np.floating):
            out[k] = torch.from_numpy(np.array(v)).float()
        else:
            out[k] = v
    return out


# -- FreiHAND's MANO parameters ----------------------------------------------------------


@dataclass
class FreiHANDManoParams:
    """Layer inputs decoded from FreiHAND ``training_mano.json`` entries. Shapes (N, ...)."""

    global_orient: Tensor  # (N, 3)
    hand_pose: Tensor  # (N, 45) axis-angle for the given layer's ``flat_hand_mean``
    betas: Tensor  # (N, 10)
    transl: Tensor  # (N, 3) metres, camera frame


def decode_freihand_mano(model: SkinnedHand, theta: Tensor, K: Tensor) -> FreiHANDManoParams:
    """Turn FreiHAND MANO entries into inputs of ``model`` that reproduce FreiHAND's hand.

    FreiHAND's 61 numbers are 48 pose (3 global + 45 hand, axis-angle *relative to MANO's mean
    hand*, i.e. for a layer with ``flat_hand_mean=False``), 10 shape, ``uv_root`` (2, pixels)
    and ``scale`` (1). The hand is placed so that keypoint 9 (middle MCP) lies at
    ``[u - cx, v - cy, f] / scale`` in the camera frame, f = (fx + fy) / 2 (FreiHAND's toolbox).

    Args:
        model: a full-pose (``use_pca=False``) MANO-layout layer.
        theta: (N, 61) or (61,) FreiHAND MANO parameters (also accepts (N, 1, 61)).
        K: (N, 3, 3) or (3, 3) intrinsics of the images, pixels.
    Returns:
        ``FreiHANDManoParams`` on ``model``'s device and dtype.
    """
    if model.use_pca:
        raise ValueError("decode_freihand_mano needs a layer with use_pca=False")
    dtype, device = model.v_template.dtype, model.v_template.device
    theta = torch.as_tensor(theta, dtype=dtype, device=device).reshape(-1, 61)
    K = (
        torch.as_tensor(K, dtype=dtype, device=device)
        .reshape(-1, 3, 3)
        .expand(theta.shape[0], 3, 3)
    )
    global_orient, hand_rel = theta[:, :3], theta[:, 3:48]
    betas, uv_root, scale = theta[:, 48:58], theta[:, 58:60], theta[:, 60:61]
    mean = torch.as_tensor(model.data.hands_mean, dtype=dtype, device=device)
    # FreiHAND's pose is relative to the mean: absolute = rel + mean. A flat-mean layer wants
    # the absolute pose; a mean layer adds the mean itself.
    hand_pose = hand_rel + mean if model.flat_hand_mean else hand_rel
    focal = 0.5 * (K[:, 0, 0] + K[:, 1, 1])
    root = torch.cat([uv_root - K[:, :2, 2], focal[:, None]], dim=1) / scale
    with torch.no_grad():
        out = model(
            global_orient=global_orient,
            hand_pose=hand_pose,
            betas=betas[:, : model.num_shape_params],
        )
    transl = root - out.joints[:, 9]
    return FreiHANDManoParams(global_orient, hand_pose, betas[:, : model.num_shape_params], transl)
