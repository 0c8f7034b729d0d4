"""The hand layers' inputs, alike for every model: an input of batch 1 is shared by the
batch (one subject's shape for many poses, as smplx does), against the same input repeated
by hand; sizes that disagree otherwise are named."""

from __future__ import annotations

import pytest
import torch

from monohand.models.mano import MANO
from monohand.models.nimble import NIMBLE
from monohand.models.registry import create


@pytest.fixture(params=["openhand", "mano", "nimble"])
def layer(request, mano_npz, nimble_dir):
    if request.param == "openhand":
        return create("openhand").double()
    if request.param == "mano":
        return MANO(mano_npz).double()
    return NIMBLE(nimble_dir, dtype=torch.float64)


def test_an_input_of_batch_one_is_shared_by_the_batch(layer):
    g = torch.Generator().manual_seed(0)
    b = 3
    pose = 0.3 * torch.randn(b, layer.num_pose_params, generator=g, dtype=torch.float64)
    orient = 0.5 * torch.randn(b, 3, generator=g, dtype=torch.float64)
    betas = torch.randn(1, layer.num_shape_params, generator=g, dtype=torch.float64)
    transl = torch.tensor([[0.01, -0.02, 0.5]], dtype=torch.float64)
    shared = betas.clone().requires_grad_()
    out = layer(global_orient=orient, hand_pose=pose, betas=shared, transl=transl)
    repeated = betas.repeat(b, 1).requires_grad_()
    ref = layer(global_orient=orient, hand_pose=pose, betas=repeated, transl=transl.repeat(b, 1))
    torch.testing.assert_close(out.vertices, ref.vertices)
    torch.testing.assert_close(out.joints, ref.joints)
    torch.testing.assert_close(layer.keypoints(global_orient=orient, hand_pose=pose,
                                               betas=betas, transl=transl), ref.joints)  # fmt: skip
    # the shared shape's gradient is the sum of the repeated one's over the batch
    out.joints.square().sum().backward()
    ref.joints.square().sum().backward()
    torch.testing.assert_close(shared.grad, repeated.grad.sum(0, keepdim=True))


def test_batch_sizes_that_disagree_are_named(layer):
    with pytest.raises(ValueError, match=r"disagree on the batch size \(.*hand_pose 2, betas "
                                         r"3.*\): each must have the batch's size or 1"):
        layer(hand_pose=torch.zeros(2, layer.num_pose_params, dtype=torch.float64),
              betas=torch.zeros(3, layer.num_shape_params, dtype=torch.float64))


def test_one_skin_for_the_batch():
    hand = create("openhand")
    t = torch.randn(1, hand.num_texture_params, generator=torch.Generator().manual_seed(1))
    pose = 0.2 * torch.randn(2, hand.num_pose_params, generator=torch.Generator().manual_seed(2))
    out = hand(hand_pose=pose, texture=t)
    ref = hand(hand_pose=pose, texture=t.repeat(2, 1))
    torch.testing.assert_close(out.vertex_colors, ref.vertex_colors)
    # and one pose for a batch of skins
    skins = torch.randn(3, hand.num_texture_params, generator=torch.Generator().manual_seed(3))
    many = hand(hand_pose=pose[:1], texture=skins)
    assert many.vertices.shape[0] == 3 and many.vertex_colors.shape[0] == 3
    torch.testing.assert_close(many.vertices[2], hand(hand_pose=pose[:1]).vertices[0])
    with pytest.raises(ValueError, match=r"disagree on the batch size \(hand_pose 2, texture 3\)"):
        hand(hand_pose=pose, texture=t.repeat(3, 1))


def test_nimbles_skin_of_batch_one_is_shared_and_a_batch_of_none_named(nimble_dir):
    layer = NIMBLE(nimble_dir, dtype=torch.float64)
    t = torch.randn(1, layer.num_texture_params, dtype=torch.float64)
    out = layer(betas=torch.zeros(3, layer.num_shape_params, dtype=torch.float64), texture=t)
    assert out.texture.shape[0] == 3 and out.vertices.shape[0] == 3
    torch.testing.assert_close(out.texture[2], out.texture[0])
    with pytest.raises(ValueError, match="disagree on the batch size"):
        layer(hand_pose=torch.zeros(0, layer.num_pose_params, dtype=torch.float64),
              betas=torch.zeros(1, layer.num_shape_params, dtype=torch.float64))


def test_names_say_which_joints_they_name(layer):
    """``keypoint_names`` name ``joints`` (FreiHAND's 21, every model), ``joint_names`` the
    model's own rig (``joints_native``), whose count differs by model."""
    from monohand.models.joints import FREIHAND_JOINT_NAMES

    out = layer()
    assert layer.keypoint_names == FREIHAND_JOINT_NAMES
    assert out.joints.shape[1] == len(layer.keypoint_names) == 21
    assert out.joints_native.shape[1] == len(layer.joint_names)


def test_an_output_prints_as_one_line_of_shapes(layer):
    """A notebook shows an output's shapes, not its thousands of numbers (NIMBLE's tissues
    and maps too)."""
    text = repr(layer(betas=torch.zeros(2, layer.num_shape_params, dtype=torch.float64)))
    assert "\n" not in text and len(text) < 600, text
    assert "vertices=(2, " in text and "joints=(2, 21, 3)" in text and "metres" in text
