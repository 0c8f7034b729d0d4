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

from .data.crops import hand_crop
from .data.freihand import SPLITS, DatasetError, _array
from .data.images import read_rgb
from .hybrid import network_on_crops
from .nets.handnet import load_network
from .render.camera import project, resize_K


def hand_arrays(out) -> tuple[np.ndarray, np.ndarray]:
    """(joints (B, 21, 3), mesh (B, V, 3)) float64 arrays of a hand model's output, the mesh
    in MANO's topology where the model has one (NIMBLE's regressed 778 vertices), else its
    own: what submissions and ``evaluate`` compare."""
    return (out.joints.detach().double().cpu().numpy(),
            out.evaluation_vertices.detach().double().cpu().numpy())


def predict_split(
    checkpoint: str | Path,
    root: str | Path,
    split: str = "evaluation",
    batch: int = 32,
    model_path: str | None = None,
    progress: Callable[[int], None] | None = None,
    crop_keypoints: str = "gt",
    note: Callable[[str], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(xyz (N, 21, 3), verts (N, V, 3)) metres, camera frames; see the module doc.

    A network on MediaPipe crops (``HandNet.input_crop``) gets each image's crop placed by
    ``crop_keypoints``: "gt" (the projected ground truth, for synthetic validation; said to
    ``note``, since it flatters the network) or a detections file; other networks see the
    whole image, resized."""
    root = Path(root)
    if split not in SPLITS:
        raise DatasetError(f"split must be one of {SPLITS}, got {split!r}")
    _array(root / f"{split}_K.json", (3, 3))  # (the split's mistakes before the network loads)
    net, size = load_network(str(checkpoint), model_path)
    return predict_with(net, size, root, split, batch, progress, crop_keypoints, note)


def predict_with(
    net,
    size: int,
    root: str | Path,
    split: str = "evaluation",
    batch: int = 32,
    progress: Callable[[int], None] | None = None,
    crop_keypoints: str = "gt",
    note: Callable[[str], None] | None = None,
    limit: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``predict_split`` for a network in hand (``HandNet`` in eval mode, its input ``size``
    pixels): training's held-out check runs the network it trains. ``limit``: the split's
    first images only."""
    root = Path(root)
    Ks = _array(root / f"{split}_K.json", (3, 3))[:limit]
    keypoints = None
    if net.input_crop == "mediapipe":
        keypoints = _crop_keypoints(root, split, Ks, crop_keypoints)  # (the first len(Ks))
        if crop_keypoints == "gt" and note is not None:
            note("the network's crops were placed from the projected ground truth "
                 "(crop_keypoints 'gt'): better than a detector's would be; a detections "
                 "file (monohand detect) scores it as it runs on photos")  # fmt: skip
    xyz, verts = [], []
    for start in range(0, len(Ks), batch):
        ids = range(start, min(start + batch, len(Ks)))
        images = [read_rgb(root / split / "rgb" / f"{i:08d}.jpg") for i in ids]
        if keypoints is not None:
            joints, mesh = _predict_crops(net, size, images, Ks[list(ids)], keypoints[list(ids)])
        else:
            h, w = images[0].shape[:2]
            if any(im.shape[:2] != (h, w) for im in images):
                raise DatasetError(f"{root / split / 'rgb'}: images of different sizes in one "
                                   "batch")  # fmt: skip
            x = torch.as_tensor(np.stack(images), dtype=torch.float32).permute(0, 3, 1, 2) / 255
            K = torch.as_tensor(Ks[list(ids)], dtype=torch.float32)
            if (h, w) != (size, size):
                x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
                K = resize_K(K, size / w, size / h)
            device = next(net.parameters()).device  # (training's check runs on its device)
            with torch.no_grad():
                _, out = net(x.to(device), K.to(device))
            joints, mesh = hand_arrays(out)
        xyz.append(joints)
        verts.append(mesh)
        if progress:
            progress(ids[-1] + 1)
    return np.concatenate(xyz), np.concatenate(verts)


def _crop_keypoints(root: Path, split: str, Ks: np.ndarray, source: str) -> np.ndarray:
    """(N, 21, 2) the keypoints that place each image's MediaPipe crop: the projected ground
    truth ("gt") or a detections file (S2HAND/OpenPose JSON, matched by file name; an image
    without a detected hand falls back to the ground truth where the split has it)."""
    n = len(Ks)
    path = root / f"{split}_xyz.json"
    gt = None
    if path.is_file():
        xyz = _array(path, (21, 3))[:n]
        gt = project(torch.as_tensor(xyz), torch.as_tensor(Ks)).numpy()
    if source == "gt":
        if gt is None:
            raise DatasetError(f"{path}: no ground truth to place the crops; give a detections "
                               "file (crop_keypoints)")  # fmt: skip
        return gt
    from .data.detection_file import detections_by_name, load_detections

    xy, conf, names = load_detections(source)
    by_name = detections_by_name(names, split)
    out = np.empty((n, 21, 2))
    for i in range(n):
        k = by_name.get(f"{i:08d}.jpg")
        if k is None:
            other = "training" if split == "evaluation" else "evaluation"
            hint = (f" (its images are the {other} split's: monohand detect "
                    f"{root / split / 'rgb'})" if not by_name and names else "")  # fmt: skip
            raise DatasetError(f"{source}: no detection for {i:08d}.jpg{hint}")
        missed = not np.any(conf[k] > 0)
        if missed and gt is None:
            raise DatasetError(f"{source}: no hand detected in {i:08d}.jpg")
        out[i] = gt[i] if missed else xy[k]
    return out


def _predict_crops(net, size: int, images: list[np.ndarray], Ks: np.ndarray,
                   keypoints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Joints and meshes (``hand_arrays``' topology, camera frames of the images) from
    MediaPipe crops (right hands)."""
    crops = [hand_crop(im, K, kp, size) for im, K, kp in zip(images, Ks, keypoints, strict=True)]
    pred = network_on_crops(net, crops)
    return pred.joints, pred.evaluation_vertices


def predict_ho3d(
    checkpoint: str | Path,
    root: str | Path,
    split: str = "evaluation",
    batch: int = 32,
    model_path: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Network predictions for HO-3D's Codalab server (v2 and v3 alike).

    Every frame of ``root/{split}.txt``, in its order, is cropped around its
    ``handBoundingBox`` ([x0, y0, x1, y1] pixels; training frames without one: around the
    projected ground truth) as the HO-3D training crops are, and the output is moved so that
    its wrist lies on the root joint that HO-3D's meta files give for every frame (its
    protocol: the evaluation splits publish the root). Returned in HO-3D's conventions:
    OpenGL camera (y up, z backwards), metres, HO-3D's joint order (MANO's with the tips
    appended). The tips are monohand's (FreiHAND's tip vertices on MANO); HO-3D's index and
    middle tips are neighbouring vertices (333 and 444 for 320 and 443), a millimetre or two.

    Returns:
        xyz (N, 21, 3) and verts (N, V, 3): V = 778 (MANO topology) where the model has it
        (MANO, NIMBLE's regressed mesh); other meshes are written as they are and the
        server then reports no mesh errors.
    """
    from .data.augment import crop_around
    from .data.ho3d import read_ho3d
    from .models.joints import NATIVE_TO_FREIHAND
    from .render.camera import project

    frames = read_ho3d(root, split)
    net, size = load_network(str(checkpoint), model_path)
    to_native = np.argsort(NATIVE_TO_FREIHAND)
    gl = np.diag([1.0, -1.0, -1.0])  # OpenCV <-> OpenGL camera (its own inverse)
    xyz, verts = [], []
    for start in range(0, len(frames), batch):
        chunk = frames[start : start + batch]
        crops, Ks, roots = [], [], []
        for f in chunk:
            if f.bbox is not None:
                box = np.asarray(f.bbox, dtype=np.float64).reshape(2, 2)
            elif f.joints3d is not None:
                box = project(torch.as_tensor(f.joints3d)[None], torch.as_tensor(f.K)[None])[0]
                box = box.numpy()
            else:
                raise DatasetError(f"{f.image}: neither handBoundingBox nor joints to crop at")
            root3 = f.root3d if f.joints3d is None else f.joints3d[0]
            if root3 is None:
                raise DatasetError(f"{f.image}: its meta file gives no root joint")
            crop, Kc = crop_around(read_rgb(f.image), f.K, box, size)
            crops.append(crop)
            Ks.append(Kc)
            roots.append(root3)
        x = torch.as_tensor(np.stack(crops), dtype=torch.float32).permute(0, 3, 1, 2) / 255.0
        with torch.no_grad():
            _, out = net(x, torch.as_tensor(np.stack(Ks), dtype=torch.float32))
        joints, mesh = hand_arrays(out)
        shift = np.stack(roots)[:, None] - joints[:, :1]
        xyz.append((joints + shift)[:, to_native] @ gl)
        verts.append((mesh + shift) @ gl)
        if progress:
            progress(start + len(chunk))
    return np.concatenate(xyz), np.concatenate(verts)
