"""The reconstruct and serve verbs (``cli/reconstruct.py``): usage errors before any work, what
they say per input, the files a rerun leaves, a camera that fits its photo badly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import trimesh
from PIL import Image
from typer.testing import CliRunner

from monohand.cli import app

runner = CliRunner()


@pytest.mark.parametrize("args, option, words", [
    (["--out", "FILE"], "--out", "is a file"),
    (["--max-hands", "0"], "--max-hands", "greater than or equal to 1"),
    (["--formats", ".fbx"], "--formats", "not supported"),
    (["--K", "500,500,300"], "--K", "expected fx,fy,cx,cy"),
    (["--K", "missing.json"], "--K", "no such file"),
    (["--model", "foo"], "--model", "unknown model 'foo'"),
    (["--model", "mano"], "--model", "needs --model-path"),
    (["--method", "fitting"], "--method", "unknown 'fitting'"),
    (["--checkpoint", "none.ckpt"], "--checkpoint", "none.ckpt: no such file"),
    (["--model", "mano", "--model-path", "none.pkl"], "--model-path", "no such file"),
    (["--sequence", "--fps", "0"], "--fps", "must be above 0"),
    (["--sequence", "--fps", "nan"], "--fps", "must be above 0"),
    (["--fit-steps", "0"], "--fit-steps", "needs at least 1 step; its default is 30"),
    (["--method", "fit", "--fit-steps", "40"], "--fit-steps", "at least 41 steps (its first 40"),
])  # fmt: skip
def test_reconstruct_answers_usage_errors_before_any_work(tmp_path, monkeypatch, args, option,
                                                          words):  # fmt: skip
    """Each mistake: exit 2, a message naming the option, and no model loaded, no photo read,
    nothing written."""
    import monohand.reconstruct as rec

    def no_work(*a, **k):
        raise AssertionError("a model was loaded before the options were checked")

    monkeypatch.setattr(rec, "Reconstructor", no_work)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "FILE").write_text("x")
    out = ["--out", str(tmp_path / "out")] if "--out" not in args else []
    photo = Path(__file__).resolve().parents[1] / "examples" / "hand.jpg"
    res = CliRunner().invoke(app, ["reconstruct", str(photo), *out, *args])
    text = " ".join(res.output.split()).replace("│", "")
    text = " ".join(text.split())
    assert res.exit_code == 2, res.output
    assert option in text and words in text, res.output
    assert not (tmp_path / "out").exists()


def test_reruns_leave_no_stale_files_and_same_stems_do_not_collide(tmp_path):
    """A folder holds one run's files: a rerun removes what monohand wrote and it no longer
    writes (a format, every file of a photo that now has no hand) and says so; files that
    monohand did not write (named like its own, or a JSON of the photo's name) and another
    photo's results of the same name are never replaced unasked: that photo is skipped,
    saying why, with nothing touched (--overwrite replaces the other photo's results);
    hand.jpg and hand.png in one run get hand_jpg.* and hand_png.*."""
    import json

    from PIL import Image

    from monohand.outputs import output_stems, stale_outputs

    photo = Path(__file__).resolve().parents[1] / "examples" / "hand.jpg"
    out = tmp_path / "out"
    out.mkdir()
    mine = {"hand_3.obj": "the user's", "hand_2_0.glb": "the user's", "handy_0.glb": "x"}
    for name, text in mine.items():
        (out / name).write_text(text)
    assert stale_outputs(out, "hand") == []  # no record: none of them is monohand's

    def run(*args):
        res = CliRunner().invoke(app, ["reconstruct", *map(str, args), "--method", "network",
                                       "--out", str(out)])  # fmt: skip
        return res, " ".join(res.output.split())

    res, text = run(photo, "--formats", ".glb,.ply")
    assert res.exit_code == 0 and "removed" not in text, res.output
    record = json.loads((out / "hand.json").read_text())
    assert record["files"] == ["hand_0.glb", "hand_0.ply", "hand_overlay.png"]
    assert len(record["image_sha256"]) == 64
    res, text = run(photo)  # .glb alone: the .ply goes, said; the user's files stay
    assert res.exit_code == 0 and "earlier run's 1 file(s) of hand.* removed" in text, text
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["hand.json", "hand_0.glb", "hand_overlay.png", *mine])
    assert all((out / n).read_text() == t for n, t in mine.items())
    # A record from before the list (2026-12-06): the mesh names of its hands are its own,
    # a hand's more (hand_1.glb: it holds one) or the user's hand_3.obj are not.
    del record["files"]
    (out / "hand.json").write_text(json.dumps(record))
    mine["hand_1.glb"] = "the user's"
    (out / "hand_1.glb").write_text(mine["hand_1.glb"])
    assert [p.name for p in stale_outputs(out, "hand")] == [
        "hand.json", "hand_0.glb", "hand_overlay.png"]
    # Another photo of the same name (cameras reuse names): skipped, nothing touched.
    blank = tmp_path / "blank" / "hand.png"
    blank.parent.mkdir()
    Image.fromarray(np.full((120, 160, 3), 90, np.uint8)).save(blank)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    res, text = run(blank)
    assert res.exit_code == 1, res.output
    assert "holds the hands of another photo of that name" in text and str(photo) in text
    assert "nothing written: files in the way" in text
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    # --overwrite: it has no hand, so every file the earlier run wrote goes, said
    res, text = run(blank, "--overwrite")
    assert res.exit_code == 1 and "no hand found" in text
    assert "earlier run's 3 file(s) of hand.* removed" in text, text
    # what is often missed, and the way in for hands of one's own, said once
    assert text.count("--keypoints FILE_OR_FOLDER takes the hands") == 1, text
    # not for a video (--keypoints is for photos)
    from monohand.video.frames import write_video

    clip = write_video(tmp_path / "blank.mp4", [np.full((48, 64, 3), 90, np.uint8)] * 3, fps=10)
    res = CliRunner().invoke(app, ["reconstruct", str(clip), "--method", "network", "--out",
                                   str(tmp_path / "made" / "clip_out")])  # fmt: skip
    text = " ".join(res.output.split())
    assert res.exit_code == 1 and "--keypoints" not in text, text
    assert not (tmp_path / "made").exists()  # nothing written: no empty folders it made left
    assert sorted(p.name for p in out.iterdir()) == sorted(mine)
    assert all((out / n).read_text() == t for n, t in mine.items())
    # A JSON of the photo's name that monohand did not write; a mesh name in the way.
    (out / "hand.json").write_text('{"caption": "my notes"}')
    res, text = run(photo, "--overwrite")
    assert res.exit_code == 1 and "hand.json: exists and is not a monohand record" in text
    assert (out / "hand.json").read_text() == '{"caption": "my notes"}'
    (out / "hand.json").unlink()
    (out / "hand_0.glb").write_text("the user's model")
    res, text = run(photo)
    assert res.exit_code == 1 and "hand_0.glb: exists and monohand did not write it" in text
    assert (out / "hand_0.glb").read_text() == "the user's model"
    assert not (out / "hand.json").exists()
    (tmp_path / "text.jpg").write_text("not an image")
    res, text = run(tmp_path / "text.jpg")
    assert res.exit_code == 1 and "no input could be read" in text, res.output
    stems = output_stems([Path("a/hand.jpg"), Path("b/hand.png"), Path("c/other.jpg")])
    assert list(stems.values()) == ["hand_jpg", "hand_png", "other"]


def test_a_rerun_into_the_folder_it_reads_does_not_take_its_overlays_for_photos(tmp_path):
    """--out inside the photos' folder, or the folder itself: the second run reads hand.jpg
    only, not the first run's hand_overlay.png (which would gain hand_overlay.json and so
    on, one more layer per run); nor does a run into a sibling folder. Overlays beside their
    monohand record are left out wherever they are: one without a record, one beside a JSON
    of the user's, or one named by itself is a photo."""
    from monohand.data.images import collect_images, sequence_frames

    photo = Path(__file__).resolve().parents[1] / "examples" / "hand.jpg"
    for folder in ("a", "photos"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "hand.jpg").write_bytes(photo.read_bytes())
    photos = tmp_path / "photos"
    for src, out in ((tmp_path / "a", tmp_path / "a" / "out"), (photos, photos)):
        for _ in range(2):
            res = CliRunner().invoke(app, ["reconstruct", str(src), "--method", "network",
                                           "--out", str(out)])  # fmt: skip
            assert res.exit_code == 0, res.output
        names = {p.name for p in out.iterdir() if p.is_file()}
        assert names == {"hand.jpg", "hand.json", "hand_0.glb", "hand_overlay.png"} - (
            {"hand.jpg"} if out != photos else set()), names
    # a run into a sibling folder reads the photo only, not a's output
    res = CliRunner().invoke(app, ["reconstruct", str(tmp_path / "a"), "--method", "network",
                                   "--out", str(tmp_path / "a" / "out2")])  # fmt: skip
    assert res.exit_code == 0 and res.output.count("hand(s) by network") == 1, res.output
    assert {p.name for p in (tmp_path / "a" / "out2").iterdir()} == {
        "hand.json", "hand_0.glb", "hand_overlay.png"}  # fmt: skip
    other = tmp_path / "other"
    other.mkdir()
    overlay = (photos / "hand_overlay.png").read_bytes()
    (other / "x_overlay.png").write_bytes(overlay)  # no record beside it
    (other / "mine_overlay.png").write_bytes(overlay)
    (other / "mine.json").write_text('{"format": "mine"}')  # not monohand's
    assert collect_images([photos, other]) == [photos / "hand.jpg", other / "mine_overlay.png",
                                               other / "x_overlay.png"]  # fmt: skip
    assert collect_images([photos / "hand_overlay.png"]) == [photos / "hand_overlay.png"]
    assert sequence_frames([photos]) == [photos / "hand.jpg"]
    (photos / "hand.json").unlink()  # the record gone: the overlay is a picture like any
    assert collect_images([photos]) == [photos / "hand.jpg", photos / "hand_overlay.png"]


def test_a_folder_search_skips_hidden_files_and_reads_every_photo_suffix(tmp_path):
    """Hidden files and folders (a viewer's .thumbnails/, macOS's ._ files) and a folder
    named like a photo are not inputs, so they neither give results nor change the real
    photo's output name; .jfif, .jpe and .avif photos are found as .jpg ones are; a quoted
    pattern that the shell left as it is matches as the shell would, natural order."""
    from monohand.data.images import ImageError, collect_images, expand_patterns, sequence_frames

    shoot = tmp_path / "shoot"
    (shoot / ".thumbnails").mkdir(parents=True)
    (shoot / "folder.jpg").mkdir()
    photo = Image.fromarray(np.full((40, 60, 3), 90, np.uint8))
    for name in ("IMG_0001.jpg", ".thumbnails/IMG_0001.jpg", "._IMG_0001.jpg", "b.jfif",
                 "c.jpe", "d10.png", "d9.png"):
        photo.save(shoot / name, format="JPEG" if name[-4:] != ".png" else "PNG")
    photo.save(shoot / "e.avif", format="AVIF")
    want = [shoot / n for n in ("IMG_0001.jpg", "b.jfif", "c.jpe", "d10.png", "d9.png",
                                "e.avif")]  # fmt: skip
    assert collect_images([shoot]) == want
    assert sorted(sequence_frames([shoot])) == sorted(want)
    assert expand_patterns([str(shoot / "d*.png")]) == [shoot / "d9.png", shoot / "d10.png"]
    assert expand_patterns([str(shoot / "**" / "IMG_*.jpg")]) == [shoot / "IMG_0001.jpg"]
    with pytest.raises(ImageError, match="no file or folder matches this pattern"):
        expand_patterns([str(shoot / "*.heic")])
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["reconstruct", str(shoot / "*.jp*"), "--method", "network",
                                   "--out", str(out)])  # fmt: skip
    text = " ".join(res.output.split())
    assert "skipped" not in text and "0 of 2 input(s)" in text, text  # IMG_0001.jpg, c.jpe
    assert text.count("(a 60x40 photo: small for the detector") == 2, text


