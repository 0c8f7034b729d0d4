"""Build OpenHand, monohand's openly licensed hand model, from the CC0 Godot XR hand.

    python tools/build_openhand.py [--assets ../shared/assets] [--out PATH.npz]

Deterministic: the same source gives the same arrays. Steps (each a function below):
1. read the skinned glTF (positions, UVs, 26 OpenXR bones, weights, bind matrices);
2. weld the UV-seam duplicates into a watertight mesh, move it into MANO's frame (fingers to
   -x, index to +z, back of the hand to +y, wrist joint at the origin), scale to a median
   adult hand;
3. fold the 26 bones into MANO's 16 joints (metacarpals into the wrist, tips into the distal
   joints) and smooth the weights;
4. place the joints at the centroids of the cross-sections of the finger at its bone heads
   (a sparse regressor from vertices), the wrist at the wrist crease;
5. straighten the fingers (remove flexion, keep spread) into a flat template; the source's
   slightly curled rest pose becomes the relaxed pose;
6. anatomical joint frames and limits, a plausible-pose sampler, and a PCA pose basis;
7. 10 shape components (size, palm width/length/thickness, each finger's length, finger
   thickness), orthogonal, with betas ~ N(0, 1) giving adult hands;
8. a 256x256 skin-albedo texture space (mean + 10 components) on the glTF UV layout.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.ndimage as ndi
import scipy.sparse as sp
import torch
from scipy.optimize import lsq_linear

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from monohand.geometry import rotmat_to_axis_angle  # noqa: E402
from monohand.models.assets import save_npz  # noqa: E402
from monohand.models.joints import MANO_JOINT_NAMES, MANO_PARENTS  # noqa: E402
from monohand.models.lbs import batch_rigid_transform, skin_vertices  # noqa: E402
from monohand.models.pose_space import PoseSpace  # noqa: E402

SOURCE = "godot_xr_hands_cc0/hand_r.gltf"
TEXTURE_SIZE = 256
HAND_LENGTH = 0.185  # wrist joint to middle fingertip, metres: a median adult hand
WRIST_BEHIND_MCP = 0.085  # wrist crease behind the middle MCP along the hand, source metres
# The rig's thumb "metacarpal" starts at the carpus, like its other metacarpals; the thumb's
# carpometacarpal joint (the keypoint every 2D/3D hand convention calls thumb CMC) lies further
# out along that bone. Measured with MediaPipe's metric landmarks on 40 of our own synthetic
# renders (tools: fit OpenHand to MediaPipe's 3D landmarks, average the residual in the palm
# frame): the thumb CMC sat 23 mm too close to the wrist along the palm, every other joint
# within about 7 mm. The joint is moved this fraction of the way to the thumb MCP.
THUMB_CMC_ALONG_METACARPAL = 0.45
# Joint centres moved to where a detector trained on human annotations puts them, measured by
# tools/calibrate_openhand_joints.py on renders of this model (template frame, metres).
JOINT_OFFSETS = ROOT / "tools" / "openhand_joint_offsets.json"
# Offset components the build holds at 0 (joint -> axes x, y, z of the template frame): a ring
# MCP pivot even 2 mm further towards the back of the hand folds the palm's skin at a 60-degree
# MCP bend (tests/test_openhand.py); the calibration measures +4.8 mm there.
HELD_COMPONENTS = {"ring_mcp": (1,)}
SEED = 20261125
SMOOTHING = int(__import__("os").environ.get("OH_SMOOTH", 40))

# glTF bone -> MANO joint; metacarpals fold into the wrist, tips into the distal joints.
BONE_TO_JOINT = {"Wrist": "wrist", "Palm": "wrist"}
for _f in ("Index", "Middle", "Ring", "Little"):
    _n = _f.lower()
    BONE_TO_JOINT |= {
        f"{_f}_Metacarpal": "wrist",
        f"{_f}_Proximal": f"{_n}_mcp",
        f"{_f}_Intermediate": f"{_n}_pip",
        f"{_f}_Distal": f"{_n}_dip",
        f"{_f}_Tip": f"{_n}_dip",
    }
BONE_TO_JOINT |= {
    "Thumb_Metacarpal": "thumb_cmc",
    "Thumb_Proximal": "thumb_mcp",
    "Thumb_Distal": "thumb_ip",
    "Thumb_Tip": "thumb_ip",
}
# The bone whose head is each MANO joint's pivot, and the bone that follows it.
JOINT_BONE = {"wrist": ("Wrist", None)}
for _f in ("Index", "Middle", "Ring", "Little"):
    _n = _f.lower()
    JOINT_BONE |= {
        f"{_n}_mcp": (f"{_f}_Proximal", f"{_f}_Intermediate"),
        f"{_n}_pip": (f"{_f}_Intermediate", f"{_f}_Distal"),
        f"{_n}_dip": (f"{_f}_Distal", f"{_f}_Tip"),
    }
JOINT_BONE |= {
    "thumb_cmc": ("Thumb_Metacarpal", "Thumb_Proximal"),
    "thumb_mcp": ("Thumb_Proximal", "Thumb_Distal"),
    "thumb_ip": ("Thumb_Distal", "Thumb_Tip"),
}
FINGERS = ("thumb", "index", "middle", "ring", "little")
# Anatomical limits (degrees): (flexion, abduction, twist) [min, max] per joint kind.
LIMITS_DEG = {
    "mcp": ((-25, 90), (-20, 20), (-12, 12)),
    "pip": ((-5, 110), (-6, 6), (-6, 6)),
    "dip": ((-10, 85), (-5, 5), (-5, 5)),
    "thumb_cmc": ((-25, 55), (-35, 40), (-25, 35)),
    "thumb_mcp": ((-15, 65), (-12, 12), (-12, 12)),
    "thumb_ip": ((-20, 85), (-6, 6), (-6, 6)),
}  # fmt: skip


@dataclass
class GltfHand:
    positions: np.ndarray  # (N, 3)
    uvs: np.ndarray  # (N, 2), glTF convention (v down)
    faces: np.ndarray  # (F, 3) into positions
    bone_names: list[str]
    bone_ids: np.ndarray  # (N, 4)
    bone_weights: np.ndarray  # (N, 4)
    bind: np.ndarray  # (26, 4, 4) bone-to-model transforms at bind


def read_gltf(path: Path) -> GltfHand:
    """Read the one skinned mesh of a glTF file with an embedded (data URI) buffer."""
    g = json.loads(path.read_text())
    uri = g["buffers"][0]["uri"]
    buf = base64.b64decode(uri.split(",", 1)[1])
    ctypes = {5126: np.float32, 5121: np.uint8, 5123: np.uint16, 5125: np.uint32}
    ncomp = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}

    def acc(i: int) -> np.ndarray:
        a = g["accessors"][i]
        view = g["bufferViews"][a["bufferView"]]
        off = view.get("byteOffset", 0) + a.get("byteOffset", 0)
        n = a["count"] * ncomp[a["type"]]
        arr = np.frombuffer(buf, dtype=ctypes[a["componentType"]], count=n, offset=off)
        return arr.reshape(a["count"], -1)

    prim = g["meshes"][0]["primitives"][0]
    attr = prim["attributes"]
    skin = g["skins"][0]
    ibm = acc(skin["inverseBindMatrices"]).reshape(-1, 4, 4).transpose(0, 2, 1)  # column-major
    names = [g["nodes"][j]["name"].removesuffix("_R") for j in skin["joints"]]
    return GltfHand(
        positions=acc(attr["POSITION"]).astype(np.float64),
        uvs=acc(attr["TEXCOORD_0"]).astype(np.float64),
        faces=acc(prim["indices"]).reshape(-1, 3).astype(np.int64),
        bone_names=names,
        bone_ids=acc(attr["JOINTS_0"]).astype(np.int64),
        bone_weights=acc(attr["WEIGHTS_0"]).astype(np.float64),
        bind=np.linalg.inv(ibm.astype(np.float64)),
    )


def weld(src: GltfHand) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Merge vertices that share a position (UV seams). Returns geometry vertices (V, 3),
    faces (F, 3) into them, the geometry vertex of every source vertex (N,), and bone weights
    (V, 26) averaged over the merged copies."""
    _, first, inverse = np.unique(src.positions, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first)  # keep the source order of first appearance: deterministic
    remap = np.empty_like(order)
    remap[order] = np.arange(len(order))
    geo_of = remap[inverse.ravel()]
    verts = src.positions[first[order]]
    dense = np.zeros((len(src.positions), len(src.bone_names)))
    np.add.at(dense, (np.arange(len(dense))[:, None], src.bone_ids), src.bone_weights)
    w = np.zeros((len(verts), dense.shape[1]))
    np.add.at(w, geo_of, dense)
    w /= w.sum(1, keepdims=True)
    return verts, geo_of[src.faces], geo_of, w


