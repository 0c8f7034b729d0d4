"""A trained network's outputs: FreiHAND and HO-3D submission files, and ``monohand
ablate``'s tables over the seed's configs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from monohand.cli import app
from monohand.config import load_config
from monohand.data.synthetic import SynthConfig, generate
from monohand.train import train
from trainkit import SMOKE, tiny_config


def test_predict_writes_freihand_submissions_that_evaluate(tmp_path):
    """``monohand predict`` on a synthetic evaluation split: batched predictions equal a
    one-image-at-a-time forward pass, and ``monohand evaluate`` scores the file."""
    from monohand.evaluate.io import load_prediction
    from monohand.nets import load_network

    root = tmp_path / "data"
    generate(root, SynthConfig(num=20, size=96, seed=1, eval_fraction=0.35))
    cfg = tiny_config(tmp_path / "net", root, steps=2, log_every=1)
    train(cfg)
    ckpt = tmp_path / "net" / "last.ckpt"
    pred = tmp_path / "pred.json"
    res = CliRunner().invoke(app, ["predict", str(ckpt), str(root), "--out", str(pred),
                                   "--batch", "3"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "projected ground truth" not in res.output  # (whole images: no crops to place)
    xyz, verts = load_prediction(pred)
    ks = json.loads((root / "evaluation_K.json").read_text())
    assert xyz.shape == (len(ks), 21, 3) and verts.shape[1:] == (1528, 3)
    net, size = load_network(str(ckpt))
    from PIL import Image

    for i in (0, len(ks) - 1):  # the naive reference: one image, resized by PIL
        img = Image.open(root / "evaluation" / "rgb" / f"{i:08d}.jpg").convert("RGB")
        x = torch.as_tensor(np.array(img), dtype=torch.float32).permute(2, 0, 1)[None] / 255
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear")
        K = torch.tensor(ks[i], dtype=torch.float32)
        K[:2] *= size / img.width  # square images: one scale
        K[:2, 2] += 0.5 * size / img.width - 0.5
        with torch.no_grad():
            _, out = net(x, K[None])
        np.testing.assert_allclose(xyz[i], out.joints[0].numpy(), atol=1e-5)
    res = CliRunner().invoke(app, ["evaluate", str(pred), str(root), "--out", str(tmp_path / "ev")])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "ev" / "metrics.json").read_text())["num_samples"] == len(ks)
    res = CliRunner().invoke(app, ["predict", str(ckpt), str(tmp_path / "nowhere")])
    assert res.exit_code == 2 and "nowhere" in res.output


def test_seed_configs_load_and_ablate_prints_the_tables(tmp_path):
    """Every shipped seed config loads (``extends`` chains resolved); ``monohand ablate`` on
    two of them at toy size trains, predicts, evaluates and writes the seed's tables."""
    seed = SMOKE.parent / "seed"
    ho3d = ["data.root=/data/ho3d"]  # HO-3D configs name no folder of their own
    cfgs = {p.stem: load_config(p, ho3d if "ho3d" in p.stem else None)
            for p in sorted(seed.glob("*.yaml"))}  # fmt: skip
    assert cfgs["ho3d_ssl"].schedule == "stagewise" and cfgs["ho3d_ssl"].data.dataset == "ho3d"
    assert (
        cfgs["bone_ss_conf"].loss.bone_target == "labels"
        and cfgs["bone_ss_conf"].loss.bone_confidence
    )
    assert cfgs["bone_ws"].loss.bone_target == "gt" and cfgs["bone_ws"].data.labels == "mediapipe"
    assert cfgs["gt2d_3dnorm"].loss.joints_3d_norm == 1.0 and cfgs["gt2d"].data.labels == "gt"
    assert cfgs["nimble_gt2d_3dnorm"].model.name == "nimble"
    with pytest.raises(ValueError, match="loss.bone_target must be"):
        load_config(seed / "bone_ss.yaml", ["loss.bone_target=detector"])
    root = tmp_path / "data"
    generate(root, SynthConfig(num=16, size=96, seed=2, eval_fraction=0.25))
    out = tmp_path / "ablate"
    # (as from configs/seed/*.yaml: HO-3D's and NIMBLE's without its files are left out, said)
    args = ["ablate", str(seed / "gt2d.yaml"), str(seed / "ho3d_ssl.yaml"),
            str(seed / "nimble_gt2d_3dnorm.yaml"), str(seed / "gt2d_3dnorm.yaml"), "--out",
            str(out), "steps=2", "batch=4", "data.size=64", f"data.root={root}",
            "log_every=1"]  # fmt: skip
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    said = " ".join(res.output.split())
    assert "left out: " in said and "ho3d_ssl.yaml: HO-3D: its evaluation labels are on" in said
    assert "nimble_gt2d_3dnorm.yaml: nimble needs its files (model.path=" in said
    # nothing left to run (one such config alone, or only such): refused before any work
    ho3d, nimble = seed / "ho3d_ssl.yaml", seed / "nimble_gt2d_3dnorm.yaml"
    for only in ([ho3d], [ho3d, nimble]):
        res = CliRunner().invoke(app, ["ablate", *map(str, only), "--out", str(tmp_path / "x")])
        said = " ".join(res.output.split())
        assert res.exit_code == 2 and "(nothing ablate can run)" in said, res.output
        assert not (tmp_path / "x" / "data").exists()
    results = json.loads((out / "results.json").read_text())
    assert [r["name"] for r in results] == ["gt2d", "gt2d_3dnorm", "mean pose (reference)"]
    assert all(r["num_samples"] == 4 and r["aligned"]["auc_j"] >= 0 for r in results)
    assert [r["reference"] for r in results] == [False, False, True]
    assert all(r["train_images_per_s"] > 0 for r in results[:2])
    tables = (out / "tables.md").read_text()
    assert "| gt2d_3dnorm |" in tables and "MPVPE" in tables
    assert "| mean pose (reference) | – | – |" in tables  # no camera: no unaligned error
    assert "joints_3d_norm" in (out / "gt2d_3dnorm" / "metrics.jsonl").read_text()
    from PIL import Image

    with Image.open(out / "pck.png") as im:  # both experiments' PCK curves, two panels
        assert im.size == (1210, 462)
    again = CliRunner().invoke(app, args)  # trained already: evaluated again, speed kept
    assert again.exit_code == 0, again.output
    assert json.loads((out / "results.json").read_text()) == results
    assert "gt2d: reusing" in " ".join(again.output.split())  # said, not silent
    # fewer steps than a finished run's: reused, and said that its row is of the longer run
    fewer = CliRunner().invoke(app, [a if a != "steps=2" else "steps=1" for a in args])
    text = " ".join(fewer.output.split())
    assert fewer.exit_code == 0 and "past steps=1: its row is of step 2" in text, fewer.output
    # other settings over the same folder: refused, naming the setting, not silently reused
    other = CliRunner().invoke(app, [*args, "lr=0.5"])
    text = " ".join(other.output.split())
    assert other.exit_code == 2 and "an earlier run of other settings: lr=" in text, other.output
    # one of the two again: its row alone is tabulated, and the row that went is named
    one = [a for a in args if "gt2d_3dnorm" not in a]
    res = CliRunner().invoke(app, one)
    text = " ".join(res.output.split())
    assert res.exit_code == 0 and "held gt2d_3dnorm too" in text, res.output
    assert [r["name"] for r in json.loads((out / "results.json").read_text())] == [
        "gt2d", "mean pose (reference)"]
    assert "Each row's network: gt2d step 2." in (out / "tables.md").read_text()
    # more steps: the finished run is trained on, and its row says so (the same command gave
    # another table than a fresh run of those steps, and nothing recorded why); kept for
    # later runs of the command
    for _ in range(2):
        res = CliRunner().invoke(app, [a if a != "steps=2" else "steps=3" for a in one])
        assert res.exit_code == 0, res.output
        row = json.loads((out / "results.json").read_text())[0]
        assert row["step"] == 3
        assert row["extended"] == [{"at_step": 2, "from_steps": 2, "to_steps": 3}]
        assert ("- gt2d: trained to step 2 for steps=2, then on to steps=3"
                in (out / "tables.md").read_text())


