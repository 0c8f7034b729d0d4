"""Video: the One-Euro filter, tracks, the MP4 writer, warm-started fits and a rendered clip
reconstructed end to end (per-frame error and jitter within bounds; smoothing lowers jitter)."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation
from typer.testing import CliRunner

from monohand.cli import app
from monohand.data.detection import HandDetection
from monohand.evaluate.align import procrustes_align
from monohand.fit import FitConfig, FitInit, FitInputs, fit_hands
from monohand.models.openhand import OpenHand
from monohand.render.camera import project
from monohand.video.clip import jitter_mm, render_clip
from monohand.video.frames import (
    ReadableFrames,
    VideoWriter,
    read_frames,
    video_fps,
    write_video,
)
from monohand.video.smooth import OneEuro, PoseSmoother, SmoothingConfig, rotvec_to_quat_near
from monohand.video.track import HandTracker


def test_one_euro_matches_a_first_order_low_pass_when_beta_is_zero():
    rng = np.random.default_rng(0)
    xs = rng.normal(size=(50, 4))
    dt, fc = 1 / 30, 2.0
    f = OneEuro(min_cutoff=fc, beta=0.0)
    a = 1 / (1 + 1 / (2 * math.pi * fc * dt))  # closed form of the smoothing factor
    ref = xs[0].copy()
    for i, x in enumerate(xs):
        y = f(x, dt)
        if i:
            ref = a * x + (1 - a) * ref
        np.testing.assert_allclose(y, ref, rtol=1e-12)


def test_one_euro_follows_fast_motion_better_with_beta():
    t = np.arange(60) / 30
    x = np.sin(2 * np.pi * 2 * t)  # 2 Hz motion, no noise
    lag = {}
    for beta in (0.0, 5.0):
        f = OneEuro(min_cutoff=0.5, beta=beta)
        y = np.array([f(np.array([v]), 1 / 30)[0] for v in x])
        lag[beta] = np.abs(y - x).mean()
    assert lag[5.0] < 0.5 * lag[0.0]
    # A constant input is left alone.
    f = OneEuro(1.0, 1.0)
    assert all(f(np.full(3, 2.5), 0.1).tolist() == [2.5] * 3 for _ in range(5))


def test_quaternion_stays_in_one_hemisphere():
    near_pi = np.array([0, 0, math.pi - 1e-3])
    q0 = rotvec_to_quat_near(near_pi, None)
    q1 = rotvec_to_quat_near(np.array([0, 0, -(math.pi - 1e-3)]), q0)  # almost the same turn
    assert q0 @ q1 > 0.99
    sm = PoseSmoother(SmoothingConfig())
    for rv in (near_pi, -near_pi, near_pi):
        go, _, _ = sm(rv, np.zeros(3), np.zeros(3), 1 / 30)
    # The smoothed rotation stays near the (constant) rotation, not halfway round.
    assert Rotation.from_rotvec(go).inv() * Rotation.from_rotvec(near_pi)
    assert (Rotation.from_rotvec(go).inv() * Rotation.from_rotvec(near_pi)).magnitude() < 0.01


def _det(centre, side, size=50.0):
    kp = np.asarray(centre, float) + np.linspace(-size / 2, size / 2, 21)[:, None] * [0, 1]
    kp[9] = kp[0] + [0, size]
    return HandDetection(kp, np.ones(21), 0.9, side)


def test_tracker_keeps_sides_apart_and_follows_hands():
    tr = HandTracker(gate=1.5, max_missed=2)
    a = tr.update(0, [_det((100, 100), "left"), _det((160, 100), "right")])
    # The hands cross: each is now 10 px from where the other was, but sides never swap.
    b = tr.update(1, [_det((110, 100), "right"), _det((150, 100), "left")])
    assert b[0].id == a[1].id and b[1].id == a[0].id
    # Two right hands swap order in the list: matched by position.
    c = tr.update(2, [_det((400, 300), "right"), _det((112, 102), "right")])
    assert c[1].id == a[1].id and c[0].id not in (a[0].id, a[1].id)
    # A track unseen for longer than max_missed is dropped: a new id.
    d = tr.update(6, [_det((112, 102), "right")])
    assert d[0].id not in (a[0].id, a[1].id, c[0].id)
    # One hand whose label flickers stays one track, and its side is the vote.
    labels = ["left", "left", "right", "left", "left"]
    e, sides = [], []
    for k, s in enumerate(labels):
        e.append(tr.update(7 + k, [_det((112 + k, 102), s)])[0])
        sides.append(e[-1].side)
    assert {t.id for t in e} == {d[0].id}
    # a tie keeps the side; the left leads from the second left label on
    assert sides == ["right"] + ["left"] * 4


def test_unmatched_tracks_are_those_update_leaves_behind():
    """``unmatched``: the last frame's tracks that no detection continues, exactly the
    tracks ``update`` then leaves unseen (its one-to-one assignment, also for two hands side
    by side); older tracks are not among them."""
    tr = HandTracker(gate=1.5, max_missed=5)
    old = tr.update(0, [_det((600, 600), "left")])[0]
    a, b = tr.update(1, [_det((100, 100), "left"), _det((300, 100), "right")])
    for near in ((100 + 1.5 * a.size - 1, 100), (100 + 1.5 * a.size + 1, 100)):
        dets = [_det(near, "left")]
        lost = tr.unmatched(2, dets)
        ids = {t.id for t in lost}
        assert old.id not in ids and b.id in ids
        assert (a.id in ids) == (near[0] > 100 + 1.5 * a.size)
        probe = HandTracker(gate=1.5, max_missed=5)
        probe.tracks = [replace(t, state={}) for t in tr.tracks]
        seen = {t.id for t in probe.update(2, dets)}
        assert ids == {t.id for t in probe.tracks if t.last_frame == 1 and t.id not in seen}
    assert tr.tracks[1].last_frame == 1  # nothing changed
    # one hand whose label turns, its neighbour 1.7 sizes away (beyond the gate): the hand
    # keeps its track (the neighbour's cost was lower, but it is out of reach)
    tr = HandTracker(gate=1.5)
    a, b = tr.update(0, [_det((100, 100), "right"), _det((185, 100), "left")])
    assert abs(np.linalg.norm(b.centre - a.centre) / b.size - 1.7) < 1e-9
    (c,) = tr.update(1, [_det((100, 100), "left")])
    assert c.id == a.id
    # two hands side by side, one lost: its neighbour's detection is within its gate too, but
    # continues the neighbour (one track per detection), so the lost one is unmatched
    tr = HandTracker(gate=1.5)
    left, right = tr.update(0, [_det((100, 100), "left"), _det((160, 100), "left")])
    assert [t.id for t in tr.unmatched(1, [_det((100, 100), "left")])] == [right.id]
    assert [t.id for t in tr.unmatched(1, [_det((160, 100), "left")])] == [left.id]


def test_a_coin_flip_label_does_not_flip_the_hand():
    """MediaPipe's labels of one hand at scores near 0.5 either way (examples/hand.jpg
    shifted by a few pixels per frame): the side stays the first one (a plain majority
    flipped it, and the hand model with it, on alternate frames: each label now votes
    ``2 * score - 1``); confident labels of the other side turn it once they lead by
    ``side_margin``."""
    tr = HandTracker()
    coin = [("right", 0.617), ("left", 0.511), ("left", 0.527), ("right", 0.561), ("left", 0.53)]
    sides = []
    for k, (side, score) in enumerate(coin):
        d = _det((100 + 6 * k, 100), side)
        sides.append(tr.update(k, [HandDetection(d.keypoints, d.confidence, score, side)])[0].side)
    assert sides == ["right"] * 5
    for k in range(5, 8):  # a confident "left" (0.9: a vote of 0.8) leads at once
        d = _det((130, 100), "left")
        sides.append(tr.update(k, [d])[0].side)
    assert sides[5:] == ["left"] * 3
    # with a margin, the other side must lead by it: the second confident label turns it
    tr, sides = HandTracker(side_margin=1.0), []
    for k, (side, score) in enumerate([*coin, *[("left", 0.9)] * 3]):
        d = _det((100, 100), side)
        sides.append(tr.update(k, [HandDetection(d.keypoints, d.confidence, score, side)])[0].side)
    assert sides == ["right"] * 6 + ["left"] * 2


def test_video_writer_round_trip_and_abort(tmp_path):
    frames = [np.full((31, 45, 3), 10 * i, np.uint8) for i in range(8)]
    p = write_video(tmp_path / "v.mp4", frames, fps=12)
    back = list(read_frames(p))
    assert len(back) == 8 and back[0].shape == (32, 46, 3)  # padded to even
    assert video_fps(p) == 12
    (tmp_path / "ntsc").mkdir()
    ntsc = write_video(tmp_path / "ntsc" / "v.mp4", frames, fps=30000 / 1001)  # (it wrote 30)
    assert abs(video_fps(ntsc) - 30000 / 1001) < 1e-6, video_fps(ntsc)
    assert abs(float(back[5].mean()) - 50) < 3
    with pytest.raises(RuntimeError), VideoWriter(tmp_path / "w.mp4") as w:
        w.add(frames[0])
        raise RuntimeError("interrupted")
    assert sorted(tmp_path.iterdir()) == [tmp_path / "ntsc", p]  # nothing half-written
    # FFmpeg's words without PyAV's errno; the cut-short hint only for an MP4 without index
    data = p.read_bytes()
    cut = _write(tmp_path / "cut.mp4", data[: data.find(b"moov") - 4])  # (its index at its end)
    for read in (video_fps, lambda p: list(read_frames(p))):
        with pytest.raises(ValueError, match="not a readable video") as e:
            read(_write(tmp_path / "bad.mp4", b"garbage"))
        assert "Errno" not in str(e.value) and "cut short" not in str(e.value)  # (no MP4)
        with pytest.raises(ValueError, match="not a readable video") as e:
            read(cut)
        assert "no index: an MP4 cut short" in str(e.value), str(e.value)
        with pytest.raises(ValueError, match=r"none.mp4: an empty file"):
            read(_write(tmp_path / "none.mp4", b""))
    from monohand.video.frames import _cut_short_hint

    assert _cut_short_hint(p) == ""  # a whole MP4 has its index
    assert "cut short" in _cut_short_hint(cut)
    assert _cut_short_hint(tmp_path / "bad.mp4") == ""  # (garbage named .mp4: no MP4)
    # a container that OpenCV closed before its first frame: no stream at all
    import cv2

    empty = tmp_path / "empty.mp4"
    cv2.VideoWriter(str(empty), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48)).release()
    for read in (video_fps, lambda p: list(read_frames(p))):
        with pytest.raises(ValueError, match=r"empty.mp4: has no video stream"):
            read(empty)


def test_a_video_cut_short_says_so_after_its_frames(tmp_path):
    """A Matroska video cut to 60 % of its bytes decodes without an error, 17 of its 30
    frames; its header still declares 30, so the reader yields the 17, then says it was cut
    short. Whole, it reads to the end without a word."""
    import av

    path = tmp_path / "clip.mkv"
    with av.open(str(path), "w", format="matroska") as c:
        s = c.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        rng = np.random.default_rng(0)
        for _ in range(30):
            f = av.VideoFrame.from_ndarray(rng.integers(0, 255, (48, 64, 3), np.uint8),
                                           format="rgb24")  # fmt: skip
            for packet in s.encode(f):
                c.mux(packet)
        for packet in s.encode():
            c.mux(packet)
    assert len(list(read_frames(path))) == 30
    cut = _write(tmp_path / "cut.mkv", path.read_bytes()[: int(path.stat().st_size * 0.6)])
    frames = ReadableFrames(read_frames(cut))
    n = len(list(frames))
    assert 0 < n < 30 and frames.stopped_at == n
    assert f"ends after {n} frames at {(n - 1) / 10:.2f} s of the 2.90 s its header " \
        "declares" in frames.stopped, frames.stopped


def test_other_containers_are_videos_and_read(tmp_path):
    """.3gp, .ts, .wmv, .y4m ... are videos (they were read as photos: 'not a readable
    image'): an MPEG-TS and a Y4M file written by FFmpeg read back frame by frame."""
    import av

    from monohand.video.frames import is_video

    assert all(is_video(f"x{s}") for s in (".3gp", ".flv", ".ts", ".mts", ".wmv", ".Y4M",
                                           ".mpg", ".ogv"))  # fmt: skip
    frames = [np.full((48, 64, 3), 20 * k, np.uint8) for k in range(5)]
    for name, fmt, codec, pix in (("v.ts", "mpegts", "libx264", "yuv420p"),
                                  ("v.y4m", "yuv4mpegpipe", "rawvideo", "yuv420p")):  # fmt: skip
        with av.open(str(tmp_path / name), "w", format=fmt) as c:
            stream = c.add_stream(codec, rate=10)
            stream.width, stream.height, stream.pix_fmt = 64, 48, pix
            for f in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                    c.mux(packet)
            for packet in stream.encode():
                c.mux(packet)
        back = list(read_frames(tmp_path / name))
        assert len(back) == 5 and abs(float(back[3].mean()) - 60) < 4, name


def test_a_variable_rate_video_s_frame_times_are_read(tmp_path):
    """Frames at 0, 0.1, 0.3, 0.35 and 0.7 s (a phone's video keeps no constant rate): their
    times, from the first frame, as the container stores them; in Matroska too, whose
    header gives a duration, not a count (a count from it at the nominal 30 fps called the
    video cut short after its 5 frames of 22)."""
    from fractions import Fraction

    import av

    for name, fmt in (("vfr.mp4", "mp4"), ("vfr.mkv", "matroska")):
        path = tmp_path / name
        with av.open(str(path), "w", format=fmt) as c:
            s = c.add_stream("libx264", rate=30)
            s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
            s.codec_context.time_base = Fraction(1, 1000)
            for t in (0, 100, 300, 350, 700):
                f = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 100, np.uint8),
                                               format="rgb24")  # fmt: skip
                f.pts, f.time_base = t, Fraction(1, 1000)
                for packet in s.encode(f):
                    c.mux(packet)
            for packet in s.encode():
                c.mux(packet)
        times: list[float] = []
        assert len(list(read_frames(path, times))) == 5, name
        np.testing.assert_allclose(times, [0.0, 0.1, 0.3, 0.35, 0.7], atol=1e-6)


