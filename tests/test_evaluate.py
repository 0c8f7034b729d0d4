"""Evaluation against a naive per-sample implementation of FreiHAND's official script."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from scipy.linalg import orthogonal_procrustes
from scipy.spatial.transform import Rotation
from typer.testing import CliRunner

from monohand.cli import app
from monohand.evaluate import evaluate_arrays, procrustes_align
from monohand.evaluate.io import (
    EvalInputError,
    load_freihand_gt,
    load_prediction,
    save_prediction,
)

REALHANDS = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "realhands" / "annotations.json"
)


# ---- the reference: FreiHAND's eval.py, one sample at a time, written from its definition ----
def ref_align(gt, pred):
    t1, t2 = gt.mean(0), pred.mean(0)
    a, b = gt - t1, pred - t2
    s1, s2 = np.linalg.norm(a) + 1e-8, np.linalg.norm(b) + 1e-8
    a, b = a / s1, b / s2
    r, s = orthogonal_procrustes(a, b)
    return (b @ r.T) * s * s1 + t1


def ref_measures(errors_per_point):  # list over points of lists over samples
    thresholds = np.linspace(0.0, 0.05, 100)
    aucs, means = [], []
    for data in errors_per_point:
        data = np.array(data)
        curve = np.array([np.mean(data <= t) for t in thresholds])
        aucs.append(np.trapezoid(curve, thresholds) / np.trapezoid(np.ones_like(curve), thresholds))
        means.append(data.mean())
    return np.mean(means), np.mean(aucs)


def ref_fscore(gt, pr, th):
    d = np.linalg.norm(gt[:, None] - pr[None], axis=-1)
    d1, d2 = d.min(1), d.min(0)  # gt -> pred, pred -> gt
    recall, precision = np.mean(d2 < th), np.mean(d1 < th)
    return 2 * recall * precision / (recall + precision) if recall + precision > 0 else 0.0


def reference(xyz_pred, xyz_gt, v_pred, v_gt):
    out = {}
    for aligned in (True, False):
        ej = [[] for _ in range(21)]
        ev = [[] for _ in range(v_gt.shape[1])]
        f5, f15 = [], []
        for i in range(len(xyz_gt)):
            pj = ref_align(xyz_gt[i], xyz_pred[i]) if aligned else xyz_pred[i]
            pv = ref_align(v_gt[i], v_pred[i]) if aligned else v_pred[i]
            for k, e in enumerate(np.linalg.norm(pj - xyz_gt[i], axis=1)):
                ej[k].append(e)
            for k, e in enumerate(np.linalg.norm(pv - v_gt[i], axis=1)):
                ev[k].append(e)
            f5.append(ref_fscore(v_gt[i], pv, 0.005))
            f15.append(ref_fscore(v_gt[i], pv, 0.015))
        mj, aj = ref_measures(ej)
        mv, av = ref_measures(ev)
        out["aligned" if aligned else "unaligned"] = dict(
            mpjpe_mm=1000 * mj,
            auc_j=aj,
            mpvpe_mm=1000 * mv,
            auc_v=av,
            f5=np.mean(f5),
            f15=np.mean(f15),
        )
    return out


def make_data(n=40, v=120, seed=0, noise=0.01):
    rng = np.random.default_rng(seed)
    xyz = rng.normal(scale=0.04, size=(n, 21, 3)) + [0, 0, 0.6]
    verts = rng.normal(scale=0.04, size=(n, v, 3)) + [0, 0, 0.6]
    # Predictions: random similarity transforms of the truth about the hands' centre (so that
    # they stay in front of the camera), plus noise.
    rot = Rotation.random(n, random_state=seed).as_matrix()
    scale = rng.uniform(0.8, 1.2, size=(n, 1, 1))
    shift = rng.normal(scale=0.05, size=(n, 1, 3)) + [0, 0, 0.6]
    centre = np.array([0, 0, 0.6])
    xyz_p = (scale * (xyz - centre) @ rot.transpose(0, 2, 1) + shift
             + rng.normal(scale=noise, size=xyz.shape))  # fmt: skip
    verts_p = (scale * (verts - centre) @ rot.transpose(0, 2, 1) + shift
               + rng.normal(scale=noise, size=verts.shape))  # fmt: skip
    return xyz_p, xyz, verts_p, verts


@pytest.mark.parametrize("noise", [0.002, 0.01, 0.03])
def test_matches_the_naive_reference(noise):
    xyz_p, xyz, verts_p, verts = make_data(noise=noise, seed=int(noise * 1000))
    got = evaluate_arrays(xyz_p, xyz, verts_p, verts).to_json()
    want = reference(xyz_p, xyz, verts_p, verts)
    for variant in ("aligned", "unaligned"):
        for key, value in want[variant].items():
            assert got[variant][key] == pytest.approx(value, abs=1e-9), (variant, key)


def test_fscores_decide_distances_at_the_thresholds_exactly():
    """Points at a threshold, a hair either side of it, and far from the origin: the float32
    search's margin sends them to the float64 check, which must agree with the reference."""
    from monohand.evaluate.metrics import fscores

    rng = np.random.default_rng(5)
    gt = rng.uniform(-0.5, 0.5, size=(6, 40, 3)) + [0.3, -0.2, 1.5]  # spread: 1 neighbour each
    pred = gt.copy()
    for t in (0.005, 0.015):
        for k, f in enumerate((1 - 1e-12, 1.0, 1 + 1e-12, 1 - 1e-7, 1 + 1e-7)):
            pred[:, k + (0 if t == 0.005 else 5), 0] += t * f
    pred[:, 10:] += rng.normal(scale=0.01, size=pred[:, 10:].shape)
    got = fscores(pred, gt)
    want = [[ref_fscore(g, p, t) for t in (0.005, 0.015)] for g, p in zip(gt, pred, strict=True)]
    assert np.array_equal(got, np.array(want))


