"""The MANO layer against a naive per-sample reference written here from the model's definition."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from conftest import PARENTS, mirror_arrays, write_mano_pkl
from monohand.data.freihand import decode_freihand_mano
from monohand.models.assets import AssetError
from monohand.models.mano import MANO, convert_mano, load_mano_data

# Written independently of monohand.models.joints, from DESIGN.md's text.
NATIVE = [
    "wrist",
    "index1",
    "index2",
    "index3",
    "middle1",
    "middle2",
    "middle3",
    "little1",
    "little2",
    "little3",
    "ring1",
    "ring2",
    "ring3",
    "thumb1",
    "thumb2",
    "thumb3",
]
TIPS = {"thumb": 744, "index": 320, "middle": 443, "ring": 555, "little": 672}
FREIHAND = ["wrist"] + [
    f"{f}{k}" for f in ("thumb", "index", "middle", "ring", "little") for k in (1, 2, 3, "tip")
]


def reference_mano(a, global_orient, hand_pose_abs, betas, transl):
    """One sample, straight from the MANO paper's equations, loops and scipy rotations."""
    v_shaped = a["v_template"] + np.einsum("vcs,s->vc", a["shapedirs"][:, :, : len(betas)], betas)
    rest = a["J_regressor"] @ v_shaped
    rv = np.concatenate([global_orient, hand_pose_abs]).reshape(16, 3)
    rots = [Rotation.from_rotvec(r).as_matrix() for r in rv]
    feats = np.concatenate([(rots[k] - np.eye(3)).ravel() for k in range(1, 16)])
    v_posed = v_shaped + np.einsum("vcp,p->vc", a["posedirs"], feats)
    world = []
    for j in range(16):
        t = np.eye(4)
        t[:3, :3] = rots[j]
        t[:3, 3] = rest[j] - (rest[PARENTS[j]] if j else 0)
        world.append(t if j == 0 else world[PARENTS[j]] @ t)
    skin = []
    for j in range(16):
        to_rest = np.eye(4)
        to_rest[:3, 3] = -rest[j]
        skin.append(world[j] @ to_rest)
    verts = np.zeros_like(v_posed)
    for v in range(len(v_posed)):
        m = sum(a["weights"][v, j] * skin[j] for j in range(16))
        verts[v] = m[:3, :3] @ v_posed[v] + m[:3, 3]
    joints = np.array([w[:3, 3] for w in world])
    named = dict(zip(NATIVE, joints, strict=True))
    for f, vid in TIPS.items():
        named[f"{f}tip"] = verts[vid]
    kp = np.array([named[n] for n in FREIHAND])
    return verts + transl, kp + transl, joints + transl


def random_inputs(b, seed, ncomp=45):
    g = torch.Generator().manual_seed(seed)
    return dict(
        global_orient=torch.randn(b, 3, generator=g, dtype=torch.float64),
        hand_pose=0.5 * torch.randn(b, ncomp, generator=g, dtype=torch.float64),
        betas=torch.randn(b, 10, generator=g, dtype=torch.float64),
        transl=0.1 * torch.randn(b, 3, generator=g, dtype=torch.float64),
    )


@pytest.mark.parametrize("fmt", ["pkl", "npz"])
@pytest.mark.parametrize("batch", [1, 7])
@pytest.mark.parametrize("flat", [True, False])
def test_layer_matches_reference(mano_arrays, mano_pkl, mano_npz, fmt, batch, flat):
    path = mano_pkl if fmt == "pkl" else mano_npz
    mano = MANO(path, flat_hand_mean=flat, dtype=torch.float64)
    x = random_inputs(batch, seed=batch)
    out = mano(**x)
    assert out.vertices.shape == (batch, 778, 3) and out.joints.shape == (batch, 21, 3)
    assert out.joints_native.shape == (batch, 16, 3) and out.faces.shape == (1538, 3)
    for i in range(batch):
        pose = x["hand_pose"][i].numpy() + (0 if flat else mano_arrays["hands_mean"])
        v, kp, nat = reference_mano(
            mano_arrays,
            x["global_orient"][i].numpy(),
            pose,
            x["betas"][i].numpy(),
            x["transl"][i].numpy(),
        )
        assert np.abs(out.vertices[i].numpy() - v).max() < 1e-12
        assert np.abs(out.joints[i].numpy() - kp).max() < 1e-12
        assert np.abs(out.joints_native[i].numpy() - nat).max() < 1e-12


def test_float32_agrees_with_float64(mano_npz):
    x = random_inputs(4, seed=3)
    o64 = MANO(mano_npz, dtype=torch.float64)(**x)
    o32 = MANO(mano_npz)(**{k: v.float() for k, v in x.items()})
    assert (o32.vertices.double() - o64.vertices).abs().max() < 2e-6


