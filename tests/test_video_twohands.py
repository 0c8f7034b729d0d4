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
    refined = []  # per frame: each hand's own fit and its fit as refined with its pair's
    real_refine = S.refine_pairs

    steps = []  # per frame: the pair refinement's steps

    def spy_refine(fits, pairs, cfg):
        out = real_refine(fits, pairs, cfg)
        refined.append({n: (fits[n][2], out[n][2]) for n in fits})
        steps.append(cfg.together_cfg.iters)
        return out

    monkeypatch.setattr(S, "refine_pairs", spy_refine)
    errors = {}
    base = rec.cfg
    for together in (False, True):
        monkeypatch.setattr(rec, "cfg", replace(base, together=together))
        seq = S.SequenceReconstructor(rec, S.SequenceConfig(), 30.0)
        calls.clear()
        refined.clear()
        steps.clear()
        errors[together] = []
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
            for n, (cfg, init) in enumerate(calls[2 * k : 2 * k + 2]):
                assert cfg.hand_size == base.together_cfg.hand_size and not init.prior
                own, pair = refined[k][n]
                assert (own.transl - pair.transl).norm() > 1e-4  # the refinement moved it
                if k == 0:
                    assert init.pnp_start and cfg.iters == base.fit.iters
                else:  # from the last frame's fit as refined, not its own
                    last = refined[k - 1][n][1]
                    assert torch.equal(init.transl, last.transl)
                    assert torch.equal(init.global_orient, last.global_orient)
                    assert cfg == replace(seq.cfg.warm_fit, hand_size=cfg.hand_size)
        if together:  # a photo's steps on the cold frame, fewer from the refined pair on
            assert steps == [base.together_cfg.iters] + [seq.cfg.warm_pair_iters] * 3
    assert np.mean(errors[True]) < min(0.03, np.mean(errors[False])), errors


def test_a_videos_touching_frames_are_counted_and_said(rec, monkeypatch, tmp_path):
    """``write_sequence`` lists the frames whose hands were refined together (the command
    says how many, with the way out) and those whose pair still crossed by over 5 mm."""
    from monohand.notes import video_notes
    from monohand.video.sequence import SequenceConfig, SequenceReconstructor, write_sequence

    models = rec.models
    frames = moving_pair(two_hand_scene(models, 2026), models, 3)
    rng = np.random.default_rng(5)
    dets = [simulated_detections(s, rng) for s in frames]
    seq = SequenceReconstructor(rec, SequenceConfig(), 30.0)
    # the frames' detections, as if MediaPipe had found both hands (it rarely does in renders)
    monkeypatch.setattr(rec, "detect", lambda image, windows=None: dets[seq.frame])
    summary = write_sequence(seq, [render_scene(s, models) for s in frames], frames[0].K,
                             tmp_path, "pair")  # fmt: skip
    assert summary.together == [0, 1, 2] and summary.crossing == []
    notes = video_notes(summary.frames, summary.together, summary.crossing)
    assert notes == [("note", "in 3 of 3 frames hands were refined together as touching "
                              "(frames 0-2; one by one instead: --one-by-one, or "
                              "ReconstructConfig(together=False))")]  # fmt: skip
    (kind, text), = video_notes(40, [], [3, 4, 5, 9] + list(range(11, 40, 2)))
    assert kind == "warning" and text.startswith("in 19 frame(s) a touching pair's hands still "
                                                 "enter each other by over 5 mm (frames 3-5, "
                                                 "9, 11, 13, 15, 17 and 11 more runs;")


