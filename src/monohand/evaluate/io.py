"""Files of the evaluation: FreiHAND predictions and ground truth, the real-photo set.

- Prediction (FreiHAND's submission format): ``pred.json`` = ``[xyz_list (N,21,3),
  verts_list (N,V,3)]``, metres, camera frame. An empty ``verts_list`` means joints only.
- FreiHAND ground truth: ``{split}_xyz.json`` (N,21,3) and, if present, ``{split}_verts.json``
  (N,778,3) in one folder; ``split`` is ``evaluation`` or ``training``.
- Real-photo set (``annotations.json``, read by ``data.realhands``): the samples with
  ``joints3d`` (21,3) metres, in file order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson  # writes predictions of FreiHAND's size 2-3x faster than the stdlib

from ..atomic import atomic_write
from ..jsonfile import read_json, read_numeric_json
from .metrics import check_points


class EvalInputError(ValueError):
    """An evaluation input file is missing or malformed; the message names it."""


def _points(value, path: Path, what: str, n_points: int | None = None) -> np.ndarray:
    return check_points(value, f"{path}: {what}", n_points, EvalInputError)


def _read(path: Path, parts: bool):
    """The file's numbers as arrays (``parts``: a list of arrays, one per top-level entry)
    when it is a regular nested list of numbers; else its parsed JSON, for the checks."""
    if not path.is_file():
        raise EvalInputError(f"{path}: no such file")
    fast = read_numeric_json(path.read_bytes())
    if isinstance(fast, np.ndarray) and (not parts or fast.ndim > 1):
        return list(fast) if parts else fast
    if isinstance(fast, list) and parts:
        return fast
    return read_json(path, EvalInputError)


def load_prediction(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Read ``pred.json``. Returns xyz (N, 21, 3) and verts (N, V, 3) or None."""
    path = Path(path)
    data = _read(path, parts=True)
    form = "[xyz_list (N, 21, 3), verts_list (N, V, 3) or []]"
    if isinstance(data, dict):
        hint = ("; with these keys: [obj['xyz_list'], obj['verts_list']]"
                if "xyz_list" in data else "")  # fmt: skip
        raise EvalInputError(f"{path}: a JSON object; expected a list {form} (FreiHAND's "
                             f"format){hint}")  # fmt: skip
    if not isinstance(data, list) or len(data) not in (1, 2):
        got = (f"a list of {len(data)} items" if isinstance(data, list)
               else type(data).__name__)  # fmt: skip
        raise EvalInputError(f"{path}: expected a list of two, {form}, got {got} (a bare "
                             "xyz_list? write [xyz_list, []])")  # fmt: skip
    for part, name in zip(data, ("xyz_list", "verts_list"), strict=False):
        if isinstance(part, list) and (gaps := [i for i, x in enumerate(part) if x is None]):
            raise EvalInputError(f"{path}: {name}: sample {gaps[0]} is null"
                                 f"{f' (and {len(gaps) - 1} more)' if len(gaps) > 1 else ''}: "
                                 "every sample needs a prediction, as in FreiHAND's script (for "
                                 "a hand not found, a guess such as the mean hand)")  # fmt: skip
    xyz = _points(data[0], path, "xyz_list", 21)
    verts = None
    if len(data) == 2 and not isinstance(data[1], list | np.ndarray):
        raise EvalInputError(f"{path}: verts_list must be a list, got {type(data[1]).__name__}")
    if len(data) == 2 and len(data[1]):
        verts = _points(data[1], path, "verts_list")
        if len(verts) != len(xyz):
            raise EvalInputError(f"{path}: {len(xyz)} keypoint sets but {len(verts)} meshes")
    return xyz, verts


def save_prediction(path: str | Path, xyz: np.ndarray, verts: np.ndarray | None = None) -> Path:
    """Write ``pred.json`` atomically (FreiHAND's submission format)."""
    xyz_arr = np.ascontiguousarray(xyz, dtype=np.float64)
    verts_arr = [] if verts is None else np.ascontiguousarray(verts, dtype=np.float64)
    data = orjson.dumps([xyz_arr, verts_arr], option=orjson.OPT_SERIALIZE_NUMPY)
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def load_freihand_gt(
    gt_dir: str | Path, split: str = "evaluation", select: slice | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Read FreiHAND's ``{split}_xyz.json`` and ``{split}_verts.json`` (if present).

    Args:
        gt_dir: the folder holding the JSON files.
        split: "evaluation" or "training".
        select: a slice of sample ids (e.g. a validation range of the training split).
    Returns:
        xyz (N, 21, 3) and verts (N, 778, 3) or None.
    """
    if split not in ("evaluation", "training"):
        raise EvalInputError(f"split must be 'evaluation' or 'training', got {split!r}")
    gt_dir = Path(gt_dir)
    xyz_path, verts_path = gt_dir / f"{split}_xyz.json", gt_dir / f"{split}_verts.json"
    if not xyz_path.is_file() and (gt_dir / "annotations.json").is_file():
        raise EvalInputError(f"{xyz_path}: no such file; {gt_dir} holds annotations.json (a "
                             "real-photo set): give that file")  # fmt: skip
    raw = _read(xyz_path, parts=False)
    if isinstance(raw, list | np.ndarray) and len(raw) == 0:
        raise EvalInputError(f"{xyz_path}: the {split} split is empty (no sample to score)")
    xyz = _points(raw, xyz_path, "keypoints", 21)
    verts = None
    if verts_path.is_file():
        verts = _points(_read(verts_path, parts=False), verts_path, "vertices")
    if verts is not None and len(verts) != len(xyz):
        raise EvalInputError(f"{gt_dir}: {len(xyz)} keypoint sets but {len(verts)} meshes")
    if select is not None:
        xyz = xyz[select]
        verts = None if verts is None else verts[select]
    return xyz, verts


def load_realhands_joints(path: str | Path) -> np.ndarray:
    """(N, 21, 3) joints of the 3D-annotated samples of a real-photo annotation file."""
    from ..data.realhands import load_realhands

    try:
        samples = load_realhands(path, require_3d=True)
    except (FileNotFoundError, ValueError) as e:
        raise EvalInputError(str(e)) from e
    if not samples:
        raise EvalInputError(f"{path}: no sample has joints3d")
    return np.stack([s.joints3d for s in samples])


def count_samples(gt_dir: str | Path, split: str) -> int | None:
    """How many samples a FreiHAND folder's ``split`` holds (its joints file alone, not its
    far larger vertices), or None where it has no readable one."""
    try:
        return len(_read(Path(gt_dir) / f"{split}_xyz.json", parts=False))
    except (EvalInputError, ValueError, TypeError):
        return None


def load_ground_truth(
    gt: str | Path, split: str = "evaluation", select: slice | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """A FreiHAND folder or a real-photo ``annotations.json``: keypoints and vertices/None."""
    gt = Path(gt)
    if gt.is_dir():
        return load_freihand_gt(gt, split, select)
    xyz = load_realhands_joints(gt)
    return (xyz if select is None else xyz[select]), None