def test_defaults_are_zeros_of_the_batch_size(mano_npz, mano_arrays):
    mano = MANO(mano_npz, dtype=torch.float64)
    out = mano(betas=torch.zeros(5, 10, dtype=torch.float64))
    assert out.vertices.shape == (5, 778, 3)
    assert np.allclose(out.vertices[3].numpy(), mano_arrays["v_template"])
    assert mano().vertices.shape == (1, 778, 3)


def test_pca_pose_is_full_pose_through_components(mano_npz, mano_arrays):
    pca = MANO(mano_npz, use_pca=True, num_pca_comps=12, flat_hand_mean=False, dtype=torch.float64)
    full = MANO(mano_npz, flat_hand_mean=False, dtype=torch.float64)
    x = random_inputs(3, seed=5, ncomp=12)
    comps = torch.tensor(mano_arrays["hands_components"][:12])
    want = full(**{**x, "hand_pose": x["hand_pose"] @ comps})
    got = pca(**x)
    assert torch.allclose(got.vertices, want.vertices, atol=1e-12)
    assert torch.allclose(
        got.full_pose[:, 3:], x["hand_pose"] @ comps + torch.tensor(mano_arrays["hands_mean"])
    )


def test_flat_hand_mean_semantics(mano_npz, mano_arrays):
    mean = torch.tensor(mano_arrays["hands_mean"])[None]
    flat = MANO(mano_npz, flat_hand_mean=True, dtype=torch.float64)
    relaxed = MANO(mano_npz, flat_hand_mean=False, dtype=torch.float64)
    # Zero pose: flat layer gives the template, relaxed layer the mean pose.
    assert np.allclose(flat().vertices[0].numpy(), mano_arrays["v_template"])
    assert torch.allclose(relaxed().vertices, flat(hand_pose=mean).vertices, atol=1e-12)
    assert not torch.allclose(relaxed().vertices, flat().vertices, atol=1e-4)


def test_left_is_mirrored_right(mano_npz):
    right = MANO(mano_npz, dtype=torch.float64, flat_hand_mean=False)
    left = MANO(mano_npz, side="left", dtype=torch.float64, flat_hand_mean=False)
    assert right.side == "right" and left.side == "left"
    x = random_inputs(7, seed=11)
    s = torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64)
    mirrored = {
        "global_orient": x["global_orient"] * s,
        "hand_pose": x["hand_pose"] * s.repeat(15),
        "betas": x["betas"],
        "transl": x["transl"] * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64),
    }
    r, l = right(**x), left(**mirrored)
    flip = torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    assert torch.allclose(l.vertices, r.vertices * flip, atol=1e-12)
    assert torch.allclose(l.joints, r.joints * flip, atol=1e-12)

    # Mirrored faces keep pointing outwards: the signed volume keeps its sign.
    def signed_volume(v, f):
        t = v[f]
        return torch.einsum("fi,fi->f", t[:, 0], torch.cross(t[:, 1], t[:, 2], dim=-1)).sum() / 6

    assert torch.sign(signed_volume(l.vertices[0], l.faces)) == torch.sign(
        signed_volume(r.vertices[0], r.faces)
    )


def test_a_left_file_alone_serves_both_sides(tmp_path, mano_arrays):
    """MANO_LEFT alone (a file, or a folder holding only it): the right hand is its mirror
    image (posed by mirrored parameters, every point mirrored); with both files each side
    uses its own."""
    path = write_mano_pkl(tmp_path / "MANO_LEFT.pkl", mirror_arrays(mano_arrays))
    assert load_mano_data(path, side="left").side == "left"
    left = MANO(path, side="left", dtype=torch.float64, flat_hand_mean=False)
    x = random_inputs(2, seed=4)
    s = torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64)
    flip = torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    mirrored = {"global_orient": x["global_orient"] * s, "hand_pose": x["hand_pose"] * s.repeat(15),
                "betas": x["betas"], "transl": x["transl"] * flip}  # fmt: skip
    want = left(**mirrored)
    for source in (path, tmp_path):
        right = MANO(source, side="right", dtype=torch.float64, flat_hand_mean=False)
        assert right.side == "right" and right.data.source.endswith("MANO_LEFT.pkl")
        got = right(**x)
        assert torch.allclose(got.vertices, want.vertices * flip, atol=1e-12)
        assert torch.allclose(got.joints, want.joints * flip, atol=1e-12)
    # A folder holding both files: each side its own.
    write_mano_pkl(tmp_path / "MANO_RIGHT.pkl", mano_arrays)
    assert MANO(tmp_path, side="right").data.source.endswith("MANO_RIGHT.pkl")
    assert MANO(tmp_path, side="left").data.source.endswith("MANO_LEFT.pkl")