def mesh_laplacian(faces: np.ndarray, n: int, group: np.ndarray | None = None) -> sp.csr_matrix:
    """Row-normalised uniform adjacency (V, V) of a triangle mesh; with ``group`` (V,), edges
    between vertices of two different non-zero groups are cut (fingers stay apart)."""
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    if group is not None:
        ga, gb = group[e[:, 0]], group[e[:, 1]]
        e = e[(ga == gb) | (ga == 0) | (gb == 0)]
    e = np.concatenate([e, e[:, ::-1], np.stack([np.arange(n)] * 2, 1)])
    a = sp.coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n)).tocsr()
    a.data[:] = 1.0
    return sp.diags(1.0 / np.asarray(a.sum(1)).ravel()) @ a


def rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation taking direction a to direction b (3, 3)."""
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    v, c = np.cross(a, b), float(a @ b)
    if np.linalg.norm(v) < 1e-12:
        return np.eye(3)
    k = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + k + k @ k / (1 + c)


def cross_section_ring(
    verts: np.ndarray,
    centre: np.ndarray,
    axis: np.ndarray,
    lateral: float,
    thickness: float,
    dorsal: np.ndarray,
) -> np.ndarray:
    """The vertices closest to the plane through ``centre`` normal to ``axis``, within
    ``lateral`` of the axis sideways and ``thickness`` along ``dorsal``: the finger's
    cross-section at a joint."""
    axis = axis / np.linalg.norm(axis)
    side = np.cross(axis, dorsal)
    side /= np.linalg.norm(side)
    up = np.cross(side, axis)
    d = verts - centre
    near = np.flatnonzero((np.abs(d @ side) < lateral) & (np.abs(d @ up) < thickness))
    # The coarse mesh has ~8 vertices per ring: take the 10 closest to the plane.
    order = near[np.argsort(np.abs(d[near] @ axis), kind="stable")][:10]
    if len(order) < 8 or np.abs(d[order] @ axis).max() > 0.012:
        raise RuntimeError(f"no cross-section ring around {centre}")
    return order


def ring_weights(points: np.ndarray, target: np.ndarray | None) -> np.ndarray:
    """Non-negative weights summing to 1, closest to uniform, whose average of ``points`` is
    ``target`` (the plain centroid when ``target`` is None)."""
    n = len(points)
    uniform = np.full(n, 1.0 / n)
    if target is None:
        return uniform
    lam = 1e4
    a = np.vstack([lam * points.T, lam * np.ones((1, n)), np.eye(n)])
    b = np.concatenate([lam * target, [lam], uniform])
    res = lsq_linear(a, b, bounds=(0, 1), method="bvls")
    w = res.x / res.x.sum()
    if np.linalg.norm(w @ points - target) > 1e-5:
        raise RuntimeError(f"joint at {target} is outside its cross-section")
    return w


def build(assets: Path) -> dict[str, np.ndarray]:
    src = read_gltf(assets / SOURCE)
    verts, faces, geo_of, w26 = weld(src)
    names = src.bone_names
    heads = src.bind[:, :3, 3]
    frames = src.bind[:, :3, :3]

    # -- frame: source (x dorsal, y index side, z towards the wrist) -> MANO's frame.
    to_mano = np.array([[0.0, 0, 1], [1, 0, 0], [0, 1, 0]])
    verts, heads = verts @ to_mano.T, heads @ to_mano.T
    frames = to_mano @ frames
    bone = {n: i for i, n in enumerate(names)}
    wrist_x = heads[bone["Middle_Proximal"]][0] + WRIST_BEHIND_MCP

    # -- 16 joints: weights folded, then smoothed along the surface.
    jidx = {n: i for i, n in enumerate(MANO_JOINT_NAMES)}
    fold = np.zeros((len(names), 16))
    for b, n in enumerate(names):
        fold[b, jidx[BONE_TO_JOINT[n]]] = 1.0
    weights = w26 @ fold
    # Smooth along the surface for wide, even blends at the joints (no collapsed creases),
    # without letting weights bleed across the webs between fingers.
    finger_of_joint = np.array([0] + [1] * 3 + [2] * 3 + [3] * 3 + [4] * 3 + [5] * 3)
    per_finger = np.stack([weights[:, finger_of_joint == k].sum(1) for k in range(6)], 1)
    lap = mesh_laplacian(faces, len(verts), group=per_finger.argmax(1))
    for _ in range(SMOOTHING):
        weights = 0.5 * weights + 0.5 * (lap @ weights)
    weights /= weights.sum(1, keepdims=True)

    # -- joint centres from cross-sections at the bone heads; the wrist at the crease.
    dorsal = np.array([0.0, 1.0, 0.0])
    rings: dict[str, np.ndarray] = {}
    wrist_centre = np.array([wrist_x, 0, 0])
    targets = {"wrist": None}
    rings["wrist"] = cross_section_ring(
        verts, wrist_centre, np.array([1.0, 0, 0]), 0.05, 0.05, dorsal
    )
    for j, (b_name, child) in JOINT_BONE.items():
        if j == "wrist":
            continue
        c = heads[bone[b_name]]
        axis = heads[bone[child]] - c
        if j == "thumb_cmc":
            c = c + THUMB_CMC_ALONG_METACARPAL * axis
            axis = heads[bone[child]] - c
        thumb = j.startswith("thumb")
        dors = frames[bone[b_name]][:, 0]  # the bone's local x is dorsal
        lateral, thick = (0.022, 0.035) if j == "thumb_cmc" else (0.012 if thumb else 0.0095, 0.025)
        rings[j] = cross_section_ring(verts, c, axis, lateral, thick, dors)
        # The joint: the cross-section's centre, at the bone head's position along the bone.
        a = axis / np.linalg.norm(axis)
        centroid = verts[rings[j]].mean(0)
        targets[j] = centroid - ((centroid - c) @ a) * a
    j_reg = np.zeros((16, len(verts)))
    for j, idx in rings.items():
        j_reg[jidx[j], idx] = ring_weights(verts[idx], targets[j])
    joints_src = j_reg @ verts

    # -- fine alignment: wrist -> middle MCP along -x, the knuckles' plane normal along +y.
    x_axis = joints_src[jidx["wrist"]] - joints_src[jidx["middle_mcp"]]
    x_axis /= np.linalg.norm(x_axis)
    y_axis = np.cross(joints_src[jidx["index_mcp"]] - joints_src[jidx["little_mcp"]], x_axis)
    y_axis -= (y_axis @ x_axis) * x_axis
    y_axis /= np.linalg.norm(y_axis)
    align = np.stack([x_axis, y_axis, np.cross(x_axis, y_axis)])
    verts, heads, frames = verts @ align.T, heads @ align.T, align @ frames
    joints_src = j_reg @ verts

    # -- straighten: remove each finger's flexion, keep its spread; thumb joints in line with
    # its metacarpal. World rotations G per joint, local = G_parent^T G.
    g_world = np.tile(np.eye(3), (16, 1, 1))
    for f in FINGERS:
        chain = [
            f"{f}_{k}" for k in (("cmc", "mcp", "ip") if f == "thumb" else ("mcp", "pip", "dip"))
        ]
        tip_bone = bone[f"{f.capitalize()}_Tip"]
        pts = [joints_src[jidx[c]] for c in chain] + [heads[tip_bone]]
        dirs = [pts[k + 1] - pts[k] for k in range(3)]
        if f == "thumb":
            targets = [dirs[0]] * 3
        else:
            t = dirs[0] - (dirs[0] @ dorsal) * dorsal
            targets = [t] * 3
        for k, c in enumerate(chain):
            g_world[jidx[c]] = rotation_between(dirs[k], targets[k])
    parents = np.array(MANO_PARENTS)
    local = np.stack(
        [g_world[max(p, 0)].T @ g_world[j] if p >= 0 else g_world[j] for j, p in enumerate(parents)]
    )
    flat = _pose(verts, weights, joints_src, local, parents)
    # The relaxed pose takes the flat hand back to the source pose: local G_parent G^T.
    relaxed_local = np.stack(
        [g_world[max(p, 0)] @ g_world[j].T if p >= 0 else np.eye(3) for j, p in enumerate(parents)]
    )
    joints_flat = j_reg @ flat
    frames_flat = {j: g_world[jidx[j]] @ frames[bone[JOINT_BONE[j][0]]] for j in JOINT_BONE}
    j_reg = calibrated_regressor(flat, j_reg, frames_flat, parents)
    joints_flat = j_reg @ flat
    weights = axial_finger_weights(flat, weights, joints_flat)

    # -- scale to a median adult hand; wrist joint to the origin.
    tips = {}
    for f in FINGERS:
        dist_bone = {"thumb": "thumb_ip"}.get(f, f"{f}_dip")
        owned = np.flatnonzero(weights[:, jidx[dist_bone]] > 0.5)
        d = joints_flat[jidx[dist_bone]] - joints_flat[parents[jidx[dist_bone]]]
        tips[f] = owned[np.argmax((flat[owned] - joints_flat[jidx[dist_bone]]) @ d)]
    origin = joints_flat[0]
    scale = HAND_LENGTH / np.linalg.norm(flat[tips["middle"]] - origin)
    template = (flat - origin) * scale
    joints = j_reg @ template

    # -- pose space: anatomical frames [twist, abduction, flexion] = [-y_b, x_b, z_b].
    pframes, limits, relaxed = [], [], []
    for j in MANO_JOINT_NAMES[1:]:
        fb = frames_flat[j]
        fr = np.stack([-fb[:, 1], fb[:, 0], fb[:, 2]], axis=1)
        fr, _ = np.linalg.qr(fr)  # exact orthonormality (the source frames are float32)
        fr *= np.sign(np.diag(_)) if np.all(np.diag(_) != 0) else 1
        pframes.append(fr)
        kind = j if j.startswith("thumb") else j.split("_")[1]
        limits.append(np.deg2rad(np.array(LIMITS_DEG[kind], dtype=np.float64)))
    pframes, limits = np.stack(pframes), np.stack(limits)
    space = PoseSpace(pframes, limits, np.zeros((15, 3)))
    relaxed_aa = rotmat_to_axis_angle(torch.as_tensor(relaxed_local[1:])).reshape(1, 45)
    relaxed = space.from_axis_angle(relaxed_aa)[0].numpy()
    space = PoseSpace(pframes, limits, np.clip(relaxed, limits[..., 0], limits[..., 1]))

    gen = torch.Generator().manual_seed(SEED)
    samples = space.to_axis_angle(space.sample(20000, gen).double()).numpy()
    hands_mean = samples.mean(0)
    _, s_vals, vt = np.linalg.svd(samples - hands_mean, full_matrices=False)
    # Deterministic sign: the largest entry of each component positive.
    vt *= np.sign(vt[np.arange(45), np.abs(vt).argmax(1)])[:, None]

    shapedirs = shape_basis(template, weights, joints, j_reg, tips)
    tex = texture_space(src, template, geo_of, faces, weights, joints)
    return {
        "v_template": template.astype(np.float64),
        "faces": faces.astype(np.int64),
        "weights": weights,
        "j_regressor": j_reg,
        "parents": parents,
        "shapedirs": shapedirs,
        "tip_vertices": np.array([tips[f] for f in FINGERS], dtype=np.int64),
        "hands_mean": hands_mean,
        "hands_components": vt,
        "hands_pca_std": s_vals / np.sqrt(len(samples) - 1),
        "relaxed_pose": relaxed_aa.numpy().ravel(),
        "pose_frames": pframes,
        "pose_limits": limits,
        "pose_relaxed_angles": space.relaxed,
        "uvs": np.stack([src.uvs[:, 0], 1.0 - src.uvs[:, 1]], 1),  # OpenGL-style v (up)
        "face_uvs": src.faces.astype(np.int64),
        **tex,
    }


def load_joint_offsets() -> dict[str, np.ndarray]:
    """Joint offsets (template frame, metres) measured by ``calibrate_openhand_joints.py``."""
    if not JOINT_OFFSETS.is_file():
        return {}
    table = json.loads(JOINT_OFFSETS.read_text())
    unknown = set(table) - set(MANO_JOINT_NAMES[1:])
    if unknown:
        raise ValueError(f"{JOINT_OFFSETS}: unknown or uncalibratable joints {sorted(unknown)}")
    offsets = {k: np.asarray(v, dtype=np.float64) for k, v in table.items()}
    bad = sorted(k for k, v in offsets.items() if v.shape != (3,) or not np.isfinite(v).all())
    if bad:
        raise ValueError(f"{JOINT_OFFSETS}: offsets of {bad} are not 3 finite numbers (metres)")
    return offsets


def calibrated_regressor(
    flat: np.ndarray, j_reg: np.ndarray, frames: dict[str, np.ndarray], parents: np.ndarray
) -> np.ndarray:
    """The joint regressor with each calibrated joint moved by its offset: the finger's
    cross-section is cut again through the new centre (normal to the bone) and the weights
    re-solved to reproduce it. ``flat``: the straightened mesh (source units, template axes).
    The wrist is not calibrated: the mesh ends just behind it, so where a detector puts the
    wrist on a render says little about the convention."""
    offsets = load_joint_offsets()
    if not offsets:
        return j_reg
    jidx = {n: i for i, n in enumerate(MANO_JOINT_NAMES)}
    joints = j_reg @ flat
    # Source units per metre, as the final scaling will make them (to a fraction of a percent:
    # the fingertip is the farthest vertex along the middle finger).
    tip = flat[np.argmin(flat[:, 0])]
    units = np.linalg.norm(tip - joints[0]) / HAND_LENGTH
    out = j_reg.copy()
    for name, delta in offsets.items():
        delta = delta.copy()
        delta[list(HELD_COMPONENTS.get(name, ()))] = 0.0
        j = jidx[name]
        children = np.flatnonzero(parents == j)
        along = joints[children[0]] - joints[j] if len(children) else joints[j] - joints[parents[j]]
        target = joints[j] + delta * units
        thumb = name.startswith("thumb")
        lateral = 0.022 if name == "thumb_cmc" else (0.012 if thumb else 0.0095)
        thick = 0.035 if name == "thumb_cmc" else 0.025
        ring = cross_section_ring(flat, target, along, lateral, thick, frames[name][:, 0])
        out[j] = 0.0
        out[j, ring] = affine_ring_weights(flat[ring], target)
    return out


def affine_ring_weights(points: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``ring_weights``, or where ``target`` lies outside the ring's convex hull (a centre
    moved towards the skin), the affine weights (summing to 1, some negative) closest to
    uniform that reproduce it: the point then still moves with the ring as the shape changes."""
    try:
        return ring_weights(points, target)
    except RuntimeError:
        n = len(points)
        a = np.vstack([points.T, np.ones((1, n))])  # (4, n)
        uniform = np.full(n, 1.0 / n)
        # Minimum-norm correction of the uniform weights meeting the 4 equality constraints.
        w = uniform + np.linalg.pinv(a) @ (np.r_[target, 1.0] - a @ uniform)
        if np.linalg.norm(w @ points - target) > 1e-7:
            raise RuntimeError(f"no weights of its cross-section reproduce {target}") from None
        return w


