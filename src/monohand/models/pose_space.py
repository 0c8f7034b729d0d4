"""Anatomical pose space of a 16-joint hand: joint frames, limits, and a plausible-pose sampler.

Each of the 15 finger joints has an anatomical frame F = [t, a, f] (columns, template
coordinates): ``t`` the twist axis (along the bone, pointing back to the palm), ``a`` the
abduction axis (dorsal, out of the back of the finger) and ``f`` = t x a the flexion axis, so
that a positive flexion curls the bone towards the palm. Anatomical angles (flexion,
abduction, twist) give the joint's local rotation

    R = F Rz(flexion) Ry(abduction) Rx(twist) F^T,

whose axis-angle is what the hand-model layers take as ``hand_pose``. Limits are per joint and
angle, radians, and are used by the priors and the synthetic-data generator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .lbs import batch_rodrigues

ANGLE_NAMES = ("flexion", "abduction", "twist")
# Finger joints in MANO's native order after the wrist: index, middle, little, ring, thumb.
_FINGER_OF_JOINT = ["index"] * 3 + ["middle"] * 3 + ["little"] * 3 + ["ring"] * 3 + ["thumb"] * 3


@dataclass
class PoseSpace:
    """Anatomical frames and limits of the 15 finger joints (MANO's native order).

    Attributes:
        frames: (15, 3, 3) columns [twist, abduction, flexion] axes in template coordinates.
        limits: (15, 3, 2) [min, max] of (flexion, abduction, twist), radians.
        relaxed: (15, 3) anatomical angles of the relaxed pose, radians.
    """

    frames: np.ndarray
    limits: np.ndarray
    relaxed: np.ndarray

    def to_axis_angle(self, angles: Tensor) -> Tensor:
        """(B, 15, 3) anatomical angles (flexion, abduction, twist) -> (B, 45) axis-angle.

        In closed form, without building a matrix: the local rotation Rz Ry Rx is the
        quaternion product qz qy qx of the three half-angle quaternions (8 products of
        cosines and sines), its axis-angle 2 atan2(|v|, w) v / |v| (w >= 0: angle <= pi),
        and conjugating by the joint's frame F maps that axis to det(F) F axis. A fit calls
        this every step; it is a fifth of the operations of matrices + matrix logarithm.
        """
        f, to_q = self._constants(angles.dtype, angles.device)
        half = 0.5 * angles
        cs = torch.stack([half.cos(), half.sin()], -1)  # (B, 15, 3 [fl, ab, tw], 2 [c, s])
        z, y, x = cs.unbind(-2)
        prod = z[..., :, None, None] * y[..., None, :, None] * x[..., None, None, :]
        q = prod.flatten(-3) @ to_q  # (B, 15, 4) [w, x, y, z]
        q = torch.where(q[..., :1] < 0, -q, q)
        v = q[..., 1:]
        # sqrt(|v|^2 + eps^4): never 0, so the gradient at the identity is finite
        sin_half = ((v * v).sum(-1, keepdim=True) + torch.finfo(q.dtype).eps ** 4).sqrt()
        local = v * (2.0 * torch.atan2(sin_half, q[..., :1]) / sin_half)
        return (local[..., None, :] @ f)[..., 0, :].flatten(-2)

    def _cached(self, name: str, dtype: torch.dtype, device: torch.device, make):
        """``make(dtype, device)``, made once per dtype and device, outside inference mode
        (the cached tensors must serve autograd too)."""
        cache = self.__dict__.setdefault("_cache", {})
        key = (name, dtype, device)
        if key not in cache:
            with torch.inference_mode(False):
                cache[key] = make(dtype, device)
        return cache[key]

    def _constants(self, dtype: torch.dtype, device: torch.device) -> tuple[Tensor, Tensor]:
        """det(F) F^T per joint (15, 3, 3) and the product-to-quaternion map (8, 4)."""

        def make(dtype, device):
            frames = np.asarray(self.frames, dtype=np.float64)
            signed = np.linalg.det(frames)[:, None, None] * frames.transpose(0, 2, 1)
            # prod index 4 i + 2 j + k = z_i y_j x_k, 0 = cos, 1 = sin (ZYX quaternion product)
            to_q = np.zeros((8, 4))
            for idx, col, sign in ((0, 0, 1), (7, 0, 1), (1, 1, 1), (6, 1, -1),
                                   (2, 2, 1), (5, 2, 1), (4, 3, 1), (3, 3, -1)):  # fmt: skip
                to_q[idx, col] = sign
            return tuple(torch.as_tensor(a, dtype=dtype, device=device) for a in (signed, to_q))

        return self._cached("axis_angle", dtype, device, make)

    def from_axis_angle(self, hand_pose: Tensor) -> Tensor:
        """(B, 45) axis-angle -> (B, 15, 3) anatomical angles (the inverse of ``to_axis_angle``
        for angles inside (-pi/2, pi/2) abduction)."""
        f = torch.as_tensor(self.frames, dtype=hand_pose.dtype, device=hand_pose.device)
        r = (
            f.transpose(-1, -2)
            @ batch_rodrigues(hand_pose.reshape(*hand_pose.shape[:-1], 15, 3))
            @ f
        )
        # r = Rz(fl) Ry(ab) Rx(tw): r[2,0] = -sin(ab), r[1,0] = sin(fl) cos(ab),
        # r[2,1] = cos(ab) sin(tw)
        ab = torch.asin(torch.clamp(-r[..., 2, 0], -1.0, 1.0))
        fl = torch.atan2(r[..., 1, 0], r[..., 0, 0])
        tw = torch.atan2(r[..., 2, 1], r[..., 2, 2])
        return torch.stack([fl, ab, tw], -1)

    def limit_violation(self, angles: Tensor) -> Tensor:
        """(B, 15, 3) angles -> (B, 15, 3) radians outside the limits (0 inside)."""
        lo, hi = self._limits(angles.dtype, angles.device)
        return torch.relu(lo - angles) + torch.relu(angles - hi)

    def _limits(self, dtype: torch.dtype, device: torch.device) -> tuple[Tensor, Tensor]:
        def make(dtype, device):
            lim = torch.as_tensor(self.limits, dtype=dtype, device=device)
            return lim[..., 0], lim[..., 1]

        return self._cached("limits", dtype, device, make)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Plausible hand poses as (n, 15, 3) anatomical angles, always inside the limits.

        Fingers curl together (one grasp level per hand plus per-finger deviation, and joints of
        a finger follow their finger's curl), spread varies per hand, twist stays small. A quarter
        of the samples are near the relaxed pose.
        """
        g = generator
        lo = torch.as_tensor(self.limits[..., 0], dtype=torch.float32)
        hi = torch.as_tensor(self.limits[..., 1], dtype=torch.float32)
        relaxed = torch.as_tensor(self.relaxed, dtype=torch.float32)
        grasp = torch.rand(n, 1, generator=g) ** 2.5  # favour open hands
        fingers = sorted(set(_FINGER_OF_JOINT))
        per_finger = (grasp + 0.25 * torch.randn(n, len(fingers), generator=g)).clamp(0, 1)
        idx = torch.tensor([fingers.index(f) for f in _FINGER_OF_JOINT])
        curl = (per_finger[:, idx] + 0.08 * torch.randn(n, 15, generator=g)).clamp(0, 1)
        flex_lo = torch.maximum(lo[:, 0], torch.minimum(relaxed[:, 0], hi[:, 0]) - 0.35)
        flexion = flex_lo + curl * (hi[:, 0] - flex_lo)
        spread = 0.5 * torch.randn(n, 1, generator=g) + 0.25 * torch.randn(n, 15, generator=g)
        abduction = relaxed[:, 1] + spread.clamp(-2, 2) * 0.5 * (hi[:, 1] - lo[:, 1]) / 2
        twist = relaxed[:, 2] + 0.3 * torch.randn(n, 15, generator=g) * (hi[:, 2] - lo[:, 2]) / 2
        angles = torch.stack([flexion, abduction, twist], -1)
        near = torch.rand(n, 1, 1, generator=g) < 0.25
        jitter = 0.1 * torch.randn(n, 15, 3, generator=g)
        angles = torch.where(near, relaxed + jitter, angles)
        return torch.maximum(torch.minimum(angles, hi), lo)
