"""``bench/bench_twohands.py``'s reference: a hand's true joints placed on its 2D keypoints
by their translation alone. References: keypoints projected from a known placement (exact),
the linear least squares of a flat hand facing the camera under noise (closed form), and a
rendered scene's own detections without noise."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from monohand.render.camera import project


@pytest.fixture(scope="module")
def bench():
    path = Path(__file__).parents[1] / "bench" / "bench_twohands.py"
    spec = importlib.util.spec_from_file_location("bench_twohands", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _project(points: np.ndarray, K: np.ndarray) -> np.ndarray:
    return project(torch.as_tensor(points)[None], torch.as_tensor(K)[None])[0].numpy()


def test_placement_of_exact_keypoints_is_found(bench):
    rng = np.random.default_rng(0)
    K = np.array([[500.0, 0, 128], [0, 500, 128], [0, 0, 1]])
    shape = rng.normal(0, 0.03, (21, 3))  # a hand-sized cloud
    truth = np.array([0.04, -0.02, 0.55])
    joints = shape - shape.mean(0) + truth
    # Given placed 30 % further away (the solver starts at the given centroid): same keypoints.
    far = joints - truth + truth * 1.3
    got = bench.place_true_joints(far, K, _project(joints, K))
    np.testing.assert_allclose(got, truth, atol=1e-6)


def test_noisy_flat_hand_matches_linear_least_squares(bench):
    # A flat hand facing the camera (every point at depth tz): its pixels are d = s X + a with
    # s = f / tz and a = f (tx, ty) / tz, linear in (s, a), so plain least squares in pixels
    # has a closed form: a = mean(d), s = sum(X . d) / sum(|X|^2) for centred X.
    rng = np.random.default_rng(1)
    f, c = 600.0, np.array([160.0, 120.0])
    K = np.array([[f, 0, c[0]], [0, f, c[1]], [0, 0, 1]])
    X = rng.uniform(-0.06, 0.06, (21, 2))
    X -= X.mean(0)
    t = np.array([0.03, 0.01, 0.45])
    joints = np.c_[X, np.zeros(21)] + t
    kp = _project(joints, K) + rng.normal(0, 2.0, (21, 2))
    d = kp - c
    s = (X * d).sum() / (X**2).sum()
    a = d.mean(0)
    want = np.r_[a / s, f / s]
    got = bench.place_true_joints(joints, K, kp)
    np.testing.assert_allclose(got, want, atol=1e-7)
    assert abs(got[2] - t[2]) > 1e-4  # the noise moved it: the test compares a real solve


def test_scene_without_noise_has_no_error(bench):
    from monohand.data.twohand_scenes import simulated_detections, two_hand_scene
    from monohand.models.registry import load_models

    scene = two_hand_scene(load_models("openhand"), 2031)
    dets = simulated_detections(scene, np.random.default_rng(0), 0.0, 0.0)
    assert bench.relative_depth_error(scene, dets) < 1e-6
    # and the right and left hands are not swapped: swapped, the error is the pair's offset
    swapped = [dets[1], dets[0]]
    assert bench.relative_depth_error(scene, swapped) > 1e-3
