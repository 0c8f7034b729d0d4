"""The LBS core against scipy and finite differences."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from monohand.models.lbs import (
    batch_rigid_transform,
    batch_rodrigues,
    pose_features,
    skew,
    tree_levels,
)


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 2e-6), (torch.float64, 1e-13)])
@pytest.mark.parametrize("scale", [0.0, 1e-9, 1e-5, 1e-3, 5e-3, 0.3, 2.0, 3.1])
def test_rodrigues_matches_scipy(dtype, tol, scale):
    rng = np.random.default_rng(1)
    axis = rng.normal(size=(50, 3))
    axis /= np.linalg.norm(axis, axis=1, keepdims=True)
    rv = axis * scale * rng.uniform(0.5, 1.0, size=(50, 1))
    got = batch_rodrigues(torch.tensor(rv, dtype=dtype)).double().numpy()
    want = Rotation.from_rotvec(rv).as_matrix()
    assert np.abs(got - want).max() < tol


def test_rodrigues_is_orthonormal_and_batched_over_any_shape():
    rv = torch.randn(4, 5, 3, dtype=torch.float64)
    r = batch_rodrigues(rv)
    assert r.shape == (4, 5, 3, 3)
    eye = torch.eye(3, dtype=torch.float64)
    assert torch.allclose(r @ r.transpose(-1, -2), eye.expand_as(r), atol=1e-12)
    assert torch.allclose(torch.linalg.det(r), torch.ones(4, 5, dtype=torch.float64))


@pytest.mark.parametrize("scale", [0.0, 1e-6, 1e-2, 1.0, 3.0])
def test_rodrigues_gradcheck(scale):
    torch.manual_seed(0)
    rv = (torch.randn(6, 3, dtype=torch.float64) * scale).requires_grad_()
    assert torch.autograd.gradcheck(batch_rodrigues, (rv,), eps=1e-7, atol=1e-7)


def test_rodrigues_derivative_at_zero_is_the_generator():
    # dR/dr_k at r = 0 is skew(e_k): the closed form every optimiser relies on.
    rv = torch.zeros(1, 3, dtype=torch.float64, requires_grad=True)
    jac = torch.autograd.functional.jacobian(lambda r: batch_rodrigues(r)[0], rv)[..., 0, :]
    for k in range(3):
        e = torch.zeros(3, dtype=torch.float64)
        e[k] = 1
        assert torch.allclose(jac[..., k], skew(e), atol=1e-12)


def test_pose_features_are_r_minus_identity():
    r = batch_rodrigues(torch.randn(2, 16, 3, dtype=torch.float64))
    f = pose_features(r)
    assert f.shape == (2, 135)
    assert torch.allclose(f[:, 9:18].reshape(2, 3, 3), r[:, 2] - torch.eye(3, dtype=r.dtype))


def test_kinematic_chain_matches_sequential_reference():
    rng = np.random.default_rng(3)
    parents = torch.tensor([-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14])
    rv = rng.normal(size=(3, 16, 3))
    rest = rng.normal(size=(3, 16, 3))
    posed, rel = batch_rigid_transform(
        batch_rodrigues(torch.tensor(rv)), torch.tensor(rest), parents
    )
    for b in range(3):
        world = []
        for j in range(16):
            t = np.eye(4)
            t[:3, :3] = Rotation.from_rotvec(rv[b, j]).as_matrix()
            p = parents[j].item()
            t[:3, 3] = rest[b, j] - (rest[b, p] if p >= 0 else 0)
            world.append(t if p < 0 else world[p] @ t)
            assert np.allclose(posed[b, j].numpy(), world[j][:3, 3])
            # rel maps the rest joint onto its posed location
            assert np.allclose(
                (rel[b, j, :3, :3] @ torch.tensor(rest[b, j]) + rel[b, j, :3, 3]).numpy(),
                world[j][:3, 3],
            )


def test_tree_levels():
    levels = tree_levels(torch.tensor([-1, 0, 1, 2, 0, 4]))
    assert [lv.tolist() for lv in levels] == [[1, 4], [2, 5], [3]]


@pytest.mark.parametrize("scale", [0.0, 1e-12, 1e-8, 1e-5, 1e-3, 1e-2, 0.3, 3.0])
def test_rodrigues_float32_jacobian_matches_float64(scale):
    # No small-angle branch: the float32 derivative must stay as good as float64's everywhere.
    rv = torch.randn(20, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    rv = rv * scale

    def jac(r):
        return torch.autograd.functional.jacobian(lambda x: batch_rodrigues(x).sum(0), r)

    j32, j64 = jac(rv.float()), jac(rv)
    assert torch.isfinite(j32).all()
    assert (j32.double() - j64).abs().max() < 1e-6
