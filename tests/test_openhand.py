"""OpenHand: the shipped asset, its geometry, shape, pose and texture spaces."""

from __future__ import annotations

import importlib.util
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh
from scipy.spatial.transform import Rotation

from meshcheck import is_closed_manifold, self_intersections, winding_number
from monohand.models.lbs import batch_rigid_transform, batch_rodrigues
from monohand.models.mano import save_mano_layout
from monohand.models.openhand import OpenHand, default_model_path

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT.parent / "shared" / "assets"
F64 = torch.float64


@pytest.fixture(scope="module")
def hand() -> OpenHand:
    return OpenHand(dtype=F64)


def _angles(k: int, degrees: float) -> torch.Tensor:
    a = torch.zeros(1, 15, 3, dtype=F64)
    a[0, k, 0] = np.radians(degrees)
    return a


def _build_module():
    spec = importlib.util.spec_from_file_location(
        "build_openhand", ROOT / "tools/build_openhand.py"
    )
    build = importlib.util.module_from_spec(spec)
    sys.modules["build_openhand"] = build  # dataclasses look their module up
    spec.loader.exec_module(build)
    return build


@pytest.mark.skipif(not (ASSETS / "godot_xr_hands_cc0").is_dir(), reason="source assets absent")
def test_shipped_file_is_what_the_build_script_makes(tmp_path):
    build = _build_module()
    fresh = build.build(ASSETS)
    with np.load(default_model_path(), allow_pickle=False) as shipped:
        assert sorted(shipped.files) == sorted(fresh)
        for k in fresh:
            np.testing.assert_allclose(shipped[k], fresh[k], rtol=0, atol=1e-9, err_msg=k)


def test_joint_offsets_file_is_checked(tmp_path, monkeypatch):
    build = _build_module()
    path = tmp_path / "offsets.json"
    monkeypatch.setattr(build, "JOINT_OFFSETS", path)
    assert build.load_joint_offsets() == {}  # no file: no calibration
    path.write_text('{"index_pip": [0.001, 0.0, -0.002]}')
    np.testing.assert_array_equal(build.load_joint_offsets()["index_pip"], [0.001, 0, -0.002])
    for bad, match in (('{"wrist": [0, 0, 0]}', "uncalibratable joints \\['wrist'\\]"),
                       ('{"index_pip": [0, 0]}', "index_pip.*3 finite numbers"),
                       ('{"index_pip": [0, NaN, 0]}', "index_pip.*3 finite numbers")):  # fmt: skip
        path.write_text(bad)
        with pytest.raises(ValueError, match=match):
            build.load_joint_offsets()


def test_watertight_manifold_no_self_intersection(hand):
    f = hand.faces.numpy()
    assert is_closed_manifold(f)
    for pose in (
        None,
        torch.as_tensor(hand.data.hands_mean)[None],
        hand.pose_space.to_axis_angle(torch.as_tensor(hand.pose_space.relaxed)[None]),
    ):
        v = hand(hand_pose=pose).vertices[0].numpy()
        mesh = trimesh.Trimesh(v, f, process=False)
        assert mesh.is_watertight and mesh.volume > 0
        assert self_intersections(v, f) == 0


def test_joints_inside_the_mesh(hand):
    for pose in (None, torch.as_tensor(hand.data.hands_mean)[None]):
        o = hand(hand_pose=pose)
        inner = torch.cat([o.joints_native[0], o.joints[0, [4, 8, 12, 16, 20]] * 0]).numpy()[:16]
        assert np.all(winding_number(o.vertices[0].numpy(), o.faces.numpy(), inner) > 0.99)