def test_fscores_shared_between_threads_match_the_reference():
    """Enough samples for one share per core (each thread its own samples): the same values."""
    from monohand.evaluate.metrics import fscores

    rng = np.random.default_rng(6)
    gt = rng.normal(scale=0.04, size=(130, 60, 3)) + [0, 0, 0.6]
    pred = gt + rng.normal(scale=0.008, size=(130, 60, 3))
    want = [[ref_fscore(g, p, t) for t in (0.005, 0.015)] for g, p in zip(gt, pred, strict=True)]
    assert np.array_equal(fscores(pred, gt), np.array(want))


def test_fscores_over_several_tiles_match_the_reference():
    """More points than one tile of the search holds (the last tile partial, the points'
    minima running over tiles), and two sets of different sizes."""
    from monohand.evaluate import metrics

    rng = np.random.default_rng(7)
    n = 2 * metrics._ROWS + 37
    gt = rng.normal(scale=0.04, size=(3, n - 50, 3)) + [0, 0, 0.6]
    pred = rng.normal(scale=0.04, size=(3, n, 3)) + [0, 0, 0.6]
    want = [[ref_fscore(g, p, t) for t in (0.005, 0.015)] for g, p in zip(gt, pred, strict=True)]
    assert np.array_equal(metrics.fscores(pred, gt), np.array(want))
    assert np.array_equal(metrics.fscores(gt, pred), np.array(want))  # F is symmetric
    with pytest.raises(ValueError, match="at least one point"):
        metrics.fscores(pred[:, :0], gt)


def test_small_errors_at_threshold_boundaries_follow_le():
    # Errors exactly on thresholds: PCK uses <=, as the official script.
    gt = np.zeros((4, 21, 3))
    pred = gt.copy()
    pred[:, :, 0] = np.linspace(0, 0.05, 100)[[0, 10, 20, 99]][:, None]
    got = evaluate_arrays(pred, gt).to_json()["unaligned"]
    want = ref_measures(list(np.abs(pred[:, :, 0]).T))
    assert got["auc_j"] == pytest.approx(want[1], abs=1e-12)


