"""The foundation's demo: pose a hand model and write meshes, keypoints and a picture.

Runs on a fresh machine with no licensed files (the procedural box hand); with ``model_path``
it poses MANO instead. ``monohand reconstruct`` supersedes it once it exists.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from .export import save_mesh
from .models.mano import MANO
from .models.procedural import box_hand_data
from .models.skinned import SkinnedHand, mirror_data
from .viz import save_hand_figure


@dataclass
class DemoResult:
    meshes: list[Path]
    figure: Path
    keypoints: Path


def run_demo(
    out_dir: str | Path, model_path: str | Path | None = None, seed: int = 0
) -> DemoResult:
    """Pose the hand at rest, at its mean pose, and at a random fist-like pose; write files.

    Writes ``rest.ply``, ``mean.ply``, ``posed.ply`` and ``left.ply`` (the posed hand mirrored),
    ``keypoints.json`` (21 FreiHAND-order keypoints per mesh, metres) and ``hands.png``.
    """
    out = Path(out_dir)
    right = MANO(model_path) if model_path else SkinnedHand(box_hand_data())
    left = (
        MANO(model_path, side="left") if model_path else SkinnedHand(mirror_data(box_hand_data()))
    )
    g = torch.Generator().manual_seed(seed)
    n = right.num_pose_params
    curl = torch.zeros(1, n)
    curl[0, 2::3] = 0.6 + 0.4 * torch.rand(n // 3, generator=g)  # flex about z: towards the palm
    curl[0, 36:] = torch.tensor([0.3, 0.5, 0.1] * 3)  # thumb across the palm
    poses = {
        "rest": (right, torch.zeros(1, n), False),
        "mean": (right, torch.zeros(1, n), True),
        "posed": (right, curl, False),
        "left": (left, curl * torch.tensor([1.0, -1.0, -1.0]).repeat(n // 3), False),
    }
    meshes, keypoints, panels = [], {}, []
    for name, (model, pose, use_mean) in poses.items():
        if use_mean:
            pose = pose + torch.as_tensor(model.data.hands_mean, dtype=pose.dtype)
        with torch.no_grad():
            o = model(hand_pose=pose)
        v, f, j = o.vertices[0].numpy(), o.faces.numpy(), o.joints[0].numpy()
        meshes.append(save_mesh(out / f"{name}.ply", v, f))
        keypoints[name] = j.tolist()
        panels.append((v, f, j, f"{model.name} {model.side}: {name}"))
    kp_path = out / "keypoints.json"
    tmp = kp_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(keypoints, indent=1))
    tmp.replace(kp_path)
    return DemoResult(meshes, save_hand_figure(out / "hands.png", panels), kp_path)
