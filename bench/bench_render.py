"""Speed of the renderer, forward + backward, float32, CPU (and CUDA when present).

Two meshes, both posed by OpenHand in sampled poses, centred and filling most of the image
as in a FreiHAND crop:

- ``mano``: MANO's size, 1,538 faces (OpenHand decimated to MANO's face count with
  ``fast_simplification``, a benchmark dependency only: ``pip install --no-deps
  fast_simplification``; each kept vertex follows its nearest OpenHand vertex). The renderer
  alone: silhouette + RGB with vertex colours and S2HAND's light, backward to the vertices,
  the colours and the light, as a fit or training step through MANO would.
- ``openhand``: OpenHand itself (3,052 faces) with its texture: the hand model's forward,
  rasterisation, UV texture lookup, shading, and the backward to pose, texture and light;
  then its coverage alone, as the fit's silhouette stage renders it (``render.silhouette``)
  beside the full rasteriser's, backward to the vertices.

PyTorch3D, the usual reference, is not served by this project's package registry (it needs a
source build against the installed torch), so it cannot be run beside these here.

    python bench/bench_render.py [--sizes 64 128 224 256] [--batch 16] [--repeats 5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from monohand.models.openhand import OpenHand
from monohand.render import Renderer, default_light, rasterize, silhouette
from monohand.render.camera import default_K


def mano_sized(hand: OpenHand, faces: int = 1538):
    """(vertex ids of OpenHand to keep (V',), faces (F', 3)) of OpenHand decimated to
    ``faces`` faces, or None when fast_simplification is not installed."""
    try:
        import fast_simplification
    except ImportError:
        return None
    from scipy.spatial import cKDTree

    v = hand.v_template.double().numpy()
    # agg 5: the default 7 leaves edges shared by three faces on this mesh
    pts, tri = fast_simplification.simplify(v, hand.faces.numpy(), target_count=faces, agg=5)
    keep = cKDTree(v).query(pts)[1]
    return torch.as_tensor(keep), torch.as_tensor(tri.astype(np.int64))


def _timed(fn, repeats: int, device: torch.device) -> float:
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[128, 224])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--meshes", nargs="+", default=["mano", "openhand"])
    args = ap.parse_args()
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    title = f"Renderer, batch {args.batch}, forward + backward, float32"
    if not torch.cuda.is_available():
        title += f", {torch.get_num_threads()} CPU threads"
    table = Table(title=title)
    for col in ("device", "mesh", "faces", "size", "ms / batch", "images/s"):
        table.add_column(col, justify="right")
    notes = []
    for device in devices:
        hand = OpenHand().to(device)
        g = torch.Generator().manual_seed(0)
        b = args.batch
        pose = hand.pose_space.to_axis_angle(hand.pose_space.sample(b, g)).to(device)
        transl = torch.tensor([[0.09, 0.0, 0.3]], device=device).expand(b, 3)
        small = mano_sized(hand) if "mano" in args.meshes else None
        if "mano" in args.meshes and small is None:
            notes.append("mano: pip install --no-deps fast_simplification to build the mesh")
        for size in args.sizes:
            K = default_K((size, size), 40, b).to(device)
            ren = Renderer((size, size)).to(device)
            light = default_light(b, device=device).requires_grad_()
            if small is not None:
                keep, faces = small[0].to(device), small[1].to(device)
                with torch.no_grad():
                    verts = hand(hand_pose=pose, transl=transl).vertices[:, keep]
                verts = verts.clone().requires_grad_()
                colours = torch.full_like(verts, 0.6).requires_grad_()

                def mano(ren=ren, K=K, light=light, verts=verts, faces=faces, colours=colours):
                    out = ren(verts, faces, K, vertex_colors=colours, light=light)
                    (out.silhouette.mean() + out.rgb.mean()).backward()

                dt = _timed(mano, args.repeats, device)
                table.add_row(str(device), "MANO-sized", f"{faces.shape[0]:,}", f"{size}²",
                              f"{dt * 1e3:.0f}", f"{b / dt:.1f}")  # fmt: skip
            if "openhand" in args.meshes:
                tex = torch.zeros(b, hand.num_texture_params, device=device, requires_grad=True)
                pose = pose.detach().requires_grad_()  # the backward reaches the geometry too

                def full(hand=hand, ren=ren, K=K, tex=tex, light=light, pose=pose, transl=transl):
                    o = hand(hand_pose=pose, transl=transl, texture=tex)
                    out = ren(o.vertices, hand.faces, K, texture=o.texture, uvs=hand.uvs,
                              face_uvs=hand.face_uvs, light=light)  # fmt: skip
                    (out.silhouette.mean() + out.rgb.mean()).backward()

                dt = _timed(full, args.repeats, device)
                table.add_row(str(device), "OpenHand, textured, + model",
                              f"{hand.faces.shape[0]:,}", f"{size}²", f"{dt * 1e3:.0f}",
                              f"{b / dt:.1f}")  # fmt: skip
            if "openhand" in args.meshes:  # what the fit's silhouette stage renders
                with torch.no_grad():
                    v = hand(hand_pose=pose, transl=transl).vertices
                v = v.clone().requires_grad_()
                f, hw = hand.faces, (size, size)
                for name, coverage in (
                    ("rasterize(...).alpha",
                     lambda v=v, f=f, K=K, hw=hw: rasterize(v, f, K, hw).alpha),
                    ("silhouette(...)", lambda v=v, f=f, K=K, hw=hw: silhouette(v, f, K, hw)),
                ):
                    dt = _timed(lambda c=coverage: c().mean().backward(), args.repeats, device)
                    table.add_row(str(device), f"OpenHand, {name}", f"{f.shape[0]:,}",
                                  f"{size}²", f"{dt * 1e3:.0f}", f"{b / dt:.1f}")  # fmt: skip
    Console().print(table)
    for n in notes:
        Console().print(n)
    Console().print("PyTorch3D: not on the package registry (needs a source build); not compared.")


if __name__ == "__main__":
    main()
