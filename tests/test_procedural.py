"""The box hand: closed-form geometry under known poses."""

from __future__ import annotations

import numpy as np
import torch
import trimesh

from monohand.models.procedural import box_hand_data
from monohand.models.skinned import SkinnedHand, handedness, mirror_data


def test_box_hand_is_a_closed_right_hand_with_joints_at_box_bases():
    d = box_hand_data()
    assert handedness(d) == "right" and handedness(mirror_data(d)) == "left"
    mesh = trimesh.Trimesh(d.v_template, d.faces, process=False)
    assert mesh.is_winding_consistent and mesh.volume > 0
    joints = d.rest_joints
    assert np.allclose(joints[0], 0.0)
    # Index finger: MCP -> PIP is 4 cm along -x.
    assert np.allclose(joints[2] - joints[1], [-0.040, 0.0, 0.0])


def test_flexing_the_index_mcp_by_90_degrees_rotates_the_whole_finger():
    model = SkinnedHand(box_hand_data(), dtype=torch.float64)
    pose = torch.zeros(1, 45, dtype=torch.float64)
    pose[0, 2] = np.pi / 2  # index MCP about +z: towards the palm (-y)
    rest, bent = model(), model(hand_pose=pose)
    mcp = rest.joints[0, 5]
    tip_rest = rest.joints[0, 8] - mcp  # (-0.085, 0, 0)
    tip_bent = bent.joints[0, 8] - mcp
    assert torch.allclose(
        tip_bent, torch.stack([tip_rest[1], tip_rest[0], tip_rest[2]]), atol=1e-12
    )
    # Other fingers do not move.
    assert torch.allclose(bent.joints[0, 9:], rest.joints[0, 9:])
