"""Detection files. S2HAND's, the exchange format of 2D keypoint labels (OpenPose's layout):
``[xy (N,21,2) pixels, values (N,21,1) confidences, filenames (N,1)]``. ``save_detections``
writes it (``monohand detect``, the MediaPipe labels of a training set), ``load_detections``
reads it (training, ``predict``'s crops), ``detections_by_name`` finds an image's hand in it.
And OpenPose's own per-image JSON (``--write_json``): ``load_openpose_hands``, the hands
``monohand reconstruct --keypoints`` takes in MediaPipe's place.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..atomic import atomic_write
from .detection import NUM_JOINTS, HandDetection


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


# -- OpenPose's own per-image JSON (``--write_json``) ---------------------------------------

# OpenPose's hand keypoints are FreiHAND's order (wrist; thumb, index, middle, ring, little,
# each from the palm out); "left" is the person's left hand, as monohand's sides are.
_OPENPOSE_HANDS = (("hand_right_keypoints_2d", "right"), ("hand_left_keypoints_2d", "left"))
# A hand is taken where its wrist and middle knuckle (the hand's size) and at least this many
# joints were found: OpenPose writes a hand it did not find as zeros.
MIN_FOUND_JOINTS = 10


def openpose_file_for(image: str | Path, keypoints: str | Path) -> Path:
    """The OpenPose JSON of ``image``: ``keypoints`` itself when it is a file, else the
    ``<stem>_keypoints.json`` that OpenPose's ``--write_json`` writes into that folder."""
    keypoints = Path(keypoints)
    return keypoints if keypoints.is_file() else keypoints / f"{Path(image).stem}_keypoints.json"


def load_openpose_hands(path: str | Path, left_out: list[str] | None = None
                        ) -> list[HandDetection]:  # fmt: skip
    """The hands of an OpenPose ``--write_json`` file (``{"people": [{"hand_right_keypoints_2d":
    [x0, y0, c0, ...], "hand_left_keypoints_2d": [...]}, ...]}``, pixels of the image: OpenPose's
    default ``--keypoint_scale 0``) as ``HandDetection``s, the best first (by ``score``: the
    mean confidence of its found joints, not a side's probability); no world landmarks. A hand
    needs its wrist, its middle knuckle (apart) and ``MIN_FOUND_JOINTS`` joints found
    (confidence > 0) spanning 2 pixels; a joint not found gets confidence 0 and the found
    joints' centre, so that it moves no crop (the fit's PnP start leaves it out; the output's
    ``keypoints2d_detected`` shows it there). A hand that two people's skeletons claim
    (their readings' joints within ``CLAIMED_TWICE`` hand sizes, of either side) is kept
    once, the better reading. ``left_out``: a list to which each hand the file gives but
    that is not taken is added, with why ("people[0].hand_right_keypoints_2d: without its
    wrist"; a hand OpenPose wrote as zeros, not found, is not one). Raises ValueError
    naming the file and what is wrong (a file with people but no hand keypoints at all:
    OpenPose run without ``--hand``)."""
    from ..jsonfile import read_json

    path = Path(path)
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("people"), list):
        s2hand = isinstance(data, list) and len(data) == 3
        raise ValueError(f"{path}: not an OpenPose keypoints file (no \"people\" list)" + (
            "; it looks like a detections file ([xy, values, filenames], monohand detect's), "
            "which training and predict read" if s2hand else ""))  # fmt: skip
    hands, lists = [], 0
    for p, person in enumerate(data["people"]):
        if not isinstance(person, dict):
            raise ValueError(f"{path}: people[{p}]: expected an object of keypoint lists, got "
                             f"{type(person).__name__}")  # fmt: skip
        for key, side in _OPENPOSE_HANDS:
            # (OpenPose before 1.2 named them without the "_2d")
            key = key if key in person else key.removesuffix("_2d")
            values = person.get(key)
            if not values:  # (empty without --hand)
                continue
            lists += 1
            try:
                a = np.asarray(values, dtype=float).reshape(NUM_JOINTS, 3)
            except (ValueError, TypeError) as e:
                raise ValueError(f"{path}: people[{p}].{key}: expected 63 numbers (x, y, c for "
                                 f"21 joints), got {np.size(values)}") from e  # fmt: skip
            if not np.isfinite(a).all():
                raise ValueError(f"{path}: people[{p}].{key}: not finite")
            xy, conf = a[:, :2], np.clip(a[:, 2], 0.0, 1.0)
            found = conf > 0
            if not (found[0] and found[9] and found.sum() >= MIN_FOUND_JOINTS):
                if found.any() and left_out is not None:  # (all zeros: no hand there at all)
                    lacks = [w for w, ok in (("its wrist", found[0]), ("its middle knuckle",
                             found[9]), (f"{MIN_FOUND_JOINTS} joints (it has {found.sum()})",
                             found.sum() >= MIN_FOUND_JOINTS)) if not ok]  # fmt: skip
                    left_out.append(f"people[{p}].{key}: without {' and '.join(lacks)}")
                continue
            if (xy[found] <= 1.5).all() and (xy[found] >= -1.5).all():
                raise ValueError(f"{path}: people[{p}].{key}: coordinates in [-1, 1]: written "
                                 f"with --keypoint_scale other than 0? monohand needs "
                                 f"pixels")  # fmt: skip
            span = (xy[found].max(0) - xy[found].min(0)).max()
            if span < 2.0 or np.linalg.norm(xy[9] - xy[0]) == 0:  # (a hand in one spot)
                if left_out is not None:
                    left_out.append(f"people[{p}].{key}: its joints in one spot")
                continue
            xy[~found] = xy[found].mean(0)
            hands.append(HandDetection(xy, conf, float(conf[found].mean()), side))
    if data["people"] and not lists:
        n = len(data["people"])
        raise ValueError(f"{path}: {n} {'person' if n == 1 else 'people'} but no hand keypoints "
                         f"(OpenPose writes them with --hand)")  # fmt: skip
    # Two people's skeletons can claim one hand (people overlapping), as the same side or
    # not: the better reading kept. Only readings of nearly the same joints are one hand:
    # two people's hands that shake overlap, their joints apart.
    kept: list[HandDetection] = []
    for h in sorted(hands, key=lambda h: -h.score):
        if not any(_claimed_twice(h, k) for k in kept):
            kept.append(h)
    return kept


# Two readings of one hand's joints lie within this share of its size of each other, on
# average over the joints both found (OpenPose's own jitter between two people's readings
# is a few pixels; a neighbouring hand's joints are half a hand size away or more).
CLAIMED_TWICE = 0.25


def _claimed_twice(a: HandDetection, b: HandDetection) -> bool:
    both = (a.confidence > 0) & (b.confidence > 0)
    apart = np.linalg.norm(a.keypoints[both] - b.keypoints[both], axis=1).mean()
    return bool(apart < CLAIMED_TWICE * max(a.size, b.size))
