"""Mesh files people open: OBJ, PLY, OFF, STL and glTF/GLB through trimesh, written
atomically; a reconstructed hand as a file (``write_hand_mesh``: textured glTF in glTF's
y-up frame, the others in the photo's camera frame), and a skinned .glb for animation tools
(``skinned_glb`` with a ``HandRig``). Which files a photo's results are, and whose, is
``outputs``'.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import trimesh
from PIL import Image

from .atomic import atomic_write

if TYPE_CHECKING:
    from .record import HandReconstruction

MESH_SUFFIXES = (".obj", ".ply", ".glb", ".gltf", ".off", ".stl")


# OpenCV camera (y down, z forward) -> glTF's y-up frame seen from +z: the photo's view.
_CV_TO_GL = np.diag([1.0, -1.0, -1.0])
_CV_TO_GL4 = np.diag([1.0, -1.0, -1.0, 1.0])  # (its own inverse)


@dataclass
class HandRig:
    """A reconstructed hand's skeleton as its model skins it, for a skinned glTF: its
    joints unposed (the bind pose) and their transforms at the fitted pose.

    Attributes:
        world: (J, 4, 4) each joint's world transform at the fitted pose, the photo's camera
            frame, metres.
        rest_joints: (J, 3) the joints of the hand's shape unposed, the model's frame.
        parents: (J,) parent indices, -1 for the root.
        names: (J,) joint names.
        weights: (V, J) the model's skinning weights.
    """

    world: np.ndarray
    rest_joints: np.ndarray
    parents: np.ndarray
    names: tuple[str, ...]
    weights: np.ndarray


def save_mesh(
    path: str | Path,
    vertices: np.ndarray,
    faces: np.ndarray,
    vertex_colors: np.ndarray | None = None,
) -> Path:
    """Write one mesh; the format follows the suffix. No partial file is ever left behind.

    Args:
        path: destination, one of ``MESH_SUFFIXES``.
        vertices: (V, 3) metres, the photo's camera frame (OpenCV: x right, y down, z
            forward; a ``HandReconstruction``'s). glTF files (.glb, .gltf) are written in
            glTF's y-up frame (x, -y, -z: the photo's view in a viewer), as
            ``write_hand_mesh``'s are; the other formats as given.
        faces: (F, 3) int.
        vertex_colors: (V, 3) in [0, 1], optional.
    """
    path = Path(path)
    if path.suffix.lower() not in MESH_SUFFIXES:
        raise ValueError(f"{path}: unsupported mesh format, use one of {MESH_SUFFIXES}")
    colors = (
        None if vertex_colors is None else (np.clip(vertex_colors, 0, 1) * 255).astype(np.uint8)
    )
    vertices = np.asarray(vertices, dtype=np.float64)
    if path.suffix.lower() in (".glb", ".gltf"):
        vertices = vertices @ _CV_TO_GL.T
    mesh = trimesh.Trimesh(
        vertices,
        np.asarray(faces),
        vertex_colors=colors,
        process=False,
    )
    return atomic_write(path, lambda tmp: _export(mesh, tmp, path.suffix))


def normalise_formats(names: Iterable[str]) -> tuple[str, ...]:
    """Mesh format names as suffixes: ".GLB", "glb" and " .glb" all mean ".glb"; each once,
    in the order given (blank names dropped)."""
    return tuple(dict.fromkeys("." + n.strip().lstrip(".").lower() for n in names if n.strip()))


def _export(mesh: trimesh.Trimesh, path: Path, suffix: str, **options) -> None:
    """``mesh`` to ``path`` in the format of ``suffix`` (any case; ``options`` go to
    trimesh's exporter). A .gltf carries its buffers inside (base64): trimesh would
    otherwise write them beside it as gltf_buffer_<k>.bin, the same names for every mesh of
    a folder, each overwriting the last's."""
    fmt = suffix.lower().lstrip(".")
    mesh.export(path, file_type=fmt, **({"embed_buffers": True} if fmt == "gltf" else {}),
                **options)  # fmt: skip


# -- a reconstructed hand's files ---------------------------------------------------------------


def glb_vertex_order(hand: HandReconstruction) -> np.ndarray:
    """(N,) the hand's vertex behind each of ``textured_mesh``'s vertices (split along UV
    seams where the hand is textured; the identity otherwise)."""
    if hand.texture is None or hand.uvs is None:
        return np.arange(len(hand.vertices))
    geo_of_uv = np.zeros(len(hand.uvs), dtype=np.int64)
    geo_of_uv[hand.face_uvs.ravel()] = hand.faces.ravel()
    return geo_of_uv


def textured_mesh(hand: HandReconstruction) -> trimesh.Trimesh:
    """A trimesh with UVs and the fitted albedo map (vertices split along UV seams), or with
    vertex colours for models without a texture space; glTF's y-up frame."""
    if hand.texture is None or hand.uvs is None:
        colors = (np.clip(hand.vertex_colors, 0, 1) * 255).astype(np.uint8)
        return trimesh.Trimesh(
            hand.vertices @ _CV_TO_GL.T, hand.faces, vertex_colors=colors, process=False
        )
    geo_of_uv = glb_vertex_order(hand)
    verts = hand.vertices[geo_of_uv] @ _CV_TO_GL.T
    # Normals of the unsplit surface, so that shading stays smooth across UV seams (without
    # them viewers shade every triangle flat).
    normals = trimesh.Trimesh(hand.vertices @ _CV_TO_GL.T, hand.faces, process=False)
    image = Image.fromarray((np.clip(hand.texture, 0, 1) * 255).astype(np.uint8))
    material = trimesh.visual.material.PBRMaterial(
        baseColorTexture=image, metallicFactor=0.0, roughnessFactor=0.8
    )
    visual = trimesh.visual.TextureVisuals(uv=hand.uvs, material=material)
    return trimesh.Trimesh(verts, hand.face_uvs, visual=visual, process=False,
                           vertex_normals=normals.vertex_normals[geo_of_uv])  # fmt: skip


def four_influences(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, J) skinning weights -> each vertex's 4 largest: joints (N, 4) and weights (N, 4)
    renormalised (glTF's ``JOINTS_0``/``WEIGHTS_0``, the influences every viewer reads)."""
    if weights.shape[1] < 4:  # (fewer joints: the others weigh nothing)
        weights = np.pad(weights, ((0, 0), (0, 4 - weights.shape[1])))
    top = np.argsort(-weights, axis=1, kind="stable")[:, :4]
    w = np.take_along_axis(weights, top, axis=1)
    w = w / np.maximum(w.sum(1, keepdims=True), 1e-12)
    return np.where(w > 0, top, 0), w  # (a weightless influence names joint 0, as glTF asks)


def rig_bind_vertices(vertices: np.ndarray, weights: np.ndarray, bind: np.ndarray,
                      world: np.ndarray) -> np.ndarray:  # fmt: skip
    """(V, 3) where to bind each vertex so that skinning with its four influences
    (``four_influences``) from ``bind`` to ``world`` ((J, 4, 4) each) puts it at
    ``vertices`` (V, 3): the pose shows exactly the given mesh, whichever influences the
    model's own skinning spread it over."""
    top, w = four_influences(weights)
    blend = np.einsum("vk,vkij->vij", w, (world @ np.linalg.inv(bind))[top])
    return np.linalg.solve(blend[:, :3, :3], (vertices - blend[:, :3, 3])[..., None])[..., 0]


def skinned_glb(glb: bytes, weights: np.ndarray, bind: np.ndarray, world: np.ndarray,
                parents: np.ndarray, names: tuple[str, ...]) -> bytes:  # fmt: skip
    """A GLB of one mesh (trimesh's) with a skin added: joint nodes in their tree, posed by
    ``world``, the mesh bound to them at ``bind``, so that a viewer shows the mesh skinned
    into the pose, and turning a joint in an animation tool bends it as the model's own
    (linear blend) skinning does.

    Args:
        glb: the mesh's GLB at the bind pose, glTF's y-up frame.
        weights: (N, J) skinning weights of the GLB's N vertices (the 4 largest are kept,
            renormalised, as glTF's ``JOINTS_0``/``WEIGHTS_0`` hold).
        bind: (J, 4, 4) each joint's transform at the bind pose (the inverse bind matrices'
            inverses), the GLB's frame.
        world: (J, 4, 4) each joint's world transform in the pose to show, the GLB's frame.
        parents: (J,) parent indices, -1 for the root, parents before children.
        names: (J,) joint names.
    """
    import struct

    from scipy.spatial.transform import Rotation

    jlen = struct.unpack_from("<I", glb, 12)[0]
    doc = json.loads(glb[20 : 20 + jlen])
    blen = struct.unpack_from("<I", glb, 20 + jlen)[0]
    binary = bytearray(glb[28 + jlen : 28 + jlen + blen])
    if len(doc.get("meshes", [])) != 1 or len(doc["meshes"][0]["primitives"]) != 1:
        raise ValueError("skinned_glb: expected a GLB of one mesh with one primitive")
    count = doc["accessors"][doc["meshes"][0]["primitives"][0]["attributes"]["POSITION"]]["count"]
    if len(weights) != count or not len(world) == len(bind) == len(parents) == len(names):
        raise ValueError(f"skinned_glb: {len(weights)} weight rows for {count} vertices, or "
                         "joints that disagree in number")  # fmt: skip

    def view(data: bytes, target: int | None = None) -> int:
        binary.extend(b"\0" * (-len(binary) % 4))
        doc["bufferViews"].append({"buffer": 0, "byteOffset": len(binary),
                                   "byteLength": len(data),
                                   **({} if target is None else {"target": target})})
        binary.extend(data)
        return len(doc["bufferViews"]) - 1

    def accessor(data: np.ndarray, component: int, kind: str, target: int | None) -> int:
        doc["accessors"].append({"bufferView": view(data.tobytes(), target),
                                 "componentType": component, "count": len(data), "type": kind})
        return len(doc["accessors"]) - 1

    j = len(parents)
    top, w = four_influences(weights)
    w = w.astype(np.float32)
    prim = doc["meshes"][0]["primitives"][0]
    prim["attributes"]["JOINTS_0"] = accessor(top.astype(np.uint8 if j < 256 else np.uint16),
                                              5121 if j < 256 else 5123, "VEC4", 34962)
    prim["attributes"]["WEIGHTS_0"] = accessor(w, 5126, "VEC4", 34962)
    # inverse bind matrices, column-major (a matrix's transpose, row by row)
    ibm = np.linalg.inv(bind).transpose(0, 2, 1).astype(np.float32)
    ibm_accessor = accessor(ibm.reshape(j, 16), 5126, "MAT4", None)
    first = len(doc["nodes"])
    for k in range(j):
        local = world[k] if parents[k] < 0 else np.linalg.inv(world[parents[k]]) @ world[k]
        doc["nodes"].append({"name": names[k], "translation": local[:3, 3].tolist(),
                             "rotation": Rotation.from_matrix(local[:3, :3]).as_quat().tolist()})
    for k in range(j):
        if parents[k] >= 0:
            doc["nodes"][first + parents[k]].setdefault("children", []).append(first + k)
    roots = [first + k for k in range(j) if parents[k] < 0]
    doc["scenes"][doc.get("scene", 0)]["nodes"].extend(roots)
    doc["skins"] = [{"inverseBindMatrices": ibm_accessor, "joints": list(range(first, first + j)),
                     "skeleton": roots[0]}]
    for node in doc["nodes"][:first]:
        if "mesh" in node:  # (a skinned mesh's own node transform is ignored by glTF)
            node["skin"] = 0
    doc["buffers"][0]["byteLength"] = len(binary)
    text = json.dumps(doc, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 4)
    binary.extend(b"\0" * (-len(binary) % 4))
    total = 12 + 8 + len(text) + 8 + len(binary)
    return (struct.pack("<III", 0x46546C67, 2, total) + struct.pack("<II", len(text), 0x4E4F534A)
            + text + struct.pack("<II", len(binary), 0x004E4942) + bytes(binary))


def write_hand_mesh(path: str | Path, hand: HandReconstruction, rig: HandRig | None = None
                    ) -> Path:  # fmt: skip
    """One reconstructed hand as a mesh file, its format the suffix's (``MESH_SUFFIXES``);
    returns the path. glTF (.glb, .gltf) is textured where the hand is (``textured_mesh``)
    and in glTF's y-up frame (camera x, -y, -z: the photo's view in a viewer); the other
    formats are in the photo's camera frame (OpenCV), as the record's vertices (.obj and
    .ply with vertex colours; .off and .stl geometry only). ``rig`` (.glb only): the hand's
    skeleton (``HandRig``), the mesh bound at the model's rest joints and skinned into the
    fitted pose by the joints' nodes, so that the file shows the fitted hand and a joint
    turned moves it as the model's own skinning does (but for the influences past the
    fourth)."""
    path = Path(path)
    fmt = path.suffix.lower()
    if fmt not in MESH_SUFFIXES:
        raise ValueError(f"{path}: unsupported mesh format, use one of {MESH_SUFFIXES}")
    if rig is not None and fmt == ".glb":
        bind = np.tile(np.eye(4), (len(rig.parents), 1, 1))
        bind[:, :3, 3] = rig.rest_joints
        rest = replace(hand, vertices=rig_bind_vertices(hand.vertices.astype(np.float64),
                                                        rig.weights, bind, rig.world))
        glb = textured_mesh(rest).export(file_type="glb", include_normals=True)
        data = skinned_glb(glb, rig.weights[glb_vertex_order(hand)],
                           _CV_TO_GL4 @ bind @ _CV_TO_GL4, _CV_TO_GL4 @ rig.world @ _CV_TO_GL4,
                           rig.parents, rig.names)  # fmt: skip
        return atomic_write(path, lambda t: t.write_bytes(data))
    if fmt in (".glb", ".gltf"):
        mesh = textured_mesh(hand)
        return atomic_write(path, lambda t: _export(mesh, t, fmt, include_normals=True))
    colors = (np.clip(hand.vertex_colors, 0, 1) * 255).astype(np.uint8)
    mesh = trimesh.Trimesh(hand.vertices, hand.faces, process=False, vertex_colors=colors)
    return atomic_write(path, lambda t: _export(mesh, t, fmt))


# Names that lived here until 2026-12-06 (a photo's output files, their rules, the record's
# header): still found, with a DeprecationWarning naming their home.
_MOVED = {**dict.fromkeys(("output_files", "OutputClash", "image_digest", "earlier_record",
                           "owned_outputs", "same_photo", "check_outputs", "stale_outputs",
                           "output_stems", "glob_escape", "write_outputs"), "outputs"),
          **dict.fromkeys(("FORMAT", "FORMAT_VERSION", "TRACKS_FORMAT", "record_header"),
                          "record")}  # fmt: skip


def __getattr__(name: str):
    home = _MOVED.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib
    import warnings

    warnings.warn(f"monohand.export.{name} is monohand.{home}.{name} since 2026-12-06",
                  DeprecationWarning, stacklevel=2)  # fmt: skip
    return getattr(importlib.import_module(f"monohand.{home}"), name)
