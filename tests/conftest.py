"""Test fixtures: MANO-format model files made from random but well-formed arrays.

MANO itself cannot be downloaded or shipped, so the tests write files in its real format: a
Python-2 protocol-2 pickle whose strings are Python-2 ``str`` opcodes, whose arrays are
``chumpy.ch.Ch`` objects (``shapedirs`` a ``chumpy.reordering.Select`` view of 20 components),
``J_regressor`` a scipy sparse matrix and the root's parent 4294967295. chumpy is not
installed: stand-in classes with chumpy's module names exist only while the file is written.
"""

from __future__ import annotations

import io
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

V, F, J = 778, 1538, 16
PARENTS = [-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14]

# A MANO-like rest layout (right hand, MANO's frame: fingers to -x, index +z, little -z).
_JOINTS = np.array(
    [
        [0.095, 0.006, 0.006],
        [0.008, 0.001, 0.027], [-0.025, 0.005, 0.029], [-0.047, 0.004, 0.029],
        [0.001, 0.005, 0.003], [-0.030, 0.007, -0.003], [-0.053, 0.006, -0.007],
        [0.027, -0.004, -0.037], [0.010, -0.003, -0.050], [-0.006, -0.004, -0.060],
        [0.014, 0.002, -0.018], [-0.012, 0.003, -0.027], [-0.034, 0.002, -0.032],
        [0.071, -0.010, 0.025], [0.052, -0.013, 0.045], [0.030, -0.017, 0.059],
    ]
)  # fmt: skip


def make_mano_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    """Random arrays with MANO's shapes and invariants (dense J_regressor, right hand)."""
    rng = np.random.default_rng(seed)
    owner = rng.integers(0, J, size=V)
    v_template = _JOINTS[owner] + rng.normal(scale=0.008, size=(V, 3))
    faces = np.stack([rng.choice(V, size=3, replace=False) for _ in range(F)])
    # Skinning weights: mostly the owning joint, some on its parent and a random third one.
    weights = np.zeros((V, J))
    weights[np.arange(V), owner] = 1.0 + rng.random(V)
    par = np.array([max(PARENTS[o], 0) for o in owner])
    weights[np.arange(V), par] += rng.random(V)
    weights[np.arange(V), rng.integers(0, J, size=V)] += 0.2 * rng.random(V)
    weights /= weights.sum(1, keepdims=True)
    # Sparse joint regressor: each joint averages ~12 of its own vertices, rows sum to 1.
    jreg = np.zeros((J, V))
    for j in range(J):
        idx = rng.choice(np.flatnonzero(owner == j), size=12, replace=False)
        w = rng.random(12) + 0.1
        jreg[j, idx] = w / w.sum()
    q, _ = np.linalg.qr(rng.normal(size=(45, 45)))
    return {
        "v_template": v_template,
        "f": faces.astype(np.uint32),
        "weights": weights,
        "J_regressor": jreg,
        "shapedirs": rng.normal(scale=0.003, size=(V, 3, 10)),
        "posedirs": rng.normal(scale=0.002, size=(V, 3, 135)),
        "hands_components": q.T * rng.uniform(0.2, 1.0, size=(45, 1)),
        "hands_mean": rng.normal(scale=0.2, size=45),
        "kintree_table": np.array([[2**32 - 1] + PARENTS[1:], list(range(J))], dtype=np.int64),
    }


def mirror_arrays(a: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """What a left-hand file looks like: the right one mirrored in x."""
    out = dict(a)
    out["v_template"] = a["v_template"] * [-1, 1, 1]
    out["f"] = a["f"][:, [0, 2, 1]]
    return out


class _Py2Pickler(pickle._Pickler):
    """Protocol-2 pickler that writes bytes as Python-2 ``str`` opcodes, as MANO's files do."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_bytes(self, obj: bytes) -> None:
        n = len(obj)
        if n < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([n]) + obj)
        else:
            self.write(pickle.BINSTRING + n.to_bytes(4, "little") + obj)
        self.memoize(obj)

    dispatch[bytes] = save_bytes


def _fake_chumpy() -> dict[str, types.ModuleType]:
    ch = types.ModuleType("chumpy.ch")
    reordering = types.ModuleType("chumpy.reordering")
    root = types.ModuleType("chumpy")

    class Ch:  # noqa: D401 - stand-in named like chumpy's class
        pass

    class Select:
        pass

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    Select.__module__, Select.__qualname__ = "chumpy.reordering", "Select"
    ch.Ch, reordering.Select = Ch, Select
    root.ch, root.reordering = ch, reordering
    return {"chumpy": root, "chumpy.ch": ch, "chumpy.reordering": reordering}


def write_mano_pkl(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    """Write ``arrays`` as an official-format MANO pickle (see the module doc)."""
    mods = _fake_chumpy()
    saved = {k: sys.modules.get(k) for k in mods}
    sys.modules.update(mods)
    try:
        Ch, Select = mods["chumpy.ch"].Ch, mods["chumpy.reordering"].Select

        def ch(x: np.ndarray):
            o = Ch()
            o.__dict__.update({"x": np.asarray(x), "_dirty_vars": set(), "_itr": None})
            return o

        full = np.concatenate([arrays["shapedirs"], np.zeros(arrays["shapedirs"].shape)], axis=2)
        sel = Select()
        idx = np.arange(full.size).reshape(full.shape)[:, :, :10].ravel()
        sel.__dict__.update({"a": ch(full), "idxs": idx, "preferred_shape": (V, 3, 10)})
        d = {
            "v_template": ch(arrays["v_template"]),
            "weights": ch(arrays["weights"]),
            "posedirs": ch(arrays["posedirs"]),
            "shapedirs": sel,
            "J": ch(arrays["J_regressor"] @ arrays["v_template"]),
            "J_regressor": sp.csc_matrix(arrays["J_regressor"]),
            "f": arrays["f"],
            "kintree_table": arrays["kintree_table"],
            "hands_components": arrays["hands_components"],
            "hands_coeffs": np.zeros((10, 45)),
            "hands_mean": arrays["hands_mean"],
            "bs_style": "lbs",
            "bs_type": "lrotmin",
        }
        buf = io.BytesIO()
        _Py2Pickler(buf, protocol=2).dump(d)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    raw = buf.getvalue()
    # Python 2 module names for the classes the real files reference.
    raw = raw.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")
    raw = raw.replace(b"scipy.sparse._csc\n", b"scipy.sparse.csc\n")
    path.write_bytes(raw)
    return path


@pytest.fixture(scope="session")
def mano_arrays() -> dict[str, np.ndarray]:
    return make_mano_arrays(0)


@pytest.fixture(scope="session")
def mano_pkl(tmp_path_factory, mano_arrays) -> Path:
    return write_mano_pkl(tmp_path_factory.mktemp("mano") / "MANO_RIGHT.pkl", mano_arrays)


@pytest.fixture(scope="session")
def mano_npz(tmp_path_factory, mano_arrays) -> Path:
    path = tmp_path_factory.mktemp("mano_npz") / "MANO_RIGHT.npz"
    np.savez(path, **mano_arrays)
    return path