def test_reconstruct_says_what_it_did_per_photo_and_in_all(tmp_path):
    """Per photo: the method and where K came from; at the end, how many inputs gave hands;
    a --K whose principal point lies outside the photo is warned about; the JSON records the
    method. A folder without images is a usage error, not "no hand"."""
    photo = Path(__file__).resolve().parents[1] / "examples" / "hand.jpg"
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((120, 160, 3), 90, np.uint8)).save(blank)
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["reconstruct", str(photo), str(blank), "--method", "network",
                                   "--K", "300,300,5000,5000", "--out", str(out)])  # fmt: skip
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "lies outside the" in text and "hand(s) by network, K from --K" in text
    assert "1 of 2 input(s) reconstructed (1 hand(s) in photos); no hand found in 1" in text
    record = json.loads((out / "hand.json").read_text())
    assert record["method"] == "network" and record["network"] == "shipped"
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not a photo")
    res = CliRunner().invoke(app, ["reconstruct", str(empty), "--out", str(tmp_path / "o2")])
    assert res.exit_code == 2 and "no image found in" in " ".join(res.output.split())
    assert not (tmp_path / "o2").exists()
    # a folder's video is not read, and that is said: as the reason when nothing else is
    # there, as a note beside the photos otherwise
    (empty / "clip.mp4").write_bytes(b"not read")
    res = CliRunner().invoke(app, ["reconstruct", str(empty), "--out", str(tmp_path / "o2")])
    text = " ".join(res.output.split())
    assert res.exit_code == 2 and "a video in a folder is not read" in text, res.output
    assert f"monohand reconstruct {empty / 'clip.mp4'}" in text
    (empty / "hand.jpg").write_bytes(photo.read_bytes())
    res = CliRunner().invoke(app, ["reconstruct", str(empty), "--method", "network", "--out",
                                   str(tmp_path / "o2")])  # fmt: skip
    text = " ".join(res.output.split())
    assert res.exit_code == 0 and "note:" in text and "is not read" in text, res.output
    # video options on photos are said to be unused
    res = CliRunner().invoke(app, ["reconstruct", str(empty / "hand.jpg"), "--method", "network",
                                   "--no-smooth", "--out", str(tmp_path / "o2")])  # fmt: skip
    text = " ".join(res.output.split())
    assert res.exit_code == 0 and "--no-smooth: for videos and --sequence only" in text, text
    # a missing video is named before any work, as a missing photo is
    for missing in ("gone.mp4", "gone.jpg"):
        res = CliRunner().invoke(app, ["reconstruct", str(photo), str(tmp_path / missing),
                                       "--out", str(tmp_path / "o3")])  # fmt: skip
        text = " ".join(res.output.split())
        assert res.exit_code == 2 and f"{missing}: no such file or folder" in text, res.output
        assert not (tmp_path / "o3").exists()


