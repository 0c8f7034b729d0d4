"""geometry.py: Kabsch against known rotations; the rotation conversions' round trips."""

from __future__ import annotations

import torch

from monohand.geometry import kabsch, rotation_6d_to_matrix, rotmat_to_axis_angle
from monohand.models.lbs import batch_rodrigues


def test_kabsch_recovers_a_rotation_and_a_shift_with_weights():
    g = torch.Generator().manual_seed(0)
    aa = torch.randn(5, 3, generator=g, dtype=torch.float64)
    R = batch_rodrigues(aa)
    src = torch.randn(5, 21, 3, generator=g, dtype=torch.float64)
    dst = src @ R.transpose(1, 2) + torch.randn(5, 1, 3, generator=g, dtype=torch.float64)
    assert torch.allclose(kabsch(src, dst), R, atol=1e-10)
    # outliers with weight 0 change nothing
    noisy = dst.clone()
    noisy[:, :3] += 5.0
    w = torch.ones(5, 21, dtype=torch.float64)
    w[:, :3] = 0
    assert torch.allclose(kabsch(src, noisy, w), R, atol=1e-10)


def test_kabsch_never_reflects():
    g = torch.Generator().manual_seed(1)
    src = torch.randn(3, 10, 3, generator=g, dtype=torch.float64)
    dst = src * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)  # a mirror image
    R = kabsch(src, dst)
    assert torch.allclose(torch.linalg.det(R), torch.ones(3, dtype=torch.float64))
    assert torch.allclose(R @ R.transpose(1, 2), torch.eye(3, dtype=torch.float64), atol=1e-12)


def test_conversions_round_trip():
    g = torch.Generator().manual_seed(2)
    aa = torch.randn(64, 3, generator=g, dtype=torch.float64)
    angle = 3.1 * torch.rand(64, 1, generator=g, dtype=torch.float64)
    aa = aa / aa.norm(dim=1, keepdim=True) * angle
    R = batch_rodrigues(aa)
    assert torch.allclose(rotmat_to_axis_angle(R), aa, atol=1e-9)
    six = torch.cat([R[..., 0], R[..., 1]], -1)
    assert torch.allclose(rotation_6d_to_matrix(six), R, atol=1e-12)
