"""The hand models' verbs (``cli/models.py``): demo and convert-model."""

from __future__ import annotations

import json

import numpy as np
import trimesh
from typer.testing import CliRunner

from monohand.cli import app

runner = CliRunner()


def test_demo_writes_meshes_keypoints_and_picture(tmp_path):
    res = runner.invoke(app, ["demo", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    kp = json.loads((tmp_path / "keypoints.json").read_text())
    assert set(kp) == {"rest", "mean", "posed", "left"}
    posed = trimesh.load(tmp_path / "posed.ply", process=False)
    assert len(posed.vertices) == 1528 and len(posed.faces) == 3052  # OpenHand by default
    assert posed.visual.vertex_colors.shape == (1528, 4)
    # The left hand is the posed right hand mirrored in x.
    assert np.allclose(np.array(kp["left"]) * [-1, 1, 1], kp["posed"], atol=1e-6)
    assert (tmp_path / "hands.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".*tmp*"))


def test_demo_with_the_box_hand(tmp_path):
    res = runner.invoke(app, ["demo", "--out", str(tmp_path), "--model", "boxhand"])
    assert res.exit_code == 0, res.output
    assert len(trimesh.load(tmp_path / "posed.ply", process=False).faces) == 256


def test_demo_with_a_missing_model_file(tmp_path):
    res = runner.invoke(app, ["demo", "--out", str(tmp_path), "--model", "nope/MANO_RIGHT.pkl"])
    assert res.exit_code == 2 and "no such file" in res.output
    bad = tmp_path / "MANO_RIGHT.pkl"
    bad.write_bytes(b"garbage")
    res = runner.invoke(app, ["demo", "--out", str(tmp_path / "o"), "--model", str(bad)])
    assert res.exit_code == 2 and "MANO_RIGHT.pkl" in res.output, res.output  # a usage error


def test_demo_with_a_mano_file(tmp_path, mano_pkl):
    res = runner.invoke(app, ["demo", "--out", str(tmp_path), "--model", str(mano_pkl)])
    assert res.exit_code == 0, res.output
    assert len(trimesh.load(tmp_path / "rest.ply", process=False).vertices) == 778
    # its folder, as reconstruct's --model-path takes it
    res = runner.invoke(app, ["demo", "--out", str(tmp_path / "f"), "--model",
                              str(mano_pkl.parent)])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert len(trimesh.load(tmp_path / "f" / "rest.ply", process=False).vertices) == 778


def test_convert_model_cli(tmp_path, mano_pkl):
    dst = tmp_path / "mano.npz"
    res = runner.invoke(app, ["convert-model", str(mano_pkl), str(dst)])
    assert res.exit_code == 0, res.output
    with np.load(dst, allow_pickle=False) as z:
        assert z["J_regressor"].shape == (16, 778)


def test_convert_openhand_to_mano_layout(tmp_path):
    dst = tmp_path / "OpenHand_RIGHT.pkl"
    res = runner.invoke(app, ["convert-model", "openhand", str(dst)])
    assert res.exit_code == 0, res.output
    # what the file is for is said: MANO's layout, not MANO's sizes
    assert "OpenHand's 1,528 vertices" in " ".join(res.output.split())
    from monohand.models.assets import load_pickle

    d = load_pickle(dst)
    assert d["v_template"].shape == (1528, 3) and d["J_regressor"].shape == (16, 1528)


def test_convert_model_refuses_bad_input(tmp_path):
    bad = tmp_path / "MANO_RIGHT.pkl"
    bad.write_bytes(b"garbage")
    res = runner.invoke(app, ["convert-model", str(bad), str(tmp_path / "o.npz")])
    assert res.exit_code == 2 and "MANO_RIGHT.pkl" in res.output  # as reconstruct's answer
    assert not (tmp_path / "o.npz").exists()
    res = runner.invoke(app, ["convert-model", str(bad), str(tmp_path / "o.txt")])
    assert res.exit_code == 2
    # a folder that is not NIMBLE's: named as such (it said "expected a MANO .pkl")
    (tmp_path / "empty").mkdir()
    res = runner.invoke(app, ["convert-model", str(tmp_path / "empty"), str(tmp_path / "n.npz")])
    text = " ".join(res.output.split())
    assert res.exit_code == 2 and "a folder without NIMBLE's files (NIMBLE_DICT_9137.pkl" in text
    # a file converted already (it said "a MANO pickle converts to a .npz" of a NIMBLE .npz)
    done = tmp_path / "nimble.npz"
    np.savez(done, x=np.zeros(2))
    res = runner.invoke(app, ["convert-model", str(done), str(tmp_path / "again.pt")])
    text = " ".join(res.output.split())
    assert res.exit_code == 2 and "already a converted model file" in text, text
    assert not (tmp_path / "again.pt").exists()
