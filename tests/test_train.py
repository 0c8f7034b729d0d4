"""Training: the smoke config runs and learns, its terms and label sources reach the losses,
bad losses stop clearly; networks trained here reconstruct and evaluate (resuming:
test_train_resume.py; refusals before a run starts: test_train_setup.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from monohand.cli import app
from monohand.config import load_config
from monohand.data.synthetic import SynthConfig, generate
from monohand.train import train
from trainkit import SMOKE, exact_outputs, tiny_config


def test_smoke_training_lowers_the_loss(tmp_path, data_root):
    cfg = tiny_config(tmp_path / "run", data_root, steps=30, log_every=3)
    train(cfg)
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 30 and all("loss" in r for r in rows)
    first = sum(r["loss"] for r in rows[:3]) / 3
    last = sum(r["loss"] for r in rows[-3:]) / 3
    assert last < 0.8 * first
    state = torch.load(tmp_path / "run" / "last.ckpt", weights_only=True)
    assert state["step"] == 30 and state["config"]["steps"] == 30
    # every setting as resolved, beside the checkpoint: it loads back as the same config
    assert load_config(tmp_path / "run" / "config.yaml") == cfg
    # TensorBoard: the same scalars, and preview grids at the checkpoints.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ev = EventAccumulator(str(tmp_path / "run" / "tb"), size_guidance={"images": 0}).Reload()
    logged = [e.value for e in ev.Scalars("loss/loss")]
    assert len(logged) == len(rows)
    assert abs(logged[-1] - rows[-1]["loss"]) < 1e-4 * max(1.0, abs(rows[-1]["loss"]))
    previews = ev.Images("preview")
    assert {im.step for im in previews} == {20, 30}
    assert (previews[0].width, previews[0].height) == (4 * 64, 64)  # a row of 4 previews


def test_the_held_out_check_scores_the_network_and_leaves_training_as_it_was(tmp_path,
                                                                             data_root):
    """val_every: at steps 2 and 4 (and not at the log step 3) the line carries the network's
    scores on the first val_max evaluation images, the last equal to predicting with the
    saved checkpoint and evaluating that (an independent path: files, not the live network);
    the training itself is the same as without the check (losses and weights); a set with no
    evaluation split is refused before any work."""
    import warnings

    from monohand.evaluate.metrics import evaluate_arrays
    from monohand.predict import predict_split
    from monohand.train import SetupError

    root = tmp_path / "data"
    generate(root, SynthConfig(num=24, size=96, seed=4, eval_fraction=0.25))
    runs = {}
    for name, val in (("plain", 0), ("checked", 2)):
        cfg = tiny_config(tmp_path / name, root, steps=4, log_every=3, ckpt_every=4,
                          val_every=val, val_max=5)  # fmt: skip
        train(cfg)
        runs[name] = [json.loads(x) for x in (tmp_path / name / "metrics.jsonl").open()]
    checked = runs["checked"]
    assert [r["step"] for r in checked] == [2, 3, 4]
    assert ["val_pa_mpjpe_mm" in r for r in checked] == [True, False, True]
    plain = {r["step"]: r["loss"] for r in runs["plain"]}
    assert all(r["loss"] == plain[r["step"]] for r in checked if r["step"] in plain)
    a = torch.load(tmp_path / "plain" / "last.ckpt", weights_only=True)["net"]
    b = torch.load(tmp_path / "checked" / "last.ckpt", weights_only=True)["net"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    xyz, _ = predict_split(tmp_path / "checked" / "last.ckpt", root, "evaluation")
    truth = np.asarray(json.loads((root / "evaluation_xyz.json").read_text()))
    with warnings.catch_warnings():  # (a 4-step network's hands may lie anywhere)
        warnings.simplefilter("ignore")
        want = evaluate_arrays(xyz[:5], truth[:5])
    assert checked[-1]["val_pa_mpjpe_mm"] == pytest.approx(want.aligned.mpjpe_mm, rel=1e-4)
    assert checked[-1]["val_mpjpe_mm"] == pytest.approx(want.unaligned.mpjpe_mm, rel=1e-4)
    assert checked[-1]["val_auc_j"] == pytest.approx(want.aligned.auc_j, abs=1e-4)
    with pytest.raises(SetupError, match=r"val_every=2: .* has no evaluation split"):
        train(tiny_config(tmp_path / "none", data_root, steps=2, val_every=2))
    # a set to be generated into out_dir has none either: refused before it is made
    from monohand.train import check_setup

    with pytest.raises(SetupError, match="the set generated into out_dir has no evaluation"):
        check_setup(load_config(SMOKE, [f"out_dir={tmp_path / 'gen'}", "val_every=2"]))
    assert not (tmp_path / "gen").exists()


def test_learning_rate_schedules():
    from monohand.train import learning_rate

    cfg = load_config(SMOKE, ["steps=11", "lr=0.01", "lr_final_fraction=0.1"])
    lrs = [learning_rate(cfg, s) for s in range(11)]
    assert lrs[0] == pytest.approx(0.01) and lrs[-1] == pytest.approx(0.001)
    assert lrs[5] == pytest.approx(0.0055) and all(np.diff(lrs) < 0)  # half way: the mean
    flat = load_config(SMOKE, ["lr_schedule=constant", "lr=0.01"])
    assert {learning_rate(flat, s) for s in range(40)} == {0.01}
    with pytest.raises(ValueError, match="lr_schedule must be"):
        load_config(SMOKE, ["lr_schedule=step"])


def test_non_finite_loss_stops_with_its_name(tmp_path, data_root):
    cfg = tiny_config(tmp_path / "nan", data_root, steps=3, **{"loss.joints_3d_norm": "nan"})
    with pytest.raises(FloatingPointError, match="loss 'joints_3d_norm'"):
        train(cfg)


def test_reconstruct_and_evaluate_with_a_trained_network(tmp_path, data_root):
    example = Path(__file__).resolve().parents[1] / "examples" / "hand.jpg"
    cfg = tiny_config(tmp_path / "net", data_root, steps=2, log_every=1)
    train(cfg)
    ckpt = tmp_path / "net" / "last.ckpt"
    out = tmp_path / "rec"
    res = CliRunner().invoke(
        app,
        [
            "reconstruct",
            str(example),
            "--method",
            "network",
            "--checkpoint",
            str(ckpt),
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    rec = json.loads((out / "hand.json").read_text())
    h = rec["hands"][0]
    assert len(h["joints3d"]) == 21 and len(h["vertices"]) == 1528
    assert min(z for _, _, z in h["joints3d"]) > 0  # in front of the camera
    # Without --checkpoint: the shipped network (tests/test_shipped_network.py measures it).
    res = CliRunner().invoke(
        app, ["reconstruct", str(example), "--method", "network", "--out", str(out / "shipped")]
    )
    assert res.exit_code == 0, res.output
    assert len(json.loads((out / "shipped" / "hand.json").read_text())["hands"]) == 1
    (tmp_path / "junk.ckpt").write_bytes(b"junk")
    res = CliRunner().invoke(
        app,
        [
            "reconstruct",
            str(example),
            "--method",
            "network",
            "--checkpoint",
            str(tmp_path / "junk.ckpt"),
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 2 and "junk.ckpt" in res.output


REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "realhands" / "annotations.json"


@pytest.mark.skipif(not REAL.is_file(), reason="real-photo set absent")
def test_evaluate_real_with_a_network(tmp_path, data_root):
    train(tiny_config(tmp_path / "net", data_root, steps=1, log_every=1))
    (tmp_path / "ev").mkdir()  # an earlier run's pictures, which this run's must replace
    for name in ("best_1_overlay.png", "worst_4_overlay.png", "worst_0_overlay.png"):
        (tmp_path / "ev" / name).write_bytes(b"old")
    res = CliRunner().invoke(
        app,
        [
            "evaluate-real",
            str(REAL),
            "--method",
            "network",
            "--checkpoint",
            str(tmp_path / "net" / "last.ckpt"),
            "--every",
            "60",
            "--out",
            str(tmp_path / "ev"),
        ],
    )
    assert res.exit_code == 0, res.output
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert m["hands"] == 3 and m["detected"] >= 2 and m["aligned"]["mpjpe_mm"] > 0
    assert m["method"] == "network" and m["every"] == 60 and m["annotations"] == str(REAL)
    # The best and worst pictures carry their image and error above the overlay.
    from PIL import Image

    worst = np.asarray(Image.open(tmp_path / "ev" / "worst_0_overlay.png").convert("RGB"))
    assert (worst[:2] == 255).all()  # the caption's strip (the photo starts the sheet without)
    assert (worst[4:16] < 128).any()  # its text
    rows = (tmp_path / "ev" / "per_image.csv").read_text().splitlines()
    assert len(rows) == 1 + 3
    # 3 images: each shown once (the 2 best, the rest worst), no earlier run's picture left
    n = m["detected"]
    assert sorted(p.name for p in (tmp_path / "ev").glob("*_overlay.png")) == sorted(
        [f"best_{k}_overlay.png" for k in range(min(2, n - 1))]
        + [f"worst_{k}_overlay.png" for k in range(n - min(2, n - 1))])


def test_training_with_nimble_by_config(tmp_path, data_root, nimble_dir):
    """``model.name=nimble model.path=DIR``: the network drives NIMBLE; the loss is finite and
    the checkpoint reloads as a reconstruction network with NIMBLE's skin."""
    from monohand.nets import load_network

    cfg = tiny_config(tmp_path / "nimble", data_root, steps=4, log_every=1, ckpt_every=4,
               **{"model.name": "nimble", "model.path": str(nimble_dir)})  # fmt: skip
    train(cfg)
    rows = [json.loads(x) for x in (tmp_path / "nimble" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in rows)
    net, size = load_network(str(tmp_path / "nimble" / "last.ckpt"))
    assert net.hand.name == "nimble" and size == 64
    with torch.no_grad():
        _, out = net(
            torch.rand(1, 3, 64, 64), torch.tensor([[[80.0, 0, 32], [0, 80.0, 32], [0, 0, 1]]])
        )
    assert out.vertices.shape == (1, net.hand.num_vertices, 3)


def test_supervision_targets_choose_the_labels(tmp_path):
    """keypoints_target / bone_target pick GT 2D or the labels: with labels far from the GT, the
    loss values show which one was used."""
    from monohand.train import compute_losses

    cfg = load_config(SMOKE, ["loss.bone=1.0", "loss.joints_3d_norm=0"])
    j2 = torch.rand(2, 21, 2) * 50 + 20
    batch = {"K": torch.eye(3).repeat(2, 1, 1), "joints2d": j2, "keypoints": j2 + 30.0,
             "confidence": torch.full((2, 21), 0.5)}  # fmt: skip

    Out, Params = exact_outputs(j2)  # joints that project exactly onto the GT 2D

    def terms(**kw):
        for k, v in kw.items():
            setattr(cfg.loss, k, v)
        return compute_losses(cfg, batch, Params, Out)

    assert terms(keypoints_target="gt")["keypoints_2d"].item() < 1e-9
    assert terms(keypoints_target="labels")["keypoints_2d"].item() > 1e-3
    assert terms(bone_target="gt")["bone"].item() < 1e-9
    # A shift of every label changes no bone direction, so use a distorted copy.
    batch["keypoints"] = j2 * torch.tensor([1.0, 1.7])
    assert terms(bone_target="labels")["bone"].item() > 1e-3


def test_the_3d_term_in_the_camera_frame_sees_the_hands_place():
    """loss.joints_3d_frame: "root" (wrist-relative) is blind to where the hand is, "camera"
    (S2HAND's joint_3d) is not: joints 1 cm off as a whole cost 1e-4 m^2 there, 0 at the root;
    another frame is refused."""
    from monohand.train import compute_losses

    j2 = torch.rand(2, 21, 2, generator=torch.Generator().manual_seed(1)) * 50 + 20
    Out, Params = exact_outputs(j2)
    batch = {"K": torch.eye(3).repeat(2, 1, 1), "joints2d": j2, "keypoints": j2,
             "confidence": torch.ones(2, 21),
             "joints3d": Out.joints + torch.tensor([0.01, 0.0, 0.0])}  # fmt: skip
    for frame, want in (("root", 0.0), ("camera", 1e-4)):
        cfg = load_config(SMOKE, ["loss.joints_3d=1.0", "loss.joints_3d_norm=0",
                                  f"loss.joints_3d_frame={frame}"])  # fmt: skip
        got = compute_losses(cfg, batch, Params, Out)["joints_3d"]
        assert torch.isclose(got, torch.tensor(want), rtol=1e-2, atol=1e-9), (frame, got)
    with pytest.raises(ValueError, match="joints_3d_frame must be 'root' or 'camera'"):
        load_config(SMOKE, ["loss.joints_3d_frame=world"])


def test_consistency_of_an_item_the_detector_missed_is_in_its_own_size():
    """The 2D-3D consistency divides by the hand's size: an item whose labels the detector
    missed (all zeros, confidence 0) takes its projection's size, not the 4 px floor of its
    zeros; a found item keeps its labels'."""
    from monohand import losses as L
    from monohand.train import compute_losses

    cfg = load_config(SMOKE, ["loss.consistency=1.0", "loss.joints_3d_norm=0",
                              "model.keypoint_branch=true"])
    j2 = torch.rand(2, 21, 2, generator=torch.Generator().manual_seed(0)) * 50 + 20
    j2[:, 9] = j2[:, 0] + torch.tensor([30.0, -20.0])  # hands of some size (the floor is 4 px)
    labels = j2 * 1.1
    labels[1] = 0.0  # missed
    conf = torch.ones(2, 21)
    conf[1] = 0.0
    batch = {"K": torch.eye(3).repeat(2, 1, 1), "joints2d": j2, "keypoints": labels,
             "confidence": conf}  # fmt: skip
    Out, Params = exact_outputs(j2)
    branch = j2 + 3.0  # the 2D branch 3 px off the projections
    Params.keypoints2d = branch
    got = compute_losses(cfg, batch, Params, Out)["consistency"]
    size = torch.stack([(labels[0, 9] - labels[0, 0]).norm(), (j2[1, 9] - j2[1, 0]).norm()])
    want = L.consistency_2d_3d(j2, branch, size).mean()
    assert torch.allclose(got, want)


def test_render_and_compare_losses_in_training(tmp_path, data_root):
    """Silhouette (against the set's masks) and photometric terms: logged, finite, and their
    gradients reach the texture and light heads (only the photometric term sees them)."""
    cfg = tiny_config(tmp_path / "render", data_root, steps=3, log_every=1,
               **{"loss.silhouette": 1.0, "loss.photometric": 1.0})  # fmt: skip
    train(cfg)
    rows = [json.loads(x) for x in (tmp_path / "render" / "metrics.jsonl").read_text().splitlines()]
    assert all({"silhouette", "photometric", "texture_prior"} <= set(r) for r in rows)
    assert all(np.isfinite([r["silhouette"], r["photometric"]]).all() for r in rows)
    # a set without masks: refused before the first step, naming the setting and the folder
    # (a traceback from inside the first step before)
    import shutil

    from monohand.train import SetupError

    bare = tmp_path / "bare"
    shutil.copytree(data_root, bare, ignore=shutil.ignore_patterns("mask"))
    maskless = tiny_config(tmp_path / "nomask", bare, steps=3, **{"loss.silhouette": 1.0})
    with pytest.raises(SetupError, match=r"loss.silhouette=1.0: .*training.mask does not exist"):
        train(maskless)
    assert not (tmp_path / "nomask" / "metrics.jsonl").exists()

    from monohand.data.freihand import FreiHANDDataset
    from monohand.models.openhand import OpenHand
    from monohand.nets import HandNet
    from monohand.train import render_losses
    from monohand.train.inputs import batch_to_size

    hand = OpenHand()
    net = HandNet(hand, 18)
    ds = FreiHANDDataset(data_root)
    batch = batch_to_size(torch.utils.data.default_collate([ds[0], ds[1]]), 64)
    assert batch["mask"].shape == (2, 64, 64) and 0 < batch["mask"].mean() < 1
    params, out = net(batch["image"], batch["K"])
    params.texture.retain_grad()
    params.light.retain_grad()
    terms = render_losses(cfg, batch, params, out, hand)
    sum(terms.values()).backward()
    assert params.texture.grad.abs().sum() > 0 and params.light.grad.abs().sum() > 0


def test_torchrun_two_processes_on_cpu(tmp_path, data_root):
    """DistributedDataParallel through torchrun with gloo on the CPU: both processes train on
    their shards, process 0 alone writes the logs (averaged over both) and the checkpoint."""
    import os
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--master_addr", "127.0.0.1", "--master_port", str(port), "-m", "monohand", "train",
           str(SMOKE), f"out_dir={out}", f"data.root={data_root}", "data.size=64", "batch=4",
           "steps=4", "log_every=2", "ckpt_every=4", "tensorboard=false"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4] and all(r["processes"] == 2 for r in rows)
    state = torch.load(out / "last.ckpt", weights_only=True)
    assert state["step"] == 4 and not any(k.startswith("module.") for k in state["net"])


