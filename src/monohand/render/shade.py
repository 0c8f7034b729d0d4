"""Shading: normals, S2HAND's 11-number light, vertex colours and UV textures."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

LIGHT_SIZE = 11


def vertex_normals(vertices: Tensor, faces: Tensor) -> Tensor:
    """Area-weighted vertex normals.

    Args:
        vertices: (B, V, 3); faces: (F, 3) counter-clockwise seen from outside.
    Returns:
        (B, V, 3) unit outward normals.
    """
    f = faces.long().to(vertices.device)
    t = vertices[:, f]  # (B, F, 3, 3)
    fn = torch.cross(t[:, :, 1] - t[:, :, 0], t[:, :, 2] - t[:, :, 0], dim=-1)
    n = torch.zeros_like(vertices)
    for k in range(3):  # three scatter-adds, one per corner
        n = n.index_add(1, f[:, k], fn)
    return F.normalize(n, dim=-1, eps=1e-12)


def default_light(batch: int = 1, dtype=torch.float32, device=None) -> Tensor:
    """S2HAND's defaults (ambient 0.5, directional 0.5, white), the light shining from the
    camera and a little above (camera frame: towards -z, -y)."""
    light = torch.tensor([0.5, 0.5, 1, 1, 1, 1, 1, 1, 0.0, -0.45, -0.9], dtype=dtype, device=device)
    return light.expand(batch, LIGHT_SIZE).clone()


def split_light(light: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """S2HAND's 11 numbers: ambient intensity (B,), directional intensity (B,), ambient colour
    (B, 3), directional colour (B, 3), direction (B, 3) towards the light, camera frame (not
    normalised, as in S2HAND: its length scales the directional term)."""
    if light.ndim != 2 or light.shape[1] != LIGHT_SIZE:
        raise ValueError(f"light must have shape (B, {LIGHT_SIZE}), got {tuple(light.shape)}")
    return light[:, 0], light[:, 1], light[:, 2:5], light[:, 5:8], light[:, 8:11]


def lambert(albedo: Tensor, normals: Tensor, light: Tensor) -> Tensor:
    """Ambient + directional Lambert shading.

    colour = albedo * (I_a c_a + I_d c_d max(0, n . d)).

    Args:
        albedo: (B, ..., 3); normals: (B, ..., 3) unit; light: (B, 11).
    Returns:
        (B, ..., 3).
    """
    ia, idr, ca, cd, d = split_light(light)
    extra = (1,) * (normals.dim() - 2)
    cos = torch.relu((normals * d.view(-1, *extra, 3)).sum(-1, keepdim=True))
    intensity = (
        ia.view(-1, *extra, 1) * ca.view(-1, *extra, 3)
        + idr.view(-1, *extra, 1) * cd.view(-1, *extra, 3) * cos
    )
    return albedo * intensity


def sample_texture(texture: Tensor, uv: Tensor) -> Tensor:
    """Bilinear texture lookup, differentiable in the texture and the UVs.

    Args:
        texture: (B, h, w, C) maps, row 0 at v = 1 (OpenGL UVs, as glTF exports flip).
        uv: (B, H, W, 2) in [0, 1], v up.
    Returns:
        (B, H, W, C).
    """
    grid = torch.stack([2 * uv[..., 0] - 1, 1 - 2 * uv[..., 1]], -1)
    out = F.grid_sample(texture.permute(0, 3, 1, 2), grid, mode="bilinear",
                        padding_mode="border", align_corners=False)  # fmt: skip
    return out.permute(0, 2, 3, 1)
