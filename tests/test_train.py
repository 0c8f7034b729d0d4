"""Training: the smoke config runs and learns, resume reproduces, bad losses stop clearly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from monohand.cli import app
from monohand.config import load_config
from monohand.data.synthetic import SynthConfig, generate
from monohand.train import train

SMOKE = Path(__file__).resolve().parents[1] / "configs" / "smoke.yaml"


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("train") / "data"
    generate(root, SynthConfig(num=32, size=96, seed=0, eval_fraction=0.0))
    return root


def _cfg(out, data_root, **kw):
    overrides = [f"out_dir={out}", f"data.root={data_root}", "data.size=64", "batch=8"]
    overrides += [f"{k}={v}" for k, v in kw.items()]
    return load_config(SMOKE, overrides)


def test_smoke_training_lowers_the_loss(tmp_path, data_root):
    cfg = _cfg(tmp_path / "run", data_root, steps=30, log_every=3)
    train(cfg)
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 30 and all("loss" in r for r in rows)
    first = sum(r["loss"] for r in rows[:3]) / 3
    last = sum(r["loss"] for r in rows[-3:]) / 3
    assert last < 0.8 * first
    state = torch.load(tmp_path / "run" / "last.ckpt", weights_only=True)
    assert state["step"] == 30 and state["config"]["steps"] == 30


def test_resume_reproduces_the_uninterrupted_run(tmp_path, data_root):
    straight = _cfg(tmp_path / "a", data_root, steps=8, ckpt_every=4, log_every=4)
    train(straight)
    first_half = _cfg(tmp_path / "b", data_root, steps=4, ckpt_every=4, log_every=4)
    train(first_half)
    rest = _cfg(tmp_path / "b", data_root, steps=8, ckpt_every=4, log_every=4)
    train(rest, resume=True)
    a = torch.load(tmp_path / "a" / "last.ckpt", weights_only=True)["net"]
    b = torch.load(tmp_path / "b" / "last.ckpt", weights_only=True)["net"]
    for k in a:
        assert torch.allclose(a[k].float(), b[k].float(), atol=1e-5), k


def test_non_finite_loss_stops_with_its_name(tmp_path, data_root):
    cfg = _cfg(tmp_path / "nan", data_root, steps=3, **{"loss.joints_3d_norm": "nan"})
    with pytest.raises(FloatingPointError, match="loss 'joints_3d_norm'"):
        train(cfg)


def test_train_command_and_config_errors(tmp_path, data_root):
    res = CliRunner().invoke(
        app,
        [
            "train",
            str(SMOKE),
            f"out_dir={tmp_path / 'c'}",
            f"data.root={data_root}",
            "steps=2",
            "data.size=64",
            "log_every=1",
        ],
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "c" / "metrics.jsonl").is_file() and (tmp_path / "c" / "last.ckpt").is_file()
    res = CliRunner().invoke(app, ["train", str(SMOKE), "steps=many"])
    assert res.exit_code == 2
    res = CliRunner().invoke(app, ["train", str(tmp_path / "nope.yaml")])
    assert res.exit_code == 2 and "nope.yaml" in res.output


def test_reconstruct_and_evaluate_with_a_trained_network(tmp_path, data_root):
    example = Path(__file__).resolve().parents[1] / "examples" / "hand.jpg"
    cfg = _cfg(tmp_path / "net", data_root, steps=2, log_every=1)
    train(cfg)
    ckpt = tmp_path / "net" / "last.ckpt"
    out = tmp_path / "rec"
    res = CliRunner().invoke(
        app,
        [
            "reconstruct",
            str(example),
            "--method",
            "network",
            "--checkpoint",
            str(ckpt),
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    rec = json.loads((out / "hand.json").read_text())
    h = rec["hands"][0]
    assert len(h["joints3d"]) == 21 and len(h["vertices"]) == 1528
    assert min(z for _, _, z in h["joints3d"]) > 0  # in front of the camera
    res = CliRunner().invoke(
        app, ["reconstruct", str(example), "--method", "network", "--out", str(out)]
    )
    assert res.exit_code == 2 and "--checkpoint" in res.output
    (tmp_path / "junk.ckpt").write_bytes(b"junk")
    res = CliRunner().invoke(
        app,
        [
            "reconstruct",
            str(example),
            "--method",
            "network",
            "--checkpoint",
            str(tmp_path / "junk.ckpt"),
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 2 and "junk.ckpt" in res.output


REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "realhands" / "annotations.json"


@pytest.mark.skipif(not REAL.is_file(), reason="real-photo set absent")
def test_evaluate_real_with_a_network(tmp_path, data_root):
    train(_cfg(tmp_path / "net", data_root, steps=1, log_every=1))
    res = CliRunner().invoke(
        app,
        [
            "evaluate-real",
            str(REAL),
            "--method",
            "network",
            "--checkpoint",
            str(tmp_path / "net" / "last.ckpt"),
            "--every",
            "60",
            "--out",
            str(tmp_path / "ev"),
        ],
    )
    assert res.exit_code == 0, res.output
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert m["num_images"] == 3 and m["detected"] >= 2 and m["aligned"]["mpjpe_mm"] > 0


def test_training_with_nimble_by_config(tmp_path, data_root, nimble_dir):
    """``model.name=nimble model.path=DIR``: the network drives NIMBLE; the loss is finite and
    the checkpoint reloads as a reconstruction network with NIMBLE's skin."""
    from monohand.reconstruct import load_network

    cfg = _cfg(tmp_path / "nimble", data_root, steps=4, log_every=1, ckpt_every=4,
               **{"model.name": "nimble", "model.path": str(nimble_dir)})  # fmt: skip
    train(cfg)
    rows = [json.loads(x) for x in (tmp_path / "nimble" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in rows)
    net, size = load_network(str(tmp_path / "nimble" / "last.ckpt"))
    assert net.hand.name == "nimble" and size == 64
    with torch.no_grad():
        _, out = net(
            torch.rand(1, 3, 64, 64), torch.tensor([[[80.0, 0, 32], [0, 80.0, 32], [0, 0, 1]]])
        )
    assert out.vertices.shape == (1, net.hand.num_vertices, 3)