def test_predict_writes_ho3d_codalab_submissions(tmp_path, data_root):
    """``monohand predict --format ho3d``: every evaluation frame in evaluation.txt's order,
    cropped at its handBoundingBox, wrist moved onto the meta's root, HO-3D's joint order and
    OpenGL camera - checked against a one-frame pass with the order built from joint names."""
    import pickle

    from PIL import Image

    from monohand.data.augment import crop_around
    from monohand.evaluate.io import load_prediction
    from monohand.models.joints import FINGERS, FREIHAND_JOINT_NAMES, MANO_JOINT_NAMES
    from monohand.nets import load_network

    cfg = tiny_config(tmp_path / "net", data_root, steps=1, log_every=1)
    train(cfg)
    ckpt = tmp_path / "net" / "last.ckpt"
    root, rng = tmp_path / "ho3d", np.random.default_rng(1)
    K = np.array([[600.0, 0, 320], [0, 600.0, 240], [0, 0, 1]])
    names, metas = ["B/0003", "A/0001", "B/0000"], {}
    for n in names:
        seq, frame = n.split("/")
        for sub in ("rgb", "meta"):
            (root / "evaluation" / seq / sub).mkdir(parents=True, exist_ok=True)
        img = rng.integers(0, 255, size=(480, 640, 3), dtype=np.uint8)
        Image.fromarray(img).save(root / "evaluation" / seq / "rgb" / f"{frame}.png")
        x0, y0 = rng.uniform(100, 400), rng.uniform(80, 300)
        metas[n] = {"camMat": K, "handJoints3D": np.array([0.02, -0.01, -0.45]) * rng.uniform(1, 2),
                    "handBoundingBox": [x0, y0, x0 + rng.uniform(60, 150), y0 + 90.0]}  # fmt: skip
        (root / "evaluation" / seq / "meta" / f"{frame}.pkl").write_bytes(pickle.dumps(metas[n]))
    (root / "evaluation.txt").write_text("\n".join(names) + "\n")
    pred = tmp_path / "pred.json"
    res = CliRunner().invoke(app, ["predict", str(ckpt), str(root), "--format", "ho3d",
                                   "--out", str(pred), "--batch", "2"])  # fmt: skip
    assert res.exit_code == 0, res.output
    xyz, verts = load_prediction(pred)
    assert xyz.shape == (3, 21, 3) and verts.shape == (3, 1528, 3)
    assert (xyz[..., 2] < 0).all() and (verts[..., 2] < 0).all()  # HO-3D's pred.py check
    tips = tuple(f"{f}_tip" for f in FINGERS)
    ho3d_names = MANO_JOINT_NAMES + tips
    net, size = load_network(str(ckpt))
    for k, n in enumerate(names):
        m = metas[n]
        seq, frame = n.split("/")
        img = np.asarray(Image.open(root / "evaluation" / seq / "rgb" / f"{frame}.png"))
        crop, Kc = crop_around(img, K, np.reshape(m["handBoundingBox"], (2, 2)), size)
        x = torch.as_tensor(crop, dtype=torch.float32).permute(2, 0, 1)[None] / 255
        with torch.no_grad():
            _, out = net(x, torch.as_tensor(Kc, dtype=torch.float32)[None])
        j = out.joints[0].double().numpy()
        j = j - j[0] + m["handJoints3D"] * [1, -1, -1]  # wrist on the root (OpenCV)
        for i, name in enumerate(ho3d_names):
            want = j[FREIHAND_JOINT_NAMES.index(name)] * [1, -1, -1]
            np.testing.assert_allclose(xyz[k, i], want, atol=1e-5, err_msg=f"{n} {name}")
    np.testing.assert_allclose(xyz[:, 0], [metas[n]["handJoints3D"] for n in names], atol=1e-6)
    res = CliRunner().invoke(app, ["predict", str(ckpt), str(root), "--format", "coco"])
    assert res.exit_code == 2 and "--format" in res.output


