"""The v2 style of the synthetic renders: what photos have and v1's renders lack.

A forearm (an open elliptic tube continuing from the wrist out of the frame, rasterised with
the hand), several coloured lights with Blinn-Phong highlights, and the camera's effects
(white balance, exposure, defocus or motion blur, sensor noise). Pure functions of their
inputs; ``v2_params`` draws one sample's settings from its own generator, so that a v1
sample stays the same in both styles. ``data.synthetic`` renders and writes the samples.
"""

from __future__ import annotations

import numpy as np
import torch

ARM_RINGS, ARM_SEGMENTS = 6, 16


def arm_faces(rings: int = ARM_RINGS, segments: int = ARM_SEGMENTS) -> np.ndarray:
    """(2 (rings - 1) segments, 3) faces of an open tube of ``rings`` rings, outward."""
    r, k = np.meshgrid(np.arange(rings - 1), np.arange(segments), indexing="ij")
    a, b = r * segments + k, r * segments + (k + 1) % segments
    c, d = a + segments, b + segments
    return np.concatenate([np.stack([a, b, c], -1), np.stack([b, d, c], -1)]).reshape(-1, 3)


def arm_vertices(joints: torch.Tensor, bend: torch.Tensor, length: float = 0.35,
                 rings: int = ARM_RINGS, segments: int = ARM_SEGMENTS) -> torch.Tensor:  # fmt: skip
    """(B, rings * segments, 3) a forearm: an elliptic tube from just inside the wrist away
    from the middle knuckle (turned by ``bend`` (B, 3), axis-angle), as wide as the wrist
    (0.42 of the index-to-little knuckle span, 0.65 of that deep), widening by 25 %.

    Args:
        joints: (B, 21, 3) camera frame, metres, FreiHAND order.
    """
    from ..models.lbs import batch_rodrigues

    wrist = joints[:, 0]
    d = torch.nn.functional.normalize(wrist - joints[:, 9], dim=-1)
    d = (batch_rodrigues(bend) @ d[..., None])[..., 0]
    span = joints[:, 5] - joints[:, 17]
    a = span - (span * d).sum(-1, keepdim=True) * d
    width = a.norm(dim=-1, keepdim=True)
    a = a / width.clamp_min(1e-9)
    b = torch.linalg.cross(d, a, dim=-1)
    t = torch.linspace(0.0, 1.0, rings, dtype=joints.dtype)
    phi = torch.linspace(0.0, 2 * np.pi, segments + 1, dtype=joints.dtype)[:-1]
    scale = (1 + 0.25 * t)[:, None]  # (R, 1)
    ra, rb = 0.42 * width[:, None], 0.65 * 0.42 * width[:, None]  # (B, 1, 1)
    # The handedness of (d, a, b) fixes the winding: keep the faces' normals outward.
    ring_a = (ra * scale * torch.cos(phi))[..., None] * a[:, None, None]
    ring_b = (rb * scale * torch.sin(phi))[..., None] * b[:, None, None]
    axis = (wrist[:, None] + (length * t - 0.015)[None, :, None] * d[:, None])[:, :, None]
    return (axis + ring_a + ring_b).reshape(len(joints), rings * segments, 3)


def shade_v2(albedo: torch.Tensor, normals: torch.Tensor, lights: dict) -> torch.Tensor:
    """Ambient + up to three directional lights (Lambert) + Blinn-Phong highlights.

    Args:
        albedo, normals: (B, H, W, 3); lights: ``ambient`` (B, 3), ``dirs`` (B, L, 3) unit,
            towards the lights, ``colours`` (B, L, 3) (zero for unused lights), ``specular``
            (B,), ``shininess`` (B,).
    """
    view = torch.tensor([0.0, 0.0, -1.0], dtype=normals.dtype)  # towards the camera
    cos = torch.relu(torch.einsum("bhwc,blc->bhwl", normals, lights["dirs"]))
    diffuse = torch.einsum("bhwl,blc->bhwc", cos, lights["colours"])
    half = torch.nn.functional.normalize(lights["dirs"] + view, dim=-1)
    nh = torch.relu(torch.einsum("bhwc,blc->bhwl", normals, half))
    spec = (nh ** lights["shininess"][:, None, None, None]) * (cos > 0)
    highlight = torch.einsum("bhwl,blc->bhwc", spec, lights["colours"])
    ambient = lights["ambient"][:, None, None]
    return albedo * (ambient + diffuse) + lights["specular"][:, None, None, None] * highlight


def v2_params(rng: np.random.Generator) -> dict:
    """Everything random about a v2 sample beyond v1's (its own generator)."""
    n = int(rng.integers(1, 4))
    dirs = rng.normal(size=(3, 3)) + [0.0, -0.4, -1.2]  # mostly from the camera's side
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    warm = rng.uniform(-0.15, 0.15, size=(3, 1)) * [1.0, 0.0, -1.0]
    colours = (rng.uniform(0.25, 0.8, size=(3, 1)) * (1 + warm)) * (np.arange(3) < n)[:, None]
    sleeve = rng.random() < 0.4
    return {
        "bend": rng.normal(scale=0.25, size=3),
        "arm_colour": rng.uniform(0.05, 0.95, size=3) if sleeve else None,
        "ambient": rng.uniform(0.15, 0.5) * (1 + rng.uniform(-0.1, 0.1, size=3)),
        "dirs": dirs,
        "colours": colours,
        "specular": rng.uniform(0.0, 0.3),
        "shininess": rng.uniform(4.0, 40.0),
        "cast": 1 + rng.uniform(-0.12, 0.12, size=3),
        "gamma": float(np.exp(rng.normal(0.0, 0.15))),
        "blur": rng.choice(["none", "defocus", "motion"], p=[0.55, 0.3, 0.15]),
        "blur_size": rng.uniform(0.4, 1.6),
        "blur_angle": rng.uniform(0, np.pi),
        "noise": rng.uniform(0.0, 0.035),
        "jpeg": int(rng.integers(35, 96)),
    }


def camera_effects(img: np.ndarray, p: dict, rng: np.random.Generator) -> np.ndarray:
    """(H, W, 3) float image in [0, 1] -> the same after white balance, exposure, blur and
    noise as drawn in ``p`` (``v2_params``)."""
    import cv2

    img = np.clip(img * p["cast"], 0, 1) ** p["gamma"]
    if p["blur"] == "defocus":
        img = cv2.GaussianBlur(img, (0, 0), p["blur_size"])
    elif p["blur"] == "motion":
        k = max(int(round(4 * p["blur_size"])) | 1, 3)
        kernel = np.zeros((k, k), np.float32)
        c, dx, dy = k // 2, np.cos(p["blur_angle"]), np.sin(p["blur_angle"])
        for t in np.linspace(-c, c, 2 * k):
            kernel[int(round(c + t * dy)), int(round(c + t * dx))] = 1.0
        img = cv2.filter2D(img, -1, kernel / kernel.sum())
    noise = rng.normal(0.0, 1.0, img.shape).astype(np.float32)
    return np.clip(img + p["noise"] * np.sqrt(np.clip(img, 0.02, 1)) * noise, 0, 1)
