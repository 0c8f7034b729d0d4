"""Files people open: mesh files (OBJ, PLY, glTF/GLB through trimesh) and a reconstruction's
outputs (``write_outputs``: textured glTF per hand, the JSON record, the overlay), written
atomically.

The output folder is the user's too. A photo's files are replaced only when its record
``<stem>.json`` says monohand wrote them, for this photo (the record lists its files and the
photo's SHA-256, and is written before them); anything else in the way stops that photo's
writing with an ``OutputClash`` before a file is touched: a file of the same name that
monohand did not write, or the results of another photo of the same name (cameras reuse
IMG_0001; ``same_photo``), unless ``overwrite`` allows the latter.
"""

from __future__ import annotations

import hashlib
import json
import os
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
            ``write_outputs``' are; the other formats as given.
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


# -- a reconstruction's files ---------------------------------------------------------------


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


FORMAT = "monohand.reconstruction"
FORMAT_VERSION = 1
TRACKS_FORMAT = "monohand.tracks"  # a video's <stem>_tracks.json (``video.sequence``)


def record_header() -> dict:
    """What every reconstruction record (``<stem>.json``, the web API's result) says about
    itself: its format and version (``schemas/reconstruction.schema.json``), the units, the
    camera frame and the joint order."""
    from importlib.metadata import PackageNotFoundError, version

    from .models.joints import FREIHAND_JOINT_NAMES

    try:
        mine = version("monohand")
    except PackageNotFoundError:  # run from a source tree that was never installed
        mine = "0+unknown"
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "monohand_version": mine,
        "units": "metres (3D), pixels of the photo (2D, K)",
        "frame": "the photo's camera, OpenCV: x right, y down, z forward; "
        "uv = (K X)[:2] / (K X)[2]",
        "joint_names": list(FREIHAND_JOINT_NAMES),
    }


def output_files(out_dir: str | Path, stem: str, hands: int,
                 mesh_formats: tuple[str, ...] = (".glb",), overlay: bool = True) -> set[Path]:
    """The files ``write_outputs`` writes for ``hands`` hands of ``stem``: the meshes
    ``<stem>_<i>.<format>``, ``<stem>.json`` and (``overlay``) ``<stem>_overlay.png``."""
    out = Path(out_dir)
    formats = normalise_formats(mesh_formats)
    return ({out / f"{stem}_{i}{fmt}" for i in range(hands) for fmt in formats}
            | {out / f"{stem}.json"} | ({out / f"{stem}_overlay.png"} if overlay else set()))


class OutputClash(ValueError):
    """A photo's outputs would replace files that are not monohand's results of that photo
    (see the module doc); nothing was written or removed."""


def image_digest(data: bytes | np.ndarray) -> str:
    """The SHA-256 (hex) of a photo's file bytes, or of an image array's pixels: what a
    record remembers of its photo."""
    raw = data if isinstance(data, bytes) else memoryview(np.ascontiguousarray(data)).cast("B")
    return hashlib.sha256(raw).hexdigest()


def earlier_record(out_dir: str | Path, stem: str) -> dict | None:
    """The record ``out_dir/<stem>.json`` that monohand wrote, or None when there is no such
    file; ``OutputClash`` when a file of that name is not one (not JSON, or without
    monohand's ``format``)."""
    path = Path(out_dir) / f"{stem}.json"
    if not path.is_file():
        if path.exists() or path.is_symlink():
            raise OutputClash(f"{path}: in the way, and not a monohand record (not replaced; "
                              "move it or give another --out)")  # fmt: skip
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        record = None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise OutputClash(f"{path}: exists and is not a monohand record (not replaced; move "
                          "it or give another --out)")  # fmt: skip
    return record


def owned_outputs(out_dir: str | Path, stem: str, record: dict | None = None) -> list[Path]:
    """The files of ``stem`` in ``out_dir`` that monohand wrote: those its record
    ``<stem>.json`` lists, and the record; for records from before 2026-12-06 (no list),
    the names it wrote for as many hands as it holds (meshes ``<stem>_<i>.<mesh suffix>``,
    ``<stem>_overlay.png``). No record: none (files of those names are someone else's).
    ``record``: ``earlier_record``'s answer where the caller has read it (else read here,
    with its ``OutputClash``)."""
    out = Path(out_dir)
    if record is None:
        record = earlier_record(out, stem)
    if record is None:
        return []
    found = [out / f"{stem}.json"]
    if isinstance(record.get("files"), list):
        found += [out / Path(str(f)).name for f in record["files"]]
    else:
        hands = len(record["hands"]) if isinstance(record.get("hands"), list) else 0
        found.append(out / f"{stem}_overlay.png")
        for p in out.glob(f"{glob_escape(stem)}_*"):
            index = p.name[len(stem) + 1 : len(p.name) - len(p.suffix)]
            if p.suffix.lower() in MESH_SUFFIXES and index.isdigit() and int(index) < hands:
                found.append(p)
    return sorted({p for p in found if p.is_file()})


