"""What the training loop feeds on: subsets, label sources, batches at the network's size."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from ..data.freihand import DETECTIONS_FILE, read_freihand
from ..render.camera import resize_K


class Subset(Dataset):
    """The first ``n`` items of a dataset that draws per epoch (``epoch`` is passed on)."""

    def __init__(self, ds, n: int) -> None:
        self.ds, self.n = ds, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < self.n:
            raise IndexError(i)
        return self.ds[i]

    @property
    def epoch(self) -> int:
        return self.ds.epoch

    @epoch.setter
    def epoch(self, value: int) -> None:
        self.ds.epoch = value


class Concat(Dataset):
    """Datasets one after the other (``epoch`` passed on to each), their items cut to the
    keys they all have, so that a batch across the seam collates: what a synthetic set and a
    photo set share (``data.photos``)."""

    def __init__(self, datasets: list) -> None:
        self.datasets = list(datasets)
        self.starts = [0]
        for ds in self.datasets:
            self.starts.append(self.starts[-1] + len(ds))
        keys = [set(ds[0]) for ds in self.datasets]
        self.keys = set.intersection(*keys)

    def __len__(self) -> int:
        return self.starts[-1]

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < len(self):
            raise IndexError(i)
        k = next(k for k in range(len(self.datasets)) if i < self.starts[k + 1])
        item = self.datasets[k][i - self.starts[k]]
        return {key: v for key, v in item.items() if key in self.keys}

    @property
    def epoch(self) -> int:
        return self.datasets[0].epoch

    @epoch.setter
    def epoch(self, value: int) -> None:
        for ds in self.datasets:
            ds.epoch = value


class Repeat(Dataset):
    """A dataset that draws per epoch, ``n`` times over: item i is item i mod len(ds), drawn
    as in epoch ``epoch * n + i // len(ds)``, so that the copies get crops and colours of
    their own."""

    def __init__(self, ds, n: int) -> None:
        self.ds, self.n, self.epoch = ds, n, 0

    def __len__(self) -> int:
        return self.n * len(self.ds)

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < len(self):
            raise IndexError(i)
        copy, j = divmod(i, len(self.ds))
        self.ds.epoch = self.epoch * self.n + copy
        return self.ds[j]


def batch_to_size(batch: dict, size: int) -> dict:
    """Resize images to the network's input size and scale K and 2D labels to match."""
    img = batch["image"]
    h, w = img.shape[-2:]
    if (h, w) == (size, size):
        return batch
    out = dict(batch)
    out["image"] = F.interpolate(img, size=(size, size), mode="bilinear", align_corners=False)
    out["K"] = resize_K(batch["K"], size / w, size / h)
    for k in ("keypoints", "joints2d"):
        out[k] = (batch[k] + 0.5) * torch.tensor([size / w, size / h]) - 0.5
    if "mask" in batch:
        out["mask"] = mask_to_size(batch["mask"], size)
    return out


def mask_to_size(mask: Tensor, size: int) -> Tensor:
    """(B, H, W) masks -> (B, size, size), each pixel the covered fraction (area average)."""
    return F.interpolate(mask[:, None].float(), size=(size, size), mode="area")[:, 0]


def label_source(labels: str, root: Path) -> str:
    """The dataset's label source: "mediapipe" becomes its cached detections file (made on
    first use: MediaPipe with per-joint confidences over the training images)."""
    if labels != "mediapipe":
        return labels
    path = root / DETECTIONS_FILE
    if not path.is_file():
        from rich.progress import Progress

        from ..data.detection_file import save_detections
        from ..data.mediapipe_hands import detect_files

        index = read_freihand(root, "training")
        files = [index.image_path(i) for i in range(index.num_images)]
        with Progress() as bar:
            task = bar.add_task("MediaPipe labels", total=len(files))
            xy, conf, names, failed, missed = detect_files(
                files, progress=lambda k: bar.update(task, completed=k)
            )
            # said once, when made: which share of the set trains on 2D labels at all
            found = len(files) - missed - len(failed)
            bar.console.print(f"MediaPipe labels: a hand in {found} of {len(files)} training "
                              f"images (the others train without 2D labels) -> {path}",
                              highlight=False, markup=False)  # fmt: skip
        save_detections(path, xy, conf, names)
    return str(path)
