"""Touching hands in a video: the rendered moving pair against an independent rigid motion,
and the pair refined together in every frame (as in a photo) against each hand fitted alone,
on simulated detections given to ``SequenceReconstructor.step``."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from monohand.data.twohand_scenes import (
    moving_pair,
    render_scene,
    simulated_detections,
    two_hand_scene,
)
from monohand.evaluate.metrics import penetration_depth
from monohand.reconstruct import ReconstructConfig, Reconstructor


@pytest.fixture(scope="module")
def rec():
    with Reconstructor(ReconstructConfig()) as r:
        yield r


def test_moving_pair_is_the_scene_turned_and_shifted_as_one_body(rec):
    models = rec.models
    scene = two_hand_scene(models, 2026)
    frames = moving_pair(scene, models, 8, fps=30.0, turn_deg=25.0, drift=0.02)
    j0 = scene.joints.double().numpy()
    v0 = scene.vertices.double().numpy()
    centre = j0.reshape(-1, 3).mean(0)
    for k, f in enumerate(frames):
        s = np.sin(np.pi * k / 30.0)
        turn = Rotation.from_euler("y", 25.0 * s, degrees=True)
        shift = np.array([0.02, 0.01, 0.0]) * s
        for ref, got in ((j0, f.joints), (v0, f.vertices)):
            want = turn.apply((ref - centre).reshape(-1, 3)).reshape(ref.shape) + centre + shift
            np.testing.assert_allclose(got.double().numpy(), want, atol=2e-5)
        assert np.array_equal(f.K, scene.K) and torch.equal(f.betas, scene.betas)
    assert abs(float(frames[7].joints[:, :, 2].mean(1).diff()) -
               float(frames[0].joints[:, :, 2].mean(1).diff())) > 0.01  # the depth order turns


def test_given_detections_are_used_instead_of_the_detector(rec, monkeypatch):
    from monohand.video.sequence import SequenceConfig, SequenceReconstructor

    scene = two_hand_scene(rec.models, 2026)
    dets = simulated_detections(scene, np.random.default_rng(0))

    def refuse(*a, **k):
        raise AssertionError("the detector ran although detections were given")

    monkeypatch.setattr(rec, "detect", refuse)
    monkeypatch.setattr(rec, "cfg", replace(rec.cfg, max_hands=1))  # (one hand: quick)
    seq = SequenceReconstructor(rec, SequenceConfig(), 30.0)
    r = seq.step(render_scene(scene, rec.models), scene.K, dets)
    assert [h.side for h in r.hands] == ["right"]  # the first, as many as max_hands
    np.testing.assert_array_equal(r.hands[0].detection.keypoints, dets[0].keypoints)


def _depth_error(hands, scene) -> float:
    j = np.stack([h.joints3d for h in hands]).astype(np.float64)
    t = scene.joints.double().numpy()
    return abs(j[0, :, 2].mean() - j[1, :, 2].mean() - (t[0, :, 2].mean() - t[1, :, 2].mean()))


def test_touching_hands_in_a_video_are_refined_together_in_every_frame(rec, monkeypatch):
    """Four frames of a moving palms-together pair whose hands, fitted alone, end far apart in
    depth (a scene of ``tests/test_twohands.py``'s): refined together, their relative depth is
    nearer the truth than alone and under 3 cm on average, neither hand enters the other by
    5 mm; a cold frame fits each hand by the photo's touching recipe (the network's start
    one of PnP's, not a prior; the pair's hand size), a warm frame starts from the hand's
    last fit as refined with its pair's."""
    import monohand.video.sequence as S

    models = rec.models
    frames = moving_pair(two_hand_scene(models, 2029), models, 4)
    rng = np.random.default_rng(3)
    dets = [simulated_detections(s, rng) for s in frames]
    images = [render_scene(s, models) for s in frames]
    faces = [models[s].faces.numpy() for s in ("right", "left")]
    calls = []
    real_fit = S.fit_hands

    def spy(model, inputs, cfg, init=None):
        calls.append((cfg, init))
        return real_fit(model, inputs, cfg, init)

    monkeypatch.setattr(S, "fit_hands", spy)
    errors = {}
    base = rec.cfg
    for together in (False, True):
        monkeypatch.setattr(rec, "cfg", replace(base, together=together))
        seq = S.SequenceReconstructor(rec, S.SequenceConfig(), 30.0)
        calls.clear()
        errors[together] = []
        last = {}  # per track: its last (refined) fit's pose parameters
        for k, (image, scene, d) in enumerate(zip(images, frames, dets, strict=True)):
            r = seq.step(image, scene.K, d)
            assert [h.side for h in r.hands] == ["right", "left"]
            assert r.warm == [k > 0] * 2
            errors[together].append(_depth_error(r.hands, scene))
            if not together:
                continue
            v = [h.vertices[None].astype(np.float64) for h in r.hands]
            assert penetration_depth(v[0], faces[0], v[1], faces[1])[0] < 0.005
            assert all("contact" in h.fit and "penetration" in h.fit for h in r.hands)
            for (cfg, init), t in zip(calls[2 * k : 2 * k + 2], seq.tracker.tracks, strict=True):
                assert cfg.hand_size == base.together_cfg.hand_size and not init.prior
                if k == 0:
                    assert init.pnp_start and cfg.iters == base.fit.iters
                else:
                    assert torch.equal(init.pose_params, last[t.id])
                    assert cfg == replace(seq.cfg.warm_fit, hand_size=cfg.hand_size)
            last = {t.id: t.state["fit"].pose_params for t in seq.tracker.tracks}
    assert np.mean(errors[True]) < min(0.03, np.mean(errors[False])), errors
