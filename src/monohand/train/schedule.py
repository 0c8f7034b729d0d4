"""When what trains: the learning rate of a step and the stages of stagewise training."""

from __future__ import annotations

import math

from torch import Tensor

from ..config import TrainConfig


def learning_rate(cfg: TrainConfig, step: int) -> float:
    """The learning rate of step ``step`` (0-based): a function of the step alone, so a
    resumed run follows the same schedule without saving any scheduler state."""
    if cfg.lr_schedule == "constant":
        return cfg.lr
    t = min(step / max(cfg.steps - 1, 1), 1.0)
    lo = cfg.lr_final_fraction
    return cfg.lr * (lo + (1 - lo) * 0.5 * (1 + math.cos(math.pi * t)))


STAGES = ("keypoints", "mesh", "joint")


def stage_of(cfg: TrainConfig, step: int) -> str:
    """The training stage at ``step`` (0-based): "joint" throughout end-to-end training."""
    if cfg.schedule != "stagewise":
        return "joint"
    total = sum(cfg.stage_fractions) or 1.0
    edge = 0.0
    for name, frac in zip(STAGES, cfg.stage_fractions, strict=True):
        edge += frac / total * cfg.steps
        if step < edge:
            return name
    return STAGES[-1]


def stage_terms(stage: str, terms: dict[str, Tensor]) -> tuple[dict, dict]:
    """(active, inactive) loss terms of a stage: the 2D branch's stage trains the integral
    loss alone, the mesh stage everything else, the joint stage all."""
    if stage == "keypoints":
        active = {k: v for k, v in terms.items() if k == "integral"}
    elif stage == "mesh":
        active = {k: v for k, v in terms.items() if k != "integral"}
    else:
        active = dict(terms)
    return active, {k: v for k, v in terms.items() if k not in active}


def frozen_prefixes(stage: str) -> tuple[str, ...]:
    """Parameter-name prefixes held fixed in a stage."""
    return {"keypoints": ("heads.",), "mesh": ("encoder.", "keypoints.")}.get(stage, ())