def test_exact_similarity_transform_is_perfect_when_aligned():
    _, xyz, _, verts = make_data(noise=0.0)
    rot = Rotation.random(1, random_state=3).as_matrix()[0]
    xyz_p, verts_p = 1.3 * xyz @ rot.T + 0.2, 1.3 * verts @ rot.T + 0.2
    r = evaluate_arrays(xyz_p, xyz, verts_p, verts)
    assert r.aligned.mpjpe_mm < 1e-5 and r.aligned.mpvpe_mm < 1e-5  # nanometres
    assert r.aligned.f5 == 1.0 and r.aligned.f15 == 1.0
    # FreiHAND's 1e-8 in the normalisation leaves ~1e-10 m errors: the threshold-0 PCK point is 0,
    # so the official aligned AUC of a perfect prediction is 1 - 0.5 / 99, not 1.
    assert r.aligned.auc_j == pytest.approx(1 - 0.5 / 99, abs=1e-12)
    # Unaligned, a perfect prediction is exactly perfect.
    u = evaluate_arrays(xyz, xyz, verts, verts)
    assert u.unaligned.mpjpe_mm == 0 and u.unaligned.auc_j == 1.0 and u.unaligned.f5 == 1.0


def test_alignment_allows_reflections_like_the_official_script():
    """A mirror image of the truth is perfect once aligned (as documented), not unaligned."""
    _, xyz, _, _ = make_data(noise=0.0)
    mirrored = xyz * [-1, 1, 1]
    assert np.abs(procrustes_align(mirrored, xyz) - xyz).max() < 1e-8
    r = evaluate_arrays(mirrored, xyz)
    assert r.aligned.mpjpe_mm < 1e-5 and r.root_relative.mpjpe_mm > 10
    with pytest.raises(ValueError, match=re.escape("(B, N, 3), got (21, 3) and (21, 3) (one set")):
        procrustes_align(xyz[0], xyz[0])
    with pytest.raises(ValueError, match="one shape"):
        procrustes_align(xyz[:2], xyz[:3])


def test_other_units_and_frames_are_warned_of_and_scored():
    """Millimetres and centimetres (alignment hides the scale: the aligned row alone looks
    right; centimetres passed without a word), OpenGL's -z and root-relative joints (at or
    behind the camera), a ground truth in millimetres: warned of, and scored as given; metres
    in the camera's frame: no warning. A root that is no keypoint index is refused by name."""
    import warnings

    _, xyz, _, _ = make_data(noise=0.01)
    xyz_p = xyz + np.random.default_rng(1).normal(scale=0.005, size=xyz.shape)
    aligned = evaluate_arrays(xyz_p, xyz).aligned.mpjpe_mm
    for scaled, words in ((1000 * xyz_p, "millimetres or centimetres"),
                          (100 * xyz_p, "millimetres or centimetres"),
                          (xyz_p * [1, -1, -1], "at or behind the camera"),
                          (xyz_p - xyz_p[:, :1], "at or behind the camera")):  # fmt: skip
        with pytest.warns(UserWarning, match=f"xyz_pred: .*{words}.*scored as given"):
            r = evaluate_arrays(scaled, xyz)
        assert r.aligned.mpjpe_mm == pytest.approx(aligned, rel=1e-6) or "behind" in words
    with pytest.warns(UserWarning, match="xyz_gt: a median coordinate of .*millimetres?"):
        evaluate_arrays(1000 * xyz_p, 1000 * xyz)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # metres: no warning
        evaluate_arrays(xyz_p, xyz)
    for root in (21, -1, 1.5, True):
        with pytest.raises(ValueError, match=r"root: the index of a keypoint, 0-20"):
            evaluate_arrays(xyz_p, xyz, root=root)
    text = xyz_p.tolist()
    text[0][0][0] = "0.1"  # a JSON file's string
    with pytest.raises(ValueError, match="xyz_pred holds text or other objects, not numbers"):
        evaluate_arrays(text, xyz)


