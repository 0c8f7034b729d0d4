"""Training runs refused before they start (``train.setup``): settings, files, cached sets
and hand models that cannot train as configured, each named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from monohand.cli import app
from monohand.config import load_config
from monohand.data.synthetic import SynthConfig, generate
from monohand.train import train
from trainkit import SMOKE, tiny_config


def test_terms_the_model_cannot_give_are_refused(tmp_path, data_root, mano_pkl):
    """MANO has no texture space and no anatomical limits: photometric, ssim, mean_colour and
    pose_limits weights are refused naming them (they were left out of the total silently),
    before any data is made; OpenHand takes them. (NIMBLE: refused without its UV file,
    taken with it, as ``models.base.has_texture_space`` says.)"""
    from monohand.models.registry import load_models
    from monohand.train import SetupError, check_model_terms

    cfg = tiny_config(tmp_path / "run", data_root, **{"model.name": "mano",
                      "model.path": mano_pkl, "loss.photometric": 1.0, "loss.ssim": 0.5,
                      "loss.mean_colour": 0.1})
    with pytest.raises(SetupError, match="loss.photometric, loss.ssim, loss.mean_colour: the "
                                         "mano model has no texture space"):  # fmt: skip
        train(cfg)
    assert not (tmp_path / "run").exists()
    limits = tiny_config(tmp_path / "run", data_root, **{"model.name": "mano",
                         "model.path": mano_pkl, "loss.pose_limits": 1.0})
    with pytest.raises(SetupError, match="loss.pose_limits: the mano model has no anatomical"):
        train(limits)
    openhand = tiny_config(tmp_path / "run", data_root, **{"loss.photometric": 1.0,
                           "loss.pose_limits": 1.0})
    check_model_terms(openhand, load_models("openhand")["right"])


def test_no_steps_is_refused_before_any_work(tmp_path, data_root):
    """A TrainConfig made in Python with steps=0 (load_config's check does not see it) is a
    SetupError, not an export of whatever checkpoint the folder held."""
    from dataclasses import replace

    from monohand.train import SetupError

    cfg = replace(tiny_config(tmp_path / "run", data_root), steps=0)
    with pytest.raises(SetupError, match="steps=0: at least 1"):
        train(cfg)
    assert not (tmp_path / "run").exists()


def test_a_run_inside_its_data_or_with_missing_weights_is_refused(tmp_path, data_root):
    """out_dir inside data.root (a run's files mixed into the set, which synth --overwrite
    then removed) and a model.backbone_weights file that is not there: refused before any
    work, naming the setting (the second said only 'nope.pth: no such file', exit 1)."""
    from monohand.train import SetupError, check_setup

    with pytest.raises(SetupError, match=r"out_dir=.*: inside data.root="):
        check_setup(tiny_config(data_root / "run", data_root, steps=1))
    with pytest.raises(SetupError, match=r"model.backbone_weights=nope.pth: no such file"):
        check_setup(tiny_config(tmp_path / "r", data_root, steps=1,
                                **{"model.backbone_weights": "nope.pth"}))  # fmt: skip
    res = CliRunner().invoke(app, ["train", str(SMOKE), f"out_dir={tmp_path / 'w'}",
                                   f"data.root={data_root}", "model.backbone_weights=nope.pth"])
    assert res.exit_code == 2 and "model.backbone_weights=nope.pth: no such file" in res.output


def test_a_missing_extends_names_the_file_that_names_it(tmp_path):
    """A YAML whose ``extends:`` names no file: the error names that YAML, the name as
    written and the path tried (it named only 'gt2d.yaml: no such config file')."""
    mine = tmp_path / "mine" / "my2.yaml"
    mine.parent.mkdir()
    mine.write_text("extends: gt2d.yaml\nsteps: 3\n")
    with pytest.raises(FileNotFoundError, match=r"my2\.yaml: extends: gt2d\.yaml: no such "
                                                r"config file \(.*mine.gt2d\.yaml; a path"):
        load_config(mine)


def test_train_command_and_config_errors(tmp_path, data_root):
    res = CliRunner().invoke(
        app,
        [
            "train",
            str(SMOKE),
            f"out_dir={tmp_path / 'c'}",
            f"data.root={data_root}",
            "steps=2",
            "data.size=64",
            "log_every=1",
        ],
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "c" / "metrics.jsonl").is_file() and (tmp_path / "c" / "last.ckpt").is_file()
    # each logged step is said as it comes (a redirected run's log shows its progress)
    lines = (tmp_path / "c" / "metrics.jsonl").read_text().splitlines()
    logged = [json.loads(line) for line in lines if line]
    assert len(logged) == 2
    for m in logged:
        assert f"step {m['step']}/2: loss {m['loss']:.4g}" in res.output, res.output
    base = ["train", str(SMOKE), f"out_dir={tmp_path / 'c'}", f"data.root={data_root}",
            "steps=2", "data.size=64", "log_every=1"]  # fmt: skip
    # a second fresh run into that folder is refused; --overwrite starts afresh
    res = CliRunner().invoke(app, base)
    assert res.exit_code == 2 and "holds a run" in res.output and "--overwrite" in res.output
    assert CliRunner().invoke(app, [*base, "--overwrite"]).exit_code == 0
    # resuming with another network is refused in one line naming the setting
    res = CliRunner().invoke(app, [*base, "model.backbone=resnet34", "--resume"])
    text = " ".join(res.output.split())
    assert res.exit_code == 2 and "trained with other settings: model.backbone=" in text, text
    # resuming a run that is already there: nothing to do (or a mistake), said in one line
    res = CliRunner().invoke(app, [*base, "--resume"])
    assert res.exit_code == 0 and "at step 2, steps=2: nothing to train" in res.output
    res = CliRunner().invoke(app, [*base[:-3], "steps=1", *base[-2:], "--resume"])
    assert res.exit_code == 2 and "at step 2, steps=1: nothing to train" in res.output
    res = CliRunner().invoke(app, ["train", str(SMOKE), "steps=many"])
    assert res.exit_code == 2 and "steps: Value 'many'" in " ".join(res.output.split())
    res = CliRunner().invoke(app, ["train", str(SMOKE), "--steps", "50"])  # another tool's form
    assert res.exit_code == 2 and "did you mean steps=50?" in " ".join(res.output.split())
    res = CliRunner().invoke(app, ["train", str(tmp_path / "nope.yaml")])
    assert res.exit_code == 2 and "nope.yaml" in res.output
    # a broken checkpoint (a run killed mid-write by another tool) is named, not a traceback;
    # --overwrite replaces it
    ckpt = tmp_path / "c" / "last.ckpt"
    ckpt.write_bytes(ckpt.read_bytes()[:1000])
    for extra in ([], ["--resume"]):
        res = CliRunner().invoke(app, [*base, *extra])
        text = " ".join(res.output.split())
        assert res.exit_code == 2 and "not a readable monohand training checkpoint" in text, text
        assert "--overwrite starts afresh" in text
    assert CliRunner().invoke(app, [*base, "--overwrite"]).exit_code == 0
    # settings that only the data can refute, answered in one line before any step
    (tmp_path / "bad.json").write_text('{"not": "detections"}')
    n = len(list((Path(data_root) / "training" / "rgb").iterdir()))
    fresh = [*base[:2], f"out_dir={tmp_path / 'd'}", *base[3:]]
    for extra, words in ((["batch=999"], f"{n} training images, fewer than one batch"),
                         ([f"data.subset={n + 1}"], f"data.subset={n + 1}: "),
                         ([f"data.labels={tmp_path / 'bad.json'}"], "not a detection file"),
                         (["data.labels=nope.json"], "data.labels=nope.json: no such file")):
        res = CliRunner().invoke(app, [*fresh, *extra])
        text = " ".join(res.output.replace("│", "").split())
        assert res.exit_code == 2 and words in text, (extra, text)
        assert not (tmp_path / "d" / "last.ckpt").exists()


def test_a_zero_robustness_scale_and_a_negative_weight_are_refused(tmp_path, data_root):
    from dataclasses import replace

    from monohand.train import SetupError, check_setup

    cfg = tiny_config(tmp_path / "run", data_root)
    with pytest.raises(SetupError, match="loss.keypoints_sigma=0.0: .* must be above 0"):
        check_setup(replace(cfg, loss=replace(cfg.loss, keypoints_sigma=0.0)))
    with pytest.raises(SetupError, match="loss.bone=-1.0: loss weights are 0"):
        check_setup(replace(cfg, loss=replace(cfg.loss, bone=-1.0)))
    with pytest.raises(SetupError, match=r"loss.render_from=1.5: a share of the steps"):
        check_setup(replace(cfg, loss=replace(cfg.loss, render_from=1.5)))


def test_a_cached_set_of_another_orientation_is_refused(tmp_path):
    generate(tmp_path / "run" / "data", SynthConfig(num=2, size=64, orientation="uniform"))
    same = ["steps=1", "data.synth_num=2", "data.synth_size=64", "batch=2"]  # as the set was made
    cfg = load_config(SMOKE, [f"out_dir={tmp_path / 'run'}", *same])
    with pytest.raises(ValueError, match="generated with orientation 'uniform'"):
        train(cfg)
    train(load_config(SMOKE, [f"out_dir={tmp_path / 'run'}", *same,
                              "data.synth_orientation=uniform"]))  # fmt: skip
    generate(tmp_path / "spin" / "data", SynthConfig(num=2, size=64, max_spin_deg=20))
    with pytest.raises(ValueError, match="generated with max_spin_deg 20"):
        train(load_config(SMOKE, [f"out_dir={tmp_path / 'spin'}", *same]))


def test_a_network_of_another_hand_model_names_it(tmp_path, data_root, mano_pkl):
    """A network trained on MANO: reconstructing with it labels the outputs "mano" without
    --model; a moved model file is named as such (not as a broken checkpoint); the shipped
    network asked to drive MANO is refused, naming both models, before any MANO file is read."""
    import shutil

    from monohand.models.assets import AssetError
    from monohand.reconstruct import ReconstructConfig, Reconstructor

    model = shutil.copy(mano_pkl, tmp_path / "MANO_RIGHT.pkl")
    cfg = tiny_config(tmp_path / "mano", data_root, steps=1, ckpt_every=1,
                      **{"model.name": "mano", "model.path": str(model)})  # fmt: skip
    train(cfg)
    ckpt = str(tmp_path / "mano" / "last.ckpt")
    with Reconstructor(ReconstructConfig(method="network", checkpoint=ckpt,
                                         search_windows=False)) as rec:  # fmt: skip
        assert rec.cfg.model == "mano" and rec.net.hand.name == "mano"
    # the hybrid (the default with a checkpoint) too, its fit's both sides from the file the
    # checkpoint names: neither --model nor --model-path needed
    with Reconstructor(ReconstructConfig(checkpoint=ckpt, search_windows=False)) as rec:
        assert rec.cfg.method == "hybrid" and rec.cfg.model == "mano"
        assert rec.models["left"].name == "mano" and rec.models["left"].side == "left"
    # the files say so, for a photo and for a sequence of frames
    example = Path(__file__).resolve().parents[1] / "examples" / "hand.jpg"
    frames = tmp_path / "frames"
    frames.mkdir()
    for k in range(2):
        shutil.copy(example, frames / f"{k:03d}.jpg")
    for inputs, name in (([str(example)], "hand.json"), ([str(frames), "--sequence"],
                                                        "frames_00000.json")):  # fmt: skip
        args = [*inputs, "--method", "network", "--checkpoint", ckpt, "--out", str(tmp_path / "o")]
        res = CliRunner().invoke(app, ["reconstruct", *args])
        assert res.exit_code == 0, res.output
        record = json.loads((tmp_path / "o" / name).read_text())
        hands = record["hands"]
        assert hands and all(h["model"] == "mano" for h in hands), name
        # which network made them: the checkpoint, in the record and in what is said
        assert record["network"] == ckpt and f"by network (checkpoint {ckpt})" in " ".join(
            res.output.split()), res.output
    Path(model).rename(tmp_path / "moved.pkl")
    with pytest.raises(AssetError, match="MANO_RIGHT.pkl.*give its file with --model-path"):
        Reconstructor(ReconstructConfig(method="network", checkpoint=ckpt))
    moved = ReconstructConfig(method="network", checkpoint=ckpt, search_windows=False,
                              model_path=str(tmp_path / "moved.pkl"))  # fmt: skip
    with Reconstructor(moved) as rec:
        assert rec.net.hand.name == "mano"
    # a --model-path given, but not of the network's model: that is what is said
    (tmp_path / "openhand.npz").write_bytes(b"not a model")
    with pytest.raises(AssetError, match="--model-path must be a file of the 'mano' model"):
        Reconstructor(ReconstructConfig(method="network", checkpoint=ckpt,
                                        model_path=str(tmp_path / "openhand.npz")))  # fmt: skip
    with pytest.raises(ValueError, match="trained on the 'openhand' hand model, not 'mano'"):
        Reconstructor(ReconstructConfig(method="hybrid", model="mano",
                                        model_path=str(tmp_path / "nowhere.pkl")))  # fmt: skip
    with pytest.raises(ValueError, match="trained on the 'mano' hand model, not 'nimble'"):
        Reconstructor(ReconstructConfig(method="network", checkpoint=ckpt, model="nimble"))


def test_a_cached_synthetic_set_of_other_settings_is_refused(tmp_path):
    """Training's generated set is reused only if it was made with the same settings: another
    count (or seed, size, ...) would train on data its checkpoint does not describe."""
    from dataclasses import asdict

    from monohand.data.synthetic import ensure_synthetic

    made = SynthConfig(num=24, seed=3, eval_fraction=0.0)
    (tmp_path / "synth_config.json").write_text(json.dumps(asdict(made)))
    ensure_synthetic(tmp_path, made, "training", write=False)  # the same: accepted
    for change in ({"num": 30}, {"seed": 4}, {"size": 128}, {"fill": (0.5, 0.9)}):
        other = SynthConfig(**{**asdict(made), **change})
        with pytest.raises(ValueError, match=f"generated with {next(iter(change))} "):
            ensure_synthetic(tmp_path, other, "training", write=False)
    # the command says it in one line (it was a traceback)
    generate(tmp_path / "run" / "data", SynthConfig(num=2, size=64))
    res = CliRunner().invoke(app, ["train", str(SMOKE), f"out_dir={tmp_path / 'run'}", "steps=1"])
    text = " ".join(res.output.split())
    assert res.exit_code == 2 and "this set was generated with num 2, not 48" in text, res.output
    assert "Traceback" not in res.output


def test_every_shipped_config_passes_the_setup_checks():
    """``check_setup`` refuses no shipped config (configs/, configs/seed/) but for what the
    user must add: MANO's or NIMBLE's files (model.path), HO-3D's detections (the SSL row's
    data.labels), named as such."""
    from monohand.train import SetupError, check_setup

    configs = sorted(SMOKE.parent.rglob("*.yaml"))
    assert len(configs) > 10
    for path in configs:
        cfg = load_config(path, ["data.root=/data/ho3d"] if "ho3d" in path.stem else None)
        cfg.data.photos = ""  # (a photo set is made on the machine: tools/get_asl_photos.sh)
        held = 0.05 if path.parent.name == "seed" else 0.0  # as ablate holds out
        if cfg.model.name in ("mano", "nimble") and not cfg.model.path:
            with pytest.raises(SetupError, match="give model.path=PATH"):
                check_setup(cfg, held)
        elif path.stem == "ho3d_ssl":  # its detections file, which the user makes
            with pytest.raises(SetupError, match="data.labels=DETECTIONS.json: no such file"):
                check_setup(cfg, held)
        else:
            check_setup(cfg, held)