def _among(path: Path, paths: set[Path]) -> bool:
    """Whether ``path`` is one of ``paths``, as the file system tells names apart (a
    case-insensitive one takes Hand_0.glb for hand_0.glb)."""
    if path in paths:
        return True
    return path.exists() and any(p.exists() and os.path.samefile(path, p) for p in paths)


def same_photo(record: dict, image: str, digest: str | None) -> bool:
    """Whether the earlier ``record`` holds the hands of the photo named ``image`` (as given)
    with the ``image_digest`` ``digest``: the same file contents, or the same file (its path
    resolved here; a photo edited in place stays itself). Records of older versions, and
    video frames, carry no digest: by the path alone."""
    old_digest, old_image = record.get("image_sha256"), str(record.get("image", ""))
    if old_digest and digest and old_digest == digest:
        return True
    if not image or not old_image:
        return not (old_digest and digest)  # nothing to tell them apart by
    if old_image == image:
        return True
    try:
        return Path(old_image).resolve() == Path(image).resolve()
    except (OSError, RuntimeError):
        return False


def check_outputs(out_dir: str | Path, stem: str, writes: set[Path] | frozenset,
                  image: str = "", digest: str | None = None, overwrite: bool = False
                  ) -> list[Path]:  # fmt: skip
    """Before writing ``writes`` for the photo ``image`` (its name as given; ``digest``: its
    ``image_digest``) as ``stem``: ``OutputClash`` when one of them exists and monohand did
    not write it, or when ``<stem>.json`` holds another photo's hands (``same_photo``) and
    not ``overwrite``. Returns the files of ``stem`` that monohand wrote and this run does
    not (``stale_outputs``)."""
    out = Path(out_dir)
    record = earlier_record(out, stem)
    if record is not None and not overwrite and not same_photo(record, image, digest):
        old = str(record.get("image", "")) or "unnamed"
        raise OutputClash(f"{out / (stem + '.json')} holds the hands of another photo of "
                          f"that name ({old}): not replaced; give another --out, or "
                          "--overwrite to replace it")  # fmt: skip
    owned = set(owned_outputs(out, stem, record))
    theirs = sorted(p for p in writes if (p.exists() or p.is_symlink()) and not _among(p, owned))
    if theirs:
        raise OutputClash(f"{theirs[0]}: exists and monohand did not write it (not replaced; "
                          "move it or give another --out)")  # fmt: skip
    keep = {Path(k) for k in writes}
    return sorted(p for p in owned if not _among(p, keep))


def stale_outputs(out_dir: str | Path, stem: str, keep: set[Path] | frozenset = frozenset()
                  ) -> list[Path]:  # fmt: skip
    """Files of ``stem`` in ``out_dir`` that monohand wrote (``owned_outputs``) other than
    ``keep``: what a previous run wrote and this one does not."""
    keep = {Path(k) for k in keep}
    return [p for p in owned_outputs(out_dir, stem) if not _among(p, keep)]


def output_stems(paths: list[Path]) -> dict[Path, str]:
    """The output name of each input, unique within the run (ignoring case, as some file
    systems do): its stem; where two inputs share it (hand.jpg and hand.png), the file name
    with dots as underscores (hand_jpg, hand_png); where those are shared too (a/hand.jpg
    and b/hand.jpg: folders searched recursively), the file name after as many of its
    folders as it takes (a_hand_jpg, b_hand_jpg); where even that cannot tell them apart
    (a_b/x.jpg and a/b/x.jpg), a number after the name (a_b_x_jpg, a_b_x_jpg_2). One file
    given twice (in any spelling) keeps one name."""
    paths = [Path(p) for p in paths]
    files = list(dict.fromkeys(p.absolute() for p in paths))

    def name(p: Path, level: int) -> str:
        if level == 0:
            return p.stem
        return "_".join(_folders_and_name(p)[-level:]).replace(".", "_")

    level = dict.fromkeys(files, 0)
    while True:
        groups: dict[str, list[Path]] = {}
        for f in files:
            groups.setdefault(name(f, level[f]).casefold(), []).append(f)
        clashing = [f for g in groups.values() if len(g) > 1 for f in g
                    if level[f] < len(_folders_and_name(f))]  # fmt: skip
        if not clashing:
            break
        for f in clashing:
            level[f] += 1
    names, taken = {}, set()
    for f in files:
        n, k = name(f, level[f]), 1
        while (n if k == 1 else f"{n}_{k}").casefold() in taken:
            k += 1
        names[f] = n if k == 1 else f"{n}_{k}"
        taken.add(names[f].casefold())
    return {p: names[p.absolute()] for p in paths}


def _folders_and_name(p: Path) -> tuple[str, ...]:
    """The folders from the root down to ``p`` (absolute), then its name."""
    return p.relative_to(p.anchor).parts


def glob_escape(name: str) -> str:
    """``name`` with glob's special characters ([, ], *, ?) taken literally."""
    return "".join(f"[{c}]" if c in "[]*?" else c for c in name)


