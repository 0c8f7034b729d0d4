"""Temporal smoothing of a hand's parameters: the One-Euro filter (Casiez et al., CHI 2012).

A low-pass filter whose cut-off rises with speed: a still hand is smoothed hard (no jitter),
a moving one lightly (little lag). Causal, one frame of state, so it runs live. Rotations
are filtered as unit quaternions kept in one hemisphere, then renormalised.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    """Smoothing factor of a first-order low-pass at ``cutoff`` Hz for a step of ``dt`` s."""
    tau = 1.0 / (2 * math.pi * np.asarray(cutoff))
    return 1.0 / (1.0 + tau / dt)


@dataclass
class OneEuro:
    """One-Euro filter over an array of any shape, element-wise.

    Attributes:
        min_cutoff: Hz, the cut-off at rest (lower: smoother when still).
        beta: s per unit of the signal, how fast the cut-off rises with speed.
        d_cutoff: Hz, cut-off of the speed estimate.
    """

    min_cutoff: float = 1.0
    beta: float = 0.0
    d_cutoff: float = 1.0

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None

    def __call__(self, x: np.ndarray, dt: float) -> np.ndarray:
        """Filtered value of the new sample ``x`` taken ``dt`` seconds after the previous."""
        x = np.asarray(x, dtype=np.float64)
        if self._x is None:
            self._x, self._dx = x.copy(), np.zeros_like(x)
            return x.copy()
        dx = (x - self._x) / dt
        a_d = _alpha(self.d_cutoff, dt)
        self._dx = a_d * dx + (1 - a_d) * self._dx
        a = _alpha(self.min_cutoff + self.beta * np.abs(self._dx), dt)
        self._x = a * x + (1 - a) * self._x
        return self._x.copy()


def rotvec_to_quat_near(rotvec: np.ndarray, ref: np.ndarray | None) -> np.ndarray:
    """Axis-angle (3,) -> unit quaternion (4,) (x, y, z, w) on ``ref``'s side (q and -q are
    the same rotation; a filter must not average across the two)."""
    q = Rotation.from_rotvec(rotvec).as_quat()
    return -q if ref is not None and float(q @ ref) < 0 else q


@dataclass
class SmoothingConfig:
    """One-Euro settings per kind of parameter (units: rad for angles, m for translation).

    Chosen on rendered OpenHand clips (``tests/test_video.py``'s generator), not on real data.
    """

    enabled: bool = True
    min_cutoff: float = 1.5
    beta_angles: float = 0.5  # s/rad
    beta_translation: float = 20.0  # s/m
    d_cutoff: float = 1.0


class PoseSmoother:
    """Smooths one hand track's global rotation, translation and pose parameters."""

    def __init__(self, cfg: SmoothingConfig) -> None:
        self.cfg = cfg
        self.rot = OneEuro(cfg.min_cutoff, cfg.beta_angles, cfg.d_cutoff)
        self.pose = OneEuro(cfg.min_cutoff, cfg.beta_angles, cfg.d_cutoff)
        self.transl = OneEuro(cfg.min_cutoff, cfg.beta_translation, cfg.d_cutoff)
        self._q: np.ndarray | None = None

    def __call__(
        self, global_orient: np.ndarray, pose: np.ndarray, transl: np.ndarray, dt: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(3,) axis-angle, (...) pose parameters, (3,) metres -> the same, smoothed."""
        q = rotvec_to_quat_near(global_orient, self._q)
        qs = self.rot(q, dt)
        qs /= np.linalg.norm(qs)
        self._q = qs
        go = Rotation.from_quat(qs).as_rotvec()
        return go, self.pose(pose, dt), self.transl(transl, dt)
