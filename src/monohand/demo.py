"""The foundation's demo: pose a hand model and write meshes, keypoints and a picture.

Runs on a fresh machine with no licensed files: OpenHand by default, or the procedural box
hand; given a MANO file it poses MANO. ``monohand reconstruct`` supersedes it once it exists.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from .atomic import atomic_write
from .export import save_mesh
from .models.openhand import OpenHand
from .models.registry import create
from .models.skinned import SkinnedHand, mirror_axis_angle
from .viz import save_hand_figure


@dataclass
class DemoResult:
    meshes: list[Path]
    figure: Path
    keypoints: Path


def load_model(model: str | Path = "openhand", side: str = "right") -> SkinnedHand:
    """'openhand' (default), 'boxhand', or a path to a MANO ``.pkl``/``.npz`` or its folder."""
    name = str(model)
    if name in ("openhand", "boxhand"):
        return create(name, side=side)
    return create("mano", name, side=side)


def _curled_pose(model: SkinnedHand, g: torch.Generator) -> torch.Tensor:
    """A half-closed hand: from the anatomical sampler where the model has one, else every
    finger joint flexed about z (towards the palm in MANO's frame)."""
    if isinstance(model, OpenHand):
        angles = torch.as_tensor(model.pose_space.relaxed, dtype=torch.float32)[None].clone()
        angles[0, :, 0] += 0.5 + 0.3 * torch.rand(15, generator=g)
        angles = torch.minimum(angles, torch.as_tensor(model.pose_space.limits[..., 1]).float())
        return model.pose_space.to_axis_angle(angles)
    pose = torch.zeros(1, 45)
    pose[0, 2::3] = 0.6 + 0.4 * torch.rand(15, generator=g)
    pose[0, 36:] = torch.tensor([0.3, 0.5, 0.1] * 3)  # thumb across the palm
    return pose


def run_demo(out_dir: str | Path, model: str | Path = "openhand", seed: int = 0) -> DemoResult:
    """Pose the hand flat, at its mean pose and half closed, and the left hand; write files.

    ``model``: see ``load_model``. Writes ``rest.ply``, ``mean.ply``, ``posed.ply`` and
    ``left.ply`` (the posed hand mirrored; coloured where the model has a texture space),
    ``keypoints.json`` (21 FreiHAND-order keypoints per mesh, metres) and ``hands.png``.
    """
    out = Path(out_dir)
    right, left = load_model(model, "right"), load_model(model, "left")
    curl = _curled_pose(right, torch.Generator().manual_seed(seed))
    mean = torch.as_tensor(right.data.hands_mean, dtype=torch.float32)[None]
    poses = {
        "rest": (right, torch.zeros(1, 45)),
        "mean": (right, mean),
        "posed": (right, curl),
        "left": (left, mirror_axis_angle(curl)),
    }
    meshes, keypoints, panels = [], {}, []
    for name, (m, pose) in poses.items():
        tex = torch.zeros(1, m.num_texture_params) if m.num_texture_params else None
        with torch.no_grad():
            o = m(hand_pose=pose, texture=tex)
        v, f, j = o.vertices[0].numpy(), o.faces.numpy(), o.joints[0].numpy()
        vc = None if o.vertex_colors is None else o.vertex_colors[0].numpy()
        meshes.append(save_mesh(out / f"{name}.ply", v, f, vc))
        keypoints[name] = j.tolist()
        panels.append((v, f, j, f"{m.name} {m.side}: {name}", vc))
    text = json.dumps(keypoints, indent=1)
    kp_path = atomic_write(out / "keypoints.json", lambda tmp: tmp.write_text(text))
    return DemoResult(meshes, save_hand_figure(out / "hands.png", panels), kp_path)
