"""A rendered OpenHand clip with known 3D joints: smooth finger curls, a turning wrist and a
drifting hand over a CC0 photo. Used by the video tests and to choose the smoothing settings
(never real data for that)."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import numpy as np
import torch
from PIL import Image
from scipy.spatial.transform import Rotation

from ..models.openhand import OpenHand
from ..render import Renderer
from ..render.camera import default_K


@dataclass
class Clip:
    frames: np.ndarray  # (N, H, W, 3) uint8
    joints3d: np.ndarray  # (N, 21, 3) metres, camera frame
    K: np.ndarray  # (3, 3)
    fps: float


def render_clip(
    n: int = 24, size: tuple[int, int] = (240, 320), fps: float = 30.0, back: bool = False
) -> Clip:
    """``n`` frames of a right hand, palm (or ``back``) to the camera, moving smoothly
    (deterministic)."""
    h, w = size
    bg_path = resources.files("skimage") / "data" / "coffee.png"
    bg = np.asarray(Image.open(str(bg_path)).convert("RGB").resize((w, h), Image.BICUBIC))
    hand = OpenHand()
    t = torch.arange(n, dtype=torch.float32) / fps
    phase = 2 * np.pi * 0.5 * t  # half a cycle per second
    angles = torch.as_tensor(hand.pose_space.relaxed, dtype=torch.float32)[None].repeat(n, 1, 1)
    curl = 0.35 * (1 - torch.cos(phase))  # 0 .. 0.7 rad
    angles[:, 3:12, 0] += curl[:, None]  # middle, ring and little fingers curl
    angles[:, 0:3, 0] += 0.2 + 0.1 * torch.sin(phase)[:, None]
    angles[:, 12:, 0] += 0.25
    base = Rotation.from_rotvec([0, 0, np.pi / 2]) * Rotation.from_rotvec([np.pi / 2, 0, 0])
    if back:
        base = Rotation.from_rotvec([0, np.pi, 0]) * base
    yaw = 20 * np.sin(phase.numpy())
    rots = [(Rotation.from_euler("zx", [10 + y, -15], degrees=True) * base).as_rotvec()
            for y in yaw]  # fmt: skip
    go = torch.as_tensor(np.stack(rots), dtype=torch.float32)
    texture = torch.tensor([[0.2, 0.4, 0.2, 0.3, 0, 0, 0, 0.3, 0, 0]]).repeat(n, 1)
    out = hand(global_orient=go, hand_pose=hand.pose_space.to_axis_angle(angles),
               betas=torch.zeros(n, 10), texture=texture)  # fmt: skip
    drift = torch.stack([0.02 * torch.sin(phase), 0.01 * torch.cos(phase), 0.36 + 0.0 * t], 1)
    centre = out.vertices[0].amin(0) * 0.5 + out.vertices[0].amax(0) * 0.5
    shift = drift - centre
    v = out.vertices + shift[:, None]
    joints = out.joints + shift[:, None]
    K = default_K((h, w), 55)
    light = torch.tensor([[0.55, 0.6, 1.0, 0.97, 0.93, 1.0, 0.95, 0.9, 0.2, -0.4, -0.9]])
    background = torch.as_tensor(bg / 255.0, dtype=torch.float32)[None].repeat(n, 1, 1, 1)
    r = Renderer((h, w))(v, hand.faces, K.repeat(n, 1, 1), texture=out.texture, uvs=hand.uvs,
                         face_uvs=hand.face_uvs, light=light.repeat(n, 1),
                         background=background)  # fmt: skip
    frames = (np.clip(r.rgb.numpy(), 0, 1) * 255).astype(np.uint8)
    return Clip(frames, joints.numpy().astype(np.float64), K[0].double().numpy(), fps)


def jitter_mm(joints: np.ndarray) -> float:
    """Mean joint acceleration ``|x[t+1] - 2 x[t] + x[t-1]|`` in mm/frame² of (N, 21, 3)
    metres (frames with NaN are skipped)."""
    acc = np.linalg.norm(np.diff(joints, n=2, axis=0), axis=-1)
    return float(np.nanmean(acc) * 1000)
