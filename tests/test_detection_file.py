"""Detection files (``data.detection_file``): S2HAND's exchange format, OpenPose's own
per-image JSON and ``reconstruct --keypoints`` on it, and ``data.keypoints``' forwarding."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from monohand.cli import app
from monohand.data.detection_file import detections_by_name, load_detections, save_detections
from monohand.data.images import read_rgb
from monohand.data.mediapipe_hands import MediaPipeHands

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "hand.jpg"


def test_detection_file_round_trip(tmp_path):
    xy = np.random.default_rng(0).uniform(0, 224, size=(3, 21, 2))
    conf = np.random.default_rng(1).uniform(size=(3, 21))
    p = save_detections(tmp_path / "det.json", xy, conf, ["a.jpg", "b.jpg", "c.jpg"])
    raw = json.loads(p.read_text())
    assert np.asarray(raw[1]).shape == (3, 21, 1) and raw[2] == [["a.jpg"], ["b.jpg"], ["c.jpg"]]
    x2, c2, names = load_detections(p)
    assert np.allclose(x2, xy) and np.allclose(c2, conf) and names == ["a.jpg", "b.jpg", "c.jpg"]
    p.write_text(json.dumps([xy.tolist(), conf.tolist()[:2], [["a"]] * 3]))
    with pytest.raises(ValueError, match="det.json"):
        load_detections(p)


def test_detections_of_another_split_never_place_this_splits_images():
    """Both FreiHAND splits number their images from 00000000.jpg: a detections file of one
    split's folder matches nothing of the other (it once placed the evaluation crops with
    the training images' keypoints); plain names match by file name, an image's first hand
    (its most confident) wins."""
    names = ["d/training/rgb/00000000.jpg", "d/training/rgb/00000001.jpg",
             "photos/00000001.jpg", "photos/00000001.jpg"]  # fmt: skip
    assert detections_by_name(names, "training") == {"00000000.jpg": 0, "00000001.jpg": 1}
    assert detections_by_name(names, "evaluation") == {"00000001.jpg": 2}
    assert detections_by_name(names) == {"00000000.jpg": 0, "00000001.jpg": 1}


def test_predict_refuses_another_splits_detections(tmp_path):
    """``predict --crop-keypoints`` with ``detect``'s file of the training images on the
    evaluation split: refused, naming the split to detect on (not silently placed)."""
    from monohand.data.freihand import DatasetError, read_freihand
    from monohand.data.synthetic import SynthConfig, generate
    from monohand.predict import _crop_keypoints

    root = tmp_path / "s"
    generate(root, SynthConfig(num=4, size=64, eval_fraction=0.5, seed=3))
    train_names = [str(root / "training" / "rgb" / f"{i:08d}.jpg") for i in range(2)]
    det = save_detections(tmp_path / "det.json", np.full((2, 21, 2), 30.0), np.ones((2, 21)),
                          train_names)  # fmt: skip
    Ks = read_freihand(root, "evaluation").K
    with pytest.raises(DatasetError, match="the training split's: monohand detect .*evaluation"):
        _crop_keypoints(root, "evaluation", Ks, str(det))
    Ks = read_freihand(root, "training").K
    np.testing.assert_allclose(_crop_keypoints(root, "training", Ks, str(det)), 30.0)
    # as training labels of the evaluation split: refused when the dataset is made
    from monohand.data.freihand import FreiHANDDataset

    with pytest.raises(DatasetError, match="detections of another split's images"):
        FreiHANDDataset(root, "evaluation", labels=det)
    assert len(FreiHANDDataset(root, "training", labels=det)) == 2



def test_the_former_module_forwards_its_names_with_a_warning():
    """``data.keypoints`` split into ``data.detection_file`` and ``data.mediapipe_hands``
    (2026-12-06): its names are found there still, the same objects, with a
    DeprecationWarning naming the new home; an unknown name is an AttributeError."""
    import monohand.data.detection_file as files
    import monohand.data.keypoints as old
    import monohand.data.mediapipe_hands as mp

    for name, home in (("MediaPipeHands", mp), ("TTA_VIEWS", mp), ("load_detections", files),
                       ("save_detections", files)):  # fmt: skip
        with pytest.warns(DeprecationWarning, match=f"now monohand.data.{home.__name__[14:]}"):
            assert getattr(old, name) is getattr(home, name)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        old.nothing  # noqa: B018


def _openpose(people: list[dict]) -> dict:
    """An OpenPose ``--write_json`` record (its keys as written, body and face left empty)."""
    return {"version": 1.3, "people": [{"person_id": [-1], "pose_keypoints_2d": [],
                                        "face_keypoints_2d": [], **p} for p in people]}


def test_openpose_hands_are_read_with_their_sides_and_missing_joints(tmp_path):
    """The people's hands, best first: (x, y, c) triples of FreiHAND's order; a hand OpenPose
    did not find (zeros) or one without its wrist or middle knuckle, with under 10 joints, or
    in one spot is left out; a joint not found gets confidence 0 and the found joints' centre;
    a hand two skeletons claim is kept once (two hands shaking stay two); a UTF-8
    byte-order mark is read past; normalised coordinates, a wrong count, a person that is no
    object, people without hand keypoints, UTF-16 text and a file that is no OpenPose record
    are named."""
    from monohand.data.detection_file import load_openpose_hands, openpose_file_for

    rng = np.random.default_rng(0)
    xy = rng.uniform(100, 300, (21, 2))
    conf = rng.uniform(0.2, 0.9, 21)
    right = np.column_stack([xy, conf])
    right[7] = 0.0  # one joint not found
    left = np.column_stack([xy + 200, conf])
    few = np.column_stack([xy + [0, 400], conf])  # (another right hand: another person's)
    few[10:] = 0.0  # 10 joints found, wrist and knuckle among them: enough
    few[:, 2] *= 0.5  # the least sure hand: last
    no_wrist = np.column_stack([xy, conf])
    no_wrist[0] = 0.0
    no_knuckle = np.column_stack([xy, conf])
    no_knuckle[9] = 0.0
    nine = np.column_stack([xy, conf])
    nine[8:] = 0.0
    nine[9] = [*xy[9], 0.5]  # 9 joints found, knuckle among them: too few
    spot = np.column_stack([np.full((21, 2), 150.0), conf])
    people = [{"hand_right_keypoints_2d": right.ravel().tolist(),
               "hand_left_keypoints_2d": left.ravel().tolist()},
              {"hand_right_keypoints_2d": [0.0] * 63, "hand_left_keypoints_2d": []},
              {"hand_right_keypoints_2d": few.ravel().tolist(),
               "hand_left_keypoints_2d": no_wrist.ravel().tolist()},
              {"hand_right_keypoints_2d": no_knuckle.ravel().tolist(),
               "hand_left_keypoints_2d": nine.ravel().tolist()},
              {"hand_right_keypoints_2d": spot.ravel().tolist()}]  # fmt: skip
    path = tmp_path / "photo_keypoints.json"
    path.write_text(json.dumps(_openpose(people)))
    left_out: list[str] = []
    hands = load_openpose_hands(path, left_out)
    assert [h.side for h in hands] == ["left", "right", "right"]  # by score: left's all found
    # each hand given but not taken, with why (person 1's zeros: no hand found, not listed)
    assert left_out == ["people[2].hand_left_keypoints_2d: without its wrist",
                        "people[3].hand_right_keypoints_2d: without its middle knuckle",
                        "people[3].hand_left_keypoints_2d: without 10 joints (it has 9)",
                        "people[4].hand_right_keypoints_2d: its joints in one spot"], left_out
    assert hands[0].score >= hands[1].score >= hands[2].score
    hands = [hands[1], hands[0], hands[2]]
    r = hands[0]
    assert r.world is None and r.confidence[7] == 0 and np.isclose(r.confidence[3], conf[3])
    found = np.arange(21) != 7
    np.testing.assert_allclose(r.keypoints[found], xy[found])
    np.testing.assert_allclose(r.keypoints[7], xy[found].mean(0))
    assert np.isclose(r.score, conf[found].mean())
    np.testing.assert_allclose(hands[1].keypoints, xy + 200)
    assert (hands[2].confidence[10:] == 0).all()
    # where the command looks: the file, or <stem>_keypoints.json in a folder
    assert openpose_file_for("a/photo.jpg", path) == path
    assert openpose_file_for("a/photo.jpg", tmp_path) == path
    # a hand two people's skeletons both claim (the weaker reading first, a pixel off; one
    # reading as a left hand) is kept once, the better reading; two right hands shaking,
    # boxes overlapping but joints apart, stay two
    weaker = right + [1.0, 0.0, -0.1]
    path.write_text(json.dumps(_openpose([{"hand_right_keypoints_2d": weaker.ravel().tolist(),
                                           "hand_left_keypoints_2d": weaker.ravel().tolist()},
                                          {"hand_right_keypoints_2d":
                                           right.ravel().tolist()}])))  # fmt: skip
    (once,) = load_openpose_hands(path)
    assert once.side == "right"
    np.testing.assert_allclose(once.keypoints[found], xy[found])
    hand = np.column_stack([np.linspace(0, 1, 21), np.linspace(0, 1, 21) ** 2]) * [120, 60]
    shake = [np.column_stack([hand + 100, conf]),
             np.column_stack([hand * [-1, 1] + [220, 100], conf])]  # (the same box)
    path.write_text(json.dumps(_openpose([{"hand_right_keypoints_2d": h.ravel().tolist()}
                                          for h in shake])))  # fmt: skip
    assert len(load_openpose_hands(path)) == 2
    # OpenPose before 1.2 wrote its hands without "_2d"
    path.write_text(json.dumps({"people": [{"hand_right_keypoints": right.ravel().tolist()}]}))
    (old,) = load_openpose_hands(path)
    assert old.side == "right" and np.allclose(old.keypoints[found], xy[found])
    # no one in the photo; hand lists for some people only
    path.write_text(json.dumps(_openpose([])))
    assert load_openpose_hands(path) == []
    path.write_text(json.dumps(_openpose([{"hand_right_keypoints_2d": []}, people[0]])))
    assert len(load_openpose_hands(path)) == 2
    # a UTF-8 byte-order mark (Windows' editors write one) is read past
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(_openpose(people)).encode())
    assert len(load_openpose_hands(path)) == 3
    for bad, words in (({"people": [{"hand_right_keypoints_2d": [1.0] * 60}]},
                        "people[0].hand_right_keypoints_2d: expected 63 numbers"),
                       (_openpose([{"hand_right_keypoints_2d":
                                    np.column_stack([xy / 400, conf]).ravel().tolist()}]),
                        "--keypoint_scale"),
                       ({"people": ["x"]}, "people[0]: expected an object"),
                       (_openpose([{"hand_right_keypoints_2d": [],
                                    "hand_left_keypoints_2d": []}] * 2),
                        "2 people but no hand keypoints (OpenPose writes them with --hand)"),
                       (_openpose([{}]), "1 person but no hand keypoints"),
                       ([[], [], []], "it looks like a detections file ([xy, values, "
                                      "filenames], monohand detect's)"),
                       ([1, 2], "not an OpenPose keypoints file")):  # fmt: skip
        (tmp_path / "bad.json").write_text(json.dumps(bad))
        with pytest.raises(ValueError, match=re.escape(words)):
            load_openpose_hands(tmp_path / "bad.json")
    (tmp_path / "bad.json").write_text(json.dumps(_openpose(people)), encoding="utf-16")
    with pytest.raises(ValueError, match="bad.json: UTF-16 text.*save it as UTF-8"):
        load_openpose_hands(tmp_path / "bad.json")


def test_reconstruct_takes_openpose_keypoints_for_photos(tmp_path):
    """``--keypoints``: the hands of an OpenPose file (or a folder of them) are reconstructed
    in MediaPipe's place, as given; a photo without its file is skipped naming the file; one
    file for several photos, and --sequence, are refused."""
    with MediaPipeHands(max_hands=1) as det:
        (found,) = det.detect(read_rgb(EXAMPLE))
    triples = np.column_stack([found.keypoints, np.full(21, 0.8)])
    triples[7] = 0.0  # a joint OpenPose did not find
    folder = tmp_path / "openpose"
    folder.mkdir()
    (folder / "hand_keypoints.json").write_text(json.dumps(_openpose(
        [{"hand_right_keypoints_2d": triples.ravel().tolist()}])))  # fmt: skip
    res = CliRunner().invoke(app, ["reconstruct", str(EXAMPLE), "--keypoints", str(folder),
                                   "--method", "fit", "--out", str(tmp_path / "out")])  # fmt: skip
    assert res.exit_code == 0, res.output
    (h,) = json.loads((tmp_path / "out" / "hand.json").read_text())["hands"]
    seen = np.arange(21) != 7
    np.testing.assert_allclose(np.array(h["keypoints2d_detected"])[seen], found.keypoints[seen],
                               atol=1e-4)  # fmt: skip
    assert h["side"] == "right" and np.allclose(np.array(h["confidence"])[seen], 0.8)
    # its distance to the keypoints over the joints found, not the missing one's placeholder
    off = np.linalg.norm(np.array(h["joints2d"]) - np.array(h["keypoints2d_detected"]), axis=1)
    assert np.isclose(h["fit"]["reprojection_px"], off[seen].mean(), rtol=1e-4)
    # the JSON names the file the keypoints came from, as its schema says
    from importlib import resources

    import jsonschema

    record = json.loads((tmp_path / "out" / "hand.json").read_text())
    assert record["keypoints_file"] == str(folder / "hand_keypoints.json")
    schema = json.loads((resources.files("monohand") / "schemas" /
                         "reconstruction.schema.json").read_text())  # fmt: skip
    jsonschema.validate(record, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**record, "keypoints_file": 3}, schema)
    other = tmp_path / "other.jpg"
    other.write_bytes(EXAMPLE.read_bytes())
    res = CliRunner().invoke(app, ["reconstruct", str(EXAMPLE), str(other), "--keypoints",
                                   str(folder), "--method", "fit", "--out",
                                   str(tmp_path / "o2")])  # fmt: skip
    text = " ".join(res.output.split())
    assert res.exit_code == 0, text  # the photo with a file done, the other skipped
    assert f"other_keypoints.json: no such file (--keypoints for {other})" in text, text
    assert "1 of 2 input(s) reconstructed" in text, text
    # a folder with no file for any photo: said before anything loads
    (folder / "notes.json").write_text("{}")
    res = CliRunner().invoke(app, ["reconstruct", str(other), "--keypoints", str(folder),
                                   "--out", str(tmp_path / "o5")])  # fmt: skip
    text = " ".join(res.output.replace("│", "").split())
    assert res.exit_code == 2, text
    assert "holds no <stem>_keypoints.json for any of the 1 photo(s)" in text, text
    assert "other_keypoints.json" in text and "notes.json" in text, text
    # one file named for another photo: used, and said
    res = CliRunner().invoke(app, ["reconstruct", str(other), "--keypoints",
                                   str(folder / "hand_keypoints.json"), "--method", "fit",
                                   "--out", str(tmp_path / "o6")])  # fmt: skip
    text = " ".join(res.output.split())
    assert res.exit_code == 0 and "is not named for" in text, text
    # a file whose only hand is not taken: the command says why
    wristless = triples.copy()
    wristless[0] = 0.0
    (folder / "hand_keypoints.json").write_text(json.dumps(_openpose(
        [{"hand_right_keypoints_2d": wristless.ravel().tolist()}])))  # fmt: skip
    res = CliRunner().invoke(app, ["reconstruct", str(EXAMPLE), "--keypoints", str(folder),
                                   "--method", "fit", "--out", str(tmp_path / "o7")])  # fmt: skip
    text = " ".join(res.output.split())
    assert res.exit_code == 1, text
    assert "(people[0].hand_right_keypoints_2d: without its wrist; a hand needs" in text, text
    res = CliRunner().invoke(app, ["reconstruct", str(EXAMPLE), "--sequence", "--keypoints",
                                   str(folder), "--out", str(tmp_path / "o3")])  # fmt: skip
    assert res.exit_code == 2 and "for photos only" in res.output
    one = folder / "hand_keypoints.json"
    res = CliRunner().invoke(app, ["reconstruct", str(EXAMPLE), str(other), "--keypoints",
                                   str(one), "--out", str(tmp_path / "o4")])  # fmt: skip
    text = " ".join(res.output.replace("│", "").split())
    assert res.exit_code == 2 and "would give its hands to 2 photos" in text, text