def test_root_relative_and_joint_only():
    xyz_p, xyz, _, _ = make_data(noise=0.01)
    r = evaluate_arrays(xyz_p + 0.5, xyz)
    j = r.to_json()
    assert j["aligned"]["mpvpe_mm"] is None and j["unaligned"]["f5"] is None
    shifted = xyz + np.array([0.3, -0.1, 0.2])
    rr = evaluate_arrays(shifted, xyz)
    assert rr.root_relative.mpjpe_mm < 1e-9 and rr.unaligned.mpjpe_mm > 100


@pytest.mark.parametrize(
    "args,match",
    [
        ((np.zeros((3, 20, 3)), np.zeros((3, 21, 3))), r"xyz_pred must have shape \(N, 21, 3\)"),
        ((np.zeros((3, 21, 3)), np.zeros((4, 21, 3))), "differ"),
        (
            (np.full((3, 21, 3), np.nan), np.zeros((3, 21, 3))),
            r"NaN or inf values \(samples \[0, 1, 2\]",
        ),
        (
            (
                np.zeros((3, 21, 3)),
                np.zeros((3, 21, 3)),
                np.zeros((3, 700, 3)),
                np.zeros((3, 778, 3)),
            ),
            r"verts_pred must have shape \(N, 778, 3\)",
        ),
        (
            (
                np.zeros((3, 21, 3)),
                np.zeros((3, 21, 3)),
                np.zeros((2, 778, 3)),
                np.zeros((2, 778, 3)),
            ),
            "sample counts differ",
        ),
        ((np.zeros((3, 21, 3)), np.zeros((3, 21, 3)), np.zeros((3, 778, 3)), None), "both"),
    ],
)
def test_bad_inputs(args, match):
    with pytest.raises(ValueError, match=match):
        evaluate_arrays(*args)


def test_prediction_file_round_trip_and_errors(tmp_path):
    xyz_p, _, verts_p, _ = make_data(n=5)
    p = save_prediction(tmp_path / "pred.json", xyz_p, verts_p)
    x, v = load_prediction(p)
    assert np.array_equal(x, xyz_p) and np.array_equal(v, verts_p)
    save_prediction(tmp_path / "joints.json", xyz_p)
    assert load_prediction(tmp_path / "joints.json")[1] is None
    (tmp_path / "bad.json").write_text("[[1, 2, 3]]")
    with pytest.raises(EvalInputError, match=r"bad\.json: xyz_list must have shape"):
        load_prediction(tmp_path / "bad.json")
    (tmp_path / "trunc.json").write_text("[[[1, 2")
    with pytest.raises(EvalInputError, match=r"trunc\.json: not valid JSON"):
        load_prediction(tmp_path / "trunc.json")
    (tmp_path / "nan.json").write_text(
        json.dumps([[[[0, 0, 0]] * 21], []]).replace("0]", "NaN]", 1)
    )
    with pytest.raises(EvalInputError, match=r"nan\.json: not valid JSON: it holds NaN at "
                                             r"\[0\]\[0\]\[0\]\[2\] \("):
        load_prediction(tmp_path / "nan.json")  # (xyz_list, sample 0, joint 0, z)
    xyz = np.zeros((5, 21, 3))
    xyz[3, 5, 1] = np.nan  # as numpy and Python's json write it
    (tmp_path / "nan2.json").write_text(json.dumps([xyz.tolist(), []]))
    with pytest.raises(EvalInputError, match=r"it holds NaN at \[0\]\[3\]\[5\]\[1\] \("):
        load_prediction(tmp_path / "nan2.json")  # (sample 3, joint 5, y)
    (tmp_path / "inf.json").write_text(json.dumps([[[float("inf"), 0, 0]] * 21]))  # Python's
    with pytest.raises(EvalInputError, match="it holds Infinity"):
        load_prediction(tmp_path / "inf.json")


