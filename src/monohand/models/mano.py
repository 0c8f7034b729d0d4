"""The MANO hand model (Romero et al., 2017): loading its files safely, and the layer.

Reads the official ``MANO_RIGHT.pkl`` / ``MANO_LEFT.pkl`` (Python-2 pickles with chumpy and
scipy objects, see ``assets.load_pickle``) or the plain ``.npz`` written by
``monohand convert-model``. Either file alone serves both sides: the other side is its
mirror image (``skinned.mirror_data``).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from ..atomic import atomic_write
from .assets import AssetError, load_npz, load_pickle, save_npz
from .joints import MANO_PARENTS, MANO_TIP_VERTICES
from .skinned import SkinnedHand, SkinnedHandData, handedness, mirror_data

MANO_NUM_VERTICES = 778
MANO_NUM_FACES = 1538
MANO_NUM_JOINTS = 16
MANO_KEYS = (
    "v_template", "shapedirs", "posedirs", "J_regressor", "weights", "f",
    "kintree_table", "hands_components", "hands_mean",
)  # fmt: skip
# kintree_table stores the root's parent as uint32(-1).
_ROOT_PARENT_SENTINELS = (-1, 2**32 - 1)


def read_mano_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """The MANO keys of a ``.pkl`` (official) or ``.npz`` (converted) file, as dense arrays.

    Raises:
        AssetError: missing file, unsafe pickle, or missing keys (named).
    """
    path = Path(path)
    if path.name.startswith("NIMBLE_"):  # (its torch tensors read as an unsafe pickle)
        raise AssetError(f"{path}: a NIMBLE file, not MANO's: NIMBLE is read from the folder "
                         f"of its three files (--model nimble --model-path {path.parent}; "
                         f"convert-model {path.parent} ...)")  # fmt: skip
    if path.suffix == ".npz":
        raw = load_npz(path)
    elif path.suffix == ".pkl":
        raw = load_pickle(path)
        if not isinstance(raw, dict):
            raise AssetError(f"{path}: expected a dict of MANO arrays, got {type(raw).__name__}")
    else:
        raise AssetError(f"{path}: expected a MANO .pkl or a converted .npz file")
    missing = [k for k in MANO_KEYS if k not in raw]
    if missing:
        raise AssetError(f"{path}: not a MANO model file, missing keys {missing}")
    out = {}
    for k in MANO_KEYS:
        v = raw[k]
        out[k] = np.asarray(v.toarray() if sp.issparse(v) else v)
    return out


def mano_data_from_arrays(
    arrays: dict[str, np.ndarray], source: str = "<arrays>"
) -> SkinnedHandData:
    """Validate MANO arrays and wrap them as ``SkinnedHandData`` (side detected from geometry).

    Raises:
        AssetError: a wrong shape or an inconsistent kinematic tree, naming the key.
    """

    def want(key: str, shape: tuple[int, ...]) -> np.ndarray:
        a = np.asarray(arrays[key])
        if a.shape != shape:
            raise AssetError(f"{source}: '{key}' has shape {a.shape}, MANO has {shape}")
        return a

    v, j = MANO_NUM_VERTICES, MANO_NUM_JOINTS
    v_template = want("v_template", (v, 3)).astype(np.float64)
    shapedirs = np.asarray(arrays["shapedirs"], dtype=np.float64)
    if shapedirs.ndim != 3 or shapedirs.shape[:2] != (v, 3) or shapedirs.shape[2] < 1:
        raise AssetError(
            f"{source}: 'shapedirs' has shape {shapedirs.shape}, MANO has (778, 3, 10)"
        )
    posedirs = want("posedirs", (v, 3, (j - 1) * 9)).astype(np.float64)
    j_regressor = want("J_regressor", (j, v)).astype(np.float64)
    weights = want("weights", (v, j)).astype(np.float64)
    faces = want("f", (MANO_NUM_FACES, 3)).astype(np.int64)
    kintree = want("kintree_table", (2, j)).astype(np.int64)
    parents = kintree[0].copy()
    if parents[0] not in _ROOT_PARENT_SENTINELS or tuple(parents[1:]) != MANO_PARENTS[1:]:
        raise AssetError(
            f"{source}: 'kintree_table' is not MANO's tree: parents {parents.tolist()}"
        )
    parents[0] = -1
    comps = np.asarray(arrays["hands_components"], dtype=np.float64)
    if comps.ndim != 2 or comps.shape[1] != (j - 1) * 3:
        raise AssetError(f"{source}: 'hands_components' has shape {comps.shape}, MANO has (45, 45)")
    hands_mean = want("hands_mean", ((j - 1) * 3,)).astype(np.float64)
    try:
        data = SkinnedHandData(
            v_template=v_template, shapedirs=shapedirs, posedirs=posedirs,
            j_regressor=j_regressor, parents=parents, weights=weights, faces=faces,
            tip_vertices=np.asarray(MANO_TIP_VERTICES, dtype=np.int64), hands_mean=hands_mean,
            hands_components=comps, side="right", name="mano", source=source,
        )  # fmt: skip
    except ValueError as e:
        raise AssetError(str(e)) from e
    side = handedness(data)
    return data if side == "right" else replace(data, side=side)


def _resolve_model_path(path: str | Path, side: str) -> Path:
    """A file is used as is; a folder is searched for MANO_{SIDE}.pkl/.npz, then the other
    side's (``load_mano_data`` mirrors it)."""
    path = Path(path)
    if path.is_dir():
        other = "LEFT" if side == "right" else "RIGHT"
        names = [f"MANO_{side.upper()}.pkl", f"MANO_{side.upper()}.npz", f"MANO_{other}.pkl",
                 f"MANO_{other}.npz"]  # fmt: skip
        for name in names:
            if (path / name).is_file():
                return path / name
        raise AssetError(f"{path}: no MANO model file in this folder (looked for "
                         f"{', '.join(names)})")  # fmt: skip
    if not path.is_file():
        raise AssetError(f"{path}: no such file")
    return path