def _write(path, data):
    path.write_bytes(data)
    return path


def test_warm_start_keeps_a_fixed_shape_and_stays_close():
    torch.manual_seed(0)
    hand = OpenHand()
    angles = torch.as_tensor(hand.pose_space.relaxed, dtype=torch.float32)[None]
    go = torch.tensor([[0.3, -0.2, 0.1]])
    betas = torch.randn(1, hand.num_shape_params) * 0.5
    out = hand(global_orient=go, hand_pose=hand.pose_space.to_axis_angle(angles), betas=betas,
               transl=torch.tensor([[0.0, 0.0, 0.4]]))  # fmt: skip
    K = torch.tensor([[[500.0, 0, 160], [0, 500.0, 120], [0, 0, 1]]])
    inputs = FitInputs(project(out.joints, K), torch.ones(1, 21), K,
                       world=out.joints - out.joints[:, :1])  # fmt: skip
    init = FitInit(go + 0.05, angles + 0.05, betas, torch.tensor([[0.005, 0.0, 0.41]]),
                   fix_shape=True)  # fmt: skip
    res = fit_hands(hand, inputs, FitConfig(iters=40, iters_3d=0, lr=0.015, photo_iters=0), init)
    assert torch.equal(res.betas, betas)
    err = (res.output.joints - out.joints).norm(dim=-1).mean()
    start = (hand(global_orient=init.global_orient, betas=betas, transl=init.transl,
                  hand_pose=hand.pose_space.to_axis_angle(init.pose_params)).joints
             - out.joints).norm(dim=-1).mean()  # fmt: skip
    assert err < 0.5 * start and err < 0.004


