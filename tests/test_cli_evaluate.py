"""The scoring verbs (``cli/evaluate.py``): evaluate and evaluate-real, their usage errors and
what they say."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from monohand.cli import app

runner = CliRunner()


@pytest.mark.parametrize("args, words", [
    (["--method", "foo"], "unknown 'foo'"),
    (["--checkpoint", "none.ckpt"], "no such file"),
    (["--every", "0"], "greater than or equal to 1"),
    (["--model", "mano"], "mano needs --model-path"),
    (["--model", "hand"], "unknown model 'hand'"),
])  # fmt: skip
def test_evaluate_real_answers_usage_errors_before_any_work(tmp_path, monkeypatch, args,
                                                            words):  # fmt: skip
    import monohand.evaluate.real as real

    monkeypatch.setattr(real, "run_real_benchmark", lambda *a, **k: pytest.fail("work began"))
    ann = tmp_path / "annotations.json"
    ann.write_text('{"samples": []}')
    res = CliRunner().invoke(app, ["evaluate-real", str(ann), "--out", str(tmp_path / "o"),
                                   *args])  # fmt: skip
    assert res.exit_code == 2 and words in " ".join(res.output.replace("│", "").split())
    res = CliRunner().invoke(app, ["evaluate-real", str(ann), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "no sample with 3D joints" in res.output


def _sample(**change) -> dict:
    s = {"image": "a.png", "K": [[500, 0, 64], [0, 500, 64], [0, 0, 1]],
         "joints3d": [[0.0, 0.0, 0.5]] * 21, "joints2d": [[64.0, 64.0]] * 21, "hand": "right"}
    s.update(change)
    return {k: v for k, v in s.items() if v is not None}


@pytest.mark.parametrize("bad, words", [
    ({"image": "nope.png"}, "1 image(s) not found, e.g."),
    ({"joints2d": None}, "sample 1 (a.png): missing key 'joints2d'"),
    ({"K": [[1, 0], [0, 1]]}, "sample 1 (a.png): K has shape (2, 2), expected (3, 3)"),
    ({"joints3d": [[float("nan"), 0.0, 0.5]] * 21}, "sample 1 (a.png): joints3d not finite"),
    ({"hand": "middle"}, "hand must be 'left' or 'right', got 'middle'"),
])  # fmt: skip
def test_evaluate_real_names_a_bad_sample_before_any_work(tmp_path, monkeypatch, bad, words):
    """A fault in the second sample of an annotation file: exit 2, the file, the sample and
    the fault named, before the first image is reconstructed."""
    import monohand.evaluate.real as real

    monkeypatch.setattr(real, "run_real_benchmark", lambda *a, **k: pytest.fail("work began"))
    Image.fromarray(np.zeros((128, 128, 3), np.uint8)).save(tmp_path / "a.png")
    ann = tmp_path / "annotations.json"
    ann.write_text(json.dumps({"samples": [_sample(), _sample(**bad)]}))
    res = CliRunner().invoke(app, ["evaluate-real", str(ann), "--out", str(tmp_path / "o")])
    text = " ".join(res.output.split())
    assert res.exit_code == 2 and str(ann) in text and words in text, res.output


def test_evaluate_real_takes_the_hand_model_as_reconstruct_does(tmp_path, monkeypatch,
                                                                  mano_pkl):  # fmt: skip
    """--model/--model-path reach the benchmark's reconstructor (any case: MANO is mano); a
    MANO model's default method is the fit."""
    import monohand.evaluate.real as real

    seen = {}
    monkeypatch.setattr(real, "run_real_benchmark",
                        lambda *a, config, **k: seen.setdefault("cfg", config) and {"ran": 1})
    Image.fromarray(np.zeros((128, 128, 3), np.uint8)).save(tmp_path / "a.png")
    ann = tmp_path / "annotations.json"
    ann.write_text(json.dumps({"samples": [_sample()]}))
    res = CliRunner().invoke(app, ["evaluate-real", str(ann), "--out", str(tmp_path / "o"),
                                   "--model", "MANO", "--model-path", str(mano_pkl)])  # fmt: skip
    assert res.exit_code == 0, res.output
    cfg = seen["cfg"]
    assert (cfg.model, cfg.model_path, cfg.method) == ("mano", str(mano_pkl), "fit")


