"""Differentiable rendering with OpenCV cameras: primitives (``rasterize``, ``interpolate``,
``sample_texture``, ``lambert``) and the convenience ``Renderer``."""

from .camera import project
from .rasterize import Fragments, interpolate, interpolate_face_attr, mesh_topology, rasterize
from .renderer import Renderer, RenderOutput
from .shade import default_light, lambert, sample_texture, vertex_normals

__all__ = [
    "Fragments", "RenderOutput", "Renderer", "default_light", "interpolate",
    "interpolate_face_attr", "lambert", "mesh_topology", "project", "rasterize",
    "sample_texture", "vertex_normals",
]  # fmt: skip
