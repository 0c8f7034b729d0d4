"""The README's OpenHand picture: shapes, poses and skin tones (matplotlib, no renderer).

python tools/openhand_figure.py [--out docs/openhand_grid.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from monohand.models.openhand import OpenHand
from monohand.viz import save_hand_figure


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("docs/openhand_grid.png"))
    args = ap.parse_args()
    hand = OpenHand()
    g = torch.Generator().manual_seed(3)
    mean = torch.as_tensor(hand.data.hands_mean, dtype=torch.float32)[None]
    panels = []
    for _ in range(4):  # row 1: shapes, betas ~ N(0, 1.5^2), mean pose
        betas = 1.5 * torch.randn(1, 10, generator=g)
        o = hand(hand_pose=mean, betas=betas, texture=torch.zeros(1, 10))
        panels.append((o, f"shape: size {betas[0, 0]:+.1f} sd"))
    for c in range(4):  # row 2: poses from the sampler
        pose = hand.pose_space.to_axis_angle(hand.pose_space.sample(1, g))
        panels.append((hand(hand_pose=pose, texture=torch.zeros(1, 10)), f"sampled pose {c + 1}"))
    for tone in (-2.0, -0.7, 0.7, 2.0):  # row 3: skin tone, other texture coefficients random
        tex = 0.7 * torch.randn(1, 10, generator=g)
        tex[0, 0] = tone
        panels.append((hand(hand_pose=mean, texture=tex), f"skin tone {tone:+.1f} sd"))
    save_hand_figure(
        args.out,
        [
            (o.vertices[0].numpy(), o.faces.numpy(), None, t, o.vertex_colors[0].numpy())
            for o, t in panels
        ],
        columns=4,
        view=(65, -95),
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