def test_sizes_and_bone_lengths_are_human(hand):
    j = hand().joints[0].numpy()
    length = np.linalg.norm(j[12] - j[0])
    assert 0.18 <= length <= 0.19  # wrist to middle fingertip
    assert 0.08 <= np.linalg.norm(j[9] - j[0]) <= 0.09  # wrist to middle MCP
    bone = lambda a, b: np.linalg.norm(j[b] - j[a]) * 1000  # noqa: E731
    for mcp in (5, 9, 13, 17):  # proximal, middle, distal phalanges (mm)
        assert 25 <= bone(mcp, mcp + 1) <= 55
        assert 15 <= bone(mcp + 1, mcp + 2) <= 40
        assert 14 <= bone(mcp + 2, mcp + 3) <= 35
    # Thumb CMC -> MCP is the keypoint convention's (the CMC keypoint sits out in the thenar),
    # shorter than the metacarpal bone.
    assert 20 <= bone(1, 2) <= 55 and 22 <= bone(2, 3) <= 42 and 18 <= bone(3, 4) <= 36
    # Right hand in MANO's frame: fingers to -x, index at +z, little at -z.
    assert j[9, 0] < -0.07 and j[5, 2] > j[17, 2]


def test_shape_components_change_what_they_should(hand):
    sd = hand.shapedirs.numpy().reshape(-1, 10)
    gram = sd.T @ sd
    assert np.allclose(gram - np.diag(np.diag(gram)), 0, atol=1e-12)  # orthogonal

    def measures(betas):
        o = hand(betas=torch.as_tensor(betas, dtype=F64)[None])
        j, v = o.joints[0].numpy(), o.vertices[0].numpy()
        fingers = [np.linalg.norm(j[4 * k + 4] - j[4 * k + 1]) for k in range(5)]
        return {
            "length": np.linalg.norm(j[12] - j[0]),
            "width": np.linalg.norm(j[5] - j[17]),
            "palm": np.linalg.norm(j[9] - j[0]),
            "fingers": np.array(fingers),
            "thick": np.ptp(v[:, 1]),
            "verts": v,
        }

    base = measures(np.zeros(10))
    rel = lambda m, k: m[k] / base[k] - 1  # noqa: E731
    e = np.eye(10)
    size = measures(2 * e[0])
    assert (
        0.09 < rel(size, "length") < 0.15 and abs(rel(size, "width") - rel(size, "length")) < 0.03
    )
    assert rel(measures(2 * e[1]), "width") > 0.05
    assert rel(measures(2 * e[2]), "palm") > 0.05
    assert rel(measures(2 * e[3]), "thick") > 0.03
    for f in range(5):  # thumb, index, middle, ring, little
        change = measures(2 * e[4 + f])["fingers"] / base["fingers"] - 1
        assert change.argmax() == f and change[f] > 0.05
    thick = measures(2 * e[9])["verts"] - base["verts"]
    assert np.abs(thick).max() > 0.001
    # betas ~ N(0, 1) give adult hands: 3 sigma of size stays in 16-21 cm.
    for s in (-3, 3):
        assert 0.16 < measures(s * e[0])["length"] < 0.215


def test_left_is_mirrored_right(hand):
    left = OpenHand(side="left", dtype=F64)
    g = torch.Generator().manual_seed(0)
    angles = hand.pose_space.sample(4, g).double()
    betas = torch.randn(4, 10, generator=g, dtype=F64)
    r = hand(hand_pose=hand.pose_space.to_axis_angle(angles), betas=betas)
    l = left(hand_pose=left.pose_space.to_axis_angle(angles), betas=betas)
    flip = torch.tensor([-1.0, 1.0, 1.0], dtype=F64)
    assert torch.allclose(l.vertices, r.vertices * flip, atol=1e-10)
    assert torch.allclose(l.joints, r.joints * flip, atol=1e-10)


def test_anatomical_angles_match_scipy_and_round_trip(hand):
    ps = hand.pose_space
    g = torch.Generator().manual_seed(1)
    angles = ps.sample(64, g).double()
    aa = ps.to_axis_angle(angles).numpy().reshape(64, 15, 3)
    for b in range(0, 64, 9):
        for k in range(15):
            f = ps.frames[k]
            r = f @ Rotation.from_euler("ZYX", angles[b, k].numpy()).as_matrix() @ f.T
            assert np.allclose(Rotation.from_rotvec(aa[b, k]).as_matrix(), r, atol=1e-10)
    back = ps.from_axis_angle(torch.as_tensor(aa.reshape(64, 45)))
    assert torch.allclose(back, angles, atol=1e-9)