def test_layer_gradcheck(mano_npz):
    mano = MANO(mano_npz, dtype=torch.float64, flat_hand_mean=False)
    x = {k: v.clone().requires_grad_() for k, v in random_inputs(2, seed=2).items()}

    def f(go, hp, be, tr):
        o = mano(global_orient=go, hand_pose=hp, betas=be, transl=tr)
        # A fixed random projection keeps the Jacobian small but touches every output.
        return (o.vertices[:, ::37] * 1.7).sum(-1), o.joints.sum(-1)

    assert torch.autograd.gradcheck(f, tuple(x.values()), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "key,value,match",
    [
        ("v_template", np.zeros((700, 3)), r"'v_template' has shape \(700, 3\)"),
        ("posedirs", np.zeros((778, 3, 10)), "'posedirs' has shape"),
        ("J_regressor", np.full((16, 778), 1.0), "'j_regressor' rows must sum to 1"),
        ("weights", np.full((778, 16), np.nan), "NaN"),
        ("kintree_table", np.array([[-1] + [0] * 15, list(range(16))]), "not MANO's tree"),
    ],
)
def test_bad_arrays_give_clear_errors(tmp_path, mano_arrays, key, value, match):
    path = tmp_path / "broken.npz"
    np.savez(path, **{**mano_arrays, key: value})
    with pytest.raises(AssetError, match=rf"broken\.npz.*{match}"):
        MANO(path)


def test_missing_keys_are_named(tmp_path, mano_arrays):
    path = tmp_path / "partial.npz"
    np.savez(path, **{k: v for k, v in mano_arrays.items() if k not in ("posedirs", "f")})
    with pytest.raises(AssetError, match=r"partial\.npz.*missing keys \['posedirs', 'f'\]"):
        MANO(path)


def test_wrong_inputs_give_clear_errors(mano_npz):
    mano = MANO(mano_npz)
    with pytest.raises(ValueError, match=r"hand_pose must have shape \(B, 45\)"):
        mano(hand_pose=torch.zeros(2, 12))
    with pytest.raises(ValueError, match="batch size"):
        mano(hand_pose=torch.zeros(2, 45), betas=torch.zeros(3, 10))
    with pytest.raises(AssetError, match="no such file"):
        MANO("/nonexistent/MANO_RIGHT.pkl")


def test_convert_model_round_trip(tmp_path, mano_pkl):
    out = convert_mano(mano_pkl, tmp_path / "mano.npz")
    x = {k: v.float() for k, v in random_inputs(3, seed=4).items()}
    assert torch.equal(MANO(out)(**x).vertices, MANO(mano_pkl)(**x).vertices)


def test_decode_freihand_mano(mano_npz, mano_arrays):
    rng = np.random.default_rng(8)
    n = 4
    theta = np.concatenate(
        [
            rng.normal(scale=0.4, size=(n, 48)),
            rng.normal(size=(n, 10)),
            rng.uniform(80, 140, size=(n, 2)),
            rng.uniform(400, 900, size=(n, 1)),
        ],
        axis=1,
    )
    K = np.array([[490.0, 0, 112], [0, 490.0, 110], [0, 0, 1]])
    # FreiHAND's own convention: a layer that adds the mean, fed the relative pose.
    relaxed = MANO(mano_npz, flat_hand_mean=False, dtype=torch.float64)
    flat = MANO(mano_npz, flat_hand_mean=True, dtype=torch.float64)
    p_relaxed = decode_freihand_mano(relaxed, torch.tensor(theta), torch.tensor(K))
    p_flat = decode_freihand_mano(flat, torch.tensor(theta), torch.tensor(K))
    o1 = relaxed(**vars(p_relaxed))
    o2 = flat(**vars(p_flat))
    assert torch.allclose(o1.vertices, o2.vertices, atol=1e-12)
    for i in range(n):
        v, kp, _ = reference_mano(
            mano_arrays,
            theta[i, :3],
            theta[i, 3:48] + mano_arrays["hands_mean"],
            theta[i, 48:58],
            np.zeros(3),
        )
        # Keypoint 9 (middle MCP) is at the back-projected root: uv_root, depth focal/scale.
        root = o1.joints[i, 9].numpy()
        uv = (K @ root)[:2] / root[2]
        assert np.allclose(uv, theta[i, 58:60]) and np.isclose(root[2], 490.0 / theta[i, 60])
        assert np.allclose(o1.vertices[i].numpy() - (root - kp[9]), v, atol=1e-12)
    # With fx != fy FreiHAND uses the mean focal: root = [u - cx, v - cy, (fx + fy) / 2] / scale.
    K2 = np.array([[500.0, 0, 100], [0, 480.0, 120], [0, 0, 1]])
    o3 = relaxed(**vars(decode_freihand_mano(relaxed, torch.tensor(theta), torch.tensor(K2))))
    want = np.concatenate([theta[:, 58:60] - [100, 120], np.full((n, 1), 490.0)], 1) / theta[:, 60:]
    assert np.allclose(o3.joints[:, 9].numpy(), want, atol=1e-12)