@pytest.fixture(scope="module")
def clip():
    # The back of the hand, rolled so that MediaPipe reads it as a right hand in every frame of
    # the MP4: its left/right guess on renders is fragile (palm and back of a rendered hand
    # are a true 2D ambiguity; other rolls of this clip flip it, confidently, mid-clip), and
    # these tests are about tracking, warm starts and smoothing, not about that guess.
    return render_clip(12, back=True)


def test_clip_reconstructs_with_low_error_and_smoothing_lowers_jitter(clip, tmp_path):
    """The CLI on an MP4 of the clip (smoothing on), and the library with smoothing off."""
    from monohand.reconstruct import ReconstructConfig, Reconstructor
    from monohand.video.sequence import SequenceConfig, SequenceReconstructor

    video = write_video(tmp_path / "clip.mp4", list(clip.frames), clip.fps)
    K = clip.K
    res = CliRunner().invoke(app, ["reconstruct", str(video), "--out", str(tmp_path / "out"),
                                   "--K", f"{K[0, 0]},{K[1, 1]},{K[0, 2]},{K[1, 2]}"])  # fmt: skip
    assert res.exit_code == 0, res.output
    out = tmp_path / "out"
    assert len(list(out.glob("clip_000*.json"))) == 12
    assert len(list(out.glob("clip_000*_0.glb"))) == 12
    assert len(list(read_frames(out / "clip_overlay.mp4"))) == 12
    frame = json.loads((out / "clip_00005.json").read_text())
    assert frame["hands"][0]["track"] == 0
    summary = json.loads((out / "clip_tracks.json").read_text())
    import jsonschema

    from test_schema import tracks_schema

    jsonschema.validate(summary, tracks_schema())
    # each frame's time, read from the container (a phone's rate is not constant)
    np.testing.assert_allclose(summary["times"], np.arange(12) / clip.fps, atol=2e-3)
    # it says what made it, as the frames' records do
    assert summary["method"] == frame["method"] == "hybrid" and summary["network"] == "shipped"
    assert summary["monohand_version"] == frame["monohand_version"]
    assert summary["source"] == str(video) and summary["joint_names"] == frame["joint_names"]
    tracks = summary["tracks"]
    assert list(tracks) == ["0"] and tracks["0"]["frames"] == list(range(12))
    assert tracks["0"]["side"] == "right"
    assert tracks["0"]["warm"] == [False] + [True] * 11
    smooth = np.array(tracks["0"]["joints3d"])

    cfg = SequenceConfig()
    cfg.smoothing.enabled = False
    with Reconstructor(ReconstructConfig()) as rec:
        seq = SequenceReconstructor(rec, cfg, clip.fps)
        raw = np.stack([seq.step(f, K).hands[0].joints3d for f in read_frames(video)])
        # a frame of another size: refused by name, the sequence as it was (it went on with
        # the first frame's K and tracks)
        with pytest.raises(ValueError, match=r"frame 12: 64x48, the sequence's first frame"):
            seq.step(np.zeros((48, 64, 3), np.uint8), K)
        assert seq.frame == 11
    for pred in (smooth, raw):
        pa = np.linalg.norm(procrustes_align(pred, clip.joints3d) - clip.joints3d, axis=-1)
        assert pa.mean(1).max() < 0.02  # every frame within 20 mm after alignment
        # In the camera frame too: this view sends PnP on MediaPipe's world landmarks to half
        # the depth; the fit's second start (PnP on the model's joints) recovers it.
        depth = np.abs(pred[:, 0, 2] - clip.joints3d[:, 0, 2])
        assert depth.max() < 0.05, depth
    # Stated bound (measured 4-5x on this clip): smoothing at least halves the jitter.
    assert jitter_mm(smooth) < 0.5 * jitter_mm(raw), (jitter_mm(smooth), jitter_mm(raw))


