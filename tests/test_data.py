"""Data: the synthetic generator, the FreiHAND and HO-3D readers, augmentation."""

from __future__ import annotations

import json
import pickle
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from monohand.cli import app
from monohand.data.augment import Augment, AugmentConfig
from monohand.data.detection_file import save_detections
from monohand.data.freihand import (
    DatasetError,
    FreiHANDDataset,
    decode_freihand_mano,
    read_freihand,
)
from monohand.data.ho3d import read_ho3d
from monohand.data.synthetic import SynthConfig, generate
from monohand.models.openhand import OpenHand
from monohand.render.camera import project


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "set"
    generate(out, SynthConfig(num=24, seed=5, batch=8, occluder_prob=0.3))
    return out


def test_freihand_reader_reads_the_synthetic_set_unchanged(synth):
    ix = read_freihand(synth, "training")
    assert ix.num_samples == ix.num_images == 22 and ix.verts.shape == (22, 1528, 3)
    ev = read_freihand(synth, "evaluation")
    assert ev.num_samples == 2
    ds = FreiHANDDataset(synth)
    item = ds[3]
    assert (
        item["image"].shape == (3, 224, 224)
        and 0 <= item["image"].min() <= item["image"].max() <= 1
    )
    assert item["mask"].shape == (224, 224) and torch.allclose(item["keypoints"], item["joints2d"])


def test_projected_joints_fall_on_the_mask(synth):
    ds = FreiHANDDataset(synth)
    models = json.loads((synth / "training_model.json").read_text())
    hits = []
    for i in range(len(ds)):
        if models[i]["occluder"]:
            continue
        it = ds[i]
        m = torch.nn.functional.max_pool2d(it["mask"][None, None], 5, 1, 2)[0, 0]  # 2 px slack
        uv = it["joints2d"].round().long().clamp(0, 223)
        hits.append(m[uv[:, 1], uv[:, 0]].numpy())
    hits = np.concatenate(hits)
    assert len(hits) >= 21 * 10 and hits.mean() > 0.97


def test_mano_entries_decode_to_the_annotated_joints(synth):
    ix = read_freihand(synth)
    hand = OpenHand(flat_hand_mean=False, dtype=torch.float64)  # FreiHAND's convention
    p = decode_freihand_mano(hand, torch.as_tensor(ix.mano), torch.as_tensor(ix.K))
    out = hand(**vars(p))
    assert torch.allclose(out.joints, torch.as_tensor(ix.xyz), atol=2e-6)
    assert torch.allclose(out.vertices, torch.as_tensor(ix.verts), atol=2e-6)
    # The reference bone of training_scale.json: middle MCP to PIP.
    assert np.allclose(ix.scale, np.linalg.norm(ix.xyz[:, 10] - ix.xyz[:, 9], axis=1), atol=1e-6)


def test_generator_is_deterministic_and_independent_of_batching(tmp_path, synth):
    other = tmp_path / "again"
    generate(other, SynthConfig(num=24, seed=5, batch=5, occluder_prob=0.3))
    a, b = read_freihand(synth), read_freihand(other)
    assert np.allclose(a.K, b.K, atol=1e-4) and np.allclose(a.xyz, b.xyz, atol=1e-6)
    ia = np.asarray(Image.open(synth / "training/rgb/00000007.jpg"), dtype=float)
    ib = np.asarray(Image.open(other / "training/rgb/00000007.jpg"), dtype=float)
    assert np.abs(ia - ib).mean() < 1.0
    with pytest.raises(FileExistsError):
        generate(other, SynthConfig(num=2))
    with pytest.raises(ValueError, match="renders OpenHand only"):
        generate(tmp_path / "bad", SynthConfig(num=2, model="mano"))
    assert not (tmp_path / "bad").exists() and not list(tmp_path.glob(".bad*"))


def test_generator_renders_another_openhand_build(tmp_path):
    # model_path: the hand of another build (tools/calibrate_openhand_joints.py renders its
    # candidates so). A build 10 % larger gives 10 % longer bones at the same seed.
    from monohand.models.assets import save_npz
    from monohand.models.openhand import default_model_path

    arrays = dict(np.load(default_model_path()))
    arrays["v_template"] = arrays["v_template"] * 1.1
    arrays["shapedirs"] = arrays["shapedirs"] * 1.1
    big = tmp_path / "big.npz"
    save_npz(big, arrays)
    cfg = dict(num=2, seed=3, size=64, eval_fraction=0.0)
    generate(tmp_path / "a", SynthConfig(**cfg))
    generate(tmp_path / "b", SynthConfig(**cfg, model_path=str(big)))
    a, b = (read_freihand(tmp_path / k).xyz for k in "ab")
    bone = lambda x: np.linalg.norm(x[:, 9] - x[:, 0], axis=1)  # noqa: E731
    np.testing.assert_allclose(bone(b) / bone(a), 1.1, rtol=1e-4)


