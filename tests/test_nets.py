"""Networks: torchvision-compatible ResNets, soft-argmax, heads consistent with K."""

from __future__ import annotations

import math

import pytest
import torch

from monohand.nets import HandHeads, KeypointBranch, resnet, soft_argmax_2d
from monohand.nets.backbone import load_backbone_weights
from monohand.render.camera import project

# torchvision's published parameter counts (including the 1000-way fc).
TORCHVISION_PARAMS = {18: 11_689_512, 34: 21_797_672, 50: 25_557_032}


@pytest.mark.parametrize("depth", [18, 34, 50])
def test_resnets_have_torchvision_sizes_and_names(depth):
    net = resnet(depth)
    assert sum(p.numel() for p in net.parameters()) == TORCHVISION_PARAMS[depth]
    keys = set(net.state_dict())
    for k in (
        "conv1.weight",
        "bn1.running_var",
        "layer1.0.conv1.weight",
        "layer2.0.downsample.0.weight",
        "layer2.0.downsample.1.num_batches_tracked",
        "layer4.1.bn2.bias",
        "fc.weight",
        "fc.bias",
    ):
        assert k in keys
    if depth == 50:
        assert "layer3.5.conv3.weight" in keys and net.out_channels == 2048
    feats = net.features(torch.randn(2, 3, 128, 128))
    assert feats.shape == (2, net.out_channels, 4, 4) and net(torch.randn(1, 3, 64, 64)).shape == (
        1,
        net.out_channels,
    )


def test_weights_round_trip_through_a_file(tmp_path):
    a, b = resnet(18), resnet(18)
    torch.save(a.state_dict(), tmp_path / "r18.pth")
    load_backbone_weights(b, tmp_path / "r18.pth")
    x = torch.randn(1, 3, 64, 64)
    a.eval(), b.eval()
    assert torch.equal(a(x), b(x))
    torch.save({"wrong": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="bad.pth"):
        load_backbone_weights(b, tmp_path / "bad.pth")


def test_soft_argmax_finds_peaks_and_is_differentiable():
    hm = torch.full((1, 2, 16, 20), -50.0)
    hm[0, 0, 5, 7] = 50.0
    hm[0, 1, 10, 3] = 50.0
    assert torch.allclose(soft_argmax_2d(hm), torch.tensor([[[7.0, 5.0], [3.0, 10.0]]]), atol=1e-4)
    branch = KeypointBranch(512)
    _, kp = branch(torch.randn(2, 512, 4, 4, requires_grad=True), (128, 128))
    assert kp.shape == (2, 21, 2) and (kp > -1).all() and (kp < 128).all()
    kp.sum().backward()


def test_camera_head_agrees_with_K():
    heads = HandHeads(512, num_pose=45, num_shape=10, num_texture=10)
    f = torch.randn(3, 512)
    K = torch.tensor([[[500.0, 0, 60], [0, 520.0, 70], [0, 0, 1]]]).repeat(3, 1, 1)
    out = heads(f, K, (128, 128))
    assert (
        out.hand_pose.shape == (3, 45)
        and out.light.shape == (3, 11)
        and out.texture.shape == (3, 10)
    )
    # The root projects exactly where the camera head put it (centre + offset * size), at
    # depth 0.6 exp(offset): translation and K agree by construction.
    cam = heads.camera(f)
    want = torch.tensor([63.5, 63.5]) + cam[:, :2] * 128
    uv = project(out.transl[:, None], K)[:, 0]
    assert torch.allclose(uv, want, atol=1e-3)
    assert torch.allclose(out.transl[:, 2], 0.6 * torch.exp(cam[:, 2]), atol=1e-6)


def test_rotation_6d_is_gram_schmidt_onto_the_rotations():
    from scipy.spatial.transform import Rotation

    from monohand.nets.heads import rotation_6d_to_matrix

    R = torch.as_tensor(Rotation.random(64, random_state=3).as_matrix())
    # A rotation's own first two columns give it back, whatever their lengths.
    x = torch.cat([R[..., 0] * 2.5, R[..., 1] * 0.3], -1)
    assert torch.allclose(rotation_6d_to_matrix(x), R, atol=1e-12)
    # Any two independent vectors give a proper rotation whose first column is the first
    # vector's direction and whose second lies in their plane.
    x = torch.randn(64, 6, dtype=torch.float64)
    M = rotation_6d_to_matrix(x)
    assert torch.allclose(M.transpose(-1, -2) @ M, torch.eye(3, dtype=M.dtype), atol=1e-12)
    assert torch.allclose(torch.linalg.det(M), torch.ones(64, dtype=M.dtype), atol=1e-12)
    assert torch.allclose(M[..., 0], x[:, :3] / x[:, :3].norm(dim=-1, keepdim=True))
    normal = torch.linalg.cross(x[:, :3], x[:, 3:], dim=-1)
    assert (M[..., 1] * normal).sum(-1).abs().max() < 1e-9


def test_6d_head_starts_at_identity_and_stays_smooth_near_pi():
    from monohand.geometry import rotmat_to_axis_angle
    from monohand.models.lbs import batch_rodrigues
    from monohand.nets.heads import rotation_6d_to_matrix

    heads = HandHeads(512, num_pose=45, num_shape=10, num_texture=10, rotation="6d")
    K = torch.tensor([[[500.0, 0, 60], [0, 520.0, 70], [0, 0, 1]]]).repeat(3, 1, 1)
    out = heads(torch.randn(3, 512), K, (128, 128))
    assert out.global_orient.shape == (3, 3) and out.global_orient.norm(dim=-1).max() < 0.05
    assert out.hand_pose.shape == (3, 45)
    with pytest.raises(ValueError, match="rotation"):
        HandHeads(512, 45, 10, 10, rotation="euler")

    # What the hand model receives (axis-angle, back through Rodrigues) is the 6D's matrix,
    # also at 179.99 degrees where axis-angle wraps, and its gradient matches finite
    # differences there (the network trains through this composite).
    def composite(x):
        return batch_rodrigues(rotmat_to_axis_angle(rotation_6d_to_matrix(x)))

    a = 3.14142
    near_pi = torch.tensor(
        [[1.0, 0.0, 0.0, 0.0, math.cos(a), math.sin(a)], [0.3, -1.0, 0.2, 0.9, 0.4, -0.7]],
        dtype=torch.float64,
    )
    for x in near_pi:
        assert torch.allclose(composite(x), rotation_6d_to_matrix(x), atol=1e-9)
    w = torch.randn(3, 3, dtype=torch.float64)
    x0 = near_pi[0].clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda x: (composite(x) * w).sum(), (x0,), eps=1e-7, atol=1e-5)
