"""Network predictions for a FreiHAND-layout split in FreiHAND's submission format.

``predict_split`` runs a ``monohand train`` checkpoint on ``{split}/rgb/%08d.jpg`` (the first
N images, N = entries of ``{split}_K.json``) with their K, in batches, and returns the 21
keypoints and the vertices (MANO topology where the model has it, e.g. NIMBLE's regressed
778; else its own) in metres in each image's camera frame. ``monohand predict`` writes them
as ``pred.json`` = ``[xyz_list (N, 21, 3), verts_list (N, V, 3)]`` for ``monohand evaluate`` or
FreiHAND's Codalab server.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .data.freihand import SPLITS, DatasetError, _array
from .data.images import read_rgb
from .reconstruct import load_network
from .render.camera import resize_K


def predict_split(
    checkpoint: str | Path,
    root: str | Path,
    split: str = "evaluation",
    batch: int = 32,
    model_path: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(xyz (N, 21, 3), verts (N, V, 3)) metres, camera frames; see the module doc."""
    root = Path(root)
    if split not in SPLITS:
        raise DatasetError(f"split must be one of {SPLITS}, got {split!r}")
    Ks = _array(root / f"{split}_K.json", (3, 3))
    net, size = load_network(str(checkpoint), model_path)
    xyz, verts = [], []
    for start in range(0, len(Ks), batch):
        ids = range(start, min(start + batch, len(Ks)))
        images = [read_rgb(root / split / "rgb" / f"{i:08d}.jpg") for i in ids]
        h, w = images[0].shape[:2]
        if any(im.shape[:2] != (h, w) for im in images):
            raise DatasetError(f"{root / split / 'rgb'}: images of different sizes in one batch")
        x = torch.as_tensor(np.stack(images), dtype=torch.float32).permute(0, 3, 1, 2) / 255.0
        K = torch.as_tensor(Ks[list(ids)], dtype=torch.float32)
        if (h, w) != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
            K = resize_K(K, size / w, size / h)
        with torch.no_grad():
            _, out = net(x, K)
        mano = getattr(out, "mano_vertices", None)
        xyz.append(out.joints.double().numpy())
        verts.append((mano if mano is not None else out.vertices).double().numpy())
        if progress:
            progress(ids[-1] + 1)
    return np.concatenate(xyz), np.concatenate(verts)