def axial_finger_weights(
    v: np.ndarray, w: np.ndarray, joints: np.ndarray, blend: float = 1.0
) -> np.ndarray:
    """Re-distribute each finger's weight over its three joints by the position along the
    (straight) finger: smooth ramps centred on the joint planes, half-width ``blend`` times the
    shorter neighbouring segment. Tubes skinned like this bend 90 degrees without folding the
    inner crease; the palm/finger split of the weights is kept as it is.
    """
    jn = {n: i for i, n in enumerate(MANO_JOINT_NAMES)}
    out = w.copy()
    for f in FINGERS:
        names = [n for n in MANO_JOINT_NAMES if n.startswith(f)]
        ids = [jn[n] for n in names]
        member = w[:, ids].sum(1)
        j0, j1, j2 = joints[ids]
        tip_dir = j2 - j1
        axis = (j2 + tip_dir * 0.8) - j0
        axis /= np.linalg.norm(axis)
        s = (v - j0) @ axis
        s1, s2 = (j1 - j0) @ axis, (j2 - j0) @ axis
        d1 = blend * min(s1, s2 - s1)
        d2 = blend * min(s2 - s1, np.linalg.norm(tip_dir) * 0.8)

        def ramp(x: np.ndarray, d: float) -> np.ndarray:
            t = np.clip((x + d) / (2 * d), 0, 1)
            return t * t * (3 - 2 * t)

        c1, c2 = ramp(s - s1, d1), ramp(s - s2, d2)
        # Only where the finger owns the vertex beyond its base joint's own share.
        inside = member > 1e-6
        dist = np.stack([1 - c1, np.maximum(c1 - c2, 0), c2], 1)
        dist /= dist.sum(1, keepdims=True)
        share = member.copy()
        if f == "thumb":
            # The thumb's base joint sits inside the thenar (THUMB_CMC_ALONG_METACARPAL): flesh
            # behind it belongs to the palm, with a ramp across the joint.
            c0 = ramp(s, blend * 0.5 * s1)
            share = member * c0
            out[inside, 0] += (member - share)[inside]
        out[np.ix_(inside, ids)] = share[inside, None] * dist[inside]
    return out / out.sum(1, keepdims=True)