def test_folder_of_frames_as_a_sequence(clip, tmp_path):
    from PIL import Image

    frames = tmp_path / "frames"
    (frames / "other").mkdir(parents=True)
    # unpadded numbers, in number order (text order would put f10 before f2), and a
    # subfolder's frame that belongs to no sequence of this folder
    names = ["f1.png", "f2.png", "f10.png"]
    for k, name in enumerate(names):
        Image.fromarray(clip.frames[k]).save(frames / name)
    Image.fromarray(clip.frames[0][::-1].copy()).save(frames / "other" / "f0.png")
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["reconstruct", str(frames), "--sequence", "--fps", "10",
                                   "--no-smooth", "--out", str(out)])  # fmt: skip
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "frames_tracks.json").read_text())
    assert summary["frames"] == 3 and summary["fps"] == 10 and "times" not in summary
    assert summary["tracks"]["0"]["warm"] == [False, True, True]
    assert len(list(read_frames(out / "frames_overlay.mp4"))) == 3
    record = json.loads((out / "frames_00001.json").read_text())
    assert record["K_source"] == "default" and record["image"] == str(frames / "f2.png")
    # A shorter rerun into the same folder, with --K: the third frame's files go, the
    # records say where K came from.
    (frames / "f10.png").unlink()
    res = CliRunner().invoke(app, ["reconstruct", str(frames), "--sequence", "--fps", "10",
                                   "--no-smooth", "--method", "network", "--K",
                                   "300,300,120,90", "--out", str(out)])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "(an earlier run's 2 file(s) of frames_* removed)" in " ".join(res.output.split())
    assert not list(out.glob("frames_00002*"))
    assert sorted(p.name for p in out.glob("frames_0000*")) == [
        "frames_00000.json", "frames_00000_0.glb", "frames_00001.json", "frames_00001_0.glb"]
    assert json.loads((out / "frames_00000.json").read_text())["K_source"] == "given"
    assert json.loads((out / "frames_tracks.json").read_text())["K_source"] == "given"
    # Another folder of that name: its frames would replace these; skipped, nothing touched
    other = tmp_path / "b" / "frames"
    other.mkdir(parents=True)
    Image.fromarray(clip.frames[0]).save(other / "g1.png")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    res = CliRunner().invoke(app, ["reconstruct", str(other), "--sequence", "--method",
                                   "network", "--out", str(out)])  # fmt: skip
    text = " ".join(res.output.split())
    assert res.exit_code == 1 and "holds the hands of another photo or video" in text, text
    assert "nothing written: files in the way" in text
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    # a folder whose frames are all in a subfolder: said so, before any work
    res = CliRunner().invoke(app, ["reconstruct", str(frames.parent), "--sequence", "--out",
                                   str(tmp_path / "o2")])  # fmt: skip
    text = " ".join(res.output.split())
    assert res.exit_code == 2 and "not its subfolders': give the subfolder" in text, text