def write_freihand_gt(d: Path, xyz, verts, split="evaluation"):
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{split}_xyz.json").write_text(json.dumps(xyz.tolist()))
    if verts is not None:
        (d / f"{split}_verts.json").write_text(json.dumps(verts.tolist()))


def test_freihand_ground_truth_layout(tmp_path):
    _, xyz, _, verts = make_data(n=10, v=778)
    write_freihand_gt(tmp_path / "fh", xyz, verts, split="training")
    x, v = load_freihand_gt(tmp_path / "fh", "training", slice(2, 6))
    assert np.array_equal(x, xyz[2:6]) and np.array_equal(v, verts[2:6])
    with pytest.raises(EvalInputError, match="evaluation_xyz.json: no such file"):
        load_freihand_gt(tmp_path / "fh")
    (tmp_path / "fh" / "training_verts.json").write_text(json.dumps(verts[:3].tolist()))
    with pytest.raises(EvalInputError, match="10 keypoint sets but 3 meshes"):
        load_freihand_gt(tmp_path / "fh", "training")


@pytest.mark.skipif(not REALHANDS.is_file(), reason="real-photo set absent")
def test_realhands_format():
    from monohand.data.realhands import load_realhands
    from monohand.evaluate.io import load_realhands_joints

    xyz = load_realhands_joints(REALHANDS)
    samples = load_realhands(REALHANDS, require_3d=True)
    assert xyz.shape[1:] == (21, 3) and len(samples) == len(xyz) >= 150
    assert all(s.image.is_file() and s.K.shape == (3, 3) for s in samples)
    # The 3D joints project onto the annotated 2D joints with their K.
    data = json.loads(REALHANDS.read_text())
    s = next(s for s in data["samples"] if s.get("joints3d") is not None)
    p = (np.asarray(s["K"]) @ np.asarray(s["joints3d"]).T).T
    assert np.abs(p[:, :2] / p[:, 2:] - np.asarray(s["joints2d"])).max() < 1.0


def test_cli_writes_metrics_csv_and_plot(tmp_path):
    xyz_p, xyz, verts_p, verts = make_data(n=12, v=778, noise=0.005)
    write_freihand_gt(tmp_path / "gt", xyz, verts)
    save_prediction(tmp_path / "pred.json", xyz_p, verts_p)
    res = CliRunner().invoke(app, ["evaluate", str(tmp_path / "pred.json"), str(tmp_path / "gt"),
                                   "--out", str(tmp_path / "out")])  # fmt: skip
    assert res.exit_code == 0, res.output
    m = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert m["num_samples"] == 12
    for v in ("aligned", "unaligned"):
        assert set(m[v]) == {"mpjpe_mm", "mpvpe_mm", "auc_j", "auc_v", "f5", "f15"}
    want = reference(xyz_p, xyz, verts_p, verts)
    assert m["aligned"]["auc_v"] == pytest.approx(want["aligned"]["auc_v"], abs=1e-9)
    rows = (tmp_path / "out" / "per_sample.csv").read_text().strip().splitlines()
    assert len(rows) == 13 and "mpjpe_mm_aligned" in rows[0]
    assert (tmp_path / "out" / "pck.png").read_bytes()[:4] == b"\x89PNG"
    assert "AUC_J" in res.output


