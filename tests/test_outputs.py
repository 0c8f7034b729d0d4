"""Whose files are in an output folder (``outputs``' ownership rules, ``video.sequence``'s
for frames): records written here by hand, in monohand's format or not, and the answers
checked against what a user would call theirs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from monohand.outputs import (
    OutputClash,
    check_outputs,
    output_files,
    owned_outputs,
    same_photo,
    stale_outputs,
    write_outputs,
)
from monohand.record import FORMAT
from monohand.video.sequence import check_sequence_outputs, of_sequence


def _record(out: Path, stem: str, image: str, files=None, digest=None, hands=1) -> None:
    rec = {"format": FORMAT, "image": image, "hands": [{}] * hands}
    if files is not None:
        rec["files"] = files
    if digest is not None:
        rec["image_sha256"] = digest
    (out / f"{stem}.json").write_text(json.dumps(rec))


def _tiny_hand():
    """A HandReconstruction of one triangle, half a metre in front of the camera."""
    from monohand.data.detection import HandDetection
    from monohand.record import HandReconstruction

    joints2d = np.column_stack([np.linspace(20, 100, 21), np.full(21, 60.0)])
    det = HandDetection(joints2d, np.ones(21), 0.9, "right")
    tri = np.array([[0.0, 0.0, 0.5], [0.01, 0.0, 0.5], [0.0, 0.01, 0.5]])
    return HandReconstruction("right", det, np.zeros((21, 3)), joints2d, tri,
                              np.array([[0, 1, 2]]), np.array([[1.0, 0, 0], [0, 1, 0], [0, 0, 1]]),
                              None, None, None, {}, {"reprojection_px": 0.0})  # fmt: skip


def test_a_hand_as_a_mesh_file_read_back_in_each_format(tmp_path):
    """``write_hand_mesh``: OBJ, PLY, OFF and STL in the camera frame as the record's
    vertices; glTF (any case of suffix) in glTF's y-up frame (x, -y, -z); vertex colours
    where the format holds them; another suffix refused, naming the file, nothing written."""
    import trimesh

    from monohand.export import write_hand_mesh

    hand = _tiny_hand()
    for name, flip in (("h.obj", 1), ("h.ply", 1), ("h.off", 1), ("h.stl", 1), ("h.glb", -1),
                       ("h.GLTF", -1)):  # fmt: skip
        path = write_hand_mesh(tmp_path / name, hand)
        back = trimesh.load(path, force="mesh", process=False,
                            file_type=path.suffix.lower().lstrip("."))  # fmt: skip
        expect = hand.vertices * [1, flip, flip]
        # (STL stores a triangle's corners, not shared vertices: compare as sets of corners)
        got = np.asarray(back.vertices)[np.asarray(back.faces)].reshape(-1, 3)
        np.testing.assert_allclose(np.sort(got, 0), np.sort(expect, 0), atol=1e-6)
        if name.endswith((".ply", ".glb")):
            colors, v = np.asarray(back.visual.vertex_colors)[:, :3], np.asarray(back.vertices)
            np.testing.assert_array_equal(colors[np.lexsort(v.T)],
                                          (hand.vertex_colors * 255)[np.lexsort(expect.T)])
    with pytest.raises(ValueError, match=r"h\.fbx: unsupported mesh format"):
        write_hand_mesh(tmp_path / "h.fbx", hand)
    assert not (tmp_path / "h.fbx").exists()


def test_same_photo_by_contents_or_by_the_file(tmp_path, monkeypatch):
    """One photo: the same digest under any name, or the same file (a relative and an
    absolute spelling; edited in place, so another digest); another: another file with
    other contents. Older records (no digest) by the file alone."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a").mkdir()
    rec = {"image": "a/hand.jpg", "image_sha256": "1" * 64}
    assert same_photo(rec, "b/hand.jpg", "1" * 64)  # moved
    assert same_photo(rec, str(tmp_path / "a" / "hand.jpg"), "2" * 64)  # edited in place
    assert not same_photo(rec, "b/hand.jpg", "2" * 64)  # cameras reuse names
    old = {"image": str(tmp_path / "a" / "hand.jpg")}
    assert same_photo(old, "a/hand.jpg", "2" * 64) and not same_photo(old, "b/hand.jpg", None)


def test_older_records_claim_their_hands_meshes_only(tmp_path):
    _record(tmp_path, "hand", "hand.jpg", hands=2)
    for name in ("hand_0.glb", "hand_1.obj", "hand_2.obj", "hand_overlay.png", "handy_0.glb"):
        (tmp_path / name).write_text("x")
    assert [p.name for p in owned_outputs(tmp_path, "hand")] == [
        "hand.json", "hand_0.glb", "hand_1.obj", "hand_overlay.png"]
    # with a list, the list alone
    _record(tmp_path, "hand", "hand.jpg", files=["hand_0.glb"], hands=2)
    assert [p.name for p in stale_outputs(tmp_path, "hand", {tmp_path / "hand.json"})] == [
        "hand_0.glb"]


