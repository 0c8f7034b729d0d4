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