@pytest.mark.parametrize("side", ["right", "left"])
def test_axis_angle_of_any_angles_and_both_frames(side):
    # Beyond the limits too (quaternions with w < 0), and mirrored frames (det F = -1).
    ps = OpenHand(side=side, dtype=F64).pose_space
    angles = torch.randn(40, 15, 3, dtype=F64, generator=torch.Generator().manual_seed(2)) * 2.0
    aa = ps.to_axis_angle(angles).numpy().reshape(40, 15, 3)
    assert np.linalg.norm(aa, axis=-1).max() <= np.pi + 1e-12  # the shortest rotation
    for b in range(0, 40, 7):
        for k in range(15):
            f = ps.frames[k]
            r = f @ Rotation.from_euler("ZYX", angles[b, k].numpy()).as_matrix() @ f.T
            assert np.allclose(Rotation.from_rotvec(aa[b, k]).as_matrix(), r, atol=1e-10)
    zero = torch.zeros(1, 15, 3, dtype=F64, requires_grad=True)
    (jac,) = torch.autograd.grad(ps.to_axis_angle(zero).sum(), zero)
    assert torch.isfinite(jac).all()


def test_sampler_respects_limits_and_is_deterministic(hand):
    ps = hand.pose_space
    a = ps.sample(5000, torch.Generator().manual_seed(7))
    assert torch.all(ps.limit_violation(a) == 0)
    assert torch.equal(a, ps.sample(5000, torch.Generator().manual_seed(7)))
    # The limits themselves are anatomical: flexion ranges contain 0 and reach far.
    lim = np.degrees(ps.limits)
    assert np.all(lim[:, 0, 0] <= 0) and np.all(lim[:, 0, 1] >= 55)
    # Positive flexion curls every finger towards the palm (-y).
    for k in range(15):
        o0, o1 = hand(), hand(hand_pose=ps.to_axis_angle(_angles(k, 45)))
        tip = {
            0: 8,
            1: 8,
            2: 8,
            3: 12,
            4: 12,
            5: 12,
            6: 20,
            7: 20,
            8: 20,
            9: 16,
            10: 16,
            11: 16,
            12: 4,
            13: 4,
            14: 4,
        }[k]
        assert o1.joints[0, tip, 1] < o0.joints[0, tip, 1] - 0.003


def test_pca_round_trip(hand):
    comps = torch.as_tensor(hand.data.hands_components)
    assert torch.allclose(comps @ comps.T, torch.eye(45, dtype=F64), atol=1e-10)
    pose = hand.pose_space.to_axis_angle(
        hand.pose_space.sample(6, torch.Generator().manual_seed(2)).double()
    )
    mean = torch.as_tensor(hand.data.hands_mean)
    coeffs = (pose - mean) @ comps.T
    pca = OpenHand(use_pca=True, num_pca_comps=45, flat_hand_mean=False, dtype=F64)
    assert torch.allclose(pca(hand_pose=coeffs).vertices, hand(hand_pose=pose).vertices, atol=1e-10)
    # Few components already explain most of the sampler's variance (a real pose space).
    std = np.load(default_model_path())["hands_pca_std"]
    assert (std[:6] ** 2).sum() / (std**2).sum() > 0.6


