"""Losses: closed-form cases and invariances."""

from __future__ import annotations

import torch

from monohand import losses as L
from monohand.models.openhand import OpenHand


def _joints(b=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, 21, 3, generator=g, dtype=torch.float64) * 0.05


def test_keypoints_2d_zero_at_truth_and_ignores_zero_confidence():
    kp = torch.rand(2, 21, 2, dtype=torch.float64) * 200
    size = torch.full((2,), 80.0, dtype=torch.float64)
    conf = torch.ones(2, 21, dtype=torch.float64)
    assert torch.allclose(L.keypoints_2d(kp, kp, conf, size), torch.zeros(2, dtype=torch.float64))
    bad = kp.clone()
    bad[:, 3] += 50
    conf[:, 3] = 0
    assert torch.allclose(L.keypoints_2d(bad, kp, conf, size), torch.zeros(2, dtype=torch.float64))
    # Robust: an outlier costs at most sigma^2 (times its weight).
    conf[:, 3] = 1
    assert (L.keypoints_2d(bad + 1e4, kp, conf, size) <= 0.1**2 + 1e-12).all()


def test_norm_losses_are_scale_and_translation_invariant():
    j = _joints()
    moved = 1.7 * j + torch.tensor([0.3, -0.2, 0.5], dtype=torch.float64)
    assert torch.allclose(
        L.joints_3d_norm(moved, j), torch.zeros(3, dtype=torch.float64), atol=1e-20
    )
    assert torch.allclose(L.joints_3d(j + 0.4, j), torch.zeros(3, dtype=torch.float64), atol=1e-20)
    j2 = j[..., :2]
    assert torch.allclose(
        L.bone_orientation_2d(3.0 * j2 + 5, j2), torch.zeros(3, dtype=torch.float64), atol=1e-20
    )
    assert (L.joints_3d_norm(j.flip(1), j) > 0).all()


def test_finger_collision():
    hand = OpenHand(dtype=torch.float64)
    flat = hand().joints
    assert L.finger_collision(flat).item() == 0.0
    squeezed = flat.clone()
    squeezed[:, 9:13] = flat[:, 5:9] + torch.tensor(
        [0.0, 0.0, 0.002], dtype=torch.float64
    )  # middle onto index
    assert L.finger_collision(squeezed).item() > 1e-5


def test_pose_priors():
    hand = OpenHand(dtype=torch.float64)
    space = hand.pose_space
    inside = torch.as_tensor(space.relaxed)[None]
    assert L.pose_limits(inside, space).item() == 0.0
    outside = inside.clone()
    outside[0, 1, 0] = space.limits[1, 0, 1] + 0.5  # index PIP over-flexed by 0.5 rad
    assert abs(L.pose_limits(outside, space).item() - 0.25) < 1e-9
    mean = torch.as_tensor(hand.data.hands_mean)
    comps = torch.as_tensor(hand.data.hands_components)
    std = torch.as_tensor(hand.pose_pca_std)
    assert L.pose_pca_prior(mean[None], mean, comps, std).item() < 1e-20