def test_evaluate_real_asks_only_for_the_images_it_will_read(tmp_path, monkeypatch):
    """--every 2 reads samples 0, 2, ...: a missing image at sample 1 is not a fault."""
    import monohand.evaluate.real as real

    monkeypatch.setattr(real, "run_real_benchmark", lambda *a, **k: {"ran": True})
    Image.fromarray(np.zeros((128, 128, 3), np.uint8)).save(tmp_path / "a.png")
    ann = tmp_path / "annotations.json"
    ann.write_text(json.dumps({"samples": [_sample(), _sample(image="nope.png"), _sample()]}))
    res = CliRunner().invoke(app, ["evaluate-real", str(ann), "--out", str(tmp_path / "o"),
                                   "--every", "2"])  # fmt: skip
    assert res.exit_code == 0 and "ran" in res.output, res.output


def test_evaluate_names_meshes_of_another_hand_model(tmp_path):
    """Predicted meshes of MANO's 778 vertices against a set of OpenHand's 1,528: both files
    and both counts named (it said 'verts_pred must have shape (N, 1528, 3)')."""
    from monohand.data.synthetic import SynthConfig, generate

    root = tmp_path / "set"
    generate(root, SynthConfig(num=4, size=64, seed=0, eval_fraction=0.5))
    n = len(json.loads((root / "evaluation_xyz.json").read_text()))
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps([np.zeros((n, 21, 3)).tolist(), np.zeros((n, 778, 3)).tolist()]))
    res = CliRunner().invoke(app, ["evaluate", str(pred), str(root), "--out", str(tmp_path / "o")])
    text = " ".join(res.output.split())
    assert res.exit_code == 1 and f"{pred}: meshes of 778 vertices" in text, res.output
    assert "of 1,528" in text, res.output

    # the ground truth itself, in millimetres (also root-relative, which a depth test let
    # through as "behind the camera"): refused, naming both sizes and the way to score it
    # anyway (it printed an MPJPE of hundreds of thousands of millimetres without a word,
    # then with a note only, exit 0, the aligned row looking right); in metres, no note
    xyz = np.asarray(json.loads((root / "evaluation_xyz.json").read_text()))
    spread = np.sqrt(((xyz - xyz.mean(1, keepdims=True)) ** 2).sum(-1).mean(1))
    gt_size = np.median(spread)
    rel = xyz - xyz[:, :1]
    for scale, flag, code, joints in ((1000.0, [], 2, xyz), (1000.0, ["--any-units"], 0, xyz),
                                      (1.0, [], 0, xyz), (1000.0, [], 2, rel)):  # fmt: skip
        pred.write_text(json.dumps([(joints * scale).tolist(), []]))
        out = tmp_path / f"o{scale:g}{len(flag)}{joints is rel}"
        res = CliRunner().invoke(app, ["evaluate", str(pred), str(root), "--out", str(out),
                                       *flag])  # fmt: skip
        text = " ".join(res.output.split())
        assert res.exit_code == code, res.output
        assert ("millimetres or centimetres?" in text) == (scale > 1), text
        if scale > 1:
            assert f"against {gt_size:.3g} m from their centres" in text, text
        assert (out / "metrics.json").is_file() == (code == 0)
        if code == 2:
            assert "--any-units scores it anyway" in text, text


def test_a_set_without_evaluation_samples_is_said_when_made_and_when_scored(tmp_path):
    """synth --num 1: a note that no evaluation sample was made; evaluate on it: the split is
    empty (it said 'keypoints must have shape (N, 21, 3), got (0,)')."""
    root = tmp_path / "one"
    res = CliRunner().invoke(app, ["synth", str(root), "--num", "1", "--size", "64"])
    assert res.exit_code == 0 and "no evaluation sample" in res.output, res.output
    pred = tmp_path / "pred.json"
    pred.write_text("[[], []]")
    res = CliRunner().invoke(app, ["evaluate", str(pred), str(root), "--out", str(tmp_path / "o")])
    assert res.exit_code == 1 and "the evaluation split is empty" in res.output, res.output
    # predict on it: the same (it said "evaluation_K.json: shape (0,), expected (N, 3, 3)")
    from monohand.nets.handnet import shipped_network_path

    res = CliRunner().invoke(app, ["predict", str(shipped_network_path()), str(root), "--out",
                                   str(tmp_path / "p.json")])  # fmt: skip
    text = " ".join(res.output.split())
    assert res.exit_code != 0 and "evaluation_K.json: the split is empty" in text, res.output
    # "shipped" names the network that ships, as evaluate-real's default does (it said
    # "shipped: no such file"); its training split has the one sample
    res = CliRunner().invoke(app, ["predict", "shipped", str(root), "--split", "training",
                                   "--out", str(tmp_path / "p.json")])  # fmt: skip
    text = " ".join(res.output.split())
    assert res.exit_code == 0 and "1 predictions" in text, res.output
    assert "placed from the projected ground truth (--crop-keypoints gt)" in text, text


