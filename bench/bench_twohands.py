"""Two touching hands (palms together, rendered, known depths): fitted one by one against
fitted together (``monohand.twohands``).

python bench/bench_twohands.py [--seed 2026] [--num 24] [--out out/bench-twohands]
    [--noise-px 2] [--world-noise-mm 5]
    [--set NAME=VALUE (TogetherConfig)] [--fit NAME=VALUE (the touching hands' FitConfig;
    their hand size is TogetherConfig's hand_size)]
    [--touching-silhouette] [--methods fit hybrid] [--together-only]
python bench/bench_twohands.py --redraw SCENE:DRAWS   (the reference below only, no fits)

Each scene (``data.twohand_scenes``) is rendered; its detections are simulated from the
truth, since MediaPipe rarely finds both of two rendered hands pressed together: 2D keypoints
with Gaussian pixel noise, confidence 1, and world landmarks (hand-centred, as MediaPipe's)
with Gaussian noise. Both hands are then reconstructed by ``methods.reconstruct_image``
(appearance stage included) by the fit and by the hybrid (the shipped network's start; the
default method), each with ``together`` off and on. Relative depth error:
|(z_right - z_left) - truth| of the hands' mean joint depths. Penetration: how deep one
hand's mesh enters the other's (``evaluate.metrics.penetration_depth``). Hands further than
the detector's 3D: each hand's PA-MPJPE above that of its simulated world landmarks. Per scene
numbers go to ``--out``/scenes.json (``pa_hands`` per hand, ``detector_pa`` beside them).
About 3 minutes for the default 24 scenes on two cores (half with ``--together-only``); the
choice seeds of docs/RESULTS.md are ``--seed 7026`` and ``--seed
8026`` with ``--num 48``.

Below the table, a reference for the relative depth (not a bound: the pair's terms can do
better): each hand's *true* joints (exact shape, pose and orientation) placed on its noisy 2D
keypoints by their translation alone (``place_true_joints``), the same draws as the fits'.
Where it is over 3 cm, this draw of 2D noise misplaces even the exact hands that far.
``--redraw SCENE:DRAWS`` computes only that reference, for fresh noise draws of one scene
(index within ``--seed``'s), to tell an unlucky draw from a hard pair.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image
from rich.console import Console
from rich.progress import track
from rich.table import Table
from scipy.optimize import least_squares

from monohand.atomic import atomic_write
from monohand.config import with_overrides
from monohand.data.twohand_scenes import render_scene, simulated_detections, two_hand_scene
from monohand.evaluate.align import procrustes_align
from monohand.evaluate.metrics import penetration_depth
from monohand.models.registry import load_models
from monohand.nets.handnet import load_network
from monohand.reconstruct import ReconstructConfig, reconstruct_image


def place_true_joints(joints: np.ndarray, K: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
    """Where a hand of exactly known shape sits, read from its 2D keypoints alone.

    Args:
        joints: (21, 3) the hand's true joints, camera frame, metres (only their shape and
            orientation are used: any placement).
        K: (3, 3) pixels; keypoints: (21, 2) pixels.
    Returns:
        (3,) metres: where the joints' centroid goes (so ``[2]`` is the placed hand's mean
        joint depth), by plain least squares in pixels (the fit's 2D term is robust and
        scaled by the hand's size; with exact joints and Gaussian noise this is the
        maximum-likelihood placement).
    """
    centred = joints - joints.mean(0)

    def residuals(t: np.ndarray) -> np.ndarray:
        p = (centred + t) @ K.T
        return (p[:, :2] / p[:, 2:] - keypoints).ravel()

    # Started at the truth: a reference that knows the answer should not lose it to a local
    # minimum (with 21 points spread over a hand, there is one near it).
    return least_squares(residuals, joints.mean(0)).x


def relative_depth_error(scene, detections) -> float:
    """|(z_right - z_left) - truth| metres of the mean joint depths of the scene's true hands
    placed on ``detections``' keypoints (``place_true_joints``)."""
    truth, K = scene.joints.double().numpy(), np.asarray(scene.K, float)
    z = [place_true_joints(truth[k], K, detections[k].keypoints)[2] for k in range(2)]
    return abs(z[0] - z[1] - (truth[0, :, 2].mean() - truth[1, :, 2].mean()))


