"""A blocky hand built from boxes, in MANO's layout and frame, made in code.

It is not a realistic hand: it gives every command something to pose before a real model is
at hand (MANO and NIMBLE cannot be shipped), and its geometry is known in closed form, which
makes it a useful test case. Each bone is a box skinned rigidly to the joint at its base; the
joint regressor averages the four corners of that base, so joints sit exactly at box bases.
"""

from __future__ import annotations

import numpy as np

from .joints import MANO_PARENTS
from .skinned import SkinnedHandData

# MANO's frame (right hand): fingers point to -x from the wrist, index at +z, little at -z,
# the back of the hand faces +y. Metres.
_MCP = {  # finger: (MCP location, bone lengths MCP->PIP->DIP->tip)
    "index": ((-0.085, 0.0, 0.026), (0.040, 0.025, 0.020)),
    "middle": ((-0.090, 0.0, 0.004), (0.045, 0.028, 0.022)),
    "ring": ((-0.085, 0.0, -0.017), (0.042, 0.027, 0.021)),
    "little": ((-0.077, 0.0, -0.036), (0.033, 0.020, 0.018)),
}
_THUMB_CMC = (-0.020, -0.008, 0.022)
_THUMB_DIR = np.array([-0.7, -0.15, 0.7])
_THUMB_BONES = (0.040, 0.032, 0.027)
# MANO's native finger order: index, middle, little, ring, thumb (joints 1-3, 4-6, ...).
_NATIVE_FINGERS = ("index", "middle", "little", "ring", "thumb")


def _box(
    start: np.ndarray, end: np.ndarray, width: float, height: float
) -> tuple[np.ndarray, np.ndarray]:
    """A box around the segment start->end with capped ends fanned to their centres.

    Returns (10, 3) vertices (4 base corners, 4 end corners, base centre, end centre) and
    (16, 3) outward-facing triangles.
    """
    axis = end - start
    axis = axis / np.linalg.norm(axis)
    up = np.array([0.0, 1.0, 0.0])
    side = np.cross(axis, up)
    side /= np.linalg.norm(side)
    up = np.cross(side, axis)
    corners = [(-1, -1), (1, -1), (1, 1), (-1, 1)]
    ring = [side * (sx * width / 2) + up * (sy * height / 2) for sx, sy in corners]
    verts = np.array([start + r for r in ring] + [end + r for r in ring] + [start, end])
    faces = []
    for i in range(4):
        k = (i + 1) % 4
        faces += [[i, k, 4 + k], [i, 4 + k, 4 + i]]
        faces += [[8, k, i], [9, 4 + i, 4 + k]]
    faces = np.array(faces)
    # Make every triangle face away from the box centre.
    centre = verts[:8].mean(0)
    tri = verts[faces]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    inward = (normal * (tri.mean(1) - centre)).sum(1) < 0
    faces[inward] = faces[inward][:, [0, 2, 1]]
    return verts, faces


def box_hand_data() -> SkinnedHandData:
    """The blocky right hand as ``SkinnedHandData`` (16 joints, 4 shape components)."""
    chains: dict[str, list[np.ndarray]] = {}
    for finger, (mcp, bones) in _MCP.items():
        p = [np.array(mcp)]
        for length in bones:
            p.append(p[-1] + np.array([-length, 0.0, 0.0]))
        chains[finger] = p
    d = _THUMB_DIR / np.linalg.norm(_THUMB_DIR)
    p = [np.array(_THUMB_CMC)]
    for length in _THUMB_BONES:
        p.append(p[-1] + d * length)
    chains["thumb"] = p

    verts, faces, skin, regress = [], [], [], {}
    tips = {}

    def add(start: np.ndarray, end: np.ndarray, joint: int, w: float, h: float) -> int:
        v, f = _box(start, end, w, h)
        base = sum(len(x) for x in verts)
        verts.append(v)
        faces.append(f + base)
        skin.extend([joint] * len(v))
        regress.setdefault(joint, list(range(base, base + 4)))
        return base

    wrist = np.zeros(3)
    add(wrist, np.array([-0.088, 0.0, 0.0]), 0, 0.075, 0.025)  # palm
    for f_i, finger in enumerate(_NATIVE_FINGERS):
        pts = chains[finger]
        width = 0.022 if finger == "thumb" else 0.017
        for seg in range(3):
            joint = 1 + 3 * f_i + seg
            base = add(pts[seg], pts[seg + 1], joint, width, width * 0.9)
        tips[finger] = base + 9  # end-cap centre of the distal box

    v = np.concatenate(verts)
    n_v, n_j = len(v), len(MANO_PARENTS)
    weights = np.zeros((n_v, n_j))
    weights[np.arange(n_v), skin] = 1.0
    j_reg = np.zeros((n_j, n_v))
    for j, idx in regress.items():
        j_reg[j, idx] = 1.0 / len(idx)

    # Shape space: overall size, palm width (z), finger length, thickness (y); unit = 5 %.
    centre = v.mean(0)
    finger_part = np.clip(-(v[:, 0] + 0.085), 0.0, None)  # distance beyond the knuckles
    shapedirs = np.stack(
        [
            0.05 * (v - centre),
            0.05 * np.stack([np.zeros(n_v), np.zeros(n_v), v[:, 2]], 1),
            0.05 * np.stack([-finger_part, np.zeros(n_v), np.zeros(n_v)], 1),
            0.05 * np.stack([np.zeros(n_v), v[:, 1] - (j_reg @ v)[skin, 1], np.zeros(n_v)], 1),
        ],
        axis=2,
    )
    # Relaxed mean pose: every finger joint flexed 0.25 rad towards the palm (about +z).
    mean = np.tile([0.0, 0.0, 0.25], 15)
    mean[36:] = [0.0, 0.1, 0.0] * 3  # thumb: a little opposition
    return SkinnedHandData(
        v_template=v, shapedirs=shapedirs, posedirs=None, j_regressor=j_reg,
        parents=np.array(MANO_PARENTS), weights=weights, faces=np.concatenate(faces),
        tip_vertices=np.array([tips[f] for f in ("thumb", "index", "middle", "ring", "little")]),
        hands_mean=mean, hands_components=np.eye(45), name="boxhand", source="<box hand>",
    )  # fmt: skip
