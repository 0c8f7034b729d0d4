"""Training runs continued (``train.checkpoints``): a resumed or interrupted run gives the
uninterrupted one's network; what may change on resume; what a finished run leaves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from monohand.cli import app
from monohand.config import load_config
from monohand.train import train
from trainkit import SMOKE, tiny_config


def test_a_finished_run_writes_its_network_alone(tmp_path, data_root):
    """Beside last.ckpt, a finished run writes network.pt: the same weights (bit for bit),
    without the optimiser's state (Adam's two moments: the checkpoint is ~3x the weights);
    a run that continues removes it until it finishes again."""
    from monohand.nets.handnet import load_network

    run = tmp_path / "run"
    train(tiny_config(run, data_root, steps=2, log_every=1))
    ckpt, alone = run / "last.ckpt", run / "network.pt"
    assert alone.stat().st_size < 0.5 * ckpt.stat().st_size
    saved = torch.load(alone, weights_only=True)
    assert "opt" not in saved and saved["step"] == 2 and saved["encoder"] == "included"
    a, b = (load_network(p)[0].state_dict() for p in (ckpt, alone))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    def stop(step: int) -> None:
        raise RuntimeError("stopped from outside")

    with pytest.raises(RuntimeError, match="from outside"):
        train(tiny_config(run, data_root, steps=4, log_every=1), resume=True, progress=stop)
    assert not alone.exists()  # the 2-step network is not the run's any more
    train(tiny_config(run, data_root, steps=4, log_every=1), resume=True)
    assert torch.load(alone, weights_only=True)["step"] == 4
    # a finished run without it (trained before network.pt, or killed before its export):
    # --resume, nothing to train, writes it
    alone.unlink()
    args = ["train", str(SMOKE), f"out_dir={run}", f"data.root={data_root}", "data.size=64",
            "batch=8", "steps=4", "log_every=1", "--resume"]  # fmt: skip
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0 and "nothing to train" in res.output, res.output
    assert torch.load(alone, weights_only=True)["step"] == 4


def _assert_same_run(straight: Path, resumed: Path, steps: int) -> None:
    """The resumed run's network equals the uninterrupted one's, and its log holds every step
    from 1 to ``steps`` once."""
    a = torch.load(straight / "last.ckpt", weights_only=True)["net"]
    b = torch.load(resumed / "last.ckpt", weights_only=True)["net"]
    for k in a:
        assert torch.allclose(a[k].float(), b[k].float(), atol=1e-5), k
    logged = [json.loads(line)["step"] for line in (resumed / "metrics.jsonl").open()]
    assert logged == list(range(1, steps + 1))


def test_resume_reproduces_the_uninterrupted_run(tmp_path, data_root):
    straight = tiny_config(tmp_path / "a", data_root, steps=8, ckpt_every=4, log_every=1)
    train(straight)
    killed = tiny_config(tmp_path / "b", data_root, steps=8, ckpt_every=4, log_every=1)

    def kill_after_step_5(step: int) -> None:  # the checkpoint of step 4 is on disk
        if step == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(killed, progress=kill_after_step_5)
    assert torch.load(tmp_path / "b" / "last.ckpt", weights_only=True)["step"] == 4
    train(killed, resume=True)
    # step 5 was logged before the kill and again after the resume from step 4: once now
    _assert_same_run(tmp_path / "a", tmp_path / "b", steps=8)
    # TensorBoard too: the resumed writer purges the killed run's step 5 (a second event file
    # holds the rest), so every step reads back once.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ev = EventAccumulator(str(tmp_path / "b" / "tb")).Reload()
    assert [e.step for e in ev.Scalars("loss/loss")] == list(range(1, 9))
    assert len(list((tmp_path / "b" / "tb").glob("events.*"))) == 2
    # other settings are refused before any data is read: a missing data folder is not reached
    other = tiny_config(tmp_path / "b", tmp_path / "no data", steps=8, ckpt_every=4,
                        log_every=1, lr=0.5)  # fmt: skip
    with pytest.raises(ValueError, match="trained with other settings: lr=0.001 .now 0.5."):
        train(other, resume=True)
    # a finished run resumed: nothing to train, and no log touched
    events = sorted((tmp_path / "b" / "tb").glob("events.*"))
    with pytest.raises(ValueError, match="at step 8, steps=8: nothing to train"):
        train(killed, resume=True)
    assert sorted((tmp_path / "b" / "tb").glob("events.*")) == events
    assert len((tmp_path / "b" / "metrics.jsonl").read_text().splitlines()) == 8


def test_ctrl_c_saves_the_step_under_way_and_resume_matches_the_uninterrupted_run(
        tmp_path, data_root):  # fmt: skip
    """The first Ctrl-C (SIGINT) finishes the step under way and saves it (step 5, between
    the periodic checkpoints of 4 and 8: that step was lost before), then stops with
    ``TrainingInterrupted``; resuming gives the uninterrupted run's network; Python's own
    handler is back afterwards."""
    import os
    import signal

    from monohand.train.interrupt import TrainingInterrupted

    straight = tiny_config(tmp_path / "a", data_root, steps=8, ckpt_every=4, log_every=1)
    train(straight)
    stopped = tiny_config(tmp_path / "b", data_root, steps=8, ckpt_every=4, log_every=1)

    def ctrl_c_after_step_5(step: int) -> None:  # (after its checkpoint decision)
        if step == 5:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(TrainingInterrupted) as stop:
        train(stopped, progress=ctrl_c_after_step_5)
    assert stop.value.step == 5 and stop.value.checkpoint == str(tmp_path / "b" / "last.ckpt")
    assert torch.load(tmp_path / "b" / "last.ckpt", weights_only=True)["step"] == 5
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    # where Ctrl-C is ignored (a background job), training leaves it so
    from monohand.train.interrupt import StopRequest

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with StopRequest() as request:
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGINT)
        assert not request.requested
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    train(stopped, resume=True)
    _assert_same_run(tmp_path / "a", tmp_path / "b", steps=8)


def test_the_command_says_how_to_continue_an_interrupted_run(tmp_path, data_root,
                                                             monkeypatch):  # fmt: skip
    """``monohand train``, interrupted: exit 130 and the command that resumes it (it ended
    silently on the progress bar, with up to ckpt_every - 1 steps lost)."""
    import monohand.train as training
    from monohand.train.interrupt import TrainingInterrupted

    def interrupted(cfg, *args, **kwargs):
        raise TrainingInterrupted(3, str(Path(cfg.out_dir) / "last.ckpt"))

    monkeypatch.setattr(training, "train", interrupted)
    args = ["train", str(SMOKE), f"out_dir={tmp_path / 'i'}", f"data.root={data_root}",
            "steps=9"]  # fmt: skip
    res = CliRunner().invoke(app, args)
    text = " ".join(res.output.split())
    assert res.exit_code == 130, res.output
    assert (f"interrupted: at step 3 of 9, saved in {tmp_path / 'i' / 'last.ckpt'}: 'monohand "
            f"train {SMOKE} out_dir={tmp_path / 'i'} data.root={data_root} steps=9 --resume' "
            "continues from it") in text, text


def test_more_steps_are_refused_where_stages_or_the_render_start_would_move():
    """More steps on resume stretch the learning rate; a stagewise schedule's stages and
    loss.render_from's start are shares of steps too, so there they would move (a run back
    in an earlier stage): refused, naming why. A plain run may take more steps."""
    from dataclasses import asdict, replace

    from monohand.train import config_changes

    plain = load_config(SMOKE)
    assert config_changes(asdict(plain), replace(plain, steps=plain.steps * 3)) == []
    # a run saved before a setting existed trained at its default: the same run
    before = asdict(plain)
    del before["loss"]["joints_3d_frame"]
    assert config_changes(before, plain) == []
    camera = replace(plain, loss=replace(plain.loss, joints_3d_frame="camera"))
    assert config_changes(before, camera) == ["loss.joints_3d_frame='root' (now 'camera')"]
    staged = replace(plain, schedule="stagewise")
    (said,) = config_changes(asdict(staged), replace(staged, steps=plain.steps * 3))
    assert "stagewise schedule's stages are shares of steps" in said
    late = replace(plain, loss=replace(plain.loss, render_from=0.5, photometric=1.0))
    (said,) = config_changes(asdict(late), replace(late, steps=plain.steps + 1))
    assert "render_from's start are shares of steps" in said
    assert config_changes(asdict(late), late) == []
    # fewer steps (nothing trains: the run is reused), or a render start with no render term
    assert config_changes(asdict(staged), replace(staged, steps=plain.steps - 1)) == []
    idle = replace(plain, loss=replace(plain.loss, render_from=0.5))
    assert config_changes(asdict(idle), replace(idle, steps=plain.steps * 2)) == []


def test_resume_without_a_checkpoint_says_so(tmp_path, data_root):
    cfg = tiny_config(tmp_path / "none", data_root, steps=2)
    with pytest.raises(FileNotFoundError, match="no checkpoint to resume from"):
        train(cfg, resume=True)
    assert not (tmp_path / "none" / "metrics.jsonl").exists()


def test_checkpoints_from_before_the_rotation_option_still_load(tmp_path, data_root):
    import torch

    from monohand.nets import load_network

    train(tiny_config(tmp_path / "six", data_root, steps=1, **{"model.rotation": "6d"}))
    net, _ = load_network(str(tmp_path / "six" / "last.ckpt"))
    assert net.heads.rotation == "6d"
    assert net.heads.pose[2].bias.shape[0] == 6 + net.hand.num_pose_params
    train(tiny_config(tmp_path / "net", data_root, steps=1, **{"model.rotation": "axis_angle"}))
    ckpt = tmp_path / "net" / "last.ckpt"
    state = torch.load(ckpt, weights_only=True)
    del state["config"]["model"]["rotation"]  # what older checkpoints hold
    torch.save(state, ckpt)
    net, _ = load_network(str(ckpt))
    assert net.heads.rotation == "axis_angle"
    assert net.heads.pose[2].bias.shape[0] == 3 + net.hand.num_pose_params
    with pytest.raises(ValueError, match="model.rotation"):
        tiny_config(tmp_path / "x", data_root, **{"model.rotation": "quat"})
