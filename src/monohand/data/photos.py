"""Real photos without 3D labels as a training set: S2HAND's self-supervision on photos.

``import_photos`` turns a folder of photos into a *photo set*, FreiHAND's layout without the
3D files: ``training/rgb/%08d.jpg`` (the photos whose hand MediaPipe finds, re-encoded as
JPEG), ``training_K.json`` (each photo's camera: its EXIF focal length, else the default
field of view, as ``reconstruct`` guesses it), ``detections_mediapipe.json`` (the detector's
21 keypoints with per-joint confidences, the labels) and ``photo_set.json`` (each image's
source file and the collection's licence, as given). ``FreiHANDDataset`` reads it with
``has_3d`` = 0, and training takes it beside a synthetic set (``data.photos``): 2D keypoint
and bone-orientation terms against the detector, weighted by its confidences; no 3D terms.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from .freihand import PHOTO_SET_FILE

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


@dataclass
class PhotoImport:
    """What ``import_photos`` did: images kept (a hand found), looked at, unreadable."""

    root: Path
    kept: int
    seen: int
    unreadable: int


def list_photos(sources: list[Path]) -> list[Path]:
    """Image files under ``sources`` (files or folders, searched recursively), sorted."""
    files: list[Path] = []
    for s in sources:
        if s.is_dir():
            files += [p for p in s.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES]
        elif s.is_file():
            files.append(s)
        else:
            raise FileNotFoundError(f"{s}: no such file or folder")
    return sorted(set(files))


def import_photos(sources: list[Path], out: Path, licence: str = "", overwrite: bool = False,
                  tta: bool = True, progress=None) -> PhotoImport:  # fmt: skip
    """Label the photos under ``sources`` with MediaPipe (one hand each, its augmented
    copies for the confidences unless ``tta`` is off) and write those with a hand found as a
    photo set at ``out`` (see the module doc; written to a temporary folder, then renamed).

    Args:
        licence: the collection's source and licence, kept in ``photo_set.json``.
        progress: called with the number of photos labelled so far.
    """
    from .images import ImageError, read_rgb
    from .intrinsics import camera_for_image
    from .keypoints import detect_files, save_detections

    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out}: exists (overwrite it with --overwrite)")
    files = list_photos([Path(s) for s in sources])
    if not files:
        where = ", ".join(map(str, sources))
        raise ValueError(f"no images ({', '.join(IMAGE_SUFFIXES)}) under {where}")
    xy, conf, names, unreadable, _ = detect_files(files, max_hands=1, tta=tta, progress=progress)
    found = [k for k in range(len(names)) if conf[k].max() > 0]
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "training" / "rgb").mkdir(parents=True)
    Ks, kept_names, sources_out, keep = [], [], [], []
    from PIL import Image

    for k in found:
        src = Path(names[k])
        try:
            image = read_rgb(src)
        except ImageError:  # readable for the detector, then not: skip it
            continue
        name = f"{len(kept_names):08d}.jpg"
        Image.fromarray(image).save(tmp / "training" / "rgb" / name, "JPEG", quality=95)
        K, _ = camera_for_image(src, image.shape[:2])
        Ks.append(K.tolist())
        kept_names.append(name)
        keep.append(k)
        sources_out.append({"image": name, "source": str(src)})
    if not kept_names:
        shutil.rmtree(tmp)
        raise ValueError(f"MediaPipe found no hand in the {len(files)} images")
    (tmp / "training_K.json").write_text(json.dumps(Ks))
    save_detections(tmp / "detections_mediapipe.json", xy[keep], conf[keep], kept_names)
    (tmp / PHOTO_SET_FILE).write_text(json.dumps(
        {"licence": licence, "images": sources_out, "seen": len(files),
         "unreadable": unreadable}, indent=1))  # fmt: skip
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return PhotoImport(out, len(kept_names), len(files), unreadable)


def read_photo_set(root: str | Path) -> dict:
    """``photo_set.json`` of a photo set (its sources and licence)."""
    path = Path(root) / PHOTO_SET_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not a photo set (made by monohand import-photos)")
    return json.loads(path.read_text())