def test_readable_frames_end_at_the_first_unreadable_or_foreign_frame():
    """A reader that fails at its third frame, and a frame of another size: the frames
    before are given, ``stopped`` says where and why; a clean run leaves it None."""
    frame = np.zeros((4, 6, 3), np.uint8)

    def failing():
        yield frame
        yield frame
        raise ValueError("clip.mp4: not a readable video (truncated)")

    r = ReadableFrames(failing())
    assert len(list(r)) == 2 and r.stopped == "frame 2: clip.mp4: not a readable video (truncated)"
    assert r.stopped_at == 2
    r = ReadableFrames([frame, frame, np.zeros((6, 4, 3), np.uint8), frame])
    assert len(list(r)) == 2 and r.stopped.startswith("frame 2 is 4x6 pixels, the first 6x4")
    assert r.stopped_at == 2  # from 0, as the outputs are numbered
    r = ReadableFrames([frame] * 3)
    assert len(list(r)) == 3 and r.stopped is None


def test_a_sequence_with_a_broken_frame_keeps_the_frames_before_it(clip, tmp_path):
    """Three good frames, then a file that is no image: the three are reconstructed and
    written whole (overlay video, tracks), the command warns where it stopped, exit 0; the
    same with a frame of another size, named by its file; a later run over the folder does
    not take the overlay video beside its tracks for an input."""
    from PIL import Image

    frames = tmp_path / "frames"
    frames.mkdir()
    for k in range(3):
        Image.fromarray(clip.frames[k]).save(frames / f"f{k:03d}.png")
    (frames / "f003.png").write_text("not an image")
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["reconstruct", str(frames), "--sequence", "--no-smooth",
                                   "--method", "network", "--out", str(out)])  # fmt: skip
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "stopped (frame 3" in text and "f003.png" in text and "3 frame(s) before" in text
    assert "(frames_00000 to frames_00002)" in text  # the files, numbered from 0
    assert json.loads((out / "frames_tracks.json").read_text())["frames"] == 3
    assert len(list(read_frames(out / "frames_overlay.mp4"))) == 3
    # a frame of another size: the warning names its file (the reader does not); a rerun
    # over the folder does not offer the earlier run's overlay video as an input
    Image.fromarray(clip.frames[0][:-8]).save(frames / "f003.png")
    res = CliRunner().invoke(app, ["reconstruct", str(frames), "--sequence", "--no-smooth",
                                   "--method", "network", "--out", str(out)])  # fmt: skip
    text = " ".join(res.output.split())
    assert res.exit_code == 0 and "stopped (frame 3 is" in text, res.output
    assert f"pixels, the first {clip.frames[0].shape[1]}" in text and "f003.png" in text
    (out / "frames_overlay.mp4").rename(frames / "frames_overlay.mp4")
    (out / "frames_tracks.json").rename(frames / "frames_tracks.json")
    res = CliRunner().invoke(app, ["reconstruct", str(frames), "--method", "network",
                                   "--out", str(frames / "out")])  # fmt: skip
    assert res.exit_code == 0 and "not read" not in res.output, res.output