def redraw(models, seed: int, spec: str, noise_px: float, world_mm: float) -> None:
    """Print the reference's relative depth error over fresh noise draws of one scene."""
    try:
        index, draws = (int(x) for x in spec.split(":"))
    except ValueError:
        raise SystemExit(f"--redraw wants SCENE:DRAWS (e.g. 5:200), got {spec!r}") from None
    scene = two_hand_scene(models, seed + index)
    rng = np.random.default_rng(0)
    err = 100 * np.array([relative_depth_error(scene, simulated_detections(scene, rng, noise_px,
                                                                           world_mm))
                          for _ in track(range(draws), description=f"scene {index}")])  # fmt: skip
    Console().print(f"scene {index} of seed {seed}, {draws} draws of {noise_px} px: the true hands "
                    f"placed by their keypoints, rel. depth err. cm: median {np.median(err):.2f},"
                    f" 90th percentile {np.percentile(err, 90):.2f}, over 3 cm in "
                    f"{100 * np.mean(err > 3):.1f} %")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--num", type=int, default=24)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--noise-px", type=float, default=2.0)
    ap.add_argument("--world-noise-mm", type=float, default=5.0)
    ap.add_argument("--out", type=Path, default=Path("out/bench-twohands"))
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a TogetherConfig setting for the 'together' rows (repeatable)",
    )
    ap.add_argument(
        "--fit",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a FitConfig setting of the touching hands' own fits (repeatable); their hand "
        "size is TogetherConfig's since 2026-12-06: --set hand_size=...",
    )
    ap.add_argument("--touching-silhouette", action="store_true",
                    help="the touching hands' fits with the silhouette stage too "
                         "(ReconstructConfig.silhouette_touching)")  # fmt: skip
    ap.add_argument("--methods", nargs="+", default=["fit", "hybrid"], choices=["fit", "hybrid"])
    ap.add_argument("--together-only", action="store_true",
                    help="only the together rows (half the time, for choosing)")  # fmt: skip
    ap.add_argument("--redraw", metavar="SCENE:DRAWS",
                    help="only the reference (true hands placed by their keypoints) for DRAWS "
                         "fresh noise draws of scene SCENE; no fits")  # fmt: skip
    args = ap.parse_args()
    models = load_models("openhand")
    if args.redraw:
        return redraw(models, args.seed, args.redraw, args.noise_px, args.world_noise_mm)
    faces = (models["right"].faces.numpy(), models["left"].faces.numpy())
    rng = np.random.default_rng(args.seed)
    base = ReconstructConfig()
    base = replace(base, fit=with_overrides(base.fit, args.fit),
                   silhouette_touching=args.touching_silhouette)  # fmt: skip
    together = with_overrides(base.together_cfg, args.set)
    net = load_network() if "hybrid" in args.methods else (None, 0)
    rows = {}
    for method in args.methods:
        if not args.together_only:
            rows[f"{method}, one by one"] = (replace(base, method=method, together=False),
                                             method)  # fmt: skip
        rows[f"{method}, together"] = (replace(base, method=method, together_cfg=together),
                                       method)  # fmt: skip
    res = {name: {"rel_depth": [], "pen": [], "pa": [], "abs_depth": [], "pa_hands": []}
           for name in rows}  # fmt: skip
    reference, detector_pa = [], []  # per scene; (2,) metres: each hand's world landmarks
    args.out.mkdir(parents=True, exist_ok=True)
    for s in track(range(args.num), description="scenes"):
        scene = two_hand_scene(models, args.seed + s)
        image = render_scene(scene, models)
        dets = simulated_detections(scene, rng, args.noise_px, args.world_noise_mm)
        truth = scene.joints.double().numpy()
        dz_true = truth[0, :, 2].mean() - truth[1, :, 2].mean()
        # before the fits, drawing nothing from rng: the fits' noise stays as it was
        reference.append(relative_depth_error(scene, dets))
        world = np.stack([d.world for d in dets]).astype(np.float64)
        detector_pa.append(np.linalg.norm(procrustes_align(world, truth) - truth, axis=-1).mean(-1))
        for name, (cfg, method) in rows.items():
            hands = reconstruct_image(image, scene.K, dets, models, cfg,
                                      *(net if method == "hybrid" else (None, 0)))  # fmt: skip
            j = np.stack([h.joints3d for h in hands]).astype(np.float64)
            v = [h.vertices[None].astype(np.float64) for h in hands]
            r = res[name]
            r["rel_depth"].append(abs(j[0, :, 2].mean() - j[1, :, 2].mean() - dz_true))
            r["abs_depth"].append(np.abs(j[:, :, 2].mean(1) - truth[:, :, 2].mean(1)).mean())
            r["pen"].append(penetration_depth(v[0], faces[0], v[1], faces[1])[0])
            per_hand = np.linalg.norm(procrustes_align(j, truth) - truth, axis=-1).mean(-1)
            r["pa"].append(per_hand.mean())
            r["pa_hands"].append(per_hand)
            if s == 0:
                from monohand.viz import overlay_image

                overlay_image(image, scene.K, hands).save(
                    args.out / f"scene0_{name.replace(', ', '_').replace(' ', '_')}.png"
                )
        if s == 0:
            Image.fromarray(image).save(args.out / "scene0.png")
    atomic_write(args.out / "scenes.json", lambda t: Path(t).write_text(json.dumps(
        {"seed": args.seed, "together": str(together),
         "rows": {n: {k: np.asarray(v).round(6).tolist() for k, v in r.items()}
                  for n, r in res.items()},
         "reference_rel_depth": np.asarray(reference).round(6).tolist(),
         "detector_pa": np.asarray(detector_pa).round(6).tolist()}, indent=1)))  # fmt: skip
    table = Table(title=f"{args.num} palms-together scenes, 2D noise {args.noise_px} px, "
                        f"world noise {args.world_noise_mm} mm; {together}")  # fmt: skip
    for c in (
        "method",
        "rel. depth err. cm (mean / max)",
        "scenes > 3 cm",
        "abs. depth err. cm",
        "penetration mm (mean / max)",
        "scenes > 5 mm",
        "PA-MPJPE mm",
        "hands further than the detector's 3D",
    ):
        table.add_column(c, justify="left" if c == "method" else "right")
    for name, r in res.items():
        rd, pen = 100 * np.array(r["rel_depth"]), 1000 * np.array(r["pen"])
        table.add_row(name, f"{rd.mean():.2f} / {rd.max():.2f}", str(int((rd > 3).sum())),
                      f"{100 * np.mean(r['abs_depth']):.2f}",
                      f"{pen.mean():.2f} / {pen.max():.2f}", str(int((pen > 5).sum())),
                      f"{1000 * np.mean(r['pa']):.2f}",
                      f"{int((np.array(r['pa_hands']) > np.array(detector_pa)).sum())} / "
                      f"{2 * len(detector_pa)}")  # fmt: skip
    console = Console(width=160)
    console.print(table)
    ref = 100 * np.array(reference)
    console.print(f"reference, the true hands placed by their 2D keypoints alone: rel. depth "
                  f"err. {ref.mean():.2f} / {ref.max():.2f} cm, {int((ref > 3).sum())} scene(s) "
                  "> 3 cm" + "".join(f"; scene {i}: {ref[i]:.2f}" for i in np.flatnonzero(ref > 3)))


if __name__ == "__main__":
    main()
