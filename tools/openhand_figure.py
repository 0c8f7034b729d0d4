"""The README's OpenHand picture: shapes, poses and skin tones, drawn by monohand's renderer.

python tools/openhand_figure.py [--out docs/openhand_grid.png] [--size 256]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from monohand.models.lbs import batch_rodrigues
from monohand.models.openhand import OpenHand
from monohand.render import Renderer
from monohand.render.camera import default_K
from monohand.render.shade import default_light


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("docs/openhand_grid.png"))
    ap.add_argument("--size", type=int, default=256)
    args = ap.parse_args()
    hand = OpenHand()
    g = torch.Generator().manual_seed(3)
    mean = torch.as_tensor(hand.data.hands_mean, dtype=torch.float32)[None]
    poses, betas, tex = [], [], []
    for _ in range(4):  # row 1: shapes, betas ~ N(0, 1.5^2), mean pose, mean skin
        poses.append(mean)
        betas.append(1.5 * torch.randn(1, 10, generator=g))
        tex.append(torch.zeros(1, 10))
    for _ in range(4):  # row 2: poses from the anatomical sampler
        poses.append(hand.pose_space.to_axis_angle(hand.pose_space.sample(1, g)))
        betas.append(torch.zeros(1, 10))
        tex.append(torch.zeros(1, 10))
    for tone in (-2.0, -0.7, 0.7, 2.0):  # row 3: skin tone, other texture coefficients random
        t = 0.7 * torch.randn(1, 10, generator=g)
        t[0, 0] = tone
        poses.append(mean)
        betas.append(torch.zeros(1, 10))
        tex.append(t)
    n = len(poses)
    # Palm towards the camera, fingers up: turn the hand about x, then about z.
    rx = batch_rodrigues(torch.tensor([[np.pi / 2, 0.0, 0.0]]))
    rz = batch_rodrigues(torch.tensor([[0.0, 0.0, np.pi / 2]]))
    aa = torch.as_tensor(
        __import__("scipy.spatial.transform", fromlist=["Rotation"])
        .Rotation.from_matrix((rz @ rx)[0].numpy())
        .as_rotvec(),
        dtype=torch.float32,
    )[None].expand(n, 3)
    out = hand(global_orient=aa, hand_pose=torch.cat(poses), betas=torch.cat(betas),
               texture=torch.cat(tex))  # fmt: skip
    v = out.vertices
    centre = 0.5 * (v.amin(1) + v.amax(1))
    v = v - centre[:, None] + torch.tensor([0.0, 0.0, 0.42])
    s = args.size
    ren = Renderer((s, s), background=(1.0, 1.0, 1.0))
    light = default_light(n)
    light[:, 0], light[:, 1] = 0.45, 0.7
    img = ren(v, hand.faces, default_K((s, s), 30, n), texture=out.texture, uvs=hand.uvs,
              face_uvs=hand.face_uvs, light=light).rgb  # fmt: skip
    grid = img.clamp(0, 1).reshape(3, 4, s, s, 3).permute(0, 2, 1, 3, 4).reshape(3 * s, 4 * s, 3)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((grid.detach().numpy() * 255).astype(np.uint8)).save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