def test_hands_together_crossing_or_far_from_their_keypoints_are_said(tmp_path, monkeypatch):
    """Hands refined as touching (a "contact" term in their fit) are named with the way out
    (--one-by-one), which reaches ``ReconstructConfig.together``; hands whose meshes still
    cross by more than 5 mm ("crossing", metres) are warned about, with the depth; so is a
    hand whose result ends over half its size from its keypoints."""
    from types import SimpleNamespace

    import monohand.reconstruct as rec

    seen = {}

    class Recorder:
        network_name = None  # the fit alone

        def __init__(self, cfg):
            seen["together"] = cfg.together
            self.cfg = cfg

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    def hand(**fit):
        return SimpleNamespace(fit={"reprojection_px": 2.0, **fit},
                               detection=SimpleNamespace(size=40.0))  # fmt: skip

    hands = [hand(contact=0.0, crossing=0.012), hand(contact=0.0, crossing=0.012),
             hand(contact=0.0, crossing=0.004),  # its pair: in bounds
             hand()]  # fmt: skip
    K = np.array([[300.0, 0, 80], [0, 300, 60], [0, 0, 1]])
    monkeypatch.setattr(rec, "Reconstructor", Recorder)
    monkeypatch.setattr(rec, "reconstruct_photo",
                        lambda *a, **k: rec.PhotoResult(hands, K, "default", []))  # fmt: skip
    photo = Path(__file__).resolve().parents[1] / "examples" / "hand.jpg"
    for flag, together in (([], True), (["--one-by-one"], False)):
        res = runner.invoke(app, ["reconstruct", str(photo), "--method", "network", "--out",
                                  str(tmp_path / "o"), *flag])  # fmt: skip
        text = " ".join(res.output.split())
        assert res.exit_code == 0, res.output
        assert seen["together"] is together
        assert ("hands 0, 1 and 2 were refined together as touching (one by one instead: "
                "--one-by-one, or ReconstructConfig(together=False))") in text, text
        assert "hands 0 and 1 still enter each other by up to 12.0 mm" in text, text
    res = runner.invoke(app, ["reconstruct", str(photo), "--method", "network", "--one-by-one",
                              "--out", str(tmp_path / "o")])  # fmt: skip
    assert "--one-by-one: for the fit and hybrid methods only" in " ".join(res.output.split())
    hands[:] = hands[3:]  # a lone hand: nothing said
    res = runner.invoke(app, ["reconstruct", str(photo), "--method", "network", "--out",
                              str(tmp_path / "o")])  # fmt: skip
    assert "refined together" not in res.output and "enter each other" not in res.output
    assert "detected keypoints" not in res.output
    # a hand that ends over half its size from its keypoints: warned, the fit named as the way
    hands[0].fit["reprojection_px"] = 30.0
    res = runner.invoke(app, ["reconstruct", str(photo), "--method", "hybrid", "--out",
                              str(tmp_path / "o")])  # fmt: skip
    text = " ".join(res.output.split())
    assert ("hand 0 ends 30 px from its detected keypoints on average, 0.8 times its size "
            "(wrist to middle knuckle: 40 px): a doubtful detection") in text, text
    assert "the fit method follows the keypoints alone" in text, text
    res = runner.invoke(app, ["reconstruct", str(photo), "--method", "fit", "--out",
                              str(tmp_path / "o")])  # fmt: skip
    text = " ".join(res.output.split())
    assert "a doubtful detection" in text and "fit method follows" not in text, text