def test_mistaken_prediction_files_and_folders_are_explained(tmp_path):
    """A new user's mistakes (2026-12-06 trial): predictions of the other split (its name
    offered), a real-photo folder for a FreiHAND one, a JSON object, a bare xyz_list, a null
    for a hand not found; each refused naming what to do."""
    from monohand.data.synthetic import SynthConfig, generate

    root = tmp_path / "set"
    generate(root, SynthConfig(num=5, size=64, seed=0, eval_fraction=0.2))  # 4 + 1
    run = CliRunner().invoke
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps([np.zeros((4, 21, 3)).tolist(), []]))
    res = run(app, ["evaluate", str(pred), str(root), "--out", str(tmp_path / "o")])
    text = " ".join(res.output.split())
    assert res.exit_code == 1 and ("4 predictions for 1 samples in " in text and
                                   "evaluation split (its training split has 4: --split "
                                   "training)" in text), text  # fmt: skip
    real = tmp_path / "real"
    real.mkdir()
    (real / "annotations.json").write_text("{}")
    res = run(app, ["evaluate", str(pred), str(real), "--out", str(tmp_path / "o")])
    text = " ".join(res.output.split())
    assert res.exit_code == 1 and "holds annotations.json (a real-photo set): give that " \
        "file" in text, text
    for sel in ("0:100", "4:", "-10:", ":0", "-1:2"):  # past an end, or empty: said
        res = run(app, ["evaluate", str(pred), str(root), "--split", "training", "--select", sel,
                        "--out", str(tmp_path / "o")])  # fmt: skip
        text = " ".join(res.output.split())
        assert res.exit_code == 2 and f"--select {sel}: the ground truth has 4 samples (0:4 " \
            "is all of them" in text, text
    res = run(app, ["evaluate", str(pred), str(root), "--split", "training", "--select", "-4:",
                    "--out", str(tmp_path / "o")])  # fmt: skip
    assert res.exit_code == 0, res.output  # the last four, counted from the end
    xyz = np.zeros((4, 21, 3)).tolist()
    gaps = [*xyz[:1], None, *xyz[2:3], None]
    for content, words in (({"xyz_list": xyz, "verts_list": []}, "a JSON object; expected a "
                            "list [xyz_list (N, 21, 3), verts_list (N, V, 3) or []] (FreiHAND's "
                            "format); with these keys: [obj['xyz_list'], obj['verts_list']]"),
                           (xyz, "got a list of 4 items (a bare xyz_list? write [xyz_list, "
                            "[]])"),
                           ([gaps, []], "xyz_list: sample 1 is null (and 1 more): every "
                            "sample needs a prediction")):  # fmt: skip
        pred.write_text(json.dumps(content))
        res = run(app, ["evaluate", str(pred), str(root), "--split", "training", "--out",
                        str(tmp_path / "o")])  # fmt: skip
        text = " ".join(res.output.split())
        assert res.exit_code == 1 and words in text, text


def test_a_set_for_evaluation_only(tmp_path):
    """--eval-fraction 1: every sample in the evaluation split (it was refused: [0, 1))."""
    res = CliRunner().invoke(app, ["synth", str(tmp_path / "s"), "--num", "3", "--size", "64",
                                   "--eval-fraction", "1"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert len(json.loads((tmp_path / "s" / "evaluation_xyz.json").read_text())) == 3
    assert json.loads((tmp_path / "s" / "training_xyz.json").read_text()) == []
    from monohand.data.synthetic import SynthConfig

    assert SynthConfig(num=1, eval_fraction=1.0).num_evaluation == 1  # (one image: still)
    assert SynthConfig(num=1, eval_fraction=0.6).num_evaluation == 0  # (it trains)