def test_hybrid_warm_frames_start_from_the_network_and_keep_the_tracks_look(clip, monkeypatch):
    """Under the hybrid, a warm frame's fit starts from this frame's network prediction with
    its prior (not from the previous fit), reuses the previous fit's texture and light (no
    appearance stage, no silhouette stage unless ``warm_silhouette``) and, after
    ``shape_frames`` fits, the track's mean shape, held fixed; ``network_each_frame=False``
    is the previous fit's start again."""
    import monohand.video.sequence as S
    from monohand.reconstruct import ReconstructConfig, Reconstructor

    calls = []
    real_fit = S.fit_hands

    def spy(model, inputs, cfg, init=None):
        res = real_fit(model, inputs, cfg, init)
        calls.append((cfg, init, res))
        return res

    monkeypatch.setattr(S, "fit_hands", spy)
    with Reconstructor(ReconstructConfig()) as rec:
        seq = S.SequenceReconstructor(rec, S.SequenceConfig(shape_frames=3), clip.fps)
        # (MediaPipe's labels of these raw frames turn to "left", confidently, at frame 3:
        # a side that holds is what this test needs, not what it is about)
        seq.tracker = HandTracker(side_margin=10.0)
        warm = [seq.step(f, clip.K).warm[0] for f in clip.frames[:5]]
        assert warm == [False, True, True, True, True]
        hybrid = rec.cfg.hybrid_fit
        assert calls[0][0] == hybrid and "silhouette" in calls[0][2].losses  # a cold frame
        # warm frames: the silhouette stage's steps go to the keypoint stage
        warm_cfg = replace(hybrid, silhouette_iters=0, iters=hybrid.iters + hybrid.silhouette_iters)
        for k in range(1, 5):
            cfg, init, res = calls[k]
            prev = calls[k - 1][2]
            assert cfg == warm_cfg and init.prior and "silhouette" not in res.losses
            assert torch.equal(init.texture, prev.texture) and torch.equal(init.light, prev.light)
            assert init.fix_shape == (k >= 3)
        shape = torch.stack([calls[k][2].betas for k in range(3)]).mean(0)
        assert torch.allclose(calls[4][2].betas, shape)

        calls.clear()
        seq = S.SequenceReconstructor(rec, S.SequenceConfig(warm_silhouette=True), clip.fps)
        for f in clip.frames[:2]:
            seq.step(f, clip.K)
        assert calls[1][0] == hybrid and "silhouette" in calls[1][2].losses

        calls.clear()
        seq = S.SequenceReconstructor(rec, S.SequenceConfig(network_each_frame=False), clip.fps)
        for f in clip.frames[:2]:
            seq.step(f, clip.K)
        cfg, init, _ = calls[1]
        assert cfg == seq.cfg.warm_fit and not init.prior
        assert torch.equal(init.pose_params, calls[0][2].pose_params)