def test_ablate_generates_the_set_its_configs_describe(tmp_path):
    """``ablate`` makes its shared set by the first config's ``data.synth_*`` settings, as
    ``train`` does (until 2026-12-05 it took only their number, orientation and spin)."""
    from monohand.ablate import _prepare_data
    from monohand.train import synthetic_config

    cfg = load_config(SMOKE, ["seed=3", "data.synth_num=4", "data.synth_size=48",
                              "data.synth_fill=[0.3,0.4]", "data.synth_style=v2"])  # fmt: skip
    root = _prepare_data(cfg, tmp_path)
    made = json.loads((root / "synth_config.json").read_text())
    assert (made["num"], made["seed"], made["size"], made["fill"], made["style"]) == (
        4, 3, 48, [0.3, 0.4], "v2")  # fmt: skip
    assert made["eval_fraction"] == 0.05 and synthetic_config(cfg).eval_fraction == 0.0
    from PIL import Image

    with Image.open(next((root / "training" / "rgb").iterdir())) as im:
        assert im.size == (48, 48)


def test_ablate_refuses_a_term_a_rows_model_cannot_give_before_any_training(tmp_path, mano_pkl):
    """Every row is checked before the first trains: a later row's photometric term on MANO
    (no texture space) stops the ablation with its name, nothing trained or generated."""
    from monohand.ablate import run_ablation
    from monohand.train import SetupError

    mine = tmp_path / "mano_photo.yaml"
    mine.write_text(f"extends: {SMOKE}\nmodel: {{name: mano, path: {mano_pkl}}}\n"
                    "loss: {photometric: 1.0}\n")  # fmt: skip
    with pytest.raises(SetupError, match="loss.photometric: the mano model has no texture"):
        run_ablation([SMOKE, mine], tmp_path / "out", ["data.synth_num=40"])
    assert not (tmp_path / "out" / "data").exists() and not (tmp_path / "out" / "smoke").exists()