def test_stagewise_schedule_freezes_what_each_stage_must_not_train(tmp_path, data_root):
    """S2HAND's stage-wise schedule: the 2D-branch stage leaves the heads at their initial
    values, the mesh stage the encoder and the branch; the metrics name the stage."""
    from monohand.models.openhand import OpenHand
    from monohand.nets import HandNet
    from monohand.train import stage_of

    cfg = load_config(SMOKE, ["schedule=stagewise", "model.keypoint_branch=true", "steps=10"])
    assert [stage_of(cfg, s) for s in range(10)] == ["keypoints"] * 3 + ["mesh"] * 3 + ["joint"] * 4
    with pytest.raises(ValueError, match="keypoint_branch"):
        load_config(SMOKE, ["schedule=stagewise"])

    def run(name, fractions):
        branch = {"model.keypoint_branch": "true", "loss.integral": 1.0, "loss.consistency": 0.5}
        cfg = tiny_config(tmp_path / name, data_root, steps=3, log_every=1, schedule="stagewise",
                   stage_fractions=fractions, **branch)  # fmt: skip
        train(cfg)
        torch.manual_seed(cfg.seed)
        init = dict(HandNet(OpenHand(), 18, keypoint_branch=True).named_parameters())
        final = torch.load(tmp_path / name / "last.ckpt", weights_only=True)["net"]
        same = {n for n, p in init.items() if torch.equal(p.detach(), final[n])}
        rows = [json.loads(x) for x in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
        return same, set(init), rows

    same, names, rows = run("kp", "[1,0,0]")
    assert all(r["stage"] == "keypoints" and set(r) >= {"integral"} for r in rows)
    heads = {n for n in names if n.startswith("heads.")}
    assert heads and heads <= same  # every head parameter untouched
    assert not any(n.startswith(("encoder.conv1", "keypoints.")) for n in same)
    same, names, rows = run("mesh", "[0,1,0]")
    assert all(r["stage"] == "mesh" for r in rows)
    assert {n for n in names if n.startswith(("encoder.", "keypoints."))} <= same
    assert not any(n.startswith("heads.pose") for n in same)


def test_keypoint_branch_and_regularisers_in_training(tmp_path, data_root):
    """End-to-end with the 2D branch, mean colour, scale prior and Laplacian: all logged and
    finite; the checkpoint reloads with its branch for reconstruction."""
    from monohand.nets import load_network

    terms = {"model.keypoint_branch": "true", "loss.integral": 1.0, "loss.consistency": 0.5,
             "loss.mean_colour": 1.0, "loss.scale_prior": 1.0, "loss.laplacian": 10.0,
             "loss.ssim": 1.0, "loss.pose_limits": 1.0,
             "loss.keypoints_form": "s2hand"}  # fmt: skip
    cfg = tiny_config(tmp_path / "all", data_root, steps=2, log_every=1, **terms)
    train(cfg)
    rows = [json.loads(x) for x in (tmp_path / "all" / "metrics.jsonl").read_text().splitlines()]
    want = {
        "integral",
        "consistency",
        "mean_colour",
        "scale_prior",
        "laplacian",
        "ssim",
        "pose_limits",
    }
    assert all(want <= set(r) and np.isfinite([r[k] for k in want]).all() for r in rows)
    net, _ = load_network(str(tmp_path / "all" / "last.ckpt"))
    assert net.keypoints is not None


def _ho3d_root(tmp_path, n=4):
    """HO-3D's layout: train/<seq>/{rgb,meta}, meta pickles with camMat and handJoints3D in
    its OpenGL camera and MANO order + tips; train.txt lists the frames."""
    import pickle

    from PIL import Image

    rng = np.random.default_rng(0)
    root = tmp_path / "ho3d"
    K = np.array([[617.0, 0, 320], [0, 617.0, 240], [0, 0, 1]])
    names = []
    for k in range(n):
        seq, frame = f"SEQ{k % 2}", f"{k:04d}"
        native = rng.normal(scale=0.03, size=(21, 3)) + [0.05 * k - 0.07, 0.02, -0.5]
        for sub in ("rgb", "meta"):
            (root / "train" / seq / sub).mkdir(parents=True, exist_ok=True)
        img = rng.integers(0, 255, size=(480, 640, 3), dtype=np.uint8)
        Image.fromarray(img).save(root / "train" / seq / "rgb" / f"{frame}.jpg")
        meta = {"camMat": K, "handJoints3D": native}
        (root / "train" / seq / "meta" / f"{frame}.pkl").write_bytes(pickle.dumps(meta, 2))
        names.append(f"{seq}/{frame}")
    (root / "train.txt").write_text("\n".join(names) + "\n")
    return root


def test_ho3d_as_a_training_set(tmp_path):
    """Crops around the hand with K mapped into them (the joints project to the same crop
    pixels either way), detections mapped from the full frame, and training by config."""
    from monohand.data.detection_file import save_detections
    from monohand.data.ho3d import HO3DDataset, read_ho3d
    from monohand.render.camera import project

    root = _ho3d_root(tmp_path)
    ds = HO3DDataset(root, "train", size=96)
    item = ds[1]
    assert item["image"].shape == (3, 96, 96)
    assert ((item["joints2d"] > 0) & (item["joints2d"] < 96)).all()
    frames = read_ho3d(root, "train")
    # Labels given on the full frame, 10 px right: mapped into the crop, 10 * scale right.
    xy = np.stack([project(torch.as_tensor(f.joints3d)[None], torch.as_tensor(f.K)[None])[0]
                   .numpy() for f in frames]) + [10.0, 0.0]  # fmt: skip
    det = tmp_path / "det.json"
    save_detections(det, xy, np.full((4, 21), 0.7), [str(f.image) for f in frames])
    labelled = HO3DDataset(root, "train", size=96, labels=det)[1]
    scale = item["K"][0, 0] / frames[1].K[0, 0]
    shift = labelled["keypoints"] - item["joints2d"]
    np.testing.assert_allclose(shift, np.tile([10 * scale, 0], (21, 1)), atol=1e-3)
    assert torch.allclose(labelled["confidence"], torch.full((21,), 0.7))
    cfg = tiny_config(tmp_path / "ho3d_run", root, steps=2, log_every=1, batch=2,
               **{"data.dataset": "ho3d", "data.size": 96, "loss.joints_3d_norm": 1.0})  # fmt: skip
    train(cfg)
    assert (tmp_path / "ho3d_run" / "last.ckpt").is_file()
    with pytest.raises(ValueError, match="data.dataset=ho3d needs"):
        load_config(SMOKE, ["data.dataset=ho3d"])
    with pytest.raises(ValueError, match="data.augment applies"):
        load_config(SMOKE, ["data.dataset=ho3d", f"data.root={root}", "data.augment=true"])
    with pytest.raises(ValueError, match="synth_orientation"):
        load_config(SMOKE, ["data.synth_orientation=sideways"])


def test_without_confidence_still_skips_missed_detections(tmp_path):
    """``use_confidence=false`` weighs found joints alike but leaves out samples the
    detector missed (all-zero confidence, keypoints at 0): they would teach nonsense."""
    from monohand.train import compute_losses

    cfg = load_config(SMOKE, ["loss.use_confidence=false", "loss.bone=1.0", "loss.scale_2d=1.0",
                              "loss.joints_3d_norm=0"])  # fmt: skip
    j2 = torch.rand(2, 21, 2) * 50 + 20
    labels = j2.clone()
    labels[1] = 0.0  # sample 1: no detection
    conf = torch.full((2, 21), 0.3)
    conf[1] = 0.0
    batch = {"K": torch.eye(3).repeat(2, 1, 1), "joints2d": j2, "keypoints": labels,
             "confidence": conf}  # fmt: skip

    Out, Params = exact_outputs(j2)

    terms = compute_losses(cfg, batch, Params, Out)
    for name in ("keypoints_2d", "bone", "scale_2d"):
        assert terms[name].item() < 1e-6, name  # sample 0 is exact, sample 1 ignored


def test_frontal_views_keep_their_in_plane_angle_within_the_spin_limit():
    from scipy.spatial.transform import Rotation

    from monohand.data.synthetic import _UPRIGHT, _frontal_rotation

    rng = np.random.default_rng(1)
    fingers = np.array([-1.0, 0.0, 0.0])  # the template's finger direction
    for limit in (20.0, 180.0):
        angles = []
        for _ in range(400):
            d = Rotation.from_rotvec(_frontal_rotation(rng, 0.0, limit)).apply(fingers)
            angles.append(np.degrees(np.arctan2(d[0], -d[1])))  # from image-up (camera -y)
        angles = np.abs(angles)
        assert angles.max() <= limit + 1e-6 and angles.max() > 0.9 * limit
    # No tilt: the fingers stay in the image plane, pointing up when unspun.
    up = Rotation.from_matrix(_UPRIGHT).apply(fingers)
    assert np.allclose(up, [0.0, -1.0, 0.0])


def test_augment_flag_reaches_the_training_batches(tmp_path, data_root):
    """Same seed, same order and initialisation: the first step's losses differ only if the
    batches were augmented."""
    losses = []
    for aug in ("false", "true"):
        cfg = tiny_config(tmp_path / aug, data_root, steps=1, log_every=1,
                   **{"data.augment": aug, "tensorboard": False})  # fmt: skip
        train(cfg)
        rows = (tmp_path / aug / "metrics.jsonl").read_text().splitlines()
        losses.append(json.loads(rows[0])["keypoints_2d"])
    assert losses[0] != pytest.approx(losses[1], rel=1e-3)


def test_feature_cache_key_follows_the_set_not_its_name(tmp_path):
    """A set regenerated under the same folder (another seed) must not reuse stored features;
    the same set again must."""
    from monohand.train.features import cache_key

    cfg = load_config(SMOKE, [f"out_dir={tmp_path / 'run'}"])
    root = tmp_path / "set"
    generate(root, SynthConfig(num=3, size=32, seed=1))
    first = cache_key(cfg, root)
    assert cache_key(cfg, root) == first
    generate(root, SynthConfig(num=3, size=32, seed=2), overwrite=True)
    assert cache_key(cfg, root) != first
    generate(root, SynthConfig(num=3, size=32, seed=1), overwrite=True)
    assert cache_key(cfg, root) == first
    # The detector's labels, which the cache stores too: made again, another key.
    mp = load_config(SMOKE, [f"out_dir={tmp_path / 'run'}", "data.labels=mediapipe"])
    (root / "detections_mediapipe.json").write_text("[1]")
    labelled = cache_key(mp, root)
    (root / "detections_mediapipe.json").write_text("[2]")
    assert cache_key(mp, root) != labelled


def test_generating_the_training_set_shows_progress(tmp_path):
    """The synthetic set that training makes first reports its progress (minutes at the
    seed's 20,000 images): the total asked for, then batches adding up to it."""
    calls = []

    def data_progress(total):
        calls.append(("total", total))
        return lambda n: calls.append(("done", n))

    cfg = load_config(SMOKE, [f"out_dir={tmp_path / 'run'}", "steps=1", "batch=2",
                              "data.synth_num=6", "data.synth_size=64"])  # fmt: skip
    train(cfg, data_progress=data_progress)
    assert calls[0] == ("total", 6) and sum(n for k, n in calls[1:] if k == "done") == 6
    calls.clear()
    train(cfg, resume=False, data_progress=data_progress)  # the set is there: nothing to show
    assert calls == []


def test_mediapipe_labels_say_how_many_images_have_a_hand(tmp_path, capsys):
    """Made once per set, the labels' cache is announced with the share of images where
    MediaPipe found a hand, as the file itself counts them (an image without one holds an
    all-zero entry)."""
    from monohand.data.detection_file import load_detections
    from monohand.data.synthetic import SynthConfig, generate
    from monohand.train.inputs import label_source

    root = tmp_path / "data"
    generate(root, SynthConfig(num=6, size=96, seed=3, eval_fraction=0.0))
    path = label_source("mediapipe", root)
    _, conf, names = load_detections(path)
    found = len({n for n, c in zip(names, conf, strict=True) if c.any()})
    text = " ".join(capsys.readouterr().out.split())
    assert f"a hand in {found} of 6 training images" in text, text
