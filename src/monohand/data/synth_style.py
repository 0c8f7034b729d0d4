"""The v2 and v3 styles of the synthetic renders: what photos have and v1's renders lack.

v2: a forearm (an open elliptic tube continuing from the wrist out of the frame, rasterised
with the hand), several coloured lights with Blinn-Phong highlights, and the camera's effects
(white balance, exposure, defocus or motion blur, sensor noise). v3 adds an object held in
front of the palm (a ball, a bottle or a phone: one superellipsoid mesh, rasterised with hand
and arm so that each hides the others where it is nearer) and the soft shadow that hand, arm
and object cast on the background behind them. Pure functions of their inputs;
``v2_params`` and ``v3_params`` draw one sample's settings from generators of their own, so
a v1 sample stays the same in every style and a v2 sample in v3. ``data.synthetic`` renders
and writes the samples.
"""

from __future__ import annotations

import numpy as np
import torch

ARM_RINGS, ARM_SEGMENTS = 6, 16
# The held object's latitude-longitude grid (poles included, so rings 0 and -1 are points).
OBJECT_RINGS, OBJECT_SEGMENTS = 12, 20


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


def object_faces(rings: int = OBJECT_RINGS, segments: int = OBJECT_SEGMENTS) -> np.ndarray:
    """(2 (rings - 1) segments, 3) faces of ``object_vertices``' closed grid, outward. The
    faces at the poles have two coincident corners: zero area, never rasterised."""
    return arm_faces(rings, segments)