def test_a_hand_the_palm_detector_loses_for_a_frame_is_followed(clip, monkeypatch):
    """Frames 2 and 3 of the clip with MediaPipe's detector blinded: the hand of frame 1 is
    looked for again where it was (``follow_hands``) and keeps its track, near the truth;
    with the window search off (whose network follows it) those frames have no hand."""
    from monohand.reconstruct import ReconstructConfig, Reconstructor
    from monohand.video.sequence import SequenceConfig, SequenceReconstructor

    def run(search: bool, blind: set[int]):
        with Reconstructor(ReconstructConfig(search_windows=search)) as rec:
            detect = rec.detect
            seq = SequenceReconstructor(rec, SequenceConfig(), clip.fps)
            monkeypatch.setattr(rec, "detect", lambda image, windows=None: [] if seq.frame in
                                blind else detect(image, windows))  # fmt: skip
            return [seq.step(f, clip.K) for f in clip.frames[:5]]

    followed = run(True, {2, 3})
    assert all(len(r.hands) == 1 and r.hands[0].track == 0 for r in followed)
    for r in followed[2:4]:
        truth = clip.joints3d[r.index]
        pa = np.linalg.norm(procrustes_align(r.hands[0].joints3d[None], truth[None])[0] - truth,
                            axis=-1)  # fmt: skip
        assert pa.mean() < 0.02
    assert [len(r.hands) for r in run(False, {2, 3})] == [1, 1, 0, 0, 1]