def test_a_camera_too_wide_for_its_photo_is_said_once(tmp_path):
    """A --K meant for a smaller image (169 degrees across this photo) and an EXIF focal
    length of 5 mm (35 mm equivalent: 148 degrees) are said, naming the photo and where K
    came from; run as a user runs it (a process of its own: pytest would catch the
    library's warning itself), the EXIF one is said once: the library's own warning of the
    same K is silenced."""

    from monohand.data.intrinsics import CameraWarning

    photo = Path(__file__).resolve().parents[1] / "examples" / "hand.jpg"
    with pytest.warns(CameraWarning):  # the library's, which main() silences (below)
        res = CliRunner().invoke(app, ["reconstruct", str(photo), "--K", "30,30,320,240",
                                       "--method", "network", "--out", str(tmp_path / "o")])
    text = " ".join(res.output.split())
    assert res.exit_code == 0 and ("(K from --K): K's focal length (30 px) gives the 640x480 "
                                   "image a 169-degree horizontal field of view") in text, text
    wide = tmp_path / "wide.jpg"
    exif = Image.Exif()
    exif[0x8769] = {41989: 5}  # FocalLengthIn35mmFilm
    Image.open(photo).save(wide, exif=exif)
    res = subprocess.run([sys.executable, "-m", "monohand", "reconstruct", str(wide), "--method",
                          "network", "--out", str(tmp_path / "o")], capture_output=True,
                         text=True, timeout=300)  # fmt: skip
    text = " ".join(res.stderr.split())
    assert res.returncode == 0 and text.count("horizontal field of view") == 1, text
    assert "(K from the photo's EXIF focal length): K's focal length" in text, text


