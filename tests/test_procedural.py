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


def test_a_model_the_layers_would_misread_is_refused_when_made():
    """What the renderer and the keypoints assume, said when the data are made, naming the
    field: MANO's 16 joints (another tree's tips would be read as the wrong fingers'), a
    manifold surface (the silhouettes need one), metres."""
    import dataclasses

    import pytest

    d = box_hand_data()
    j, v = len(d.parents), len(d.v_template)
    with pytest.raises(ValueError, match="'parents' has 17 joints: these layers have MANO's 16"):
        dataclasses.replace(d, parents=np.append(d.parents, 15),
                            j_regressor=np.vstack([d.j_regressor, d.j_regressor[-1:]]),
                            weights=np.hstack([d.weights, np.zeros((v, 1))]), posedirs=None,
                            hands_mean=np.zeros(j * 3), hands_components=np.eye(j * 3))
    with pytest.raises(ValueError, match=r"3 edge\(s\) shared by more than two faces"):
        dataclasses.replace(d, faces=np.vstack([d.faces, d.faces[:1]]))
    with pytest.raises(ValueError, match=r"'v_template' spans \d+(\.\d+)?: expected metres"):
        dataclasses.replace(d, v_template=1000 * d.v_template)