def test_a_folder_not_in_freihand_s_layout_or_without_a_split_is_said(tmp_path):
    """A folder of plain photos: 'not in FreiHAND's layout' (it said 'training_K.json: no
    such file'); a set without the split asked for: which split it has, and how to make one
    with both."""
    from monohand.data.freihand import DatasetError

    (tmp_path / "photos").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "photos" / "a.jpg")
    with pytest.raises(DatasetError, match=r"photos: not in FreiHAND's layout \(no "
                                           r"training_K\.json"):
        read_freihand(tmp_path / "photos")
    generate(tmp_path / "s", SynthConfig(num=2, size=64, seed=0, eval_fraction=0.0))
    (tmp_path / "s" / "evaluation_K.json").unlink()
    with pytest.raises(DatasetError, match=r"s: has no evaluation split \(evaluation_K\.json\), "
                                           r"only its training one \(monohand synth "
                                           r"--eval-fraction"):
        read_freihand(tmp_path / "s", "evaluation")


def test_synth_command(tmp_path):
    res = CliRunner().invoke(app, ["synth", str(tmp_path / "s"), "--num", "3", "--size", "96"])
    assert res.exit_code == 0, res.output
    assert read_freihand(tmp_path / "s").num_samples == 3
    assert Image.open(tmp_path / "s/training/rgb/00000000.jpg").size == (96, 96)
    res = CliRunner().invoke(app, ["synth", str(tmp_path / "s"), "--num", "3"])
    assert res.exit_code == 2 and "exists" in res.output


def test_synth_overwrites_only_a_set_it_made(tmp_path, monkeypatch):
    """--overwrite replaces a set synth wrote, or an empty folder; never a folder of other
    files, nor the folder one is working in (it removed both whole)."""
    run = CliRunner().invoke
    other = tmp_path / "other"
    (other / "sub").mkdir(parents=True)
    (other / "thesis.tex").write_text("keep")
    res = run(app, ["synth", str(other), "--num", "1", "--size", "64", "--overwrite"])
    text = " ".join(res.output.split())
    assert res.exit_code == 2 and "not a synthetic set (no synth_config.json)" in text, text
    assert (other / "thesis.tex").read_text() == "keep" and (other / "sub").is_dir()
    inner = tmp_path / "inner"
    inner.mkdir()
    monkeypatch.chdir(inner)
    res = run(app, ["synth", ".", "--num", "1", "--size", "64", "--overwrite"])
    assert res.exit_code == 2 and "holds the working directory" in res.output, res.output
    # a set with a training run put into it: the run is not the generator's to remove (it
    # went, with the set); the set's own label cache may go with it
    monkeypatch.chdir(tmp_path)
    made = tmp_path / "made"
    assert run(app, ["synth", str(made), "--num", "2", "--size", "64"]).exit_code == 0
    (made / "detections_mediapipe.json").write_text("{}")
    (made / "last.ckpt").write_text("a run")
    (made / "tb").mkdir()
    res = run(app, ["synth", str(made), "--num", "2", "--size", "64", "--overwrite"])
    text = " ".join(res.output.split())
    assert res.exit_code == 2 and "holds last.ckpt, tb, which this generator did not" in text
    assert (made / "last.ckpt").read_text() == "a run"
    (made / "last.ckpt").unlink()
    (made / "tb").rmdir()
    res = run(app, ["synth", str(made), "--num", "2", "--size", "64", "--overwrite"])
    assert res.exit_code == 0 and not (made / "detections_mediapipe.json").exists(), res.output
    monkeypatch.chdir(tmp_path)
    for _ in range(2):  # an empty folder, then the set made in it
        res = run(app, ["synth", "inner", "--num", "1", "--size", "64", "--overwrite"])
        assert res.exit_code == 0, res.output
    assert (inner / "synth_config.json").is_file()
    # training's cached set (data.root) on a folder of other files: refused, the files kept
    from monohand.data.synthetic import SynthConfig, ensure_synthetic

    with pytest.raises(DatasetError, match="not a synthetic set .* data.root: give one of"):
        ensure_synthetic(other, SynthConfig(num=1, size=64), "training")
    assert (other / "thesis.tex").read_text() == "keep"


