"""Reconstruction: cameras, crops, and the command end to end (the fit itself: test_fit.py)."""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh
from PIL import Image
from typer.testing import CliRunner

from monohand.cli import app
from monohand.data.augment import crop_around
from monohand.data.intrinsics import CameraWarning, camera_for_image, parse_K
from monohand.fit import FitConfig, FitInputs, fit_hands
from monohand.render.camera import project

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "hand.jpg"


def test_crop_K_matches_the_crop_pixels():
    img = np.zeros((200, 300, 3), np.uint8)
    img[120, 210] = 255  # one bright pixel
    K = np.array([[400.0, 0, 150], [0, 400.0, 100], [0, 0, 1]])
    kp = np.array([[180.0, 90.0], [240.0, 150.0]])
    crop, Kc = crop_around(img, K, kp, 64)
    X = np.linalg.inv(K) @ np.array([210.0, 120.0, 1.0]) * 0.5  # a point seen at that pixel
    uv = project(torch.as_tensor(X)[None, None], torch.as_tensor(Kc)[None])[0, 0].numpy()
    peak = np.unravel_index(crop[..., 0].argmax(), crop.shape[:2])
    assert np.abs(np.array(peak[::-1]) - uv).max() <= 1.0


def test_camera_sources(tmp_path):
    K, src = camera_for_image(None, (480, 640))
    assert src == "default" and np.isclose(K[0, 2], 319.5)
    assert np.isclose(np.degrees(2 * np.arctan(320 / K[0, 0])), 55.0)
    img = Image.new("RGB", (640, 480))
    exif = Image.Exif()
    exif[0x8769] = {41989: 26}  # FocalLengthIn35mmFilm
    img.save(tmp_path / "e.jpg", exif=exif)
    K, src = camera_for_image(tmp_path / "e.jpg", (480, 640))
    assert src == "exif" and np.isclose(K[0, 0], 26 * 800 / np.hypot(36, 24))
    # PIL's (W, H) for (H, W): said, naming the file (the principal point comes out turned)
    with pytest.warns(CameraWarning, match=r"e\.jpg: size \(640, 480\) is the 640x480"):
        K, _ = camera_for_image(tmp_path / "e.jpg", Image.open(tmp_path / "e.jpg").size)
    assert np.isclose(K[0, 2], 239.5)  # (as asked: the caller may have turned the image)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        camera_for_image(tmp_path / "e.jpg", (240, 320))  # a smaller copy: not a mistake
    # a phone photo stored sideways (EXIF orientation 6): its pixels as stored have the
    # upright size turned, which the warning names as a possibility too
    side = Image.new("RGB", (640, 480))
    tags = Image.Exif()
    tags[0x0112] = 6
    side.save(tmp_path / "side.jpg", exif=tags)
    with pytest.warns(CameraWarning, match=r"side\.jpg: .* or the shape of its pixels as "
                                           r"stored, before its EXIF orientation"):
        camera_for_image(tmp_path / "side.jpg", np.asarray(Image.open(tmp_path / "side.jpg")).shape)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the upright shape (read_rgb's): no warning
        camera_for_image(tmp_path / "side.jpg", (640, 480))
    # a given K is checked here, not first when a photo is reconstructed with it
    with pytest.raises(ValueError, match=r"expected a \(3, 3\) camera matrix, got shape"):
        camera_for_image(None, (480, 640), K=[[1000, 0, 320], [0, 1000, 240]])
    assert np.allclose(parse_K("500,510,100,80")[:2], [[500, 0, 100], [0, 510, 80]])
    (tmp_path / "k.json").write_text(json.dumps({"K": [[600, 0, 10], [0, 600, 20], [0, 0, 1]]}))
    assert parse_K(str(tmp_path / "k.json"))[0, 0] == 600
    with pytest.raises(ValueError):
        parse_K("1,2,3")
    (tmp_path / "k2.json").write_text(json.dumps({"K": [[600, 0, 10], [0, 600, 20], [0, 0, 2]]}))
    with pytest.raises(ValueError, match=r"k2\.json: .*last row \[0\.0, 0\.0, 2\.0\]"):
        parse_K(str(tmp_path / "k2.json"))  # a camera matrix's last row is [0, 0, 1]
    # Spaces serve as commas; each mistake says what is wrong with it.
    assert np.array_equal(parse_K("500 510 100 80"), parse_K("500,510,100,80"))
    for text, words in (("a,b,c,d", "not all numbers"), ("1,2", "got 2 value(s)"),
                        ("800,800,,424", "got an empty value"), ("nan,1,2,3", "NaN"),
                        ("0,0,424,282", "must be positive, got 0, 0")):  # fmt: skip
        with pytest.raises(ValueError, match=re.escape(words)):
            parse_K(text)


def test_a_principal_point_outside_the_photo_is_named():
    from monohand.data.intrinsics import principal_point_outside

    K = parse_K("800,800,424,282")
    assert principal_point_outside(K, (565, 848)) is None
    assert principal_point_outside(parse_K("800,800,-0.5,564.5"), (565, 848)) is None  # corners
    warn = principal_point_outside(parse_K("800,800,5000,5000"), (565, 848))
    assert "(5000, 5000)" in warn and "848x565" in warn
    assert principal_point_outside(parse_K("800,800,424,600"), (565, 848)) is not None


def test_a_field_of_view_too_wide_or_narrow_for_the_image_is_named():
    """The horizontal field of view 2 atan(W / 2 fx), against a phone's ultra-wide camera:
    at most 140 degrees passes, a crop (narrow, principal point anywhere) passes the field of
    view and only the command's principal-point warning names it; under half a degree is
    named too (a 128-pixel crop of a photo taken at 3,000 px focal length is 2.4)."""
    from monohand.data.intrinsics import camera_doubt, implausible_field_of_view

    f140 = 424 / np.tan(np.radians(70))  # 140 degrees across 848 pixels
    assert implausible_field_of_view(parse_K(f"{f140 * 1.001},1,424,282"), (565, 848)) is None
    warn = implausible_field_of_view(parse_K(f"{f140 * 0.99},1,424,282"), (565, 848))
    assert "a 140-degree horizontal field of view" in warn and "848x565" in warn
    crop = parse_K("2000,2000,-300,100")  # a 256² crop from a large photo's corner
    assert implausible_field_of_view(crop, (256, 256)) is None
    assert "principal point" in camera_doubt(crop, (256, 256))
    assert camera_doubt(parse_K("800,800,424,282"), (565, 848)) is None
    # too narrow: under half a degree (a focal length in the wrong unit); a crop's is not
    f_half = 424 / np.tan(np.radians(0.25))
    assert implausible_field_of_view(parse_K(f"{f_half * 0.999},1,424,282"), (565, 848)) is None
    warn = implausible_field_of_view(parse_K("1e9,1e9,320,240"), (480, 640))
    assert "narrower than any lens" in warn and "640x480" in warn
    assert implausible_field_of_view(parse_K("3000,3000,64,64"), (128, 128)) is None


@pytest.mark.skipif(not EXAMPLE.is_file(), reason="example image absent")
def test_reconstruct_command_end_to_end(tmp_path):
    # The example, a corrupt file and an image without a hand: messages per file, exit 0.
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    Image.fromarray(np.full((120, 160, 3), 90, np.uint8)).save(tmp_path / "empty.png")
    grey = tmp_path / "grey.png"
    Image.open(EXAMPLE).convert("L").save(grey)
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["reconstruct", str(EXAMPLE), str(tmp_path / "broken.jpg"),
                                   str(tmp_path / "empty.png"), str(grey), "--out", str(out),
                                   "--formats", ".glb,.obj"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "broken.jpg" in res.output and "empty.png" in res.output
    rec = json.loads((out / "hand.json").read_text())
    h = rec["hands"][0]
    assert rec["K_source"] == "default" and h["side"] == "right"
    assert np.asarray(h["joints3d"]).shape == (21, 3) and np.asarray(h["vertices"]).shape == (
        1528,
        3,
    )
    kp = np.asarray(h["keypoints2d_detected"])
    assert len(h["confidence"]) == 21 and h["fit"]["reprojection_px"] < 0.1 * np.linalg.norm(
        kp[9] - kp[0]
    )
    assert 0.2 < np.asarray(h["joints3d"])[:, 2].mean() < 1.5  # metres in front of the camera
    glb = trimesh.load(out / "hand_0.glb", force="mesh")
    assert len(glb.faces) == 3052 and glb.visual.uv.shape[1] == 2
    # Smooth normals are stored (viewers shade a mesh without them flat), equal on both
    # copies of a vertex split along a UV seam.
    assert b'"NORMAL"' in (out / "hand_0.glb").read_bytes()[:4096]
    (stored,) = trimesh.load(out / "hand_0.glb", process=False).geometry.values()
    n = stored.vertex_normals
    _, first, inverse = np.unique(np.round(stored.vertices, 6), axis=0, return_index=True,
                                  return_inverse=True)  # fmt: skip
    np.testing.assert_allclose(n, n[first][inverse.ravel()], atol=1e-4)
    assert (out / "hand_0.obj").is_file() and (out / "hand_overlay.png").is_file()
    assert not list(out.glob(".*tmp*"))
    # Only bad inputs: non-zero exit.
    res = CliRunner().invoke(app, ["reconstruct", str(tmp_path / "broken.jpg"), "--out", str(out)])
    assert res.exit_code == 1
    res = CliRunner().invoke(app, ["reconstruct", str(EXAMPLE), "--method", "network",
                                   "--checkpoint", str(tmp_path / "none.ckpt"), "--out", str(out)])
    assert res.exit_code == 2 and "none.ckpt: no such file" in res.output
    res = CliRunner().invoke(app, ["reconstruct", str(EXAMPLE), "--method", "fit",
                                   "--fit-steps", "20", "--out", str(out)])  # fmt: skip
    assert res.exit_code == 2 and "--fit-steps" in res.output


def test_fit_steps_option_sets_the_fit():
    from monohand.cli.common import fit_config
    from monohand.fit import FitConfig
    from monohand.reconstruct import hybrid_fit_config

    assert fit_config(None, "fit") == FitConfig() and fit_config(150, "fit").iters == 150
    # the hybrid's own settings (no 3D steps: 20 is allowed)
    assert fit_config(None) == hybrid_fit_config() and fit_config(20).iters == 20


@pytest.mark.skipif(not EXAMPLE.is_file(), reason="example image absent")
def test_reconstruct_reads_videos_frame_by_frame(tmp_path):
    import cv2

    frame = cv2.cvtColor(np.asarray(Image.open(EXAMPLE)), cv2.COLOR_RGB2BGR)
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, frame.shape[1::-1])
    for _ in range(2):
        writer.write(frame)
    writer.release()
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["reconstruct", str(video), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert (out / "clip_00000.json").is_file() and (out / "clip_00001_0.glb").is_file()


def test_fitting_and_reconstruct_with_mano(tmp_path, mano_pkl):
    from monohand.models.mano import MANO

    mano = MANO(mano_pkl, flat_hand_mean=True)
    g = torch.Generator().manual_seed(5)
    pose = torch.as_tensor(mano.data.hands_mean, dtype=torch.float32)[None] + 0.2 * torch.randn(
        1, 45, generator=g
    )
    truth = mano(
        global_orient=torch.tensor([[2.8, 0.1, 0.3]]),
        hand_pose=pose,
        transl=torch.tensor([[0.0, 0.0, 0.6]]),
    )
    K = torch.tensor([[[600.0, 0, 320], [0, 600.0, 240], [0, 0, 1]]])
    world = truth.joints - truth.joints.mean(1, keepdim=True)
    res = fit_hands(
        mano, FitInputs(project(truth.joints, K), torch.ones(1, 21), K, world=world), FitConfig()
    )
    assert res.reprojection_px.item() < 8.0 and res.texture.shape == (1, 0)  # hand ~150 px
    if EXAMPLE.is_file():
        out = tmp_path / "out"
        res = CliRunner().invoke(
            app,
            [
                "reconstruct",
                str(EXAMPLE),
                "--model",
                "mano",
                "--model-path",
                str(mano_pkl),
                "--out",
                str(out),
            ],
        )
        assert res.exit_code == 0, res.output
        rec = json.loads((out / "hand.json").read_text())
        assert rec["hands"][0]["model"] == "mano" and len(rec["hands"][0]["vertices"]) == 778
        assert len(trimesh.load(out / "hand_0.glb", force="mesh").vertices) == 778
    res = CliRunner().invoke(
        app, ["reconstruct", str(tmp_path), "--model", "mano", "--out", str(tmp_path)]
    )
    assert res.exit_code == 2 and "needs --model-path" in res.output


REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "realhands" / "annotations.json"


@pytest.mark.skipif(not REAL.is_file(), reason="real-photo set absent")
def test_evaluate_real_by_fitting_writes_metrics_and_best_and_worst_cases(tmp_path):
    import csv

    res = CliRunner().invoke(app, ["evaluate-real", str(REAL), "--every", "40", "--fit-steps",
                                   "60", "--out", str(tmp_path)])  # fmt: skip
    assert res.exit_code == 0, res.output
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["hands"] == m["photos"] == 5 and m["detected"] >= 4
    assert (m["method"], m["model"]) == ("hybrid", "openhand") and "model_path" not in m
    assert 3 < m["aligned"]["mpjpe_mm"] < 25 and 0 < m["aligned"]["auc_j"] < 1
    rows = list(csv.DictReader((tmp_path / "per_image.csv").open()))
    errs = [float(r["pa_mpjpe_mm"]) for r in rows if r["detected"] == "1"]
    assert np.isclose(np.mean(errs), m["aligned"]["mpjpe_mm"], atol=0.01)
    # the detector's own 3D, per hand, and the hands the fit ended further from the truth
    cue = [(float(r["pa_mpjpe_mm"]), float(r["detector_pa_mpjpe_mm"]),
            int(r["worse_than_detector"])) for r in rows if r["detected"] == "1"]  # fmt: skip
    assert len(cue) == m["detector_3d"]["hands"]
    assert all(3 < c < 40 and w == int(e > c) for e, c, w in cue)
    assert sum(w for *_, w in cue) == m["detector_3d"]["worse_than_detector"]
    assert np.isclose(np.mean([c for _, c, _ in cue]), m["detector_3d"]["aligned_mpjpe_mm"],
                      atol=0.01)
    for name in ("worst_0", "best_0", "best_1"):
        assert (tmp_path / f"{name}_overlay.png").is_file()


def test_reconstruct_photo_writes_the_files_and_a_handless_photo_clears_them(tmp_path):
    """The per-photo job of the command and the web page: the stages in order, K from the
    default camera, the files of the stem; a photo with no hand writes nothing and removes
    what the earlier run wrote for that stem (another photo's, asked to replace it:
    ``overwrite``)."""
    from monohand.data.images import read_rgb
    from monohand.outputs import OutputClash
    from monohand.reconstruct import ReconstructConfig, Reconstructor, reconstruct_photo

    image = read_rgb(EXAMPLE)
    stages = []
    with Reconstructor(ReconstructConfig(method="network")) as rec:
        res = reconstruct_photo(rec, image, tmp_path, "a", "hand.jpg", stage=stages.append)
        assert res.hands and res.K_source == "default"
        assert stages == ["detecting hands", f"fitting {len(res.hands)} hand(s)",
                          "writing the mesh and the overlay"]  # fmt: skip
        want_K, _ = camera_for_image(None, image.shape[:2])
        np.testing.assert_array_equal(res.K, want_K)
        assert {p.name for p in res.files} == {"a.json", "a_overlay.png",
                                               *(f"a_{i}.glb" for i in range(len(res.hands)))}
        assert all(p.is_file() for p in res.files)
        blank = np.full_like(image, 127)
        detect, asked = rec.detect, []
        rec.detect = lambda *a, **k: asked.append(1) or detect(*a, **k)
        with pytest.raises(OutputClash, match="another photo of that name"):
            reconstruct_photo(rec, blank, tmp_path, "a", K=want_K)
        (tmp_path / "b_0.glb").write_text("the user's")
        with pytest.raises(OutputClash, match="b_0.glb: exists and monohand did not write it"):
            reconstruct_photo(rec, image, tmp_path, "b", "hand.jpg")
        assert asked == []  # both refused before any work
        (tmp_path / "b_0.glb").unlink()
        rec.detect = detect
        assert all(p.is_file() for p in res.files)
        none = reconstruct_photo(rec, blank, tmp_path, "a", K=want_K, overwrite=True)
    assert none.hands == [] and none.files == [] and none.K_source == "given"
    assert not any(tmp_path.iterdir())


def test_captioned_puts_the_text_above_the_picture():
    from monohand.viz import captioned

    pic = Image.fromarray(np.full((30, 200, 3), 40, np.uint8))
    out = np.asarray(captioned(pic, "worst 0: a.jpg, PA-MPJPE 9.00 mm"))
    assert out.shape == (52, 200, 3)
    assert (out[22:] == 40).all()  # the picture itself, moved down
    strip = out[:22]
    assert (strip == 255).mean() > 0.8 and (strip < 128).any()  # white, with dark text
    # a caption longer than the picture is wide: wrapped onto lines, not cut off at its edge
    long = "WORST 0: /A/VERY/LONG/ABSOLUTE/PATH/TO/IMAGES/GE2019/00000123.PNG (index 7), " \
        "PA-MPJPE 19.20 MM, the detector's 3D 11.30 mm, HYBRID; " + "W" * 60  # wide letters
    for width in (200, 400, 560):
        wide = Image.fromarray(np.full((30, width, 3), 40, np.uint8))
        out = np.asarray(captioned(wide, long))
        lines = (out.shape[0] - 30 - 8) // 14
        assert out.shape[1] == width and lines >= 2 and (out[-30:] == 40).all()
        ink = (out[: out.shape[0] - 30] < 128).any(-1)
        assert not ink[:, width - 3 :].any()  # every line within the width
        assert all(ink[8 + 14 * k : 8 + 14 * (k + 1) - 2].any() for k in range(lines - 1))
    assert all(ink[8 + 14 * k : 8 + 14 * (k + 1) - 2].any() for k in range(lines - 1))


def test_overlay_draws_the_result_and_rings_the_detection():
    """The skeleton is the reconstruction's projected joints (the result), not the detector's
    keypoints, which get rings (white for the first hand, the second's yellow); each hand is
    named as in the JSON, in its rings' colour."""
    from monohand.data.detection import HandDetection
    from monohand.record import HandReconstruction
    from monohand.viz import FINGER_COLOURS, HAND_COLOURS, overlay_image

    rng = np.random.default_rng(0)
    joints2d = np.column_stack([np.linspace(20, 180, 21), np.full(21, 60.0)])
    joints2d[1] = [100, 20]  # the thumb's first bone: wrist (20, 60) -> (100, 20)
    det = HandDetection(joints2d + [0, 80], np.full(21, 1.0), 0.9, "right", None)
    tri = np.array([[0.3, 0.3, 1.0], [0.31, 0.3, 1.0], [0.3, 0.31, 1.0]])  # a speck, far off
    hand = HandReconstruction("right", det, rng.normal(size=(21, 3)), joints2d, tri,
                              np.array([[0, 1, 2]]), np.full((3, 3), 0.5), None, None, None,
                              {}, {"reprojection_px": 0.0})  # fmt: skip
    K = np.array([[100.0, 0, 99.5], [0, 100.0, 99.5], [0, 0, 1]])
    img = np.asarray(overlay_image(np.zeros((200, 200, 3), np.uint8), K, [hand],
                                   side_views=False))  # fmt: skip
    assert img.shape == (200, 200, 3)
    assert tuple(img[40, 60]) == FINGER_COLOURS[1]  # midway along the result's thumb bone
    assert tuple(img[120, 60]) == (0, 0, 0)  # the same bone of the detection: not drawn
    from monohand.viz import TRUTH_COLOUR

    marked = np.asarray(overlay_image(np.zeros((200, 200, 3), np.uint8), K, [hand],
                                      side_views=False, truth=[np.full((21, 2), 170.0)]))
    assert tuple(marked[170, 170]) == TRUTH_COLOUR  # an annotated joint's cross
    assert tuple(img[170, 170]) == (0, 0, 0)  # (none without)
    alone = np.asarray(overlay_image(np.zeros((200, 200, 3), np.uint8), K, [],
                                     truth=[np.full((21, 2), 170.0)]))  # fmt: skip
    assert tuple(alone[170, 170]) == TRUTH_COLOUR  # a hand missed: its truth still shown
    ring = img[140 - 6 : 140 + 7, 60 - 6 : 60 + 7]  # around a detected keypoint, (60, 140)
    assert (ring == 255).all(-1).any()
    label = img[64:78, 26:90]  # "hand 0 (right)" right of and below the wrist
    assert (label.min(-1) > 180).any() and ((label == 30).all(-1)).any()  # light text on dark
    # two hands at the same wrist: their names one under the other, neither covered
    from PIL import Image, ImageDraw

    from monohand.viz import _label

    draw = ImageDraw.Draw(Image.new("RGB", (200, 200)))
    first = _label(draw, (26, 64), "hand 0 (right)")
    second = _label(draw, (26, 64), "hand 1 (left)", [first])
    assert second[1] >= first[3] and second[0] == first[0]
    two = np.asarray(overlay_image(np.zeros((200, 200, 3), np.uint8), K, [hand, hand],
                                   side_views=False))[:, :200]  # fmt: skip
    below = two[int(second[1]) + 1 : int(second[3]) - 1, 26:90]
    yellow = np.abs(below.astype(int) - HAND_COLOURS[1]).max(-1) < 40  # text is antialiased
    assert yellow.any() and ((below == 30).all(-1)).any()  # the second name, in its colour
    ring = two[140 - 6 : 140 + 7, 60 - 6 : 60 + 7]  # the second hand's rings over the first's
    assert (ring == HAND_COLOURS[1]).all(-1).any()


@pytest.mark.skipif(not __import__("PIL.features").features.check("freetype2"),
                    reason="Pillow without FreeType: its one 11-pixel font")
def test_the_overlay_s_words_grow_with_the_photo():
    """A tall photo's sheet is shown scaled to a screen: its labels grow with it (Pillow's
    11-pixel font was 3 pixels tall on a phone photo's sheet seen whole), its panels are as
    tall as the photo, one per hand beside it and one from above."""
    from monohand.data.detection import HandDetection
    from monohand.record import HandReconstruction
    from monohand.viz import label_size, overlay_image

    def label_height(panel: np.ndarray) -> int:
        """Rows of the dark box of the label at the panel's top left."""
        top = panel[: len(panel) // 2, 4:40]
        return int(((top == 30).all(-1).any(1)).sum())

    joints2d = np.column_stack([np.linspace(100, 400, 21), np.full(21, 300.0)])
    det = HandDetection(joints2d, np.ones(21), 0.9, "right")
    tri = np.array([[0.0, 0.0, 0.5], [0.02, 0.0, 0.5], [0.0, 0.02, 0.51]])
    hand = HandReconstruction("right", det, np.zeros((21, 3)), joints2d, tri,
                              np.array([[0, 1, 2]]), np.full((3, 3), 0.5), None, None, None,
                              {}, {"reprojection_px": 0.0})  # fmt: skip
    K = np.array([[800.0, 0, 319.5], [0, 800.0, 479.5], [0, 0, 1]])
    heights = {}
    for h, w in ((960, 640), (300, 200)):
        sheet = np.asarray(overlay_image(np.zeros((h, w, 3), np.uint8), K * [[w / 640], [h / 960],
                                         [1]], [hand, hand]))  # fmt: skip
        assert sheet.shape == (h, w + 3 * h, 3)  # the photo, two sides, from above
        heights[h] = [label_height(sheet[:, x:]) for x in (w, w + h, w + 2 * h)]
    assert label_size(960) == 24 and label_size(300) == 11
    assert all(22 <= x <= 34 for x in heights[960]), heights  # 24-pixel text, its box
    assert all(9 <= x <= 15 for x in heights[300]), heights


def test_the_overlay_shows_two_hands_from_above_by_depth():
    """With two hands, a last panel shows them from above, the camera below: the farther
    hand higher up, the one to the right on the right, each in its own colours."""
    import monohand
    from monohand.data.detection import HandDetection
    from monohand.record import hand_record
    from monohand.viz import overlay_image

    hand = monohand.create("openhand")
    K = np.array([[300.0, 0, 99.5], [0, 300.0, 99.5], [0, 0, 1]])
    hands = []
    for x, z, colour in ((-0.06, 0.45, (1.0, 0, 0)), (0.06, 0.60, (0, 0, 1.0))):  # red near
        out = hand(transl=torch.tensor([[x, 0.0, z]]))
        det = HandDetection(np.zeros((21, 2)), np.ones(21), 1.0, "right", None)
        hands.append(hand_record(hand, det, out.joints[0].numpy(), out.vertices[0].numpy(), K,
                                 hand.faces.numpy(), None, None,
                                 np.tile(colour, (hand.num_vertices, 1)), {}, {}))  # fmt: skip
    sheet = np.asarray(overlay_image(np.zeros((200, 200, 3), np.uint8), K, hands))
    above = sheet[:, -200:].astype(int)  # the last panel, as tall as the photo
    red = np.argwhere((above[..., 0] > 120) & (above[..., 1] < 60) & (above[..., 2] < 60))
    blue = np.argwhere((above[..., 2] > 120) & (above[..., 0] < 60) & (above[..., 1] < 60))
    assert len(red) > 50 and len(blue) > 50
    assert blue[:, 0].mean() < red[:, 0].mean() - 40  # farther: higher up (rows)
    assert blue[:, 1].mean() > red[:, 1].mean() + 20  # to the right: on the right
    assert sheet.shape[1] == 4 * 200  # the photo, two side views, the view from above


def test_the_python_api_names_what_is_wrong_with_its_inputs():
    """``Reconstructor``'s image and K: a path, a tensor, a float or greyscale array, a K of
    another shape or without a camera's last row, and use after ``close()`` are refused with
    what to do instead; K as a nested list or a tensor is taken as the array it stands for."""
    from monohand.data.images import check_rgb
    from monohand.data.intrinsics import CameraWarning, as_intrinsics
    from monohand.reconstruct import ReconstructConfig, Reconstructor

    image = np.zeros((48, 64, 3), np.uint8)
    for bad, kind, words in (("photo.jpg", TypeError, "got a path (photo.jpg); read a file"),
                             (torch.zeros(48, 64, 3, dtype=torch.uint8), TypeError, ".numpy()"),
                             (image.astype(np.float32), ValueError, "scale floats"),
                             (image[..., 0], ValueError, "read_rgb"),
                             (image[48:], ValueError, "an empty image (64x0 pixels)")):  # fmt: skip
        with pytest.raises(kind, match=re.escape(words)):
            check_rgb(bad)
    assert check_rgb(image) is image
    K = np.array([[60.0, 0, 32], [0, 60, 24], [0, 0, 1]])
    # an image's whole shape for its size (a natural slip for shape[:2])
    np.testing.assert_array_equal(camera_for_image(None, image.shape)[0],
                                  camera_for_image(None, image.shape[:2])[0])  # fmt: skip
    for given in (K.tolist(), torch.tensor(K, dtype=torch.float32), K[None][0]):
        np.testing.assert_allclose(as_intrinsics(given), K)
    for bad, words in ((K[:2], "got shape (2, 3)"), (K[None], "got shape (1, 3, 3)"),
                       (None, "camera_for_image"), (K * [[1], [1], [2]], "[0, 0, 1]"),
                       (K * np.nan, "NaN"),
                       (-K, "fx, fy must be positive, got -60, -60")):  # fmt: skip
        with pytest.raises(ValueError, match=re.escape(words)):
            as_intrinsics(bad)
    with pytest.raises(ValueError, match="max_hands must be at least 1"):
        Reconstructor(ReconstructConfig(max_hands=0))
    with pytest.raises(ValueError, match="crop_size must be at least 16 pixels, got 0"):
        Reconstructor(ReconstructConfig(crop_size=0))
    rec = Reconstructor(ReconstructConfig(method="fit", search_windows=False))
    with pytest.raises(ValueError, match=re.escape("(3, 3) camera matrix, got shape (4,)")):
        rec(image, np.ones(4))
    with pytest.raises(TypeError, match="got a path"):
        rec("examples/hand.jpg", K)
    assert rec(image, K.tolist()) == []  # no hand in a black image, but the inputs are fine
    # a K meant for an image a tenth of the size: a 56-degree camera's focal length on an
    # image ten times wider is a 159-degree one (every hand would sit ten times too near)
    wide = K * [[0.1], [0.1], [1]]
    for call in (lambda: rec.reconstruct(image, wide, []), lambda: rec(image, wide)):
        with pytest.warns(CameraWarning, match="a 159-degree horizontal field of view") as w:
            call()
        assert w[0].filename == __file__  # the caller's line, not the library's
    rec.close()
    with pytest.raises(RuntimeError, match="this Reconstructor was closed"):
        rec(image, K)
    # one's own detections need no detector: still reconstructed after close
    from monohand.data.detection import HandDetection

    keypoints = np.column_stack([np.linspace(10, 40, 21), np.linspace(40, 10, 21)])
    hands = rec.reconstruct(image, K, [HandDetection(keypoints, np.ones(21), 1.0, "right")])
    assert len(hands) == 1 and hands[0].joints3d.shape == (21, 3)


def test_a_detector_of_ones_own_replaces_mediapipe_and_stays_the_callers():
    """``Reconstructor(detector=...)``: its hands (checked against the image, cut to
    ``max_hands``) are the ones reconstructed, for ``__call__`` as for ``detect``; ``close``
    leaves it open (it is the caller's) but the reconstructor refuses after; a detector
    without ``detect`` and a detection of another image are named."""
    from monohand.data.detection import Detector
    from monohand.data.images import read_rgb
    from monohand.reconstruct import ReconstructConfig, Reconstructor

    path = Path(__file__).resolve().parents[1] / "examples" / "hand.jpg"
    image = read_rgb(path)
    K, _ = camera_for_image(path, image.shape[:2])

    class Mine:
        """MediaPipe's hands of the example, as another detector would give them."""

        def __init__(self, hands):
            self.hands, self.calls, self.closed = hands, [], False

        def detect(self, image, windows=None):
            self.calls.append(windows)
            return list(self.hands)

        def close(self):
            self.closed = True

    with Reconstructor(ReconstructConfig(method="fit", search_windows=False)) as rec:
        found = rec.detect(image)
    assert len(found) == 1
    far = replace(found[0], keypoints=found[0].keypoints * 0.3 + 5)  # a second, small hand
    mine = Mine([found[0], far])
    assert isinstance(mine, Detector)
    cfg = ReconstructConfig(method="fit", search_windows=False, max_hands=1)
    with Reconstructor(cfg, detector=mine) as rec:
        assert rec.detect(image, windows=False) == [found[0]] and mine.calls == [False]
        (h,) = rec(image, K)
        assert h.detection is found[0]
    assert not mine.closed  # the caller's
    with pytest.raises(RuntimeError, match="this Reconstructor was closed"):
        rec(image, K)
    with pytest.raises(TypeError, match="detect\\(image, windows\\)"):
        Reconstructor(cfg, detector=object())
    wrong = Mine([replace(found[0], keypoints=found[0].keypoints + 10 * image.shape[1])])
    with Reconstructor(cfg, detector=wrong) as rec, pytest.raises(ValueError, match="outside"):
        rec(image, K)
    with Reconstructor(cfg) as rec, pytest.raises(TypeError, match="got None"):
        rec.reconstruct(image, K, None)
    nothing = Mine([])
    nothing.detect = lambda image, windows=None: None  # forgot to return
    with Reconstructor(cfg, detector=nothing) as rec, pytest.raises(
            TypeError, match=r"Mine.detect\(image, windows\) returned NoneType"):  # fmt: skip
        rec(image, K)


@pytest.mark.parametrize("method", ["fit", "network"])
def test_reprojection_px_is_the_plain_mean_for_every_method(method):
    """``fit["reprojection_px"]``: the mean pixel distance of the result's joints to the
    detected keypoints, unweighted, whatever the method (the fit's weighted one, which
    hands of tiny confidences made a few pixels while the joints lay 40 px off, is
    ``reprojection_weighted_px``)."""
    from monohand.data.images import read_rgb
    from monohand.reconstruct import ReconstructConfig, Reconstructor

    path = Path(__file__).resolve().parents[1] / "examples" / "hand.jpg"
    image = read_rgb(path)
    K, _ = camera_for_image(path, image.shape[:2])
    with Reconstructor(ReconstructConfig(method=method, search_windows=False)) as rec:
        (h,) = rec(image, K)
    plain = np.linalg.norm(h.joints2d - h.detection.keypoints, axis=1).mean()
    assert h.fit["reprojection_px"] == pytest.approx(plain, rel=1e-6)
    assert ("reprojection_weighted_px" in h.fit) == (method == "fit")
    # one precision whatever the method (the network's hands were float64)
    assert h.joints3d.dtype == h.vertices.dtype == h.joints2d.dtype == np.float32


def test_the_window_search_asks_the_network_where_one_is_loaded(monkeypatch):
    """The hybrid's (and the network method's) window search takes the shipped network as
    its second opinion on hands in doubt; the fit, which loads no network, and a checkpoint
    given by the user search without."""
    import monohand.data.window_search as ws
    from monohand.data.detection import HandDetection
    from monohand.reconstruct import ReconstructConfig, Reconstructor

    bound = {}

    def spy(net, cfg=None, second_opinion=None):
        bound["second"] = second_opinion
        return ws.search_windows

    monkeypatch.setattr(ws, "window_searcher", spy)
    image = np.zeros((120, 160, 3), np.uint8)
    kp = np.stack([np.linspace(60, 100, 21), np.linspace(100, 30, 21)], -1)
    with Reconstructor(ReconstructConfig(method="hybrid")):
        agreement = bound["second"](image, [HandDetection(kp, np.ones(21), 0.85, "right")])
        assert agreement.shape == (1,) and np.isfinite(agreement).all()
    with Reconstructor(ReconstructConfig(method="fit")):
        assert bound["second"] is None
    # a checkpoint of one's own: not asked (the bar was set on the shipped network)
    from monohand.nets.handnet import shipped_network_path

    with Reconstructor(ReconstructConfig(method="hybrid", checkpoint=str(shipped_network_path()))):
        assert bound["second"] is None


def test_fit_inputs_keep_the_ratios_of_confidences_too_small_for_float32():
    """A hand whose every confidence is under float32's smallest (the copies mostly missed
    it) still has its joints' ratios in ``FitInputs``; a hand with ordinary confidences gets
    them relative to its best joint; one with none at all, equal weights (as
    ``fit.relative_confidence``, the fit's only use of them)."""
    from monohand.data.detection import HandDetection
    from monohand.reconstruct import fit_inputs

    image = np.full((96, 96, 3), 120, np.uint8)
    K = np.array([[100.0, 0, 48], [0, 100, 48], [0, 0, 1]])
    kp = np.random.default_rng(0).uniform(30, 66, (21, 2))
    tiny = np.exp(-np.linspace(130, 140, 21))  # 1e-57 ... 1e-61: 0 in float32
    assert (tiny.astype(np.float32) == 0).all()
    ordinary = np.linspace(0.1, 0.8, 21)
    dets = [HandDetection(kp, c, 0.9, "right") for c in (tiny, ordinary, np.zeros(21))]
    got = fit_inputs(image, K, dets, 64).confidence.double().numpy()
    want = [tiny / tiny.max(), ordinary / 0.8, np.ones(21)]
    np.testing.assert_allclose(got, np.stack(want), rtol=1e-6)