def write_outputs(
    out_dir: str | Path,
    stem: str,
    image: np.ndarray,
    K: np.ndarray,
    hands: list[HandReconstruction],
    k_source: str,
    image_path: str = "",
    mesh_formats: tuple[str, ...] = (".glb",),
    model_name: str = "openhand",
    overlay: bool = True,
    method: str | None = None,
    network: str | None = None,
    digest: str | None = None,
    overwrite: bool = False,
    model_path: str | None = None,
    rigs: list[HandRig | None] | None = None,
) -> list[Path]:
    """Write the meshes, ``<stem>.json`` and (``overlay``) ``<stem>_overlay.png``; returns
    the paths. glTF meshes (.glb, .gltf) are textured and in glTF's y-up frame (camera x,
    -y, -z: the photo's view), the others (.obj, .ply, .off, .stl) in the photo's camera
    frame (OpenCV), as the JSON's vertices. ``method``: how the hands were made (fit,
    network, hybrid), and ``network``: which network ("shipped" or a checkpoint's path),
    recorded in the JSON, with ``digest`` (the photo's ``image_digest``), ``model_path``
    (the model's file where one was given: the parameters pose that file's layer) and the
    files written. ``rigs`` (per hand, ``HandRig`` or None): .glb files carry the hand's
    skeleton, bound at the fitted pose (``skinned_glb``). What a previous run of ``stem``
    wrote and this one does not (the meshes of a hand it no longer finds, another format) is
    removed first, so the folder holds one run's files; ``OutputClash``, before anything is
    written, where a file is in the way that is not monohand's results of this photo
    (``check_outputs``; ``overwrite``: another photo's results of the same name may go)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    formats = normalise_formats(mesh_formats)
    writes = output_files(out, stem, len(hands), formats, overlay)
    for old in check_outputs(out, stem, writes, image_path, digest, overwrite):
        old.unlink()
    record = {
        **record_header(),
        "image": image_path,
        **({} if digest is None else {"image_sha256": digest}),
        "files": sorted(p.name for p in writes if p.name != f"{stem}.json"),
        "K": K.tolist(),
        "K_source": k_source,
        **({} if method is None else {"method": method}),
        **({} if network is None else {"network": network}),
        **({} if model_path is None else {"model_path": str(model_path)}),
        "hands": [
            {
                "side": hd.side,
                "model": model_name,
                "joints3d": hd.joints3d.tolist(),
                "joints2d": hd.joints2d.tolist(),
                "keypoints2d_detected": hd.detection.keypoints.tolist(),
                "confidence": hd.detection.confidence.tolist(),
                "detection_score": hd.detection.score,
                "vertices": hd.vertices.tolist(),
                "parameters": hd.parameters,
                "fit": hd.fit,
                **({} if hd.track is None else {"track": hd.track}),
            }
            for hd in hands
        ],
    }
    # The record first: it lists the files that follow, so that a run stopped half-way
    # (Ctrl-C) leaves files that the next run knows as monohand's.
    written = atomic_write(out / f"{stem}.json", lambda t: t.write_text(json.dumps(record)))
    paths = []
    for i, hd in enumerate(hands):
        for fmt in formats:
            p = out / f"{stem}_{i}{fmt}"
            rig = rigs[i] if rigs else None
            if fmt == ".glb" and rig is not None:  # glTF's frame; a skeleton for animation
                # bound at the model's rest joints, skinned into the fitted pose by the
                # joints' nodes: the mesh shown is the fitted one, and a joint turned moves
                # it as the model's own skinning does (but for its fifth influences on)
                bind = np.tile(np.eye(4), (len(rig.parents), 1, 1))
                bind[:, :3, 3] = rig.rest_joints
                rest = replace(hd, vertices=rig_bind_vertices(hd.vertices.astype(np.float64),
                                                              rig.weights, bind, rig.world))
                glb = textured_mesh(rest).export(file_type="glb", include_normals=True)
                data = skinned_glb(glb, rig.weights[glb_vertex_order(hd)],
                                   _CV_TO_GL4 @ bind @ _CV_TO_GL4,
                                   _CV_TO_GL4 @ rig.world @ _CV_TO_GL4, rig.parents,
                                   rig.names)  # fmt: skip
                paths.append(atomic_write(p, lambda t, d=data: t.write_bytes(d)))
            elif fmt in (".glb", ".gltf"):  # glTF: y up, textured, as viewers expect
                mesh = textured_mesh(hd)
                paths.append(atomic_write(p, lambda t, m=mesh, f=fmt: _export(
                    m, t, f, include_normals=True)))  # fmt: skip
            else:  # the photo's camera frame (OpenCV), as the JSON's vertices
                colors = (np.clip(hd.vertex_colors, 0, 1) * 255).astype(np.uint8)
                m = trimesh.Trimesh(hd.vertices, hd.faces, process=False, vertex_colors=colors)
                paths.append(atomic_write(p, lambda t, m=m, f=fmt: _export(m, t, f)))
    paths.append(written)
    if overlay:
        from .viz import overlay_image

        sheet = overlay_image(image, K, hands)
        paths.append(atomic_write(out / f"{stem}_overlay.png", lambda t: sheet.save(t, "PNG")))
    return paths
