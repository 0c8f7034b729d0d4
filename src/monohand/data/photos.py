"""Real photos without 3D labels as a training set: S2HAND's self-supervision on photos.

``import_photos`` turns a folder of photos into a *photo set*, FreiHAND's layout without the
3D files: ``training/rgb/%08d.jpg`` (the photos whose hand MediaPipe finds, re-encoded as
JPEG), ``training_K.json`` (each photo's camera: its EXIF focal length, else the default
field of view, as ``reconstruct`` guesses it), ``detections_mediapipe.json`` (the detector's
21 keypoints with per-joint confidences, the labels) and ``photo_set.json`` (each image's
source file and the collection's licence, as given). ``FreiHANDDataset`` reads it with
``has_3d`` = 0, and training takes it beside a synthetic set (``data.photos``): 2D keypoint
and bone-orientation terms against the detector, weighted by its confidences (S2HAND's
"self-supervision": a detector's output, no human label); no 3D terms. Left hands are
stored mirrored, as right hands.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..jsonfile import read_json
from .freihand import DETECTIONS_FILE, PHOTO_SET_FILE, DatasetError
from .images import IMAGE_SUFFIXES


@dataclass
class PhotoImport:
    """What ``import_photos`` did: the set written, how many images it keeps (a hand found)
    of those looked at, and the ones it left out: "FILE: why" for each unreadable image, and
    the files in which MediaPipe found no hand."""

    root: Path
    kept: int
    seen: int
    unreadable: list[str]
    no_hand: list[str]


def list_photos(sources: list[Path], exclude: Path | None = None) -> list[Path]:
    """Image files under ``sources`` (files or folders, searched recursively), sorted; none
    inside a photo set (a folder holding ``photo_set.json``: an earlier import, which a
    folder of sources may hold) or under ``exclude`` (the set being written);
    ``FileNotFoundError`` naming a source that is not there, ``ValueError`` when there is no
    image."""
    files: list[Path] = []
    skip = [] if exclude is None else [exclude.resolve()]
    for s in sources:
        if s.is_dir():
            skip += [m.parent.resolve() for m in s.rglob(PHOTO_SET_FILE)]
            files += [p for p in s.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
        elif s.is_file():
            files.append(s)
        else:
            raise FileNotFoundError(f"{s}: no such file or folder")
    files = [f for f in files if not any(f.resolve().is_relative_to(x) for x in skip)]
    if not files:
        raise ValueError(f"no images ({', '.join(IMAGE_SUFFIXES)}) under "
                         f"{', '.join(map(str, sources))}")  # fmt: skip
    return sorted(set(files))


def check_out_dir(sources: list[Path], out: Path, overwrite: bool) -> None:
    """Refuse an output folder that would take the sources with it, or that ``overwrite``
    would replace though it is no photo set (it removes the folder whole)."""
    if out.is_symlink():
        raise FileExistsError(f"{out}: a symbolic link; give the folder itself")
    o = out.resolve()
    for s in sources:
        if Path(s).resolve() == o or Path(s).resolve().is_relative_to(o):
            raise ValueError(f"{out}: holds the photos being imported ({s}); write the set to "
                             "another folder")  # fmt: skip
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out}: exists (overwrite it with --overwrite)")
    if out.exists() and not (out.is_dir() and ((out / PHOTO_SET_FILE).is_file()
                                               or not any(out.iterdir()))):  # fmt: skip
        raise FileExistsError(f"{out}: not a photo set (no {PHOTO_SET_FILE}); --overwrite "
                              "replaces only a set made by import-photos: choose another "
                              "folder")  # fmt: skip


def mirror_photo(image: np.ndarray, K: np.ndarray, keypoints: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """The left-right mirror image of a photo (H, W, 3), its K (3, 3) and 2D keypoints
    (21, 2), pixel centres at integers: x -> W - 1 - x, and cx with it."""
    w = image.shape[1]
    K = K.copy()
    K[0, 2] = w - 1 - K[0, 2]
    return image[:, ::-1].copy(), K, np.stack([w - 1 - keypoints[:, 0], keypoints[:, 1]], 1)


def import_photos(sources: list[Path], out: Path, licence: str = "", overwrite: bool = False,
                  tta: bool = True, progress=None) -> PhotoImport:  # fmt: skip
    """Label the photos under ``sources`` with MediaPipe (one hand each, its augmented
    copies for the confidences unless ``tta`` is off) and write those with a hand found as a
    photo set at ``out`` (see the module doc; written to a temporary folder, then renamed).
    A left hand is stored mirrored, with its keypoints and K, so that every photo shows a
    right hand as the network (and the synthetic data) does (``"mirrored"`` in
    ``photo_set.json``).

    Args:
        licence: the collection's source and licence, kept in ``photo_set.json``.
        progress: called with the number of photos labelled so far and their total.
    """
    from PIL import Image

    from .detection_file import save_detections
    from .images import ImageError, read_rgb
    from .intrinsics import camera_for_image
    from .mediapipe_hands import TTA_VIEWS, MediaPipeHands

    out = Path(out)
    sources = [Path(s) for s in sources]
    check_out_dir(sources, out, overwrite)
    files = list_photos(sources, exclude=out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # a fresh folder of its own beside ``out`` (never a folder of the user's that happens to
    # bear a fixed name), renamed into place once complete
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        (tmp / "training" / "rgb").mkdir(parents=True)
        Ks, xy, conf, names, images = [], [], [], [], []
        unreadable: list[str] = []
        no_hand: list[str] = []
        views = TTA_VIEWS if tta else ()
        with MediaPipeHands(max_hands=1, tta=views) as det:
            for k, src in enumerate(files):
                try:
                    image = read_rgb(src)
                except ImageError as e:
                    unreadable.append(str(e))
                    if progress:
                        progress(k + 1, len(files))
                    continue
                hands = det.detect(image)[:1]
                if not hands:
                    no_hand.append(str(src))
                if hands:
                    h = hands[0]
                    K, _ = camera_for_image(src, image.shape[:2])
                    kp, left = h.keypoints, h.side == "left"
                    if left:
                        image, K, kp = mirror_photo(image, K, kp)
                    name = f"{len(names):08d}.jpg"
                    Image.fromarray(image).save(tmp / "training" / "rgb" / name, "JPEG",
                                                quality=95)  # fmt: skip
                    Ks.append(K.tolist())
                    xy.append(kp)
                    conf.append(h.confidence)
                    names.append(name)
                    images.append({"image": name, "source": str(src), "mirrored": left})
                if progress:
                    progress(k + 1, len(files))
        if len(unreadable) == len(files):
            raise ValueError(f"none of the {len(files)} images could be read: "
                             f"{'; '.join(unreadable[:3])}")  # fmt: skip
        if not names:
            raise ValueError(f"MediaPipe found no hand in the {len(files) - len(unreadable)} "
                             "readable images" + (f" ({len(unreadable)} more unreadable)"
                                                  if unreadable else ""))  # fmt: skip
        (tmp / "training_K.json").write_text(json.dumps(Ks))
        save_detections(tmp / DETECTIONS_FILE, np.stack(xy), np.stack(conf), names)
        (tmp / PHOTO_SET_FILE).write_text(json.dumps(
            {"licence": licence, "images": images, "seen": len(files),
             "unreadable": len(unreadable), "left_out": {"unreadable": unreadable,
                                                         "no_hand": no_hand}},
            indent=1))  # fmt: skip
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return PhotoImport(out, len(names), len(files), unreadable, no_hand)


def read_photo_set(root: str | Path) -> dict:
    """``photo_set.json`` of a photo set (its sources and licence)."""
    path = Path(root) / PHOTO_SET_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not a photo set (made by monohand import-photos)")
    return read_json(path, DatasetError)

