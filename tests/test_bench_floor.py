"""``bench/bench_twohands.py``'s floor: a hand's true joints placed on its 2D keypoints by
their translation alone. References: keypoints projected from a known placement (exact), and
the closed form of a flat hand facing the camera (its depth from its image size)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="module")
def keypoints_floor():
    path = Path(__file__).parents[1] / "bench" / "bench_twohands.py"
    spec = importlib.util.spec_from_file_location("bench_twohands", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.keypoints_floor


def _project(points: np.ndarray, K: np.ndarray) -> np.ndarray:
    p = points @ K.T
    return p[:, :2] / p[:, 2:]


def test_floor_finds_the_placement_of_exact_keypoints(keypoints_floor):
    rng = np.random.default_rng(0)
    K = np.array([[500.0, 0, 128], [0, 500, 128], [0, 0, 1]])
    shape = rng.normal(0, 0.03, (21, 3))  # a hand-sized cloud, centred below
    truth = np.array([0.04, -0.02, 0.55])
    joints = shape - shape.mean(0) + truth
    # A start far from the truth (the function starts at the joints' own centroid): placed
    # 30 % further away, the same keypoints.
    far = joints - truth + truth * 1.3
    np.testing.assert_allclose(keypoints_floor(far, K, _project(joints, K)), truth, atol=1e-6)


def test_floor_reads_depth_from_image_size(keypoints_floor):
    # A flat square facing the camera, centred on the optical axis: keypoints 10 % larger
    # than its projection at depth z put it at z / 1.1 exactly.
    K = np.array([[400.0, 0, 0], [0, 400, 0], [0, 0, 1]])
    xy = np.stack(np.meshgrid(np.linspace(-0.04, 0.04, 5), np.linspace(-0.04, 0.04, 5)), -1)
    joints = np.c_[xy.reshape(-1, 2)[:21], np.full(21, 0.5)]
    joints[:, :2] -= joints[:, :2].mean(0)
    kp = _project(joints, K) * 1.1
    np.testing.assert_allclose(keypoints_floor(joints, K, kp), [0, 0, 0.5 / 1.1], atol=1e-7)
