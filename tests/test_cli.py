"""The command line: help, the demo, convert-model, bad input."""

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


def _verbs() -> list[str]:
    """Every subcommand registered on the app (typer names them from their functions)."""
    return [c.name or c.callback.__name__.replace("_", "-") for c in app.registered_commands]


def test_help_lists_every_subcommand():
    out = subprocess.run(
        [sys.executable, "-m", "monohand", "--help"], capture_output=True, text=True, check=True
    ).stdout
    verbs = _verbs()
    assert len(verbs) >= 11
    for verb in verbs:
        assert f" {verb} " in out, verb


def test_every_subcommand_has_help():
    for verb in _verbs():
        res = runner.invoke(app, [verb, "--help"])
        assert res.exit_code == 0, (verb, res.output)
        assert "Usage:" in res.output and verb in res.output


def test_demo_writes_meshes_keypoints_and_picture(tmp_path):
    res = runner.invoke(app, ["demo", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    kp = json.loads((tmp_path / "keypoints.json").read_text())
    assert set(kp) == {"rest", "mean", "posed", "left"}
    posed = trimesh.load(tmp_path / "posed.ply", process=False)
    assert len(posed.vertices) == 1528 and len(posed.faces) == 3052  # OpenHand by default
    assert posed.visual.vertex_colors.shape == (1528, 4)
    # The left hand is the posed right hand mirrored in x.
    assert np.allclose(np.array(kp["left"]) * [-1, 1, 1], kp["posed"], atol=1e-6)
    assert (tmp_path / "hands.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".*tmp*"))


def test_demo_with_the_box_hand(tmp_path):
    res = runner.invoke(app, ["demo", "--out", str(tmp_path), "--model", "boxhand"])
    assert res.exit_code == 0, res.output
    assert len(trimesh.load(tmp_path / "posed.ply", process=False).faces) == 256


def test_demo_with_a_missing_model_file(tmp_path):
    res = runner.invoke(app, ["demo", "--out", str(tmp_path), "--model", "nope/MANO_RIGHT.pkl"])
    assert res.exit_code == 2 and "no such file" in res.output
    bad = tmp_path / "MANO_RIGHT.pkl"
    bad.write_bytes(b"garbage")
    res = runner.invoke(app, ["demo", "--out", str(tmp_path / "o"), "--model", str(bad)])
    assert res.exit_code == 2 and "MANO_RIGHT.pkl" in res.output, res.output  # a usage error


def test_demo_with_a_mano_file(tmp_path, mano_pkl):
    res = runner.invoke(app, ["demo", "--out", str(tmp_path), "--model", str(mano_pkl)])
    assert res.exit_code == 0, res.output
    assert len(trimesh.load(tmp_path / "rest.ply", process=False).vertices) == 778


def test_convert_model_cli(tmp_path, mano_pkl):
    dst = tmp_path / "mano.npz"
    res = runner.invoke(app, ["convert-model", str(mano_pkl), str(dst)])
    assert res.exit_code == 0, res.output
    with np.load(dst, allow_pickle=False) as z:
        assert z["J_regressor"].shape == (16, 778)


def test_convert_openhand_to_mano_layout(tmp_path):
    dst = tmp_path / "OpenHand_RIGHT.pkl"
    res = runner.invoke(app, ["convert-model", "openhand", str(dst)])
    assert res.exit_code == 0, res.output
    # what the file is for is said: MANO's layout, not MANO's sizes
    assert "OpenHand's 1,528 vertices" in " ".join(res.output.split())
    from monohand.models.assets import load_pickle

    d = load_pickle(dst)
    assert d["v_template"].shape == (1528, 3) and d["J_regressor"].shape == (16, 1528)


def test_convert_model_refuses_bad_input(tmp_path):
    bad = tmp_path / "MANO_RIGHT.pkl"
    bad.write_bytes(b"garbage")
    res = runner.invoke(app, ["convert-model", str(bad), str(tmp_path / "o.npz")])
    assert res.exit_code == 2 and "MANO_RIGHT.pkl" in res.output  # as reconstruct's answer
    assert not (tmp_path / "o.npz").exists()
    res = runner.invoke(app, ["convert-model", str(bad), str(tmp_path / "o.txt")])
    assert res.exit_code == 2
    # a folder that is not NIMBLE's: named as such (it said "expected a MANO .pkl")
    (tmp_path / "empty").mkdir()
    res = runner.invoke(app, ["convert-model", str(tmp_path / "empty"), str(tmp_path / "n.npz")])
    text = " ".join(res.output.split())
    assert res.exit_code == 2 and "a folder without NIMBLE's files (NIMBLE_DICT_9137.pkl" in text


def test_native_chatter_is_filtered_from_stderr_and_the_rest_kept():
    import os
    import subprocess
    import sys

    from monohand.native_log import is_noise

    # Lines as MediaPipe 0.10 / LiteRT print them on this machine.
    for line in (
        b"INFO: [environment.cc:36] Creating LiteRT environment with options",
        b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",
        b"WARNING: Logging before InitGoogle() is written to STDERR",
        b"W0000 00:00:1795680762.853615    9015 inference_runner_litert.cc:1433] Input tensor "
        b"memory is not aligned according to LiteRt's memory alignment requirements.",
        b"I0000 00:00:1795680762.8 9015 gl_context.cc:369] GL version: 3.2",
    ):
        assert is_noise(line), line
    for line in (b"E0000 00:00:1.0 1 x.cc:3] model failed", b"Segmentation fault", b"INFO:x"):
        assert not is_noise(line), line

    # Inside a window: chatter dropped, errors and 300 kB of other output kept (a file, not
    # a pipe: nothing blocks); outside: everything passes; Python's stderr is never held.
    script = (
        "import os, sys\n"
        "from monohand import native_log\n"
        "native_log.enable()\n"
        "with native_log.quiet_native():\n"
        "    os.write(2, b'INFO: [a.cc:1] chatter\\nW0000 00:00:1.0 1 a.cc:2] chatter\\n'\n"
        "                b'E0000 00:00:1.0 1 a.cc:3] native error\\n' + b'x' * 300_000)\n"
        "    print('python says', file=sys.stderr)\n"
        "os.write(2, b'INFO: outside\\n')\n"
        "raise SystemExit(3)\n"
    )
    run = lambda env: subprocess.run(  # noqa: E731
        [sys.executable, "-c", script], capture_output=True, env={**os.environ, **env}, timeout=60
    )
    res = run({})
    err = res.stderr.decode()
    assert res.returncode == 3
    assert "native error" in err and "x" * 300_000 in err and "INFO: outside" in err
    assert "chatter" not in err
    assert err.index("python says") < err.index("native error")  # not held with the window's
    res = run({"MONOHAND_NATIVE_LOG": "1"})
    assert res.stderr.decode().count("chatter") == 2


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
    (["--fit-steps", "0"], "--fit-steps", "needs at least 1 steps; its default is 40"),
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
    """A folder holds one run's files: a rerun removes what it no longer writes (a hand's
    mesh, a format, every file of a photo that now has no hand); hand.jpg and hand.png in one
    run get hand_jpg.* and hand_png.*."""
    from PIL import Image

    from monohand.export import output_stems, stale_outputs

    photo = Path(__file__).resolve().parents[1] / "examples" / "hand.jpg"
    out = tmp_path / "out"
    out.mkdir()
    for old in ("hand_1.glb", "hand_3.obj", "hand_0.ply", "hand_2_0.glb", "handy_0.glb"):
        (out / old).write_text("from an earlier run")
    assert [p.name for p in stale_outputs(out, "hand")] == ["hand_0.ply", "hand_1.glb",
                                                            "hand_3.obj"]  # fmt: skip
    res = CliRunner().invoke(app, ["reconstruct", str(photo), "--method", "network",
                                   "--out", str(out)])  # fmt: skip
    assert res.exit_code == 0, res.output
    names = sorted(p.name for p in out.iterdir())
    assert names == ["hand.json", "hand_0.glb", "hand_2_0.glb", "hand_overlay.png",
                     "handy_0.glb"], names  # fmt: skip
    # The same stem: now with no hand in it, every file of the earlier run goes.
    blank = tmp_path / "blank" / "hand.png"
    blank.parent.mkdir()
    Image.fromarray(np.full((120, 160, 3), 90, np.uint8)).save(blank)
    res = CliRunner().invoke(app, ["reconstruct", str(blank), "--method", "network",
                                   "--out", str(out)])  # fmt: skip
    assert res.exit_code == 1 and "no hand found" in res.output
    # said, not silent: hand.json, hand_0.glb and hand_overlay.png went
    assert "earlier run's 3 file(s) of hand.* removed" in " ".join(res.output.split())
    assert sorted(p.name for p in out.iterdir()) == ["hand_2_0.glb", "handy_0.glb"]
    (tmp_path / "text.jpg").write_text("not an image")
    res = CliRunner().invoke(app, ["reconstruct", str(tmp_path / "text.jpg"), "--method",
                                   "network", "--out", str(out)])  # fmt: skip
    assert res.exit_code == 1 and "no input could be read" in res.output, res.output
    stems = output_stems([Path("a/hand.jpg"), Path("b/hand.png"), Path("c/other.jpg")])
    assert list(stems.values()) == ["hand_jpg", "hand_png", "other"]


def test_help_keeps_bracketed_words_and_the_version_is_printed():
    from monohand import __version__

    res = CliRunner().invoke(app, ["predict", "--help"])
    assert res.exit_code == 0 and "[xyz (N,21,3), verts (N,V,3)]" in " ".join(res.output.split())
    res = CliRunner().invoke(app, ["--version"])
    assert res.exit_code == 0 and res.output.strip() == f"monohand {__version__}"
    assert "Examples:" in CliRunner().invoke(app, ["--help"]).output


def test_small_mistakes_get_named_causes(tmp_path):
    """An empty --select range, and random bytes given to convert-model as a MANO pickle."""
    (tmp_path / "pred.json").write_text("[[], []]")
    res = CliRunner().invoke(app, ["evaluate", str(tmp_path / "pred.json"), str(tmp_path),
                                   "--select", "5:2", "--out", str(tmp_path / "o")])  # fmt: skip
    assert res.exit_code == 2 and "selects no sample" in res.output
    res = CliRunner().invoke(app, ["evaluate", str(tmp_path / "pred.json"), str(tmp_path),
                                   "--select", "1:2:3", "--out", str(tmp_path / "o")])  # fmt: skip
    assert res.exit_code == 2 and "START:STOP" in res.output
    junk = tmp_path / "MANO_RIGHT.pkl"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    res = CliRunner().invoke(app, ["convert-model", str(junk), str(tmp_path / "m.npz")])
    assert res.exit_code != 0 and "not a model file" in res.output, res.output
    # brackets in a message are text, not styles: "[xyz_list, verts_list]" stays
    (tmp_path / "dict.json").write_text('{"a": 1}')
    (tmp_path / "ann.json").write_text(json.dumps({"samples": [_sample()]}))
    res = CliRunner().invoke(app, ["evaluate", str(tmp_path / "dict.json"),
                                   str(tmp_path / "ann.json"), "--out", str(tmp_path / "o")])
    assert "expected [xyz_list, verts_list], got dict" in " ".join(res.output.split()), res.output
    odd = tmp_path / "photo[1].jpg"
    odd.write_text("not an image")
    res = CliRunner().invoke(app, ["reconstruct", str(odd), "--out", str(tmp_path / "o")])
    assert "photo[1].jpg" in res.output, res.output


def test_every_command_shows_examples():
    names = [c.name or c.callback.__name__ for c in app.registered_commands]
    assert len(names) == 12, names  # every verb registered (each family's module imported)
    for name in names:
        res = CliRunner().invoke(app, [name.replace("_", "-"), "--help"])
        assert res.exit_code == 0 and "Examples:  monohand" in res.output, name


def test_main_turns_library_errors_into_one_line(monkeypatch, capfd):
    """What a command does not catch itself: a user-input error is one line and exit 1; a
    bug keeps its traceback."""
    import monohand.cli as cli
    from monohand.data.images import ImageError

    def failing(error):
        def run():
            raise error

        return run

    monkeypatch.setattr(cli, "app", failing(ImageError("photo.jpg: not a readable image")))
    with pytest.raises(SystemExit) as stop:
        cli.main()
    assert stop.value.code == 1
    assert "error: photo.jpg: not a readable image" in " ".join(capfd.readouterr().err.split())
    monkeypatch.setattr(cli, "app", failing(RuntimeError("a bug")))
    with pytest.raises(RuntimeError, match="a bug"):
        cli.main()


@pytest.mark.parametrize("args, words", [
    (["--method", "foo"], "unknown 'foo'"),
    (["--checkpoint", "none.ckpt"], "no such file"),
    (["--every", "0"], "greater than or equal to 1"),
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


# Each verb's mistakes: (the command line, the option named, words of the message). FILE is
# a file, DIR a folder; the work each verb would do is replaced by a failure.
USAGE_ERRORS = [
    (["demo", "--out", "FILE"], "--out", "is a file"),
    (["demo", "--model", "foo"], "--model", "openhand, boxhand, or a MANO"),
    (["convert-model", "none.pkl", "x.npz"], "SRC", "no such file"),
    (["convert-model", "openhand", "FILE/x.pkl"], "DST", "FILE is a file, not a folder"),
    (["convert-model", "openhand", "x.fbx"], "DST", "expected a .npz or .pt or .pkl"),
    (["evaluate", "none.json", "DIR", "--out", "o"], "PRED", "no such file"),
    (["evaluate", "FILE", "DIR", "--out", "FILE"], "--out", "is a file"),
    (["evaluate", "FILE", "DIR", "--out", "o", "--split", "test"], "--split", "unknown 'test'"),
    (["evaluate", "FILE", "none", "--out", "o"], "GT", "no such file or folder"),
    (["evaluate", "FILE", "FILE", "--out", "o", "--split", "training"], "--split",
     "has no splits"),
    (["detect", "FILE", "--out", "DIR"], "--out", "is a folder"),
    (["detect", "FILE", "--out", "d.txt"], "--out", "expected a .json file"),
    (["detect", "FILE", "--out", "d.json", "--max-hands", "0"], "--max-hands", "equal to 1"),
    (["synth", "FILE"], "OUT_DIR", "is a file"),
    (["synth", "DIR"], "OUT_DIR", "pass --overwrite"),
    (["synth", "s", "--num", "0"], "", "num must be at least 1"),
    (["synth", "s", "--size", "4"], "", "size must be at least 32"),
    (["synth", "s", "--workers", "0"], "", "workers and batch must be at least 1"),
    (["synth", "s", "--eval-fraction", "1.5"], "", "eval_fraction must be in [0, 1)"),
    (["synth", "s", "--fill", "0.9"], "--fill", "expected two numbers"),
    (["predict", "none.ckpt", "DIR"], "CHECKPOINT", "no such file"),
    (["predict", "FILE", "none"], "DATA", "no such folder"),
    (["predict", "FILE", "DIR", "--out", "DIR"], "--out", "is a folder"),
    (["predict", "FILE", "DIR", "--batch", "0"], "--batch", "equal to 1"),
    (["predict", "FILE", "DIR", "--format", "coco"], "--format", "unknown 'coco'"),
    (["predict", "FILE", "DIR", "--format", "ho3d", "--split", "training"], "--split",
     "one of train, evaluation"),
    (["predict", "FILE", "DIR", "--crop-keypoints", "none.json"], "--crop-keypoints",
     "no such file"),
    (["train", "none.yaml"], "", "none.yaml: no such config file"),
    (["train", "CONFIG", "out_dir=FILE"], "out_dir", "is a file"),
    (["train", "CONFIG", "steps=0"], "", "the overrides of"),
    (["train", "CONFIG", "lr=0"], "", "lr must be positive"),
    (["train", "CONFIG", "data.root=nope"], "", "data.root=nope: no such folder"),
    (["reconstruct", "FILE", "--method", "fit", "--checkpoint", "FILE"], "--checkpoint",
     "the fit uses no network"),
    (["reconstruct", "FILE", "--method", "network", "--fit-steps", "5"], "--fit-steps",
     "does not fit"),
    (["evaluate-real", "DIR", "--out", "o"], "", "DIR: a folder, not an annotations file"),
    (["train", "CONFIG", "out_dir="], "", "'out_dir=': an empty value"),
    (["train", "CONFIG", "data.photos=DIR", "data.crop=mediapipe"], "",
     "data.photos=DIR: not a photo set"),
    (["train", "CONFIG", "data.photos=FILE", "data.crop=mediapipe"], "",
     "data.photos=FILE: a file"),
    (["train", "CONFIG", "data.photos=none", "data.crop=mediapipe"], "",
     "data.photos=none: no such folder"),
    (["train", "DIR"], "", "DIR: a folder, not a config file"),
    (["train", "steps=2"], "", "the first argument is a YAML config"),
    (["train", "CONFIG", "model.pretrained=true"], "", "no ResNet weights ship"),
    (["train", "CONFIG", "data.synth_num=4"], "", "4 training images, fewer than one batch"),
    (["train", "CONFIG", "data.synth_size=8"], "", "data.synth_*: size must be at least 32"),
    (["train", "CONFIG", "model.name=nimble"], "", "give model.path=PATH"),
    (["train", "CONFIG", "model.name=manoo"], "", "model.name='manoo': unknown"),
    (["train", "CONFIG", "data.size=0"], "", "data.size=0: the network's input"),
    (["train", "CONFIG", "loss.bone=-1"], "", "loss.bone=-1.0: loss weights are 0"),
    (["train", "CONFIG", "--resume", "--overwrite"], "", "give one"),
    (["ablate", "CONFIG", "CONFIG", "--out", "a"], "", "configs named alike: smoke"),
    (["ablate", "CONFIG", "OTHER", "--out", "a"], "", "model.name='manoo': unknown"),
    (["ablate", "CONFIG", "--out", "a", "data.synth_num=8"], "", "give data.synth_num=11 or more"),
    (["predict", "FILE", "PHOTOS"], "DATA", "is a photo set"),
    (["train", "CONFIG", "steps"], "", "'steps': an override is key=value"),
    (["train", "CONFIG", "bogus=1"], "", "Key 'bogus' not in 'TrainConfig'"),
    (["ablate", "CONFIG", "--out", "FILE"], "--out", "is a file"),
    (["ablate", "CONFIG", "none.yaml", "--out", "a"], "", "none.yaml: no such config file"),
    (["serve", "--port", "70000"], "--port", "less than or equal to 65535"),
    (["serve", "--example", "none.jpg"], "--example", "no such file"),
    (["serve", "--checkpoint", "none.ckpt"], "--checkpoint", "no such file"),
    (["serve", "--max-upload-mb", "0"], "--max-upload-mb", "greater than or equal to 0.01"),
]


@pytest.mark.parametrize("args, option, words", USAGE_ERRORS,
                         ids=[" ".join(a) for a, _, _ in USAGE_ERRORS])  # fmt: skip
def test_every_verb_answers_usage_errors_before_any_work(tmp_path, monkeypatch, args, option,
                                                         words):  # fmt: skip
    """Exit 2, the option named, and none of the verb's work begun nor any file written."""
    import uvicorn

    import monohand.ablate
    import monohand.data.keypoints
    import monohand.data.synthetic
    import monohand.demo
    import monohand.evaluate.io
    import monohand.models.mano
    import monohand.predict
    import monohand.train

    def work(*a, **k):
        raise AssertionError("work began before the options were checked")

    for module, name in [(monohand.demo, "run_demo"), (monohand.models.mano, "convert_mano"),
                         (monohand.models.mano, "save_mano_layout"),
                         (monohand.evaluate.io, "load_ground_truth"),
                         (monohand.data.keypoints, "detect_files"),
                         (monohand.data.synthetic, "generate"),
                         (monohand.predict, "predict_split"), (monohand.predict, "predict_ho3d"),
                         (monohand.train, "train"), (monohand.ablate, "_prepare_data"),
                         (uvicorn, "run")]:  # fmt: skip
        monkeypatch.setattr(module, name, work)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "FILE").write_text("x")
    (tmp_path / "DIR").mkdir()
    (tmp_path / "PHOTOS").mkdir()
    (tmp_path / "PHOTOS" / "photo_set.json").write_text("{}")
    config = Path(__file__).resolve().parents[1] / "configs" / "smoke.yaml"
    (tmp_path / "other.yaml").write_text(config.read_text().replace("name: openhand",
                                                                    "name: manoo"))
    args = [{"CONFIG": str(config), "OTHER": "other.yaml"}.get(a, a) for a in args]
    before = sorted(tmp_path.rglob("*"))
    res = CliRunner().invoke(app, args)
    text = " ".join(res.output.replace("│", "").split())
    assert res.exit_code == 2, res.output
    assert option in text and words in text, res.output
    assert "full_key" not in text and "Traceback" not in text  # one line, not OmegaConf's four
    assert sorted(tmp_path.rglob("*")) == before


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
    assert json.loads((out / "hand.json").read_text())["method"] == "network"
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not a photo")
    res = CliRunner().invoke(app, ["reconstruct", str(empty), "--out", str(tmp_path / "o2")])
    assert res.exit_code == 2 and "no image or video found in" in " ".join(res.output.split())
    assert not (tmp_path / "o2").exists()
    # a missing video is named before any work, as a missing photo is
    for missing in ("gone.mp4", "gone.jpg"):
        res = CliRunner().invoke(app, ["reconstruct", str(photo), str(tmp_path / missing),
                                       "--out", str(tmp_path / "o3")])  # fmt: skip
        text = " ".join(res.output.split())
        assert res.exit_code == 2 and f"{missing}: no such file or folder" in text, res.output
        assert not (tmp_path / "o3").exists()


def test_a_camera_too_wide_for_its_photo_is_said_once(tmp_path):
    """A --K meant for a smaller image (169 degrees across this photo) and an EXIF focal
    length of 5 mm (35 mm equivalent: 148 degrees) are said, naming the photo and where K
    came from; run as a user runs it (a process of its own: pytest would catch the
    library's warning itself), the EXIF one is said once: the library's own warning of the
    same K is silenced."""
    import subprocess
    import sys

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


def test_same_file_names_in_two_folders_and_any_case_of_format_keep_every_result(tmp_path):
    """a/hand.jpg and b/hand.jpg (a folder searched recursively) get a_hand_jpg.* and
    b_hand_jpg.*, not one overwriting the other; "--formats GLB,.Gltf" writes .glb and .gltf
    files, alike (textured, glTF's y-up frame); each .gltf holds its own mesh (no buffer
    files beside it shared by every mesh)."""
    from monohand.export import output_stems, save_mesh

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
    # two different meshes in one folder, each read back as itself
    box, ball = trimesh.creation.box(), trimesh.creation.icosphere(1)
    for m, name in ((box, "box.gltf"), (ball, "ball.GLTF")):
        save_mesh(tmp_path / name, m.vertices, m.faces)
    for m, name in ((box, "box.gltf"), (ball, "ball.GLTF")):
        back = trimesh.load(tmp_path / name, force="mesh", file_type="gltf")
        np.testing.assert_allclose(np.asarray(back.vertices), m.vertices, atol=1e-6)
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

    # the ground truth itself, in millimetres: scored, with a note on the units (it printed
    # an MPJPE of hundreds of thousands of millimetres without a word); in metres, no note
    xyz = np.asarray(json.loads((root / "evaluation_xyz.json").read_text()))
    for scale, noted in ((1000.0, True), (1.0, False)):
        pred.write_text(json.dumps([(xyz * scale).tolist(), []]))
        res = CliRunner().invoke(app, ["evaluate", str(pred), str(root), "--out",
                                       str(tmp_path / "o")])  # fmt: skip
        text = " ".join(res.output.split())
        assert res.exit_code == 0, res.output
        assert ("millimetres or centimetres?" in text) == noted, text


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
