"""The real-photo benchmark format (``../shared/data/realhands/annotations.json``).

``{"joint_order": [...], "units": ..., "samples": [...]}``; each sample has ``image`` (relative
to the file's folder), ``K`` (3x3 or null), ``joints3d`` (21x3 metres, OpenCV camera, or null),
``joints2d`` (21x2 pixels), ``hand`` (left/right as seen in the unmirrored photo), ``source``,
``license`` and optionally ``visible``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class RealHandSample:
    image: Path
    joints2d: np.ndarray  # (21, 2)
    hand: str
    source: str
    K: np.ndarray | None = None  # (3, 3)
    joints3d: np.ndarray | None = None  # (21, 3)


def load_realhands(path: str | Path, require_3d: bool = False) -> list[RealHandSample]:
    """Read the samples (all, or only those with 3D joints), in file order."""
    path = Path(path)
    if path.is_dir():
        hint = " (its annotations.json?)" if (path / "annotations.json").is_file() else ""
        raise FileNotFoundError(f"{path}: a folder, not an annotations file{hint}")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        data = json.loads(path.read_text())
        samples = data["samples"]
    except (ValueError, KeyError, TypeError) as e:
        why = (f"its JSON does not parse: {e}" if isinstance(e, ValueError)
               else "no \"samples\" list at its top")  # fmt: skip
        if path.name.endswith(("_xyz.json", "_K.json", "_verts.json")):
            why += ("; a FreiHAND-layout set's file: such a set is scored by monohand evaluate, "
                    "given its folder")  # fmt: skip
        raise ValueError(f"{path}: not a real-photo annotation file ({why})") from e
    if not isinstance(samples, list):
        raise ValueError(f"{path}: 'samples' must be a list, got {type(samples).__name__}")
    out = []
    for i, s in enumerate(samples):
        if not isinstance(s, dict) or not isinstance(s.get("image"), str):
            raise ValueError(f"{path}: sample {i} must be an object with an 'image' path")
        if require_3d and s.get("joints3d") is None:
            continue
        where = f"{path}: sample {i} ({s['image']})"
        if "joints2d" not in s:
            raise ValueError(f"{where}: missing key 'joints2d'")
        try:
            j2 = np.asarray(s["joints2d"], dtype=float)
            j3 = None if s.get("joints3d") is None else np.asarray(s["joints3d"], dtype=float)
            K = None if s.get("K") is None else np.asarray(s["K"], dtype=float)
        except (ValueError, TypeError) as e:
            raise ValueError(f"{where}: not numbers ({e})") from e
        if j2.shape != (21, 2) or (j3 is not None and j3.shape != (21, 3)):
            raise ValueError(f"{where}: has joints2d {j2.shape}, joints3d "
                             f"{None if j3 is None else j3.shape}; expected (21, 2), "
                             "(21, 3)")  # fmt: skip
        if K is not None and K.shape != (3, 3):
            raise ValueError(f"{where}: K has shape {K.shape}, expected (3, 3)")
        bad = [n for n, a in (("joints2d", j2), ("joints3d", j3), ("K", K))
               if a is not None and not np.isfinite(a).all()]  # fmt: skip
        if bad:
            raise ValueError(f"{where}: {', '.join(bad)} not finite (NaN or inf)")
        if s.get("hand", "right") not in ("left", "right"):
            raise ValueError(f"{where}: hand must be 'left' or 'right', got {s['hand']!r}")
        out.append(RealHandSample(path.parent / s["image"], j2, s.get("hand", "right"),
                                  s.get("source", ""), K, j3))  # fmt: skip
    return out