def test_a_pair_that_first_touches_gets_a_photos_steps(rec, monkeypatch):
    """Fewer refinement steps (``warm_pair_iters``) only for a pair refined together in the
    last frame: two warm hands that touch for the first time start from their own fits,
    and get a photo's steps."""
    import monohand.video.sequence as S

    models = rec.models
    frames = moving_pair(two_hand_scene(models, 2026), models, 3)
    rng = np.random.default_rng(7)
    dets = [simulated_detections(s, rng) for s in frames]
    seq = S.SequenceReconstructor(rec, S.SequenceConfig(), 30.0)
    real_pairs, real_refine = S.touching_hand_pairs, S.refine_pairs
    # frame 0: the hands read as apart (each fitted alone), touching from frame 1 on
    monkeypatch.setattr(S, "touching_hand_pairs", lambda d, m, c: [] if seq.frame == 0
                        else real_pairs(d, m, c))  # fmt: skip
    steps = []

    def spy(fits, pairs, cfg):
        steps.append((len(pairs), cfg.together_cfg.iters))
        return real_refine(fits, pairs, cfg)

    monkeypatch.setattr(S, "refine_pairs", spy)
    warm = [seq.step(render_scene(s, models), s.K, d).warm for s, d in zip(frames, dets,
                                                                          strict=True)]
    assert warm == [[False, False], [True, True], [True, True]]
    full = rec.cfg.together_cfg.iters
    assert [it for n, it in steps if n] == [full, seq.cfg.warm_pair_iters]


def test_the_command_says_which_frames_were_refined_together(tmp_path, monkeypatch):
    """``monohand reconstruct VIDEO``: the frames whose hands were refined together are
    named with the way out, and frames whose pair still crosses are warned of (the
    sequence's own counts, ``SequenceSummary.together`` / ``crossing``)."""
    from typer.testing import CliRunner

    import monohand.video.sequence as S
    from monohand.cli import app
    from monohand.video.frames import write_video

    video = write_video(tmp_path / "pair.mp4", [np.full((64, 96, 3), 90, np.uint8)] * 3, 10)

    def fake(seq, frames, K, out, stem, *a, **k):
        n = len(list(frames))
        return S.SequenceSummary(n, n, 1.0, [], together=list(range(n)), crossing=[2])

    monkeypatch.setattr(S, "write_sequence", fake)
    res = CliRunner().invoke(app, ["reconstruct", str(video), "--method", "fit", "--out",
                                   str(tmp_path / "out")])  # fmt: skip
    text = " ".join(res.output.split())
    assert res.exit_code == 0, res.output
    assert ("in 3 of 3 frames hands were refined together as touching (frames 0-2; one by one "
            "instead: --one-by-one, or ReconstructConfig(together=False))") in text, text
    assert "in 1 frame(s) a touching pair's hands still enter each other by over 5 mm " \
        "(frame 2;" in text, text


def test_a_track_whose_side_turns_is_said_with_its_runs(rec, monkeypatch, tmp_path):
    """A hand labelled right (a coin flip, 0.6) then left (0.9) three times: its track's vote
    turns at frame 1; ``write_sequence`` records the runs and the command warns of them,
    naming the frames where each side began."""
    from monohand.data.detection import HandDetection
    from monohand.notes import video_notes
    from monohand.video.sequence import SequenceConfig, SequenceReconstructor, write_sequence

    models = rec.models
    scene = two_hand_scene(models, 2026)
    image = render_scene(scene, models)
    (right, _) = simulated_detections(scene, np.random.default_rng(1))
    labels = [("right", 0.6), ("left", 0.9), ("left", 0.9), ("left", 0.9)]
    seq = SequenceReconstructor(rec, SequenceConfig(), 30.0)
    monkeypatch.setattr(rec, "detect", lambda image, windows=None: [HandDetection(
        right.keypoints, right.confidence, labels[seq.frame][1], labels[seq.frame][0],
        right.world)])  # fmt: skip
    summary = write_sequence(seq, [image] * 4, scene.K, tmp_path, "flip")
    assert summary.side_runs == {0: [(0, "right"), (1, "left")]}
    (kind, text), = video_notes(summary.frames, [], [], summary.side_runs)
    assert kind == "warning" and text.startswith("track 0's side turned 1 time(s) (right from "
                                                 "frame 0, left from frame 1)")  # fmt: skip
    # a hand whose label holds: nothing said
    assert video_notes(4, [], [], {}) == []