def _signed_power(x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * x.abs().clamp_min(1e-12) ** e


def object_vertices(
    joints: torch.Tensor,
    params: list[dict | None],
    palmar: float,
    rings: int = OBJECT_RINGS,
    segments: int = OBJECT_SEGMENTS,
) -> torch.Tensor:
    """(B, rings * segments, 3) each sample's held object (``v3_params``' "object") in front
    of its palm, camera frame, metres; behind the camera (never rasterised) where None.

    The object is a superellipsoid (exponents 1, 1: an ellipsoid; small first exponent: flat
    caps, a cylinder; both small: a rounded box) with half-extents (a, b, c) along its axes
    (x, y, z), which are laid along the hand's finger direction (wrist to middle MCP), the
    palm's normal (``palmar`` cross(index MCP - wrist, little MCP - wrist), made orthogonal
    to the fingers) and the line across the knuckles (a cylinder's z across the palm, as a
    bottle is held; a box's thin y along the normal), turned about the normal by ``spin`` and
    lifted off the palm along the normal by its half-thickness b + ``lift``.

    Args:
        joints: (B, 21, 3) FreiHAND order, camera frame.
        params: per sample, the object's draws or None.
        palmar: +1 or -1, the side of cross(index MCP - wrist, little MCP - wrist) that the
            palm faces (``palmar_side``).
    """
    b = joints.shape[0]
    dt = joints.dtype
    eta = torch.linspace(-np.pi / 2, np.pi / 2, rings, dtype=dt)[:, None]
    omega = torch.linspace(0.0, 2 * np.pi, segments + 1, dtype=dt)[:-1][None]
    hidden = torch.tensor([0.0, 0.0, -1.0], dtype=dt)
    out = hidden.expand(b, rings * segments, 3).clone()
    wrist, knuckles = joints[:, 0], joints[:, [5, 9, 13, 17]]
    for k, p in enumerate(params):
        if p is None:
            continue
        e1, e2 = (torch.tensor(float(x), dtype=dt) for x in p["exponents"])
        a, bb, c = (float(x) for x in p["half"])
        ce, se = _signed_power(torch.cos(eta), e1), _signed_power(torch.sin(eta), e1)
        co, so = _signed_power(torch.cos(omega), e2), _signed_power(torch.sin(omega), e2)
        local = torch.stack([a * ce * co, bb * ce * so, (c * se).expand(-1, segments)], -1)
        fingers = torch.nn.functional.normalize(joints[k, 9] - wrist[k], dim=0)
        normal = palmar * torch.linalg.cross(joints[k, 5] - wrist[k], joints[k, 17] - wrist[k])
        normal = torch.nn.functional.normalize(normal - (normal @ fingers) * fingers, dim=0)
        across = torch.linalg.cross(normal, fingers)
        ang = torch.tensor(float(p["spin"]), dtype=dt)
        x_axis = torch.cos(ang) * fingers + torch.sin(ang) * across
        z_axis = torch.linalg.cross(x_axis, normal)
        axes = torch.stack([x_axis, normal, z_axis], 1)  # columns: the object's x, y, z
        centre = 0.5 * (wrist[k] + knuckles[k].mean(0)) + (bb + float(p["lift"])) * normal
        out[k] = (local.reshape(-1, 3) @ axes.T) + centre
    return out


def palmar_side(hand) -> float:
    """+1 or -1: which side of cross(index MCP - wrist, little MCP - wrist) a right hand's
    palm faces, from where the fingertips go when the model's joints flex."""
    angles = torch.as_tensor(hand.pose_space.relaxed, dtype=torch.float32)[None].clone()
    angles[..., 0] += 0.6  # more flexion: the tips curl towards the palm
    with torch.no_grad():
        j = hand(hand_pose=hand.pose_space.to_axis_angle(angles)).joints[0]
    n = torch.linalg.cross(j[5] - j[0], j[17] - j[0])
    centre = j[[0, 5, 9, 13, 17]].mean(0)
    return 1.0 if float(((j[[8, 12, 16, 20]] - centre) @ n).mean()) > 0 else -1.0


# The kinds of held object: superellipsoid exponents and half-extents (x along the fingers,
# y along the palm's normal, z across the palm), metres.
_OBJECTS = {
    "ball": lambda r: ((1.0, 1.0), (r.uniform(0.025, 0.05),) * 3),
    "bottle": lambda r: ((r.uniform(0.08, 0.25), 1.0),
                         (rad := r.uniform(0.015, 0.04), rad, r.uniform(0.04, 0.11))),
    "phone": lambda r: ((r.uniform(0.1, 0.3), r.uniform(0.1, 0.3)),
                        (r.uniform(0.035, 0.075), r.uniform(0.004, 0.012), r.uniform(0.02, 0.04))),
}  # fmt: skip


def v3_params(rng: np.random.Generator) -> dict:
    """What v3 adds to a v2 sample (its own generator): a held object (35 % of samples) and
    a shadow on the background (50 %)."""
    obj = None
    if rng.random() < 0.35:
        kind = str(rng.choice(list(_OBJECTS)))
        exponents, half = _OBJECTS[kind](rng)
        obj = {
            "kind": kind,
            "exponents": exponents,
            "half": half,
            "spin": rng.uniform(-0.6, 0.6) + (np.pi / 2) * rng.integers(2),
            "lift": rng.uniform(0.0, 0.02),
            "colour": rng.uniform(0.05, 0.95, size=3),
        }
    shadow = None
    if rng.random() < 0.5:
        shadow = {
            "shift": rng.uniform(0.03, 0.12),  # of the image size, away from the main light
            "blur": rng.uniform(0.01, 0.04),  # Gaussian sigma, of the image size
            "strength": rng.uniform(0.2, 0.6),
        }
    return {"object": obj, "shadow": shadow}


def drop_shadow(coverage: np.ndarray, light_dir: np.ndarray, p: dict) -> np.ndarray:
    """(H, W) the darkening factor in [1 - strength, 1] of a background just behind the
    scene: the coverage (H, W) in [0, 1] of everything rendered, moved away from the
    light (``light_dir`` (3,), camera frame, towards the light) and blurred."""
    import cv2

    h, w = coverage.shape
    d = -np.asarray(light_dir[:2], dtype=np.float64)
    d = d / max(np.linalg.norm(d), 1e-6) * p["shift"] * max(h, w)
    shift = np.float32([[1, 0, d[0]], [0, 1, d[1]]])
    moved = cv2.warpAffine(coverage.astype(np.float32), shift, (w, h))
    soft = cv2.GaussianBlur(moved, (0, 0), max(p["blur"] * max(h, w), 0.5))
    return 1.0 - p["strength"] * np.clip(soft, 0.0, 1.0)