def test_a_selection_is_recorded_with_each_sample_s_own_index(tmp_path):
    """--select 4:9: the CSV's rows carry the ground truth's indices 4-8 (they were numbered
    0-4), metrics.json records what was scored, the PCK figure's legend its AUCs; a count
    that does not fit says the selection."""
    import csv

    xyz_p, xyz, _, _ = make_data(n=12, noise=0.005)
    xyz_p = xyz + np.random.default_rng(2).normal(scale=0.004, size=xyz.shape)
    write_freihand_gt(tmp_path / "gt", xyz, None)
    save_prediction(tmp_path / "pred.json", xyz_p[4:9])
    res = CliRunner().invoke(app, ["evaluate", str(tmp_path / "pred.json"), str(tmp_path / "gt"),
                                   "--select", "4:9", "--out", str(tmp_path / "out")])  # fmt: skip
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader((tmp_path / "out" / "per_sample.csv").open()))
    assert [int(r["sample"]) for r in rows] == [4, 5, 6, 7, 8]
    full = evaluate_arrays(xyz_p, xyz).per_sample["mpjpe_mm_unaligned"]
    np.testing.assert_allclose([float(r["mpjpe_mm_unaligned"]) for r in rows], full[4:9],
                               atol=1e-5)  # fmt: skip
    m = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert m["inputs"]["select"] == "4:9" and m["inputs"]["split"] == "evaluation"
    assert m["inputs"]["predictions"] == str(tmp_path / "pred.json") and m["num_samples"] == 5
    res = CliRunner().invoke(app, ["evaluate", str(tmp_path / "pred.json"), str(tmp_path / "gt"),
                                   "--select", "4:", "--out", str(tmp_path / "o2")])  # fmt: skip
    assert res.exit_code == 1 and "5 predictions for 8 samples (--select 4:)" in " ".join(
        res.output.split()), res.output
    from monohand.evaluate.report import _auc

    r = evaluate_arrays(xyz_p, xyz)
    assert _auc(r, "joints", "aligned") == r.aligned.auc_j
    assert _auc(r, "joints", "unaligned") == r.unaligned.auc_j


def test_cli_mismatched_counts_and_joint_only(tmp_path):
    xyz_p, xyz, _, verts = make_data(n=6, v=778)
    write_freihand_gt(tmp_path / "gt", xyz, verts)
    save_prediction(tmp_path / "short.json", xyz_p[:4])
    res = CliRunner().invoke(app, ["evaluate", str(tmp_path / "short.json"), str(tmp_path / "gt"),
                                   "--out", str(tmp_path / "o1")])  # fmt: skip
    # rich wraps long messages at the console width: compare with the lines joined.
    assert res.exit_code == 1 and "4 predictions for 6 samples" in " ".join(res.output.split())
    assert not (tmp_path / "o1").exists()
    save_prediction(tmp_path / "joints.json", xyz_p)
    res = CliRunner().invoke(app, ["evaluate", str(tmp_path / "joints.json"), str(tmp_path / "gt"),
                                   "--out", str(tmp_path / "o2")])  # fmt: skip
    assert res.exit_code == 0, res.output
    m = json.loads((tmp_path / "o2" / "metrics.json").read_text())
    assert m["aligned"]["mpvpe_mm"] is None and m["aligned"]["f15"] is None


def _naive_match(detected, annotated, gate):
    """Every one-to-one pairing of gated pairs: the most pairs, then the least total cost."""
    from itertools import permutations

    def cost(a, d):
        return np.linalg.norm(d - a, axis=1).mean() / max(np.linalg.norm(a[9] - a[0]), 1.0)

    best, best_key = [None] * len(annotated), (0, 0.0)
    slots = list(range(len(detected))) + [None] * len(annotated)
    for perm in set(permutations(slots, len(annotated))):
        pairs = [(a, d) for a, d in enumerate(perm) if d is not None]
        if any(cost(annotated[a], detected[d]) >= gate for a, d in pairs):
            continue
        key = (len(pairs), -sum(cost(annotated[a], detected[d]) for a, d in pairs))
        if key > best_key:
            best, best_key = list(perm), key
    return best