def load_mano_data(path: str | Path, side: str = "right") -> SkinnedHandData:
    """Load MANO for ``side``: the file itself if it is that hand, else its mirror image
    (``skinned.mirror_data``: a left hand from MANO_RIGHT, or a right one from MANO_LEFT).

    Raises:
        AssetError: any problem with the file.
    """
    if side not in ("right", "left"):
        raise ValueError(f"side must be 'right' or 'left', got {side!r}")
    path = _resolve_model_path(path, side)
    data = mano_data_from_arrays(read_mano_arrays(path), str(path))
    return data if data.side == side else mirror_data(data)


class MANO(SkinnedHand):
    """MANO layer: 778 vertices, 16 native joints, 21 FreiHAND-order keypoints, metres.

    Args:
        path: ``MANO_RIGHT.pkl``/``MANO_LEFT.pkl``, a converted ``.npz``, or a folder with them.
        use_pca, num_pca_comps, flat_hand_mean, num_betas, dtype: see ``SkinnedHand``.
        side: "right" or "left" (mirrored from the other side's file where this side's is
            not given).

    Example::

        mano = MANO("models/MANO_RIGHT.pkl")
        out = mano(global_orient=torch.zeros(2, 3), hand_pose=torch.zeros(2, 45))
        out.vertices.shape  # (2, 778, 3)
    """

    def __init__(
        self,
        path: str | Path,
        use_pca: bool = False,
        num_pca_comps: int = 45,
        flat_hand_mean: bool = True,
        side: str = "right",
        num_betas: int = 10,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__(
            load_mano_data(path, side), use_pca=use_pca, num_pca_comps=num_pca_comps,
            flat_hand_mean=flat_hand_mean, num_betas=num_betas, dtype=dtype,
        )  # fmt: skip


def convert_mano(src: str | Path, dst: str | Path) -> Path:
    """Write a MANO ``.pkl`` as a plain ``.npz`` (same keys, dense J_regressor, no pickle).

    The file is validated first; the output is written atomically.
    """
    arrays = read_mano_arrays(src)
    mano_data_from_arrays(arrays, str(src))
    dst = Path(dst)
    save_npz(dst, arrays)
    return dst


def save_mano_layout(path: str | Path, data: SkinnedHandData) -> Path:
    """Write a MANO-layout model (e.g. OpenHand) as a ``.pkl`` that MANO tools can read.

    Plain NumPy arrays only (no chumpy, dense ``J_regressor``), protocol 2, MANO's key names
    (``f``, ``kintree_table`` with the root's parent 4294967295, zero ``posedirs`` when the
    model has none). Written atomically.
    """
    import pickle

    v, j = data.v_template.shape[0], data.parents.shape[0]
    posedirs = data.posedirs if data.posedirs is not None else np.zeros((v, 3, (j - 1) * 9))
    parents = data.parents.astype(np.int64).copy()
    parents[0] = 2**32 - 1
    out = {
        "v_template": data.v_template, "f": data.faces.astype(np.uint32),
        "weights": data.weights, "J_regressor": data.j_regressor,
        "J": data.rest_joints, "shapedirs": data.shapedirs, "posedirs": posedirs,
        "kintree_table": np.stack([parents, np.arange(j)]),
        "hands_components": data.hands_components, "hands_mean": data.hands_mean,
        "hands_coeffs": np.zeros((1, data.hands_components.shape[0])),
        "bs_style": "lbs", "bs_type": "lrotmin",
    }  # fmt: skip
    data_bytes = pickle.dumps(out, protocol=2)
    return atomic_write(path, lambda tmp: tmp.write_bytes(data_bytes))