def _inverted_faces(hand, pose) -> int:
    """Faces of one finger (all three vertices dominated by the same joint group) whose normal
    turns against the rigidly rotated rest normal: a collapsed surface."""
    f = hand.faces.numpy()
    w = hand.weights.numpy()
    group = np.array([0] + [1] * 3 + [2] * 3 + [3] * 3 + [4] * 3 + [5] * 3)
    g = np.stack([w[:, group == k].sum(1) for k in range(6)], 1).argmax(1)
    same = (g[f] == g[f][:, :1]).all(1)

    def normals(v):
        t = v[f]
        n = np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0])
        return n / np.linalg.norm(n, axis=1, keepdims=True)

    rest = hand()
    o = hand(hand_pose=pose)
    _, rel = batch_rigid_transform(
        batch_rodrigues(o.full_pose.view(1, 16, 3)), rest.joints_native, hand.parents
    )
    rot = rel[0, :, :3, :3].numpy()[w[f].sum(1).argmax(1)]
    expected = np.einsum("fij,fj->fi", rot, normals(rest.vertices[0].numpy()))
    return int(((normals(o.vertices[0].numpy()) * expected).sum(1) < 0)[same].sum())


@pytest.mark.parametrize("k", [1, 2, 4, 5, 7, 8, 10, 11, 13, 14])
def test_bending_pip_dip_90_degrees_collapses_nothing(hand, k):
    assert _inverted_faces(hand, hand.pose_space.to_axis_angle(_angles(k, 90))) == 0


@pytest.mark.parametrize("k", [0, 3, 6, 9, 12])
def test_bending_mcp_60_degrees_collapses_nothing(hand, k):
    assert _inverted_faces(hand, hand.pose_space.to_axis_angle(_angles(k, 60))) == 0


def test_texture_space(hand):
    t = torch.zeros(3, hand.num_texture_params, dtype=F64)
    t[0, 0], t[2, 0] = -2.0, 2.0
    o = hand(texture=t, betas=torch.zeros(3, 10, dtype=F64))
    assert o.texture.shape == (3, 256, 256, 3) and o.vertex_colors.shape == (3, 1528, 3)
    assert o.texture.min() >= 0 and o.texture.max() <= 1
    lum = o.vertex_colors.mean((1, 2))
    assert lum[0] > lum[1] + 0.1 > lum[2] + 0.2  # light -> dark skin
    # The palm is lighter than the back of the hand at the mean.
    n = trimesh.Trimesh(o.vertices[1].numpy(), o.faces.numpy(), process=False).vertex_normals
    vc = o.vertex_colors[1].numpy().mean(1)
    assert vc[n[:, 1] < -0.7].mean() > vc[n[:, 1] > 0.7].mean()
    # Vertex colours are the map at each vertex's UV (nearest texel agrees to interpolation error).
    uv_of = np.zeros(1528, dtype=int)
    uv_of[hand.faces.numpy().ravel()] = hand.face_uvs.numpy().ravel()
    uv = hand.uvs.numpy()[uv_of]
    px = np.clip((uv[:, 0] * 256).astype(int), 0, 255)
    py = np.clip(((1 - uv[:, 1]) * 256).astype(int), 0, 255)
    assert np.abs(o.texture[2].numpy()[py, px] - o.vertex_colors[2].numpy()).mean() < 0.02
    with pytest.raises(ValueError, match=r"texture must have shape \(B, 10\)"):
        hand(texture=torch.zeros(1, 3, dtype=F64))


def test_mano_layout_pickle(tmp_path, hand):
    path = save_mano_layout(tmp_path / "OpenHand_RIGHT.pkl", hand.data)
    raw = path.read_bytes()
    assert b"chumpy" not in raw
    d = pickle.loads(raw)  # our own file: plain NumPy only
    assert np.array_equal(d["v_template"], hand.data.v_template)
    assert d["kintree_table"][0, 0] == 2**32 - 1 and d["posedirs"].shape == (1528, 3, 135)
    assert np.array_equal(d["f"], hand.data.faces)


@pytest.mark.parametrize("finger", [0, 1, 2, 3, 4])  # index, middle, little, ring, thumb
def test_curling_a_whole_finger_90_degrees_collapses_nothing(hand, finger):
    a = torch.zeros(1, 15, 3, dtype=F64)
    a[0, 3 * finger : 3 * finger + 3, 0] = np.radians(30)  # 30 degrees at each of its joints
    pose = hand.pose_space.to_axis_angle(a)
    assert _inverted_faces(hand, pose) == 0
