"""The command line as a whole: help and examples of every verb, one-line errors, usage errors
of every verb before any work, native log lines filtered."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from monohand.cli import app
from test_cli_evaluate import _sample  # a well-formed real-photo annotation

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


def test_help_does_not_wait_for_torch():
    """``monohand --help`` and the usage errors answered before any work import no torch
    (about a second on a laptop CPU): the verbs import their heavy modules when they run."""
    code = ("import sys\nfrom monohand.cli import main\nsys.argv = ['monohand', '--help']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print('torch' in sys.modules, file=sys.stderr)")  # fmt: skip
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)  # fmt: skip
    assert "Usage" in res.stdout and res.stderr.strip().endswith("False"), res.stderr


def test_every_subcommand_has_help():
    for verb in _verbs():
        res = runner.invoke(app, [verb, "--help"])
        assert res.exit_code == 0, (verb, res.output)
        assert "Usage:" in res.output and verb in res.output


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


def test_native_filter_leaves_a_host_s_stderr_and_is_undone():
    """A library host's redirected ``sys.stderr`` (a StringIO) keeps its messages after
    ``enable``; ``disable`` gives back the process's own ``sys.stderr`` and closes what
    ``enable`` opened (no ResourceWarning at exit), and a window after it filters nothing."""
    import subprocess
    import sys

    script = (
        "import io, os, sys, warnings\n"
        "from monohand import native_log\n"
        "own = sys.stderr\n"
        "sys.stderr = buf = io.StringIO()\n"
        "native_log.enable()\n"
        "assert sys.stderr is buf\n"
        "warnings.warn('to the host')\n"
        "with native_log.quiet_native():\n"
        "    os.write(2, b'INFO: [a.cc:1] chatter\\n')\n"
        "native_log.disable()\n"
        "sys.stderr = own\n"
        "assert 'to the host' in buf.getvalue(), buf.getvalue()\n"
        "native_log.enable()\n"
        "assert sys.stderr is not own and sys.stderr.fileno() != 2\n"
        "native_log.disable(); native_log.disable()\n"
        "assert sys.stderr is own\n"
        "with native_log.quiet_native():\n"
        "    os.write(2, b'INFO: [a.cc:1] kept after disable\\n')\n"
        "native_log.enable()\n"  # (left on: undone at exit)
        "print('done', file=sys.stderr)\n"
    )
    res = subprocess.run([sys.executable, "-W", "error::ResourceWarning", "-X", "dev", "-c",
                          script], capture_output=True, text=True, timeout=60)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "chatter" not in res.stderr and "kept after disable" in res.stderr
    assert "done" in res.stderr and "ResourceWarning" not in res.stderr, res.stderr
    # disabled while others hold our stream (a redirect that puts it back, a logging
    # handler): it stays open and their writes still arrive
    script = (
        "import contextlib, io, logging, sys, warnings\n"
        "from monohand import native_log\n"
        "native_log.enable()\n"
        "logging.basicConfig()\n"
        "with contextlib.redirect_stderr(io.StringIO()):\n"
        "    native_log.disable()\n"
        "print('after the redirect', file=sys.stderr)\n"
        "warnings.warn('a warning after it')\n"
        "logging.warning('a log line after it')\n"
    )
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=60)  # fmt: skip
    assert res.returncode == 0, res.stderr
    for words in ("after the redirect", "a warning after it", "a log line after it"):
        assert words in res.stderr, res.stderr
    assert "Logging error" not in res.stderr and "closed file" not in res.stderr, res.stderr


def test_help_keeps_bracketed_words_and_the_version_is_printed():
    from monohand import __version__

    res = CliRunner().invoke(app, ["predict", "--help"])
    assert res.exit_code == 0 and "[xyz (N,21,3), verts (N,V,3)]" in " ".join(res.output.split())
    res = CliRunner().invoke(app, ["--version"])
    assert res.exit_code == 0 and res.output.strip() == f"monohand {__version__}"
    assert "Examples:" in CliRunner().invoke(app, ["--help"]).output


def test_reconstruct_help_says_the_default_camera_and_each_formats_frame():
    """The numbers --help states (typed there: importing the camera would bring torch into
    --help) are the code's."""
    from monohand.render.camera import DEFAULT_FOV_DEG

    text = " ".join(CliRunner(env={"COLUMNS": "200"}).invoke(
        app, ["reconstruct", "--help"]).output.split())  # fmt: skip
    assert f"else a {DEFAULT_FOV_DEG:g}-degree horizontal field of view" in text, text
    assert "glTF (.glb, .gltf) is y-up" in text and "in the photo's camera frame" in text


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
    assert ("a JSON object; expected a list [xyz_list (N, 21, 3), verts_list (N, V, 3) or []]"
            in " ".join(res.output.split())), res.output
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
    (["synth", "s", "--eval-fraction", "1.5"], "", "--eval-fraction must be in [0, 1]"),
    (["synth", "s", "--fill", "0.9"], "--fill", "expected two numbers"),
    (["predict", "none.ckpt", "DIR"], "CHECKPOINT", "no such file"),
    (["predict", "RUN", "DIR"], "CHECKPOINT", "is a folder: give a file (it holds RUN/last.ckpt)"),
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
    (["reconstruct", "FILE", "--out", "myhand.glb"], "--out", "a file's name (.glb); this is "
     "the folder the files go into, e.g. myhand"),
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
    import monohand.data.mediapipe_hands
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
                         (monohand.data.mediapipe_hands, "detect_files"),
                         (monohand.data.synthetic, "generate"),
                         (monohand.predict, "predict_split"), (monohand.predict, "predict_ho3d"),
                         (monohand.train, "train"), (monohand.ablate, "_prepare_data"),
                         (uvicorn, "run")]:  # fmt: skip
        monkeypatch.setattr(module, name, work)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "FILE").write_text("x")
    (tmp_path / "DIR").mkdir()
    (tmp_path / "RUN").mkdir()  # a training run's folder
    (tmp_path / "RUN" / "last.ckpt").write_text("x")
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