def test_a_run_stopped_after_its_record_is_rerun(tmp_path, monkeypatch):
    """The record is written first and lists the meshes, so a run stopped while writing
    them (here: the exporter fails) leaves nothing that blocks the next run."""
    from monohand import export

    hand = _tiny_hand()
    K = np.array([[500.0, 0, 64], [0, 500.0, 64], [0, 0, 1]])
    image = np.zeros((128, 128, 3), np.uint8)

    real = export._export

    def stops_at_the_obj(mesh, path, suffix, **options):
        if suffix == ".obj":
            raise KeyboardInterrupt
        real(mesh, path, suffix, **options)

    monkeypatch.setattr(export, "_export", stops_at_the_obj)
    with pytest.raises(KeyboardInterrupt):
        write_outputs(tmp_path, "a", image, K, [hand], "given", "a.jpg", (".glb", ".obj"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "a_0.glb"]
    monkeypatch.undo()
    paths = write_outputs(tmp_path, "a", image, K, [hand], "given", "a.jpg", (".glb", ".obj"))
    assert {p.name for p in paths} == {p.name for p in output_files(tmp_path, "a", 1,
                                                                    (".glb", ".obj"))}


def test_a_case_insensitive_folder_knows_its_own_files(tmp_path):
    _record(tmp_path, "hand", "hand.jpg", files=["Hand_0.glb"])
    (tmp_path / "Hand_0.glb").write_text("x")
    insensitive = os.path.exists(tmp_path / "hand_0.glb")
    writes = {tmp_path / "hand_0.glb", tmp_path / "hand.json"}
    if insensitive:
        assert check_outputs(tmp_path, "hand", writes, "hand.jpg") == []
    else:
        assert check_outputs(tmp_path, "hand", writes, "hand.jpg") == [tmp_path / "Hand_0.glb"]


def test_frames_are_checked_before_a_video_and_its_cleanup_keeps_others(tmp_path):
    """A video's stem: frames of this video (any spelling of its path) are its own; a photo
    named like a frame (ffmpeg's clip_00001.png reconstructed as photos) stops the video
    unless --overwrite, and a user's file named like a frame's stops it always; legacy
    tracks without a format are monohand's."""
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"")
    _record(tmp_path, "clip_00000", f"{video}#0", files=["clip_00000_0.glb"])
    (tmp_path / "clip_00000_0.glb").write_text("x")
    (tmp_path / "clip_tracks.json").write_text('{"frames": 1, "tracks": {}}')
    (tmp_path / "clip_overlay.mp4").write_bytes(b"")
    check_sequence_outputs(tmp_path, "clip", str(video))
    assert of_sequence({"image": f"{video}#3"}, str(tmp_path / "." / "clip.mp4"))
    assert of_sequence({"image": str(tmp_path / "frames" / "f1.png")}, str(tmp_path / "frames"))
    _record(tmp_path, "clip_00001", str(tmp_path / "clip_00001.png"))
    with pytest.raises(OutputClash, match="clip_00001.json holds the hands of another photo"):
        check_sequence_outputs(tmp_path, "clip", str(video))
    check_sequence_outputs(tmp_path, "clip", str(video), overwrite=True)
    (tmp_path / "clip_00001.json").unlink()
    (tmp_path / "clip_00007_0.obj").write_text("the user's")
    for overwrite in (False, True):
        with pytest.raises(OutputClash, match="clip_00007_0.obj: named like a frame"):
            check_sequence_outputs(tmp_path, "clip", str(video), overwrite)
    (tmp_path / "clip_00007_0.obj").unlink()
    (tmp_path / "clip_tracks.json").write_text('{"my": "notes"}')
    with pytest.raises(OutputClash, match="clip_tracks.json: exists and is not monohand's"):
        check_sequence_outputs(tmp_path, "clip", str(video))


def test_names_moved_from_export_are_found_with_a_warning():
    """Code written before the split (``from monohand.export import write_outputs``) still
    runs, told where the name lives now; other names are not invented."""
    from monohand import export, outputs, record

    with pytest.warns(DeprecationWarning, match="monohand.outputs.write_outputs"):
        assert export.write_outputs is outputs.write_outputs
    with pytest.warns(DeprecationWarning, match="monohand.record.FORMAT"):
        from monohand.export import FORMAT as moved
    assert moved == record.FORMAT
    with pytest.raises(AttributeError, match="no_such_name"):
        export.no_such_name  # noqa: B018


def test_a_video_frame_s_hands_follow_their_tracks(tmp_path):
    """A frame whose tracker lists track 1 before track 0: the record and the meshes put
    track 0 first (its hand was _1 in one frame and _0 in the next), and the overlay names
    and colours each hand by its track ("track 1 (left)" in track 1's colour wherever it
    sits in the list)."""
    from dataclasses import replace
    from types import SimpleNamespace

    from monohand.video.sequence import FrameResult, write_sequence
    from monohand.viz import HAND_COLOURS, _hand_colour, _hand_name

    right = replace(_tiny_hand(), track=0)
    left = replace(_tiny_hand(), side="left", track=1,
                   vertices=_tiny_hand().vertices + [0.05, 0, 0])  # fmt: skip
    frames = [[right, left], [left, right]]  # the tracker's order, frame by frame
    calls = iter(frames)
    rec = SimpleNamespace(cfg=SimpleNamespace(model="openhand", method="network"),
                          network_name="shipped", model_path=None)  # fmt: skip
    seq = SimpleNamespace(rec=rec, dt=0.1, step=lambda image, K: FrameResult(
        0, (hands := next(calls)), [False] * len(hands)))  # fmt: skip
    K = np.array([[500.0, 0, 64], [0, 500.0, 64], [0, 0, 1]])
    images = [np.zeros((128, 128, 3), np.uint8)] * 2
    write_sequence(seq, images, K, tmp_path, "v", mesh_formats=(".obj",), source="v.mp4")
    for k in range(2):
        record = json.loads((tmp_path / f"v_{k:05d}.json").read_text())
        assert [h["track"] for h in record["hands"]] == [0, 1], k
        assert [h["side"] for h in record["hands"]] == ["right", "left"], k
    assert _hand_name(0, left) == "track 1 (left)" and _hand_colour(0, left) == HAND_COLOURS[1]
    assert _hand_name(1, replace(left, track=None)) == "hand 1 (left)"
