"""Losses: closed-form cases and invariances."""

from __future__ import annotations

import math

import numpy as np
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


def _rotation(seed: int) -> torch.Tensor:
    q, r = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(seed),
                                       dtype=torch.float64))  # fmt: skip
    q = q * torch.sign(torch.diagonal(r))
    return q if torch.det(q) > 0 else -q


def test_rotation_free_norm_loss_ignores_rotation_and_sees_articulation():
    j = _joints()
    turned = 0.7 * j @ _rotation(1).T + torch.tensor([0.1, 0.2, -0.3], dtype=torch.float64)
    zero = torch.zeros(3, dtype=torch.float64)
    assert torch.allclose(L.joints_3d_norm_rotfree(turned, j), zero, atol=1e-20)
    assert (L.joints_3d_norm(turned, j) > 1e-3).all()  # the camera-frame loss sees the turn
    # A mirror image is not a rotation; a bent joint is not either.
    assert (L.joints_3d_norm_rotfree(j * torch.tensor([-1.0, 1, 1], dtype=torch.float64), j)
            > 1e-3).all()  # fmt: skip
    bent = j.clone()
    bent[:, 8] += 0.02
    assert (L.joints_3d_norm_rotfree(bent @ _rotation(2).T, j) > 1e-4).all()
    # Confidence 0 removes a joint: moving it changes nothing.
    conf = torch.ones(3, 21, dtype=torch.float64)
    conf[:, 8] = 0
    assert torch.allclose(L.joints_3d_norm_rotfree(bent @ _rotation(2).T, j, conf), zero,
                          atol=1e-20)  # fmt: skip


def test_rotation_free_norm_loss_gradient_matches_finite_differences():
    # The rotation is computed without gradient: exact only because it is the optimum.
    j, target = _joints(2, 3), _joints(2, 4)
    conf = torch.rand(2, 21, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    x = j.clone().requires_grad_()
    L.joints_3d_norm_rotfree(x, target, conf).sum().backward()
    eps, num = 1e-6, torch.zeros_like(j)
    for idx in np.ndindex(*j.shape):
        d = torch.zeros_like(j)
        d[idx] = eps
        num[idx] = (L.joints_3d_norm_rotfree(j + d, target, conf).sum()
                    - L.joints_3d_norm_rotfree(j - d, target, conf).sum()) / (2 * eps)  # fmt: skip
    assert torch.allclose(x.grad, num, atol=1e-7, rtol=1e-5)


def test_3d_distance_in_hand_lengths_closed_form():
    """Every joint moved by one offset d: |d|^2 / length^2, length the target's wrist to
    middle knuckle; a collapsed target's length is held at 1 mm."""
    g = torch.Generator().manual_seed(2)
    target = 0.05 * torch.randn(2, 21, 3, generator=g, dtype=torch.float64)
    d = torch.tensor([0.003, -0.004, 0.012], dtype=torch.float64)  # 13 mm
    length = (target[:, 9] - target[:, 0]).norm(dim=-1)
    got = L.joints_3d_in_lengths(target + d, target)
    assert torch.allclose(got, 0.013**2 / length**2)
    flat = torch.zeros(1, 21, 3, dtype=torch.float64)
    assert torch.allclose(L.joints_3d_in_lengths(flat + d, flat), torch.tensor([0.013**2 / 1e-6],
                          dtype=torch.float64))  # fmt: skip


def test_finger_collision():
    hand = OpenHand(dtype=torch.float64)
    flat = hand().joints
    assert L.finger_collision(flat).item() == 0.0
    squeezed = flat.clone()
    squeezed[:, 9:13] = flat[:, 5:9] + torch.tensor(
        [0.0, 0.0, 0.002], dtype=torch.float64
    )  # middle onto index
    assert L.finger_collision(squeezed).item() > 1e-5


def test_finger_collision_matches_a_loop_over_sphere_pairs():
    g = torch.Generator().manual_seed(0)
    joints = torch.randn(3, 21, 3, generator=g, dtype=torch.float64) * 0.015
    chains = [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12], [13, 14, 15, 16], [17, 18, 19, 20]]
    r, samples = 0.0075, 4
    for b in range(3):
        spheres = [(f, joints[b, c[k]] + s / samples * (joints[b, c[k + 1]] - joints[b, c[k]]))
                   for f, c in enumerate(chains) for k in range(3)
                   for s in range(1, samples + 1)]  # fmt: skip
        want = sum(max(0.0, 2 * r - (p - q).norm().item()) ** 2
                   for i, (f, p) in enumerate(spheres)
                   for g_, q in spheres[i + 1:] if g_ != f)  # fmt: skip
        assert want > 0
        assert abs(L.finger_collision(joints)[b].item() - want) < 1e-15
    assert L.finger_collision(joints[:0]).shape == (0,)  # an empty batch


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


