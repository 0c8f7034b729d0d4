"""A mesh's UV layout from OBJ text: ``vt`` lines and ``f v/vt[/vn]`` faces (NIMBLE ships its
skin's layout this way, as a pickled list of such lines), and the matching of those faces to
the mesh's own face list."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .assets import AssetError


def parse_obj_uv_lines(lines, path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """OBJ text lines (``vt`` and ``f v/vt[/vn]``) -> UVs (T, 2) (v up, OpenGL/OBJ, as the
    renderer takes them), faces (F, 3) and face UVs (F, 3), 0-based; polygons are fanned.

    ``lines``: a list/array of str or bytes (each may hold several lines), or one str.
    """
    if isinstance(lines, (str, bytes)):
        lines = [lines]
    vt, faces, face_uvs = [], [], []
    for chunk in np.asarray(lines, dtype=object).ravel():
        text = chunk.decode() if isinstance(chunk, bytes) else str(chunk)
        for line in text.splitlines():
            parts = line.split()
            if not parts:
                continue
            try:
                if parts[0] == "vt":
                    vt.append((float(parts[1]), float(parts[2])))
                elif parts[0] == "f":
                    corners = [c.split("/") for c in parts[1:]]
                    vi = [int(c[0]) - 1 for c in corners]
                    ti = [int(c[1]) - 1 for c in corners]
                    for k in range(1, len(corners) - 1):
                        faces.append((vi[0], vi[k], vi[k + 1]))
                        face_uvs.append((ti[0], ti[k], ti[k + 1]))
            except (IndexError, ValueError) as e:
                raise AssetError(f"{path}: bad OBJ line {line!r}") from e
    if not vt or not faces:
        raise AssetError(f"{path}: no 'vt' or no 'f v/vt' lines")
    uvs, f, fuv = np.array(vt), np.array(faces, np.int64), np.array(face_uvs, np.int64)
    if fuv.min() < 0 or fuv.max() >= len(uvs) or f.min() < 0:
        raise AssetError(f"{path}: face UV indices outside the {len(uvs)} 'vt' lines")
    return uvs, f, fuv


def align_uv_faces(
    skin_f: np.ndarray, faces: np.ndarray, face_uvs: np.ndarray, path: str | Path
) -> np.ndarray:
    """Face UVs (F, 3) in ``skin_f``'s order and corner order, from an OBJ's faces that hold
    the same triangles in any order (corners rotated alike)."""
    if len(faces) != len(skin_f):
        raise AssetError(f"{path}: {len(faces)} textured faces, skin_f has {len(skin_f)}")
    index = {}
    for i, tri in enumerate(faces.tolist()):
        k = tri.index(min(tri))  # rotate so the smallest vertex comes first
        index[tuple(tri[k:] + tri[:k])] = (i, k)
    out = np.empty_like(skin_f)
    for j, tri in enumerate(skin_f.tolist()):
        k = tri.index(min(tri))
        hit = index.get(tuple(tri[k:] + tri[:k]))
        if hit is None:
            raise AssetError(f"{path}: skin face {j} {tri} has no textured twin")
        i, ki = hit
        # corner c of skin_f[j] is corner (c - k + ki) of faces[i]
        out[j] = face_uvs[i][[(c - k + ki) % 3 for c in range(3)]]
    return out
