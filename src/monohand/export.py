"""Mesh files: OBJ, PLY, glTF/GLB through trimesh, written atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import trimesh

from .atomic import atomic_write

MESH_SUFFIXES = (".obj", ".ply", ".glb", ".gltf", ".off", ".stl")


def save_mesh(
    path: str | Path,
    vertices: np.ndarray,
    faces: np.ndarray,
    vertex_colors: np.ndarray | None = None,
) -> Path:
    """Write one mesh; the format follows the suffix. No partial file is ever left behind.

    Args:
        path: destination, one of ``MESH_SUFFIXES``.
        vertices: (V, 3) metres.
        faces: (F, 3) int.
        vertex_colors: (V, 3) in [0, 1], optional.
    """
    path = Path(path)
    if path.suffix.lower() not in MESH_SUFFIXES:
        raise ValueError(f"{path}: unsupported mesh format, use one of {MESH_SUFFIXES}")
    colors = (
        None if vertex_colors is None else (np.clip(vertex_colors, 0, 1) * 255).astype(np.uint8)
    )
    mesh = trimesh.Trimesh(
        np.asarray(vertices, dtype=np.float64),
        np.asarray(faces),
        vertex_colors=colors,
        process=False,
    )
    return atomic_write(path, lambda tmp: mesh.export(tmp))