# -- S2HAND's remaining terms -------------------------------------------------------------


def test_integral_and_consistency_hand_computed():
    pred = torch.zeros(1, 21, 2)
    target = torch.zeros(1, 21, 2)
    target[0, 3] = torch.tensor([3.0, 4.0])  # one joint 5 px off
    conf = torch.ones(1, 21)
    size = torch.tensor([10.0])
    assert torch.isclose(L.integral_keypoints(pred, target, conf, size), torch.tensor([0.5 / 21]))
    conf[0, 3] = 0  # confidence 0 removes the joint
    assert L.integral_keypoints(pred, target, conf, size).item() == 0
    c = L.consistency_2d_3d(pred, target, size)
    assert torch.isclose(c, torch.tensor([0.5 / 21]))
    assert torch.equal(c, L.consistency_2d_3d(target, pred, size))  # symmetric


def test_mean_colour_and_scale_prior():
    img = torch.zeros(1, 4, 4, 3)
    img[0, :2] = torch.tensor([0.8, 0.5, 0.4])  # the hand's pixels
    mask = torch.zeros(1, 4, 4)
    mask[0, :2] = 1
    albedo = torch.tensor([[[0.8, 0.5, 0.4], [0.6, 0.5, 0.4]]])  # mean (0.7, 0.5, 0.4)
    assert torch.isclose(L.mean_colour(albedo, img, mask), torch.tensor([0.01]))
    j = torch.randn(2, 21, 3)
    j[:, 9] = j[:, 0] + torch.tensor([0.0, 0.083, 0.0])
    assert L.scale_prior(j).abs().max() < 1e-10
    j2 = j * 2.0 + 5.0  # twice the size anywhere: log(2)^2
    assert torch.allclose(L.scale_prior(j2), torch.full((2,), math.log(2) ** 2), atol=1e-6)


def test_laplacian_against_a_loop_and_its_invariances():
    from scipy.spatial.transform import Rotation

    from monohand.models.openhand import OpenHand

    hand = OpenHand(dtype=torch.float64)
    v = hand.data.v_template
    f = hand.data.faces
    lap = L.uniform_laplacian(torch.as_tensor(v)[None], torch.as_tensor(f))[0].numpy()
    nbrs = [set() for _ in range(len(v))]
    for a, b, c in f:  # naive reference: neighbour sets, one vertex at a time
        nbrs[a] |= {b, c}
        nbrs[b] |= {a, c}
        nbrs[c] |= {a, b}
    for i in (0, 17, 500, len(v) - 1):
        np.testing.assert_allclose(lap[i], v[i] - v[sorted(nbrs[i])].mean(0), atol=1e-12)
    ref = torch.as_tensor(v)
    rot = torch.as_tensor(Rotation.from_rotvec([0.3, -1.0, 0.5]).as_matrix())
    moved = (ref @ rot.T + 0.2)[None]  # a rigid motion: nothing to penalise
    assert L.laplacian(moved, torch.as_tensor(f), ref).item() < 1e-20
    bumped = ref.clone()
    bumped[100] += 0.005
    assert L.laplacian(bumped[None], torch.as_tensor(f), ref).item() > 1e-8


def test_s2hand_keypoint_loss_hand_computed():
    pred = torch.zeros(1, 21, 2)
    target = torch.zeros(1, 21, 2)
    target[0, 0] = torch.tensor([3.0, 0.0])  # wrist, 3 px: 3^2 / 10 = 0.9
    target[0, 4] = torch.tensor([0.0, 10.0])  # thumb tip, 10 px: 10 - 2.5 = 7.5
    conf = torch.ones(1, 21)
    w = torch.tensor(L.S2HAND_JOINT_WEIGHTS)
    assert w[0] == 2 and w[4] == w[20] == 1.5 and w[1] == 1 and len(w) == 21
    want = (0.9 * 4 + 7.5 * 2.25) / (4 + 5 * 2.25 + 15)
    assert torch.isclose(L.s2hand_keypoints(pred, target, conf, w), torch.tensor([want]))
    conf[0, 0] = 0  # confidence 0 removes the wrist
    want = 7.5 * 2.25 / (5 * 2.25 + 15)
    assert torch.isclose(L.s2hand_keypoints(pred, target, conf, w), torch.tensor([want]))


