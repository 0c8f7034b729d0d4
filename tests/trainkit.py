"""Shared by the training and prediction tests: the smoke config, overrides that make it a
tiny run, and a tiny synthetic training set."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from monohand.config import TrainConfig, load_config
from monohand.data.synthetic import SynthConfig, generate

SMOKE = Path(__file__).resolve().parents[1] / "configs" / "smoke.yaml"


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("train") / "data"
    generate(root, SynthConfig(num=32, size=96, seed=0, eval_fraction=0.0))
    return root


def tiny_config(out, data_root, **kw) -> TrainConfig:
    """The smoke config writing to ``out``, training on ``data_root`` at 64², batch 8, with
    ``key=value`` overrides."""
    overrides = [f"out_dir={out}", f"data.root={data_root}", "data.size=64", "batch=8"]
    overrides += [f"{k}={v}" for k, v in kw.items()]
    return load_config(SMOKE, overrides)


def exact_outputs(joints2d: torch.Tensor) -> tuple[SimpleNamespace, SimpleNamespace]:
    """Stand-ins for the network's (output, parameters) of B hands for ``compute_losses``:
    joints that project exactly onto ``joints2d`` (B, 21, 2) under K = I (depth 1), zero
    shape and pose, no 2D branch."""
    b = joints2d.shape[0]
    out = SimpleNamespace(joints=torch.cat([joints2d, torch.ones(b, 21, 1)], -1))
    params = SimpleNamespace(betas=torch.zeros(b, 10), hand_pose=torch.zeros(b, 45),
                             keypoints2d=None)  # fmt: skip
    return out, params