def test_reader_errors_name_the_file(tmp_path, synth):
    bad = tmp_path / "bad"
    shutil.copytree(synth, bad)
    (bad / "training_xyz.json").write_text(json.dumps(np.zeros((5, 21, 3)).tolist()))
    with pytest.raises(DatasetError, match=r"training_xyz\.json: 5 entries, but 22"):
        read_freihand(bad)
    (bad / "training_xyz.json").unlink()
    with pytest.raises(DatasetError, match=r"training_xyz\.json: no such file"):
        read_freihand(bad)
    shutil.copy(synth / "training_xyz.json", bad / "training_xyz.json")
    (bad / "training/rgb/00000003.jpg").unlink()
    with pytest.raises(DatasetError, match="21 images is not a multiple of the 22 samples"):
        read_freihand(bad)
    # a split's image folder given for the set: the set's own folder is named
    with pytest.raises(DatasetError, match=r"a split's image folder; give the set's own folder"):
        read_freihand(synth / "training")
    # and a split's file given where a real-photo annotation file is read
    from monohand.data.realhands import load_realhands

    with pytest.raises(ValueError, match="scored by monohand evaluate, given its folder"):
        load_realhands(synth / "training_xyz.json")


def test_dataset_with_detection_labels(tmp_path, synth):
    ix = read_freihand(synth)
    names = [f"{i:08d}.jpg" for i in range(ix.num_samples)]
    xy = np.random.default_rng(0).uniform(0, 224, size=(len(names), 21, 2))
    conf = np.random.default_rng(1).uniform(size=(len(names), 21))
    det = save_detections(tmp_path / "det.json", xy, conf, names)
    it = FreiHANDDataset(synth, labels=det)[4]
    assert np.allclose(it["keypoints"].numpy(), xy[4], atol=1e-4)
    assert np.allclose(it["confidence"].numpy(), conf[4], atol=1e-6)


def test_augmentation_keeps_labels_consistent(synth):
    aug = Augment(AugmentConfig(rotation_deg=180))
    ds = FreiHANDDataset(synth, augment=aug, seed=3)
    plain = FreiHANDDataset(synth)
    for i in range(4):
        it = ds[i]
        # K stays an intrinsic matrix (fx = fy here: no skew) and the 3D labels turn about
        # the optical axis; they re-project onto the moved 2D keypoints.
        K = it["K"].double()
        assert K[1, 0] == K[2, 0] == K[2, 1] == 0 and abs(K[0, 1]) < 1e-4
        assert torch.allclose(K[0, 0], K[1, 1]) and K[0, 0] != plain[i]["K"][0, 0]
        j3, p3 = it["joints3d"].double(), plain[i]["joints3d"].double()
        assert not torch.allclose(j3, p3, atol=1e-3)
        assert torch.allclose(j3[:, 2], p3[:, 2], atol=1e-6)  # a roll keeps depths
        assert torch.allclose(j3.norm(dim=1), p3.norm(dim=1), atol=1e-6)
        v, pv = it["vertices"].double(), plain[i]["vertices"].double()
        assert torch.allclose(v.norm(dim=1), pv.norm(dim=1), atol=1e-6)
        reproj = project(j3[None], K[None])[0]
        assert torch.allclose(reproj.float(), it["joints2d"], atol=1e-3)
        # The image and mask moved with them: joints still fall on the warped mask.
        m = torch.nn.functional.max_pool2d(it["mask"][None, None], 5, 1, 2)[0, 0]
        uv = it["joints2d"].round().long()
        inside = (uv >= 0).all(1) & (uv < 224).all(1)
        uvi = uv[inside]
        assert m[uvi[:, 1], uvi[:, 0]].mean() > 0.8
        assert not torch.equal(it["image"], plain[i]["image"])


