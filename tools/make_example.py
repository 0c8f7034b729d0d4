"""The example photo of the README's main command: OpenHand rendered by monohand over a CC0
photo (scikit-image's ``coffee.png``, CC0 by Rachel Michetti). Reproducible.

    python tools/make_example.py [--out examples/hand.jpg]
"""

from __future__ import annotations

import argparse
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy.spatial.transform import Rotation

from monohand.models.openhand import OpenHand
from monohand.render import Renderer
from monohand.render.camera import default_K


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("examples/hand.jpg"))
    args = ap.parse_args()
    h, w = 480, 640
    bg_path = Path(str(resources.files("skimage") / "data" / "coffee.png"))
    bg = np.asarray(Image.open(bg_path).convert("RGB").resize((w, h), Image.BICUBIC)) / 255.0
    hand = OpenHand()
    angles = torch.as_tensor(hand.pose_space.relaxed, dtype=torch.float32)[None].clone()
    angles[0, 0:12, 0] += torch.tensor([0.1, 0.2, 0.1, 0.0, 0.1, 0.1, 0.5, 0.6, 0.4, 0.3, 0.4, 0.3])
    angles[0, 12:, 0] += torch.tensor([0.2, 0.3, 0.3])
    # Palm towards the camera, fingers up (x turned onto -y, the back of the hand onto +z),
    # then leaning a little to the right and towards the camera.
    base = Rotation.from_rotvec([0, 0, np.pi / 2]) * Rotation.from_rotvec([np.pi / 2, 0, 0])
    rot = (Rotation.from_euler("zx", [-15, -15], degrees=True) * base).as_rotvec()
    out = hand(global_orient=torch.as_tensor(rot[None], dtype=torch.float32),
               hand_pose=hand.pose_space.to_axis_angle(angles), betas=torch.zeros(1, 10),
               texture=torch.tensor([[0.2, 0.4, 0.2, 0.3, 0, 0, 0, 0.3, 0, 0]]))  # fmt: skip
    v = out.vertices
    v = v - 0.5 * (v.amin(1) + v.amax(1))[:, None] + torch.tensor([0.03, 0.0, 0.36])
    light = torch.tensor([[0.55, 0.6, 1.0, 0.97, 0.93, 1.0, 0.95, 0.9, 0.2, -0.4, -0.9]])
    r = Renderer((h, w))(v, hand.faces, default_K((h, w), 55), texture=out.texture, uvs=hand.uvs,
                         face_uvs=hand.face_uvs, light=light,
                         background=torch.as_tensor(bg, dtype=torch.float32)[None])  # fmt: skip
    img = (np.clip(r.rgb[0].numpy(), 0, 1) * 255).astype(np.uint8)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(args.out, quality=92)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
