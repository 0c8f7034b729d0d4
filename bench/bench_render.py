"""Speed of the renderer: silhouette + shaded, textured RGB, forward + backward.

OpenHand (1,528 vertices, 3,052 faces: twice MANO's faces) in sampled poses, batch 16,
float32, CPU (and CUDA when present): the hand model's forward, rasterisation, texture
lookup, shading, and the backward pass to pose, texture coefficients and light.

    python bench/bench_render.py [--sizes 128 224] [--batch 16] [--repeats 5]
"""

from __future__ import annotations

import argparse
import time

import torch
from rich.console import Console
from rich.table import Table

from monohand.models.openhand import OpenHand
from monohand.render import Renderer, default_light
from monohand.render.camera import default_K


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[128, 224])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    table = Table(title=f"Renderer, batch {args.batch}, OpenHand 3,052 faces, forward+backward")
    for col in ("device", "size", "ms / batch", "images/s"):
        table.add_column(col, justify="right")
    for device in devices:
        hand = OpenHand().to(device)
        g = torch.Generator().manual_seed(0)
        b = args.batch
        pose = hand.pose_space.to_axis_angle(hand.pose_space.sample(b, g)).to(device)
        # Centred and filling most of the image, as in a FreiHAND crop.
        transl = torch.tensor([[0.09, 0.0, 0.3]], device=device).expand(b, 3)
        for size in args.sizes:
            K = default_K((size, size), 40, b).to(device)
            ren = Renderer((size, size)).to(device)
            tex = torch.zeros(b, 10, device=device, requires_grad=True)
            light = default_light(b, device=device).requires_grad_()

            def full(hand=hand, ren=ren, K=K, tex=tex, light=light, pose=pose, transl=transl):
                o = hand(hand_pose=pose, transl=transl, texture=tex)
                out = ren(o.vertices, hand.faces, K, texture=o.texture, uvs=hand.uvs,
                          face_uvs=hand.face_uvs, light=light)  # fmt: skip
                (out.silhouette.mean() + out.rgb.mean()).backward()

            full()
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(args.repeats):
                full()
            if device.type == "cuda":
                torch.cuda.synchronize()
            dt = (time.perf_counter() - t0) / args.repeats
            table.add_row(str(device), f"{size}²", f"{dt * 1e3:.0f}", f"{b / dt:.1f}")
    Console().print(table)


if __name__ == "__main__":
    main()
