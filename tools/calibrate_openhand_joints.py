"""Where does a keypoint detector trained on human annotations put OpenHand's joints?

    python tools/calibrate_openhand_joints.py [--asset PATH.npz] [--num 400] [--update]

OpenHand's joint centres come from a game rig, not from the convention that hand datasets
are annotated in. This tool measures the difference with MediaPipe (trained on real photos
annotated by people) as the reference: it renders OpenHand in FreiHAND's layout
(``data.synthetic``, frontal views, 256²), runs MediaPipe's landmarker, and for each of the 16
rig joints solves, by robust least squares over all renders, the 3D offset delta (template
frame, metres) that best explains MediaPipe's 2D keypoints:

    uv_mediapipe - project(J) ~= d project / d X  @  R  @ delta,

R the world rotation of the bone that carries the joint (the global rotation for the wrist).
Only 2D keypoints are used (MediaPipe's metric 3D is far worse on renders). The views turn the
hand every way, so all three components are observable; the tool prints each offset with its
standard error. ``--update`` adds the offsets that are significant (over 1.5 mm and 3 standard
errors) to ``tools/openhand_joint_offsets.json``, which ``build_openhand.py`` applies; repeat
(build, calibrate) until no offset is significant. Renders only: nothing here sees a real
annotated photo.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from build_openhand import HELD_COMPONENTS  # noqa: E402 (a sibling script)

from monohand.data.freihand import read_freihand  # noqa: E402
from monohand.data.images import read_rgb  # noqa: E402
from monohand.data.mediapipe_hands import MediaPipeHands  # noqa: E402
from monohand.data.synthetic import SynthConfig, generate  # noqa: E402
from monohand.models.joints import MANO_JOINT_NAMES, NATIVE_TO_FREIHAND  # noqa: E402
from monohand.models.lbs import batch_rodrigues  # noqa: E402
from monohand.models.openhand import OpenHand  # noqa: E402

OFFSETS = ROOT / "tools" / "openhand_joint_offsets.json"


def world_rotations(full_pose: torch.Tensor, parents: np.ndarray) -> np.ndarray:
    """(B, 16 * 3) axis-angle -> (B, 16, 3, 3) rotations of each joint's frame in the world."""
    rot = batch_rodrigues(full_pose.view(len(full_pose), -1, 3)).double().numpy()
    world = np.empty_like(rot)
    for j, p in enumerate(parents):  # the 16-joint chain; parents come first
        world[:, j] = rot[:, j] if p < 0 else world[:, p] @ rot[:, j]
    return world


def robust_offset(A: np.ndarray, r: np.ndarray, iters: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Huber IRLS for A (N, 2, 3) delta = r (N, 2). Returns (delta (3,), standard error (3,))."""
    a, b = A.reshape(-1, 3), r.reshape(-1)
    w = np.ones(len(b))
    for _ in range(iters):
        delta = np.linalg.lstsq(a * w[:, None], b * w, rcond=None)[0]
        res = b - a @ delta
        scale = 1.4826 * np.median(np.abs(res)) + 1e-9
        w = np.sqrt(np.minimum(1.0, 1.345 * scale / np.maximum(np.abs(res), 1e-12)))
    res = (b - a @ delta) * w
    cov = np.linalg.inv((a * w[:, None]).T @ (a * w[:, None])) * (res @ res) / (len(b) - 3)
    return delta, np.sqrt(np.diag(cov))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--asset", type=Path, default=None, help="OpenHand .npz (default: shipped)")
    ap.add_argument("--num", type=int, default=400)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--work", type=Path, default=ROOT / "out" / "calibrate-joints")
    ap.add_argument("--update", action="store_true", help=f"add significant offsets to {OFFSETS}")
    args = ap.parse_args()
    data = args.work / "data"
    shutil.rmtree(data, ignore_errors=True)
    asset = str(args.asset) if args.asset else None
    cfg = SynthConfig(num=args.num, size=256, seed=args.seed, eval_fraction=0.0,
                      occluder_prob=0.0, model_path=asset)  # fmt: skip
    generate(data, cfg)
    index = read_freihand(data, "training")
    hand = OpenHand(args.asset)
    theta = index.mano  # (N, 61): global rotation, pose - hands_mean, betas, ...
    full_pose = torch.as_tensor(
        np.concatenate([theta[:, :3], theta[:, 3:48] + hand.data.hands_mean], 1)
    )
    world = world_rotations(full_pose, hand.data.parents)
    n = index.num_samples
    kp = np.full((n, 21, 2), np.nan)
    with MediaPipeHands(max_hands=1, tta=()) as det:
        for i in range(n):
            found = det.detect(read_rgb(index.image_path(i)))
            if found and found[0].side == "right":
                kp[i] = found[0].keypoints
    X = index.xyz
    uv = np.einsum("nij,nkj->nki", index.K, X)
    uv = uv[..., :2] / uv[..., 2:]
    size = np.linalg.norm(uv[:, 9] - uv[:, 0], axis=1)
    ok = np.isfinite(kp).all((1, 2))
    print(f"MediaPipe found the right hand in {ok.sum()} of {n} renders")
    freihand_of_native = np.argsort(NATIVE_TO_FREIHAND)[:16]
    result = {}
    for j, name in enumerate(MANO_JOINT_NAMES):
        k = int(freihand_of_native[j])
        x, fx, fy = X[ok, k], index.K[ok, 0, 0], index.K[ok, 1, 1]
        z = x[:, 2]
        jac = np.zeros((ok.sum(), 2, 3))
        jac[:, 0, 0], jac[:, 0, 2] = fx / z, -fx * x[:, 0] / z**2
        jac[:, 1, 1], jac[:, 1, 2] = fy / z, -fy * x[:, 1] / z**2
        carrier = world[ok, max(int(hand.data.parents[j]), 0)]
        # Residuals in hand sizes (so each render counts alike), Jacobian likewise.
        s = size[ok][:, None, None]
        delta, se = robust_offset((jac @ carrier) / s, (kp[ok, k] - uv[ok, k]) / s[..., 0])
        result[name] = (delta, se)
        print(f"{name:11s} offset mm {np.round(1000 * delta, 1)} ± {np.round(1000 * se, 1)}")
    if args.update:
        table = json.loads(OFFSETS.read_text()) if OFFSETS.is_file() else {}
        for name, (delta, se) in result.items():
            if name == "wrist":  # see build_openhand.calibrated_regressor
                continue
            delta = delta.copy()
            delta[list(HELD_COMPONENTS.get(name, ()))] = 0.0  # the build keeps these at 0
            if np.linalg.norm(delta) > 0.0015 and np.any(np.abs(delta) > 3 * se):
                old = np.asarray(table.get(name, [0.0, 0.0, 0.0]))
                table[name] = np.round(old + delta, 5).tolist()
        OFFSETS.write_text(json.dumps(table, indent=1) + "\n")
        print(f"updated {OFFSETS}")


if __name__ == "__main__":
    main()
