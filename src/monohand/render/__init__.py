"""Differentiable rendering with OpenCV cameras: primitives (``zbuffer``, ``antialias``, and
``rasterize`` = the two in sequence, ``silhouette`` = its coverage alone; ``interpolate``,
``sample_texture``, ``lambert``) and the convenience ``Renderer``."""

from .camera import project
from .rasterize import (
    Fragments,
    antialias,
    interpolate,
    interpolate_face_attr,
    mesh_topology,
    rasterize,
    silhouette,
    zbuffer,
)
from .renderer import Renderer, RenderOutput
from .shade import default_light, lambert, sample_texture, vertex_normals

__all__ = [
    "Fragments", "RenderOutput", "Renderer", "antialias", "default_light", "interpolate",
    "interpolate_face_attr", "lambert", "mesh_topology", "project", "rasterize",
    "sample_texture", "silhouette", "vertex_normals", "zbuffer",
]  # fmt: skip
