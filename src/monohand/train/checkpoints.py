"""A training run's checkpoint: what ``last.ckpt`` holds (``checkpoint_state``), what it was
trained with and at which step (``checkpoint_info``), whether a config may continue it
(``config_changes``: only the settings in ``RESUMABLE`` may change), and the metrics a killed
run logged after it (``cut_metrics``)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn

from ..atomic import atomic_write
from ..config import TrainConfig
from .setup import SetupError


def checkpoint_state(step: int, net: nn.Module, opt: torch.optim.Optimizer, cfg: TrainConfig,
                     extended: list[dict]) -> dict:  # fmt: skip
    """What ``last.ckpt`` holds at ``step``: the network's and optimiser's states, the
    config (as a dict), torch's random state and the run's extensions (below)."""
    return {
        "step": step,
        "net": net.state_dict(),
        "opt": opt.state_dict(),
        "config": asdict(cfg),
        "torch_rng": torch.get_rng_state(),
        # each resumption with more steps than the run was trained for: its learning rate
        # followed both schedules, so it is not what a fresh run of its steps gives
        "extended": extended,
    }


def cut_metrics(path: Path, step: int) -> int:
    """Drop the lines of ``metrics.jsonl`` logged after ``step`` (a run killed after its last
    checkpoint logged steps that its resumption logs again); returns the lines kept."""
    if not path.is_file():
        return 0
    kept = [line for line in path.read_text().splitlines()
            if line.strip() and json.loads(line).get("step", 0) <= step]  # fmt: skip
    atomic_write(path, lambda t: t.write_text("".join(f"{line}\n" for line in kept)))
    return len(kept)


# What a resumed run may change: where it writes, how it logs, where its data now lies, and
# how long it runs (more steps stretch the cosine schedule from the step resumed at on).
RESUMABLE = frozenset({"out_dir", "steps", "log_every", "ckpt_every", "workers", "tensorboard",
                       "data.root", "data.cache_dir", "val_every", "val_max"})  # fmt: skip


def _flat(tree: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in tree.items():
        out |= _flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v}
    return out


def config_changes(saved: dict, cfg: TrainConfig) -> list[str]:
    """The settings in which ``cfg`` differs from a checkpoint's ``saved`` config, as
    "name=saved (now: new)", other than those a resumed run may change (``RESUMABLE``);
    [] when it may continue that checkpoint."""
    a, b = _flat(saved), _flat(asdict(cfg))
    # a setting added after the run was saved is the run's at its default (what it trained)
    default = _flat(asdict(TrainConfig()))
    a.update({k: default[k] for k in b.keys() - a.keys() if k in default})
    out = [f"{k}={a.get(k)!r} (now {b.get(k)!r})" for k in sorted(a.keys() | b.keys())
           if k not in RESUMABLE and a.get(k) != b.get(k)]  # fmt: skip
    renders = any(getattr(cfg.loss, k) > 0 for k in ("silhouette", "photometric", "ssim",
                                                       "mean_colour"))  # fmt: skip
    moved = [w for w, on in (("the stagewise schedule's stages", cfg.schedule == "stagewise"),
                             ("loss.render_from's start", cfg.loss.render_from > 0 and renders))
             if on]  # fmt: skip
    # (fewer steps than trained: nothing trains, the run is reused as it is)
    if (a.get("steps") or 0) < (b.get("steps") or 0) and moved:
        # (they are shares of steps: a resumed run would go back a stage, or drop the
        # render terms again, where only the learning rate was meant to stretch)
        out.append(f"steps={a.get('steps')!r} (now {b.get('steps')!r}): "
                   f"{' and '.join(moved)} are shares of steps and would move")  # fmt: skip
    return out


def checkpoint_info(path: str | Path) -> tuple[int, dict]:
    """The step a ``last.ckpt`` was saved at and the config (as a dict) it was trained with;
    ``SetupError`` naming the file where it is not one (truncated, foreign)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        return int(state["step"]), state.get("config", {})
    except Exception as e:  # noqa: BLE001 - torch.load fails in many ways on a broken file
        raise SetupError(f"{path}: not a readable monohand training checkpoint "
                         f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
                         ) from e  # fmt: skip


def checkpoint_step(path: str | Path) -> int:
    """The step a ``last.ckpt`` was saved at."""
    return checkpoint_info(path)[0]
