"""Stored encoder features: training the heads of a frozen encoder without running it."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from ..atomic import atomic_write
from ..config import TrainConfig
from ..data.freihand import DETECTIONS_FILE
from ..nets.handnet import HandNet
from ..render.camera import resize_K
from .inputs import batch_to_size, mask_to_size

# What a feature cache keeps of each item: the heads' input and the labels the losses read
# (``has_3d`` where the items have it: 0 for real photos without 3D labels).
CACHED = ("K", "joints3d", "joints2d", "keypoints", "confidence")
OPTIONAL = ("has_3d",)


class FeatureCache(Dataset):
    """Items of stored encoder features: ``features`` (F,) plus ``CACHED`` labels, for
    training the heads of a frozen encoder without running it (``data.cache_views``); with
    masks, also ``mask`` (m, m) in [0, 1] and ``mask_K`` (3, 3), the camera of that size."""

    def __init__(self, tensors: dict[str, Tensor], size: tuple[int, int]) -> None:
        if "mask" in tensors:  # the masks' camera follows from K and the two sizes
            m = tensors["mask"].shape[-1]
            tensors = {**tensors, "mask_K": resize_K(tensors["K"], m / size[1], m / size[0])}
        self.tensors, self.size = tensors, size

    def __len__(self) -> int:
        return len(self.tensors["features"])

    def __getitem__(self, i: int) -> dict:
        return {k: v[i].float() for k, v in self.tensors.items()}


def build_feature_cache(net: HandNet, ds, views: int, path: Path, batch: int = 32,
                        workers: int = 0, progress: bool = True, size: int | None = None,
                        mask_size: int = 0) -> FeatureCache:  # fmt: skip
    """Encode every item of ``ds`` ``views`` times (view v draws its crop jitter as epoch v)
    and store features (float16) and labels in ``path`` (atomic; reused when it was made
    from as many items, views and mask size). ``size``: the network's input size, to which
    images (and K and 2D labels) are resized first, as training without a cache does.
    ``mask_size``: also keep each crop's mask, area-averaged to (mask_size, mask_size)
    (float16), and the camera of that size (the dataset must have masks)."""
    if path.is_file():
        state = torch.load(path, map_location="cpu", weights_only=True)
        if (state["items"], state["views"], state.get("mask_size", 0)) == (
            len(ds), views, mask_size
        ):  # fmt: skip
            return FeatureCache(state["tensors"], tuple(state["size"]))
    from rich.progress import Progress

    keys = ("features", *CACHED, *(("mask",) if mask_size else ()))
    parts: dict[str, list[Tensor]] = {k: [] for k in keys}
    optional = [k for k in OPTIONAL if k in ds[0]]
    parts.update({k: [] for k in optional})
    net.eval()
    layout = net.memory_format
    net.channels_last()  # the frozen encoder only runs forward here
    with Progress(disable=not progress) as bar:
        task = bar.add_task("encoding training crops", total=views * len(ds))
        for v in range(views):
            ds.epoch = v
            for b in DataLoader(ds, batch_size=batch, num_workers=workers):
                if size is not None:
                    b = batch_to_size(b, size)
                with torch.no_grad():
                    parts["features"].append(net.encode(b["image"]).half())
                for k in (*CACHED, *optional):
                    parts[k].append(b[k].float())
                if mask_size:
                    if "mask" not in b:
                        raise ValueError("loss.silhouette with data.cache_views needs masks "
                                         "({split}/mask/ in the dataset)")  # fmt: skip
                    parts["mask"].append(mask_to_size(b["mask"], mask_size).half())
                bar.advance(task, len(b["image"]))
    net.memory_format = layout
    tensors = {k: torch.cat(v) for k, v in parts.items()}
    hw = tuple(b["image"].shape[-2:])
    state = {"items": len(ds), "views": views, "size": list(hw), "mask_size": mask_size,
             "tensors": tensors}
    atomic_write(path, lambda t: torch.save(state, t))
    return FeatureCache(tensors, hw)


def cache_key(cfg: TrainConfig, root: Path) -> str:
    """A short hash of everything the stored features depend on, so that runs sharing a
    ``data.cache_dir`` share a cache only when it holds their features."""
    import hashlib

    d, m = cfg.data, cfg.model
    what = [str(root.resolve()), d.labels, d.crop, d.size, d.augment, d.subset, d.cache_views,
            cfg.seed, m.backbone, m.backbone_weights, m.pretrained, m.landmark_inputs]  # fmt: skip
    if cfg.loss.silhouette:  # (appended, so caches made without masks keep their names)
        what.append(d.cache_mask_size)
    # The set's content, not only its path: a set regenerated under the same name (another
    # seed or generator) has other annotations, and detections made again other 2D labels
    # (the cache stores them too); stale features must not be reused.
    record = [root / f for f in ("training_xyz.json", "training_K.json", "synth_config.json")]
    if d.labels == "mediapipe":
        record.append(root / DETECTIONS_FILE)
    elif d.labels != "gt":
        record.append(Path(d.labels))
    record = [f for f in record if f.is_file()]
    if record:
        h = hashlib.sha1()
        for f in record:
            h.update(f.read_bytes())
        what.append(h.hexdigest())
    if d.photos:  # the set's own record too: a re-import under the same name is another set
        record = Path(d.photos) / "photo_set.json"
        digest = hashlib.sha1(record.read_bytes()).hexdigest() if record.is_file() else ""
        what += [str(Path(d.photos).resolve()), d.photos_repeat, digest]
    return hashlib.sha1(json.dumps(what).encode()).hexdigest()[:12]
