"""Camera conversions, each checked both ways and against an independent formula."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from monohand.render.camera import (
    crop_K,
    default_K,
    ndc_to_pixels,
    opencv_to_pytorch3d,
    perspective_to_weak,
    pixels_to_ndc,
    project,
    pytorch3d_to_opencv,
    resize_K,
    rotate_camera_about_axis,
    rotate_K,
    weak_perspective_to_K,
)

F64 = torch.float64


def points(n=50, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(1, n, 3, generator=g, dtype=F64) * 0.05 + torch.tensor(
        [0.02, -0.01, 0.6], dtype=F64
    )


def K0():
    return torch.tensor([[[510.0, 0, 120.3], [0, 495.0, 101.7], [0, 0, 1]]], dtype=F64)


def test_project_is_opencv():
    x = points()
    k = K0()[0]
    want = x[0] @ k.T
    assert torch.allclose(project(x, K0())[0], want[:, :2] / want[:, 2:], atol=1e-12)


def test_crop_and_resize():
    x, k = points(), K0()
    uv = project(x, k)
    assert torch.allclose(
        project(x, crop_K(k, 30, 12)), uv - torch.tensor([30.0, 12.0], dtype=F64), atol=1e-9
    )
    # Resizing by s maps pixel edges: (u + 0.5) s - 0.5.
    s = 0.4375
    assert torch.allclose(project(x, resize_K(k, s)), (uv + 0.5) * s - 0.5, atol=1e-9)
    assert torch.allclose(resize_K(resize_K(k, s), 1 / s), k, atol=1e-9)


def test_rotation_about_a_point():
    x, k = points(), K0()
    uv = project(x, k)
    c = torch.tensor([100.0, 90.0], dtype=F64)
    a = 0.3
    rot = torch.tensor([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]], dtype=F64)
    want = (uv - c) @ rot.T + c
    assert torch.allclose(project(x, rotate_K(k, a, c)), want, atol=1e-9)
    assert torch.allclose(project(x, rotate_K(rotate_K(k, a, c), -a, c)), uv, atol=1e-9)
    # About the principal point (fx == fy) it is a rotation of the camera about its axis.
    kk = K0().clone()
    kk[0, 1, 1] = kk[0, 0, 0]
    pp = kk[0, :2, 2]
    k_same, r = rotate_camera_about_axis(kk, a)
    assert torch.allclose(project(x @ r.T, k_same), project(x, rotate_K(kk, a, pp)), atol=1e-9)


def test_pixels_ndc_round_trip_and_edges():
    size = (120, 200)
    uv = torch.rand(10, 2, dtype=F64) * 200
    assert torch.allclose(ndc_to_pixels(pixels_to_ndc(uv, size), size), uv, atol=1e-12)
    corners = torch.tensor([[-0.5, -0.5], [199.5, 119.5]], dtype=F64)
    assert torch.allclose(
        pixels_to_ndc(corners, size), torch.tensor([[-1.0, -1.0], [1.0, 1.0]], dtype=F64)
    )


def test_weak_perspective_round_trip():
    size = (224, 224)
    scale = torch.tensor([2.2, 3.1], dtype=F64)
    trans = torch.tensor([[0.1, -0.2], [0.0, 0.3]], dtype=F64)
    K, transl = weak_perspective_to_K(scale, trans, size, depth=0.6)
    s2, t2 = perspective_to_weak(K, transl, size)
    assert torch.allclose(s2, scale) and torch.allclose(t2, trans)
    # Points at the root depth project as the weak-perspective camera says.
    xy = torch.randn(2, 5, 2, dtype=F64) * 0.05
    pts = torch.cat([xy, torch.zeros(2, 5, 1, dtype=F64)], -1)
    uv = project(pts + transl[:, None], K)
    ndc = scale[:, None, None] * xy + trans[:, None]
    assert torch.allclose(pixels_to_ndc(uv, size), ndc, atol=1e-9)


def pytorch3d_screen_projection(cam: dict, x_world: torch.Tensor) -> torch.Tensor:
    """PyTorch3D's ``PerspectiveCameras(in_ndc=False).transform_points_screen``, reduced from
    its documented maths: row vectors X_view = X R + T in a view frame with +X left, +Y up; the
    SfM projection, principal-point fix and flipped NDC-to-screen transform leave
    u = p_x - f_x X_view / Z_view and v = p_y - f_y Y_view / Z_view."""
    x_view = x_world @ cam["R"] + cam["T"][:, None]
    f, p = cam["focal_length"][:, None], cam["principal_point"][:, None]
    return p - f * x_view[..., :2] / x_view[..., 2:3]


def test_opencv_to_pytorch3d():
    g = torch.Generator().manual_seed(1)
    R = torch.linalg.qr(torch.randn(1, 3, 3, generator=g, dtype=F64))[0]
    R = R * torch.sign(torch.linalg.det(R))[:, None, None]
    t = torch.tensor([[0.01, -0.02, 0.7]], dtype=F64)
    x = points() * 0.3
    cam = opencv_to_pytorch3d(R, t, K0(), (240, 320))
    want = project(x @ R.transpose(1, 2) + t[:, None], K0())
    assert torch.allclose(pytorch3d_screen_projection(cam, x), want, atol=1e-9)
    R2, t2, K2 = pytorch3d_to_opencv(cam)
    assert torch.allclose(R2, R) and torch.allclose(t2, t) and torch.allclose(K2, K0())


@pytest.mark.skipif(importlib.util.find_spec("pytorch3d") is None, reason="PyTorch3D not installed")
def test_against_pytorch3d_itself():  # pragma: no cover - needs PyTorch3D
    from pytorch3d.renderer import PerspectiveCameras

    R = torch.eye(3, dtype=torch.float32)[None]
    t = torch.tensor([[0.01, -0.02, 0.7]])
    cam = opencv_to_pytorch3d(R, t, K0().float(), (240, 320))
    cams = PerspectiveCameras(in_ndc=False, **cam)
    x = points().float()
    got = cams.transform_points_screen(x)[..., :2]
    assert torch.allclose(got, project(x + t[:, None], K0().float()), atol=1e-3)


def test_default_K_field_of_view():
    K = default_K((480, 640), fov_degrees=60)
    edge = torch.tensor([[[np.tan(np.radians(30)), 0.0, 1.0]]], dtype=torch.float32)
    assert torch.allclose(project(edge, K)[0, 0, 0], torch.tensor(639.5), atol=1e-3)