def test_hands_are_matched_one_to_one_within_half_a_hand():
    """``match_hands`` against every pairing tried by hand, on random photos of up to three
    detected and three annotated hands, some near each other, some far."""
    from monohand.evaluate.real import match_hands

    rng = np.random.default_rng(0)
    base = rng.normal(0, 30, (21, 2))
    base[9] = base[0] + [0, 60]  # a hand 60 px from wrist to middle knuckle
    for _ in range(200):
        annotated = [base + rng.uniform(0, 200, 2) for _ in range(rng.integers(0, 4))]
        detected = [(annotated[rng.integers(len(annotated))] if annotated and rng.random() < 0.7
                     else base + rng.uniform(0, 200, 2)) + rng.normal(0, 12, (21, 2))
                    for _ in range(rng.integers(0, 4))]  # fmt: skip
        assert match_hands(detected, annotated) == _naive_match(detected, annotated, 0.5)
    # one detection between two overlapping hands goes to the nearer; the other is missed
    a, b = base, base + [20, 0]
    assert match_hands([base + [6, 0]], [a, b]) == [0, None]


def test_a_photo_of_two_hands_is_reconstructed_once_and_each_hand_scored_once(tmp_path,
                                                                               monkeypatch):
    """A photo with two annotated hands of which one is found: reconstructed once, the found
    hand scored against its own annotation only, the other counted missed (it was scored
    against the found hand before)."""
    from types import SimpleNamespace

    from PIL import Image

    import monohand.reconstruct as reconstruct
    from monohand.evaluate.real import run_real_benchmark

    Image.new("RGB", (64, 48)).save(tmp_path / "two.png")
    K = [[100.0, 0, 32], [0, 100.0, 24], [0, 0, 1]]
    rng = np.random.default_rng(1)
    j3 = [rng.normal([x, 0, 0.6], 0.03, (21, 3)) for x in (-0.1, 0.1)]
    j2 = [(j @ np.array(K).T)[:, :2] / (j @ np.array(K).T)[:, 2:] for j in j3]
    samples = [{"image": "two.png", "K": K, "joints3d": j.tolist(), "joints2d": k.tolist(),
                "hand": side, "source": "test"}
               for j, k, side in zip(j3, j2, ("right", "left"), strict=True)]
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps({"samples": samples}))
    calls = []

    class OneHand:  # finds the left hand only, exactly
        network_name = model_path = None

        def __init__(self, cfg=None):
            self.cfg = SimpleNamespace(method="fake", model="openhand")

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            pass

        def __call__(self, image, K):
            calls.append(image.shape)
            det = SimpleNamespace(keypoints=j2[1], world=None)
            return [SimpleNamespace(detection=det, joints3d=j3[1], side="right")]

    monkeypatch.setattr(reconstruct, "Reconstructor", OneHand)
    m = run_real_benchmark(ann, tmp_path / "out", worst=0, best=0)
    assert len(calls) == 1 and m["photos"] == 1 and m["hands"] == 2 and m["detected"] == 1
    assert m["aligned"]["mpjpe_mm"] < 1e-3  # the left hand against its own joints
    rows = (tmp_path / "out" / "per_image.csv").read_text().splitlines()
    assert rows[1].endswith(",0") and rows[2].endswith(",1")  # right missed, left found
    # the predictions themselves, per annotated hand, null where missed; the PCK figure
    pred = json.loads((tmp_path / "out" / "predictions.json").read_text())
    assert [h["index"] for h in pred["hands"]] == [0, 1] and pred["hands"][0]["joints3d"] is None
    np.testing.assert_allclose(pred["hands"][1]["joints3d"], j3[1], atol=1e-6)
    assert (tmp_path / "out" / "pck.png").read_bytes()[:4] == b"\x89PNG"


def test_a_result_prints_as_its_metrics_not_its_arrays():
    xyz_p, xyz, verts_p, verts = make_data(n=40, v=778)
    text = repr(evaluate_arrays(xyz_p, xyz, verts_p, verts))
    assert text.startswith("EvalResult(40 samples; aligned: MPJPE ") and "MPVPE" in text
    assert len(text) < 600 and "\n" not in text, text