def test_ho3d_reader_converts_camera_and_joint_order(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "ho3d"
    # Joints in HO-3D's convention: OpenGL camera (z < 0 in front), MANO order + tips.
    native = rng.normal(scale=0.03, size=(21, 3)) + [0.0, 0.0, -0.5]
    K = np.array([[617.0, 0, 320], [0, 617.0, 240], [0, 0, 1]])
    for split, seq, frame, meta in [
        ("train", "ABF10", "0000", {"camMat": K, "handJoints3D": native, "handPose": np.zeros(48)}),
        (
            "evaluation",
            "SM1",
            "0003",
            {"camMat": K, "handJoints3D": native[0], "handBoundingBox": np.arange(4.0)},
        ),
    ]:
        (root / split / seq / "meta").mkdir(parents=True)
        (root / split / seq / "rgb").mkdir(parents=True)
        Image.fromarray(np.zeros((480, 640, 3), np.uint8)).save(
            root / split / seq / "rgb" / f"{frame}.jpg"
        )
        (root / split / seq / "meta" / f"{frame}.pkl").write_bytes(pickle.dumps(meta, protocol=2))
        (root / f"{split}.txt").write_text(f"{seq}/{frame}\n")
    f = read_ho3d(root, "train")[0]
    # HO-3D's own projection: camMat @ (coordChange @ joints), coordChange = diag(1, -1, -1).
    p = (K @ (native * [1, -1, -1]).T).T
    uv_native = p[:, :2] / p[:, 2:]
    order = [0, 13, 14, 15, 16, 1, 2, 3, 17, 4, 5, 6, 18, 10, 11, 12, 19, 7, 8, 9, 20]
    uv = project(torch.as_tensor(f.joints3d)[None], torch.as_tensor(f.K)[None])[0].numpy()
    assert np.allclose(uv, uv_native[order]) and (f.joints3d[:, 2] > 0).all()
    e = read_ho3d(root, "evaluation")[0]
    assert e.joints3d is None and np.allclose(e.root3d, native[0] * [1, -1, -1])
    (root / "train" / "ABF10" / "meta" / "0000.pkl").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match="0000.pkl"):
        read_ho3d(root, "train")


def test_frontal_views_keep_the_palm_towards_or_away_from_the_camera(tmp_path):
    """FreiHAND-like orientations: the template's palm normal (y) ends within the tilt limit
    of the optical axis, on either side, and the finger axis (-x) points anywhere in the image
    plane; a uniform rotation leaves that cone often."""
    from scipy.spatial.transform import Rotation

    from monohand.data.synthetic import _frontal_rotation, _random_rotation

    rng = np.random.default_rng(0)
    R = Rotation.from_rotvec([_frontal_rotation(rng, 40.0) for _ in range(2000)]).as_matrix()
    normal, fingers = R[:, :, 1], -R[:, :, 0]
    tilt = np.degrees(np.arccos(np.abs(normal[:, 2])))
    assert tilt.max() <= 40.0 + 1e-6 and 0.4 < (normal[:, 2] > 0).mean() < 0.6
    quadrant = np.arctan2(fingers[:, 1], fingers[:, 0]) // (np.pi / 2)
    assert np.bincount((quadrant + 2).astype(int), minlength=4).min() > 350
    U = Rotation.from_rotvec([_random_rotation(rng) for _ in range(2000)]).as_matrix()
    assert (np.degrees(np.arccos(np.abs(U[:, 2, 1]))) > 40).mean() > 0.5
    with pytest.raises(ValueError, match="orientation must be"):
        generate(tmp_path / "s", SynthConfig(num=2, orientation="sideways"))
    assert not (tmp_path / "s").exists()


def test_augmentation_draws_anew_each_epoch(synth):
    ds = FreiHANDDataset(synth, augment=Augment(), seed=2)
    a = ds[1]["joints2d"]
    assert torch.equal(a, ds[1]["joints2d"])  # the same (seed, epoch, item): the same draw
    ds.epoch = 1
    assert not torch.allclose(a, ds[1]["joints2d"])


def test_split_roll_is_an_rq_decomposition():
    """A K = K' R for random affine maps and cameras with fx != fy: K' upper triangular with
    a positive diagonal, R a proper rotation about the optical axis."""
    from monohand.data.augment import random_affine, split_roll

    rng = np.random.default_rng(4)
    for _ in range(20):
        K = np.array([[rng.uniform(200, 900), 0, rng.uniform(50, 150)],
                      [0, rng.uniform(200, 900), rng.uniform(50, 150)], [0, 0, 1]])  # fmt: skip
        P = random_affine((224, 224), AugmentConfig(rotation_deg=180), rng) @ K
        K2, R = split_roll(P)
        np.testing.assert_allclose(K2 @ R, P, atol=1e-9)
        assert K2[1, 0] == K2[2, 0] == K2[2, 1] == 0 and (np.diag(K2) > 0).all()
        np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
        assert np.isclose(np.linalg.det(R), 1) and R[2, 2] == 1
    with pytest.raises(ValueError, match="mirrors"):
        split_roll(np.diag([-1.0, 1.0, 1.0]) @ K)
