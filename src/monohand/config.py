"""Typed training configuration (OmegaConf structured configs + YAML + command-line overrides)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import OmegaConf


@dataclass
class DataConfig:
    root: str = ""  # a FreiHAND-layout folder; empty: generate a synthetic set in out_dir/data
    synth_num: int = 64  # samples to generate when ``root`` is empty
    size: int = 128  # network input size (images are resized)
    labels: str = "gt"  # "gt" or a detections file (S2HAND/OpenPose JSON)
    augment: bool = False


@dataclass
class ModelConfig:
    name: str = "openhand"  # openhand | mano | nimble
    path: str = ""  # MANO / NIMBLE files
    backbone: int = 18
    backbone_weights: str = ""


@dataclass
class LossConfig:
    """Loss weights; 0 switches a term off. Supervision modes of the seed's tables:
    detector 2D (+/- confidence), GT 2D, GT 2D + 3D, GT 2D + 3D norm; bone orientation."""

    keypoints_2d: float = 1.0
    keypoints_sigma: float = 1.0  # robustness scale, hand sizes (fitting uses 0.1)
    use_confidence: bool = True
    bone: float = 0.0
    bone_confidence: bool = False
    joints_3d: float = 0.0
    joints_3d_norm: float = 0.0
    pose_prior: float = 1e-3
    shape_prior: float = 1e-3
    collision: float = 0.0


@dataclass
class TrainConfig:
    out_dir: str = "out/train"
    steps: int = 40
    batch: int = 8
    lr: float = 1e-3
    seed: int = 0
    log_every: int = 5
    ckpt_every: int = 20
    workers: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> TrainConfig:
    """Defaults, then a YAML file, then ``key=value`` overrides (dotted keys), type-checked."""
    cfg = OmegaConf.structured(TrainConfig)
    if path:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"{p}: no such config file")
        cfg = OmegaConf.merge(cfg, OmegaConf.load(p))
    if overrides:
        cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(list(overrides)))
    return OmegaConf.to_object(cfg)