def test_an_output_folder_that_refuses_files_is_named_before_any_work(tmp_path, monkeypatch):
    """A read-only file system or an immutable folder (which root's permission bits do not
    show; the operating system's answer is simulated here): exit 2 naming --out and the
    folder, before any model is loaded."""
    import os

    import monohand.cli.usage as usage
    import monohand.reconstruct as rec

    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    refuses = lambda p, mode: Path(p) == locked and mode & os.W_OK  # noqa: E731
    monkeypatch.setattr(usage.os, "access",
                        lambda p, mode: not refuses(p, mode) and real_access(p, mode))  # fmt: skip
    monkeypatch.setattr(rec, "Reconstructor", lambda *a, **k: 1 / 0)
    photo = Path(__file__).resolve().parents[1] / "examples" / "hand.jpg"
    for out, words in ((locked, "cannot be written"),
                       (locked / "new" / "deeper", f"{locked} refuses new files")):  # fmt: skip
        res = CliRunner().invoke(app, ["reconstruct", str(photo), "--out", str(out)])
        text = " ".join(res.output.replace("│", "").split())
        assert res.exit_code == 2 and "--out" in text and words in text, res.output
    res = CliRunner().invoke(app, ["detect", str(photo), "--out", str(locked / "d.json")])
    assert res.exit_code == 2 and "refuses new files" in res.output, res.output
    # where os.access says yes but nothing can be made (root in /proc): the probe that makes
    # a folder there sees it (simulated), and leaves nothing behind where one can be made
    monkeypatch.setattr(usage.os, "access", real_access)
    sealed = tmp_path / "sealed"
    sealed.mkdir()
    real_mkdtemp = usage.tempfile.mkdtemp

    def mkdtemp(*a, dir=None, **k):
        if Path(dir) == sealed:
            raise OSError(2, "No such file or directory", str(dir))
        return real_mkdtemp(*a, dir=dir, **k)

    monkeypatch.setattr(usage.tempfile, "mkdtemp", mkdtemp)
    res = CliRunner().invoke(app, ["reconstruct", str(photo), "--out", str(sealed / "x")])
    assert res.exit_code == 2 and f"{sealed} refuses new files" in " ".join(
        res.output.replace("│", "").split()), res.output  # fmt: skip
    assert usage.out_folder(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["locked", "sealed"]
    assert not any(sealed.iterdir())


def test_same_file_names_in_two_folders_and_any_case_of_format_keep_every_result(tmp_path):
    """a/hand.jpg and b/hand.jpg (a folder searched recursively) get a_hand_jpg.* and
    b_hand_jpg.*, not one overwriting the other; "--formats GLB,.Gltf" writes .glb and .gltf
    files, alike (textured, glTF's y-up frame); each .gltf holds its own mesh (no buffer
    files beside it shared by every mesh)."""
    from monohand.export import save_mesh
    from monohand.outputs import output_stems

    photo = Path(__file__).resolve().parents[1] / "examples" / "hand.jpg"
    for sub in ("a", "b"):
        (tmp_path / "in" / sub).mkdir(parents=True)
        (tmp_path / "in" / sub / "hand.jpg").write_bytes(photo.read_bytes())
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["reconstruct", str(tmp_path / "in"), "--method", "network",
                                   "--formats", "GLB,.Gltf", "--out", str(out)])  # fmt: skip
    assert res.exit_code == 0, res.output
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"{s}_hand_jpg{e}" for s in "ab"
                     for e in (".json", "_0.glb", "_0.gltf", "_overlay.png")], names  # fmt: skip
    from scipy.spatial import cKDTree

    for s in "ab":
        record = json.loads((out / f"{s}_hand_jpg.json").read_text())
        mesh = trimesh.load(out / f"{s}_hand_jpg_0.gltf", force="mesh")
        glb = trimesh.load(out / f"{s}_hand_jpg_0.glb", force="mesh")
        # both glTF files alike: textured, y up (camera x, -y, -z), split along UV seams
        np.testing.assert_allclose(np.asarray(mesh.vertices), np.asarray(glb.vertices),
                                   atol=1e-6)  # fmt: skip
        assert mesh.visual.material.baseColorTexture is not None
        gl = np.asarray(record["hands"][0]["vertices"]) * [1, -1, -1]
        assert cKDTree(gl).query(np.asarray(mesh.vertices))[0].max() < 1e-6
        assert len(np.unique(cKDTree(np.asarray(mesh.vertices)).query(gl)[1])) == len(gl)
    # two different meshes in one folder, each read back as itself, in glTF's y-up frame as
    # the command's glTF files (a hand's camera-frame vertices as write_outputs writes them)
    box, ball = trimesh.creation.box(), trimesh.creation.icosphere(1)
    from monohand.models.openhand import OpenHand

    hand = (np.asarray(record["hands"][0]["vertices"]), OpenHand().faces.numpy())
    meshes = ((box.vertices, box.faces, "box.gltf"), (ball.vertices, ball.faces, "ball.GLTF"),
              (*hand, "h.glb"))  # fmt: skip
    for v, f, name in meshes:
        save_mesh(tmp_path / name, v, f)
    for v, _, name in meshes:
        back = trimesh.load(tmp_path / name, force="mesh", file_type=name.split(".")[1].lower())
        np.testing.assert_allclose(np.asarray(back.vertices), v * [1, -1, -1], atol=1e-6)
    assert cKDTree(np.asarray(glb.vertices)).query(hand[0] * [1, -1, -1])[0].max() < 1e-6
    for suffix in (".obj", ".ply"):  # the other formats: the camera frame, as given
        save_mesh(tmp_path / f"h{suffix}", *hand)
        back = trimesh.load(tmp_path / f"h{suffix}", force="mesh", process=False)
        np.testing.assert_allclose(np.asarray(back.vertices), hand[0], atol=1e-6)
    assert not list(tmp_path.glob("*.bin"))
    stems = output_stems([Path("/x/a/p.jpg"), Path("/y/a/p.jpg"), Path("/x/a/p.jpg")])
    assert stems == {Path("/x/a/p.jpg"): "x_a_p_jpg", Path("/y/a/p.jpg"): "y_a_p_jpg"}
    # folders that join to the same words get a number; one file in two spellings one name
    stems = output_stems([Path("/r/a_b/x.jpg"), Path("/r/a/b/x.jpg"), Path("/r/c/b/x.jpg")])
    assert list(stems.values()) == ["r_a_b_x_jpg", "r_a_b_x_jpg_2", "c_b_x_jpg"]
    stems = output_stems([Path("x.jpg"), Path.cwd() / "x.jpg"])
    assert set(stems.values()) == {"x"}
    from monohand.data.images import collect_images

    inside = tmp_path / "in" / "a" / "hand.jpg"  # named twice: by its folder and by itself
    assert collect_images([tmp_path / "in", inside]) == [inside, tmp_path / "in" / "b" / "hand.jpg"]


