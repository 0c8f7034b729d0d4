"""Joint orders, names and fingertip vertices: the one place where they are defined.

monohand's public keypoint order is FreiHAND's (= OpenPose's): 0 wrist; thumb 1-4; index 5-8;
middle 9-12; ring 13-16; little 17-20; each finger from the palm outwards, tip last.

MANO's native 16-joint order is 0 wrist, 1-3 index, 4-6 middle, 7-9 little, 10-12 ring,
13-15 thumb. Models with that tree append five fingertip vertices (thumb, index, middle, ring,
little, in that order) to get 21 points, which ``NATIVE_TO_FREIHAND`` then reorders.
"""

from __future__ import annotations

FINGERS = ("thumb", "index", "middle", "ring", "little")

FREIHAND_JOINT_NAMES: tuple[str, ...] = ("wrist",) + tuple(
    f"{finger}_{part}"
    for finger in FINGERS
    for part in (("cmc", "mcp", "ip", "tip") if finger == "thumb" else ("mcp", "pip", "dip", "tip"))
)

MANO_JOINT_NAMES: tuple[str, ...] = (
    "wrist",
    "index_mcp", "index_pip", "index_dip",
    "middle_mcp", "middle_pip", "middle_dip",
    "little_mcp", "little_pip", "little_dip",
    "ring_mcp", "ring_pip", "ring_dip",
    "thumb_cmc", "thumb_mcp", "thumb_ip",
)  # fmt: skip

MANO_PARENTS: tuple[int, ...] = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14)

# FreiHAND's fingertip vertices on MANO's topology: thumb, index, middle, ring, little.
MANO_TIP_VERTICES: tuple[int, ...] = (744, 320, 443, 555, 672)

# Index into cat(16 native joints, 5 tips [thumb, index, middle, ring, little]) for each
# FreiHAND keypoint.
NATIVE_TO_FREIHAND: tuple[int, ...] = (
    0,
    13, 14, 15, 16,
    1, 2, 3, 17,
    4, 5, 6, 18,
    10, 11, 12, 19,
    7, 8, 9, 20,
)  # fmt: skip

# Parent of each FreiHAND keypoint (bones for drawing and bone losses).
FREIHAND_PARENTS: tuple[int, ...] = (
    -1,
    0,
    1,
    2,
    3,
    0,
    5,
    6,
    7,
    0,
    9,
    10,
    11,
    0,
    13,
    14,
    15,
    0,
    17,
    18,
    19,
)

NUM_KEYPOINTS = 21

# The 20 bones as (parent, child) keypoint pairs: per finger, its palm bone, then its three
# segments from the palm outwards; thumb first.
FREIHAND_BONES: tuple[tuple[int, int], ...] = tuple(
    (p, k) for k, p in enumerate(FREIHAND_PARENTS) if p >= 0
)

# Per finger (thumb first): its four keypoints from the base outwards.
FINGER_CHAINS: tuple[tuple[int, ...], ...] = tuple(
    tuple(range(1 + 4 * f, 5 + 4 * f)) for f in range(len(FINGERS))
)