def _pose(
    verts: np.ndarray,
    weights: np.ndarray,
    joints: np.ndarray,
    local: np.ndarray,
    parents: np.ndarray,
) -> np.ndarray:
    """LBS of one mesh with local joint rotations (16, 3, 3) about ``joints``."""
    t = lambda a: torch.as_tensor(a, dtype=torch.float64)[None]  # noqa: E731
    _, rel = batch_rigid_transform(t(local), t(joints), torch.as_tensor(parents))
    return skin_vertices(t(verts), torch.as_tensor(weights), rel)[0].numpy()


def shape_basis(
    v: np.ndarray, w: np.ndarray, joints: np.ndarray, j_reg: np.ndarray, tips: dict[str, int]
) -> np.ndarray:
    """(V, 3, 10) orthogonal shape directions, each scaled to one standard deviation."""
    jn = {n: i for i, n in enumerate(MANO_JOINT_NAMES)}
    palm_w = w[:, 0]
    finger_joints = {f: [jn[n] for n in MANO_JOINT_NAMES if n.startswith(f)] for f in FINGERS}
    finger_w = {f: w[:, idx].sum(1) for f, idx in finger_joints.items()}
    base = {f: joints[idx[0]] for f, idx in finger_joints.items()}
    # Anchor of each vertex for palm-level changes: itself on the palm, its finger's base on a
    # finger (fingers move rigidly with the palm).
    anchor = palm_w[:, None] * v
    for f in FINGERS:
        anchor += finger_w[f][:, None] * base[f]
    comps, sigmas = [], []

    def add(disp: np.ndarray, sigma: float) -> None:
        comps.append(disp)
        sigmas.append(sigma)

    add(v.copy(), 0.045)  # overall size about the wrist
    add(anchor * [0, 0, 1], 0.06)  # palm width
    add(anchor * [1, 0, 0], 0.05)  # palm length
    palm_mid_y = np.average(v[:, 1], weights=palm_w)
    add(palm_w[:, None] * (v - [0, palm_mid_y, 0]) * [0, 1, 0], 0.08)  # palm thickness
    for f in FINGERS:  # each finger's length: stretch along its axis from its base
        axis = v[tips[f]] - base[f]
        axis /= np.linalg.norm(axis)
        along = np.clip((v - base[f]) @ axis, 0, None)
        add(finger_w[f][:, None] * along[:, None] * axis, 0.06)
    radial = np.zeros_like(v)  # finger thickness: away from each finger's axis
    for f in FINGERS:
        axis = v[tips[f]] - base[f]
        axis /= np.linalg.norm(axis)
        d = v - base[f]
        radial += finger_w[f][:, None] * (d - (d @ axis)[:, None] * axis)
    add(radial, 0.08)
    assert len(comps) == 10
    flat = np.stack([c.ravel() for c in comps])
    out = np.zeros_like(flat)
    for i in range(len(flat)):  # Gram-Schmidt: later components exclude earlier ones
        u = flat[i] - out[:i].T @ (out[:i] @ flat[i])
        out[i] = u / np.linalg.norm(u)
    rms = np.array([np.linalg.norm(c) for c in flat])
    dirs = out * (rms * np.array(sigmas))[:, None]
    return dirs.reshape(10, -1, 3).transpose(1, 2, 0)