def test_videos_of_one_name_a_shorter_one_over_another_and_listed_frames(clip, tmp_path):
    """Two clip.mp4 in one run get names of their own, as two photos do (one wrote over
    the other's frames, or was refused); a shorter video of that name over another's frames
    with --overwrite leaves none of the longer one's (its frames past the shorter's end
    stayed), and says what went; frame files listed as a shell lists them
    (frames/*.png: f10 before f2) are taken in their names' natural order."""
    from PIL import Image

    for sub, n in (("a", 3), ("b", 2)):
        (tmp_path / sub).mkdir()
        write_video(tmp_path / sub / "clip.mp4", list(clip.frames[:n]), clip.fps)
    out = tmp_path / "out"
    run = ["reconstruct", "--method", "network", "--no-smooth"]
    res = CliRunner().invoke(app, [*run, str(tmp_path / "a" / "clip.mp4"),
                                   str(tmp_path / "b" / "clip.mp4"), "--out", str(out)])
    assert res.exit_code == 0, res.output
    for sub, n in (("a", 3), ("b", 2)):
        records = sorted(out.glob(f"{sub}_clip_mp4_0000?.json"))
        assert len(records) == n, sorted(p.name for p in out.iterdir())
        assert json.loads(records[0].read_text())["image"].endswith(f"{sub}/clip.mp4#0")
    # b's shorter clip.mp4 over a's frames of the plain name: refused, then --overwrite
    one = tmp_path / "one"
    assert CliRunner().invoke(app, [*run, str(tmp_path / "a" / "clip.mp4"), "--out",
                                    str(one)]).exit_code == 0  # fmt: skip
    res = CliRunner().invoke(app, [*run, str(tmp_path / "b" / "clip.mp4"), "--out", str(one)])
    assert res.exit_code == 1 and "holds the hands of another photo or video" in res.output
    res = CliRunner().invoke(app, [*run, str(tmp_path / "b" / "clip.mp4"), "--out", str(one),
                                   "--overwrite"])  # fmt: skip
    text = " ".join(res.output.split())
    assert res.exit_code == 0 and "(an earlier run's 2 file(s) of clip_* removed)" in text, text
    assert sorted(p.name for p in one.glob("clip_0000*")) == [
        "clip_00000.json", "clip_00000_0.glb", "clip_00001.json", "clip_00001_0.glb"]
    assert json.loads((one / "clip_tracks.json").read_text())["frames"] == 2
    # frame files listed out of their natural order
    frames = tmp_path / "frames"
    frames.mkdir()
    for k, name in enumerate(("f1.png", "f2.png", "f10.png")):
        Image.fromarray(clip.frames[k]).save(frames / name)
    listed = [str(frames / n) for n in ("f10.png", "f1.png", "f2.png")]  # as a shell sorts
    res = CliRunner().invoke(app, [*run, *listed, "--sequence", "--out", str(tmp_path / "s")])
    assert res.exit_code == 0, res.output
    images = [json.loads((tmp_path / "s" / f"frames_0000{k}.json").read_text())["image"]
              for k in range(3)]  # fmt: skip
    assert images == [str(frames / n) for n in ("f1.png", "f2.png", "f10.png")]


def test_a_video_without_a_hand_writes_nothing(tmp_path):
    """As a photo without a hand: no records, no overlay video, no tracks; said, exit 1
    (nothing reconstructed)."""
    y, x = np.mgrid[:96, :128]
    frames = [np.stack([x + 3 * k, y, 0 * x + 90], -1).astype(np.uint8) for k in range(3)]
    video = write_video(tmp_path / "wall.mp4", frames, 10)
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["reconstruct", str(video), "--method", "fit", "--out",
                                   str(out)])  # fmt: skip
    text = " ".join(res.output.split())
    assert res.exit_code == 1 and "in none of its 3 frame(s); nothing written" in text, text
    assert not out.exists() or not any(out.iterdir())
