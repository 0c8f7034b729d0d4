"""Test fixtures: MANO-format model files made from random but well-formed arrays.

MANO itself cannot be downloaded or shipped, so the tests write files in its real format: a
Python-2 protocol-2 pickle whose strings are Python-2 ``str`` opcodes, whose arrays are
``chumpy.ch.Ch`` objects (``shapedirs`` a ``chumpy.reordering.Select`` view of 20 components),
``J_regressor`` a scipy sparse matrix and the root's parent 4294967295. chumpy is not
installed: stand-in classes with chumpy's module names exist only while the file is written.
"""

from __future__ import annotations

import io
import os
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

# The training tests' tiny synthetic set (``data_root``), shared by test_train and test_predict.
pytest_plugins = ("trainkit",)

# The CLI's rich consoles wrap at the terminal's width; under CliRunner that is 80 columns,
# which splits long temporary paths in messages the tests look for.
os.environ.setdefault("COLUMNS", "300")

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


def _random_faces(rng: np.random.Generator) -> np.ndarray:
    """F random triangles of V vertices in which no edge has more than two faces (the
    surfaces monohand accepts are manifold; ``SkinnedHandData`` checks it)."""
    uses: dict[tuple[int, int], int] = {}
    faces = []
    while len(faces) < F:
        f = rng.choice(V, size=3, replace=False)
        edges = [tuple(sorted((int(f[k]), int(f[(k + 1) % 3])))) for k in range(3)]
        if all(uses.get(e, 0) < 2 for e in edges):
            for e in edges:
                uses[e] = uses.get(e, 0) + 1
            faces.append(f)
    return np.stack(faces)


def make_mano_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    """Random arrays with MANO's shapes and invariants (dense J_regressor, right hand)."""
    rng = np.random.default_rng(seed)
    owner = rng.integers(0, J, size=V)
    v_template = _JOINTS[owner] + rng.normal(scale=0.008, size=(V, 3))
    faces = _random_faces(rng)
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


NIMBLE_TEX = 16


@pytest.fixture(scope="session")
def nimble_dir(tmp_path_factory):
    """NIMBLE's three files, in their format (protocol-3 pickles of torch tensors, mm), built
    from OpenHand: skin = OpenHand's mesh, 100 bone and 60 muscle vertices, random bases
    (texture maps NIMBLE_TEX x NIMBLE_TEX)."""
    import torch

    from monohand.models.openhand import OpenHand

    TEX = NIMBLE_TEX
    rng = np.random.default_rng(0)
    hand = OpenHand(dtype=torch.float64)
    skin = hand.data.v_template * 1000  # millimetres, as NIMBLE's files
    kp = hand().joints[0].numpy() * 1000
    # 25 rig joints: carpal; thumb met/pro/dis/end; per finger met (half way), pro, int, dis, end.
    locs = [kp[0], kp[1], kp[2], kp[3], kp[4]]
    for base in (5, 9, 13, 17):
        locs += [0.5 * (kp[0] + kp[base]), kp[base], kp[base + 1], kp[base + 2], kp[base + 3]]
    bone = np.concatenate([loc + rng.normal(scale=2.0, size=(4, 3)) for loc in locs])  # 100
    muscle = skin[rng.choice(len(skin), 60, replace=False)] * 0.9
    vert = np.concatenate([bone, muscle, skin])
    n, n_skin = len(vert), len(skin)
    owner = np.argmin(((vert[:, None] - np.asarray(locs)[None]) ** 2).sum(-1), 1)
    sw = 0.1 * rng.random((n, 25))
    sw[np.arange(n), owner] += 1.0
    sw /= sw.sum(1, keepdims=True)
    jreg_bone = np.zeros((25, 100))
    for j in range(25):
        jreg_bone[j, 4 * j : 4 * j + 4] = 0.25
    jreg_mano = np.zeros((21, n_skin))
    for j in range(21):
        near = np.argsort(((skin - kp[j]) ** 2).sum(1))[:6]
        jreg_mano[j, near] = 1 / 6
    t = torch.as_tensor
    main = {
        "vert": t(vert[None]),
        "all_sw": t(sw),
        "all_pbs": t(rng.normal(scale=0.5, size=(n, 3, 171))),
        "jreg_bone": t(jreg_bone),
        "jreg_mano": t(jreg_mano),
        "shape_basis": t(rng.normal(scale=0.3, size=(20, n * 3))),
        "shape_pm_std": t(rng.uniform(0.5, 2, 20)),
        "shape_pm_mean": t(rng.normal(size=20)),
        "pose_basis": t(rng.normal(scale=0.1, size=(30, 57))),
        "pose_mean": t(rng.normal(scale=0.1, size=57)),
        "pose_pm_std": t(rng.uniform(0.5, 2, 30)),
        "pose_pm_mean": t(rng.normal(scale=0.2, size=30)),
        "bone_f": t(rng.integers(0, 100, size=(40, 3))),
        "muscle_f": t(rng.integers(0, 60, size=(30, 3))),
        "skin_f": t(hand.data.faces[None]),
        "bone_v_sep": 100,
        "skin_v_sep": -n_skin,
        "skin_v_surface_mask": t(rng.random(n_skin) > 0.2),
        # Straight-line distances (mm) stand in for the geodesic ones: same shape and units.
        "skin_v_gd": t(np.linalg.norm(skin[:, None] - skin[None], axis=-1).astype(np.float32)),
    }
    tex = {
        k: {
            "basis": t(rng.normal(scale=0.05, size=(TEX * TEX * 3, 12))),
            "mean": t(rng.uniform(0.2, 0.8, size=TEX * TEX * 3)),
            "std": t(rng.uniform(0.5, 1.5, 12)),
        }
        for k in ("diffuse", "normal", "spec")
    }
    bary = rng.random((20, 778, 3))
    vreg = {
        "lmk_faces_idx": t(rng.integers(0, len(hand.data.faces), size=(20, 778))),
        "lmk_bary_coords": t(bary / bary.sum(-1, keepdims=True)),
    }
    d = tmp_path_factory.mktemp("nimble")
    for name, obj in (
        ("NIMBLE_DICT_9137.pkl", main),
        ("NIMBLE_TEX_DICT.pkl", tex),
        ("NIMBLE_MANO_VREG.pkl", vreg),
    ):
        (d / name).write_bytes(pickle.dumps(obj, protocol=3))
    return d