def _rasterise_uv(
    uvs: np.ndarray, face_uvs: np.ndarray, values: np.ndarray, size: int
) -> np.ndarray:
    """Interpolate per-UV-vertex ``values`` (N, C) over the UV triangles into a (size, size, C)
    map (row 0 = v = 1), then fill empty texels from the nearest filled one (no seams)."""
    img = np.zeros((size, size, values.shape[1]))
    filled = np.zeros((size, size), bool)
    px = np.stack([uvs[:, 0] * size - 0.5, (1 - uvs[:, 1]) * size - 0.5], 1)
    for tri in face_uvs:  # build time only: ~3k triangles
        p = px[tri]
        lo = np.floor(p.min(0)).astype(int).clip(0, size - 1)
        hi = np.ceil(p.max(0)).astype(int).clip(0, size - 1)
        xs, ys = np.meshgrid(np.arange(lo[0], hi[0] + 1), np.arange(lo[1], hi[1] + 1))
        q = np.stack([xs.ravel(), ys.ravel()], 1).astype(float)
        m = np.array([p[1] - p[0], p[2] - p[0]]).T
        if abs(np.linalg.det(m)) < 1e-12:
            continue
        bc = np.linalg.solve(m, (q - p[0]).T).T
        l1, l2 = bc[:, 0], bc[:, 1]
        inside = (l1 >= -1e-6) & (l2 >= -1e-6) & (l1 + l2 <= 1 + 1e-6)
        if not inside.any():
            continue
        lam = np.stack([1 - l1 - l2, l1, l2], 1)[inside]
        xi, yi = q[inside, 0].astype(int), q[inside, 1].astype(int)
        img[yi, xi] = lam @ values[tri]
        filled[yi, xi] = True
    _, (iy, ix) = ndi.distance_transform_edt(~filled, return_indices=True)
    return img[iy, ix]