def test_serve_on_a_busy_port_says_so_before_serving(monkeypatch):
    """A port another program holds: exit 2 naming it, and no "serving on" line first."""
    import socket

    import uvicorn

    def work(*a, **k):
        raise AssertionError("the server started")

    monkeypatch.setattr(uvicorn, "run", work)
    with socket.create_server(("127.0.0.1", 0)) as held:
        port = held.getsockname()[1]
        res = CliRunner().invoke(app, ["serve", "--host", "127.0.0.1", "--port", str(port)])
    text = " ".join(res.output.replace("│", "").split())
    assert res.exit_code == 2 and f"cannot listen on 127.0.0.1:{port}" in text, res.output
    assert "serving on" not in text


def test_another_openhand_build_is_fitted_not_given_to_the_shipped_network(tmp_path):
    """The shipped network knows the shipped OpenHand only: a copy of its file is the same
    model (auto: the hybrid), another build under --model-path is fitted (auto: the fit) and
    refused by the network methods, naming the file; boxhand reads no file."""
    from monohand.models.openhand import default_model_path, load_openhand_arrays

    photo = Path(__file__).resolve().parents[1] / "examples" / "hand.jpg"
    copy = tmp_path / "copy.npz"
    copy.write_bytes(default_model_path().read_bytes())
    arrays = load_openhand_arrays(default_model_path())
    arrays["shapedirs"] = -arrays["shapedirs"]
    other = tmp_path / "other.npz"
    np.savez(other, **arrays)

    def run(*args):
        res = CliRunner().invoke(app, ["reconstruct", str(photo), "--out", str(tmp_path / "o"),
                                       *map(str, args)])  # fmt: skip
        return res, " ".join(res.output.split())

    res, text = run("--model-path", copy, "--fit-steps", "5")
    assert res.exit_code == 0 and "hand(s) by hybrid" in text, text
    assert "model_path" in json.loads((tmp_path / "o" / "hand.json").read_text())
    run()  # (the shipped model: no file named)
    assert "model_path" not in json.loads((tmp_path / "o" / "hand.json").read_text())
    res, text = run("--model-path", other, "--fit-steps", "41")
    assert res.exit_code == 0 and "hand(s) by fit" in text, text
    record = json.loads((tmp_path / "o" / "hand.json").read_text())
    assert record["model_path"] == str(other) and record["hands"][0]["model"] == "openhand"
    for method in ("hybrid", "network"):
        res, text = run("--model-path", other, "--method", method)
        assert res.exit_code == 2 and "the shipped network was trained on the shipped" in text
        assert str(other) in text
    res, text = run("--model", "boxhand", "--model-path", other)
    assert res.exit_code == 2 and "boxhand is made in code and reads no file" in text


def test_an_animated_image_is_said_to_be_read_by_its_first_frame(tmp_path):
    """An animated GIF of three frames given as a photo: its first frame is reconstructed and
    that is said, with the way to have every frame (it was silent); a plain photo says
    nothing of frames."""
    from PIL import Image

    from monohand.data.images import frame_count

    photo = Path(__file__).resolve().parents[1] / "examples" / "hand.jpg"
    first = Image.open(photo).convert("RGB")
    frames = [first, first.rotate(5), first.rotate(10)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=100)
    assert frame_count(tmp_path / "anim.gif") == 3 and frame_count(photo) == 1
    res = CliRunner().invoke(app, ["reconstruct", str(tmp_path / "anim.gif"), str(photo),
                                   "--method", "network", "--out", str(tmp_path / "o")])
    text = " ".join(res.output.split())
    assert res.exit_code == 0, res.output
    assert "anim.gif: an image of 3 frames, read as a photo: its first only" in text, text
    assert text.count("frames, read as a photo") == 1