def test_ssim_matches_scikit_image():
    from skimage.metrics import structural_similarity

    g = torch.Generator().manual_seed(0)
    a = torch.rand(2, 32, 40, 3, generator=g, dtype=torch.float64)
    b = (a + 0.1 * torch.randn(2, 32, 40, 3, generator=g, dtype=torch.float64)).clamp(0, 1)
    ours = L.ssim(a, b)
    for i in range(2):
        ref = structural_similarity(a[i].numpy(), b[i].numpy(), data_range=1.0, channel_axis=-1,
                                    gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False)  # fmt: skip
        assert abs(ours[i].item() - ref) < 1e-10
    assert torch.allclose(L.ssim(a, a), torch.ones(2, dtype=torch.float64))


def test_pose_limits_in_training_losses():
    from monohand.config import TrainConfig
    from monohand.train import compute_losses

    hand = OpenHand()
    cfg = TrainConfig()
    cfg.loss.pose_limits, cfg.loss.pose_prior = 1.0, 0.0
    relaxed = torch.as_tensor(hand.pose_space.relaxed, dtype=torch.float32)[None]
    bent = relaxed.clone()
    bent[0, 4, 0] = -1.5  # a finger bent backwards far past its limit

    def limits(angles):
        hand_pose = hand.pose_space.to_axis_angle(angles)
        out = hand(hand_pose=hand_pose)
        j2 = out.joints[..., :2] / out.joints[..., 2:]
        batch = {"K": torch.eye(3)[None], "joints2d": j2, "keypoints": j2,
                 "confidence": torch.ones(1, 21)}  # fmt: skip

        class P:
            betas = torch.zeros(1, 10)
            keypoints2d = None

        P.hand_pose = hand_pose
        return compute_losses(cfg, batch, P, out, hand)["pose_limits"].item()

    assert limits(relaxed) < 1e-8 and limits(bent) > 0.1


def test_projected_scale_is_zero_at_the_labels_size_and_grows_with_shrinking():
    g = torch.Generator().manual_seed(1)
    target = torch.rand(2, 21, 2, generator=g) * 100
    conf = torch.ones(2, 21)
    moved = target + torch.tensor([30.0, -12.0])  # same size elsewhere: no penalty
    assert L.projected_scale(moved, target, conf).abs().max() < 1e-10
    half = 0.5 * (target - target.mean(1, keepdim=True)) + target.mean(1, keepdim=True)
    assert torch.allclose(L.projected_scale(half, target, conf), torch.full((2,), math.log(2) ** 2),
                          atol=1e-5)  # fmt: skip
    conf[1] = 0  # no labels: no penalty
    assert L.projected_scale(half, target, conf)[1] == 0


def test_silhouette_distance_against_a_loop_and_its_pull():
    from scipy.ndimage import distance_transform_edt

    from monohand.fit import mask_distances

    g = torch.Generator().manual_seed(0)
    mask = torch.zeros(2, 12, 14)
    mask[0, 3:9, 4:10] = 1
    mask[1, 2:6, 2:12] = 1
    inside, outside = mask_distances(mask, torch.tensor([2.0, 4.0]))
    # Exact Euclidean distances (scipy's), in units of each scale.
    for b, s in enumerate((2.0, 4.0)):
        m = mask[b].numpy() > 0
        assert np.allclose(inside[b].numpy(), distance_transform_edt(m) / s, atol=1e-3)
        assert np.allclose(outside[b].numpy(), distance_transform_edt(~m) / s, atol=1e-3)
    alpha = torch.rand(2, 12, 14, generator=g)
    weight = (torch.rand(2, 12, 14, generator=g) > 0.2).float()
    got = L.silhouette_distance(alpha, inside, outside, weight)
    for b in range(2):  # naive: pixel by pixel
        cost = area = 0.0
        for y in range(12):
            for x in range(14):
                if mask[b, y, x]:
                    cost += weight[b, y, x] * (1 - alpha[b, y, x]) * inside[b, y, x]
                    area += weight[b, y, x]
                else:
                    cost += weight[b, y, x] * alpha[b, y, x] * outside[b, y, x]
        assert torch.allclose(got[b], cost / area, rtol=1e-5)
    # Exact coverage costs nothing; coverage 3 px off costs more than 1 px off, and its
    # gradient at the contour grows with the distance (a squared difference's would not).
    assert torch.equal(L.silhouette_distance(mask, inside, outside, torch.ones_like(mask)),
                       torch.zeros(2))  # fmt: skip
    off = [torch.roll(mask[:1], k, dims=2).requires_grad_() for k in (1, 3)]
    costs = [L.silhouette_distance(a, inside[:1], outside[:1], torch.ones_like(a)) for a in off]
    assert 0 < costs[0].item() < costs[1].item()
    grads = [torch.autograd.grad(c.sum(), a)[0] for c, a in zip(costs, off, strict=True)]
    # the right-most covered column, outside the mask for both shifts
    assert grads[1][0, 5, 9 + 3] > grads[0][0, 5, 9 + 1] > 0