def texture_space(
    src: GltfHand,
    v: np.ndarray,
    geo_of: np.ndarray,
    faces: np.ndarray,
    w: np.ndarray,
    joints: np.ndarray,
) -> dict[str, np.ndarray]:
    """A 256x256 skin-albedo space (sRGB, [0, 1]): mean + 10 interpretable components."""
    n = np.zeros_like(v)
    tri = v[faces]
    fn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    for k in range(3):
        np.add.at(n, faces[:, k], fn)
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    palm = 1 / (1 + np.exp(n[:, 1] * 8))  # palmar side (normal towards -y)
    jn = {name: i for i, name in enumerate(MANO_JOINT_NAMES)}
    distal = w[
        :, [jn["index_dip"], jn["middle_dip"], jn["ring_dip"], jn["little_dip"], jn["thumb_ip"]]
    ].sum(1)
    # Nails: dorsal, distal half of the last segment.
    nail = np.zeros(len(v))
    tipness = np.zeros(len(v))
    for dip in ("index_dip", "middle_dip", "ring_dip", "little_dip", "thumb_ip"):
        j = joints[jn[dip]]
        own = w[:, jn[dip]]
        d = v - j
        length = np.percentile(np.linalg.norm(d[own > 0.5], axis=1), 95)
        frac = np.clip(np.linalg.norm(d, axis=1) / length, 0, 1)
        tipness = np.maximum(tipness, own * frac)
        nail = np.maximum(
            nail, own * np.clip((frac - 0.45) * 4, 0, 1) * np.clip(n[:, 1] * 3 - 0.6, 0, 1)
        )
    # Creases on the palm side and knuckle wrinkles on the back, at every finger joint.
    crease = np.zeros(len(v))
    knuckle = np.zeros(len(v))
    for name, i in jn.items():
        if name == "wrist":
            continue
        d = np.linalg.norm(v - joints[i], axis=1)
        ring = np.exp(-(((d - 0.009) / 0.0025) ** 2))
        crease = np.maximum(crease, ring * palm)
        knuckle = np.maximum(knuckle, ring * (1 - palm))
    rng = np.random.default_rng(SEED)
    noise = []
    for scale in (0.02, 0.008):  # smooth noise on the surface: random sines of 3D position
        k = rng.normal(size=(8, 3)) / scale
        ph = rng.uniform(0, 2 * np.pi, 8)
        noise.append(np.sin(v @ k.T + ph).mean(1) * np.sqrt(2))
    fields = np.stack([palm, nail, tipness, crease, knuckle, distal, *noise], 1)  # (V, 8)
    # Per UV vertex (source vertices), then rasterised in UV space.
    maps = _rasterise_uv(
        np.stack([src.uvs[:, 0], 1 - src.uvs[:, 1]], 1), src.faces, fields[geo_of], TEXTURE_SIZE
    )
    palm_m, nail_m, tip_m, crease_m, knuckle_m, _, n1, n2 = np.moveaxis(maps, -1, 0)
    one = np.ones_like(palm_m)[..., None]
    mean = one * [0.70, 0.52, 0.41] + palm_m[..., None] * [0.06, 0.03, 0.02]
    mean = mean * (1 - nail_m[..., None]) + nail_m[..., None] * [0.86, 0.70, 0.66]
    comps = [
        # 0: skin tone, light (-) to dark (+); palms and nails change less
        (one * [-0.13, -0.12, -0.10])
        * (1 - 0.55 * palm_m[..., None])
        * (1 - 0.6 * nail_m[..., None]),
        one * [0.03, -0.015, -0.015],  # 1: redness
        one * [0.02, 0.02, -0.03],  # 2: yellow / olive
        palm_m[..., None] * [0.05, 0.05, 0.04],  # 3: palm lighter than the back
        nail_m[..., None] * [0.04, -0.04, -0.03],  # 4: nail colour (pink to pale)
        crease_m[..., None] * [-0.10, -0.10, -0.09],  # 5: palm creases
        knuckle_m[..., None] * [-0.06, -0.07, -0.06],  # 6: knuckle wrinkles
        tip_m[..., None] * palm_m[..., None] * [0.05, -0.04, -0.03],  # 7: red fingertips
        n1[..., None] * [0.025, 0.022, 0.018],  # 8: large blotches
        n2[..., None] * [0.02, 0.018, 0.016],  # 9: fine mottling
    ]
    return {
        "texture_mean": mean.astype(np.float32),
        "texture_basis": np.stack(comps).astype(np.float32),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--assets", type=Path, default=ROOT.parent / "shared" / "assets")
    ap.add_argument(
        "--out", type=Path, default=ROOT / "src/monohand/models/assets/openhand_right.npz"
    )
    args = ap.parse_args()
    arrays = build(args.assets)
    save_npz(args.out, arrays)
    print(
        f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB): "
        f"{len(arrays['v_template'])} vertices, {len(arrays['faces'])} faces"
    )


if __name__ == "__main__":
    main()
