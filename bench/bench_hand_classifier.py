"""Can a hand / no-hand classifier on the window search's crops tell its candidates apart?

The window search (``data.window_search``) keeps a candidate in doubt (presence 0.5-0.9) only
when its keypoints settle or the shipped network agrees with them; the trumpet player's hands
of the qualitative photos stay in doubt. This measures the next cue named in RESULTS: a linear
classifier (L2 logistic regression, classes balanced) on EfficientNet-Lite0's ImageNet
features (frozen, pooled) of each candidate's last 224² crop. Its training data, all of it
from seeds and images no other benchmark uses:

- renders (``data.synthetic``): v3 with the hand 0.55-0.9 of the frame (seed 31001), v1
  close-ups 0.9-1.4 (31002), v3 at 0.25-0.4 (31003, room around the hand): two jittered
  crops of the true hand's region (MediaPipe's) and every refined window candidate, labelled
  a hand when its keypoints lie within half a hand size of the truth on average;
- hand-free images that are not the window benchmark's 20 (scikit-image's microaneurysms,
  phantom, motorcycle_right; matplotlib's Grace Hopper and Minduka photos; scikit-image's
  LFW faces tiled): their candidates and 40 random crops each.

A quarter of the renders and two of the hand-free images (whole images) are held out. The
table gives, per kind of crop, the held-out probabilities; the line under it, what a bar at
the 99.5th percentile of the held-out negatives keeps.

python bench/bench_hand_classifier.py               # 300 + 150 + 150 renders, ~17 min
python bench/bench_hand_classifier.py --scale 0.2   # a fifth of them
"""

from __future__ import annotations

import argparse
from importlib import resources
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image
from rich.console import Console
from rich.table import Table

from bench_detect import renders
from monohand.data.crops import jitter_roi, mediapipe_roi, roi_affine
from monohand.data.images import read_rgb
from monohand.data.window_search import WindowSearchConfig, candidates
from monohand.nets.efficientnet import efficientnet_lite, normalise_lite
from monohand.nets.mediapipe_litert import LiteRTHandNet
from monohand.progress import track

SETS = (("v3", (0.55, 0.9), 300, 31001), ("v1", (0.9, 1.4), 150, 31002),
        ("v3", (0.25, 0.4), 150, 31003))  # fmt: skip


def hand_free_images() -> list[tuple[str, np.ndarray]]:
    """Hand-free images outside ``bench_detect.HANDLESS`` (no download)."""
    skimage_data = Path(str(resources.files("skimage") / "data"))
    mpl = Path(str(resources.files("matplotlib") / "mpl-data" / "sample_data"))
    paths = [skimage_data / f for f in ("microaneurysms.png", "phantom.png",
                                         "motorcycle_right.png")]  # fmt: skip
    paths += [mpl / "grace_hopper.jpg", mpl / "Minduka_Present_Blue_Pack.png"]
    out = [(p.name, np.asarray(Image.open(p).convert("RGB"))) for p in paths]
    faces = np.load(skimage_data / "lfw_subset.npy")[:100]  # (100, 25, 25) grey in [0, 1]
    grid = np.concatenate([np.concatenate(list(faces[r : r + 10]), 1)
                           for r in range(0, 100, 10)], 0)  # fmt: skip
    grid = cv2.resize((255 * np.clip(grid, 0, 1)).astype(np.uint8), (750, 750))
    return out + [("lfw faces", np.repeat(grid[..., None], 3, 2))]


def collect(scale: float, cache: Path, rng: np.random.Generator):
    """Crops (N, 224, 224, 3) uint8, labels (N,) 1 = hand, kinds (N,), group (N,) image."""
    net, cfg = LiteRTHandNet(), WindowSearchConfig()
    n = net.input_size
    crops, labels, kinds, groups = [], [], [], []

    def add(img, A, label, kind, group):
        crops.append(cv2.warpAffine(img, A[:2], (n, n), flags=cv2.INTER_LINEAR))
        labels.append(label), kinds.append(kind), groups.append(group)

    def add_candidates(img, truth, group):
        c = candidates(img, net, cfg)
        if c is None:
            return
        for j in np.nonzero(c.sane & (c.movement < cfg.wander))[0]:
            ok = truth is not None and (np.linalg.norm(c.keypoints[j] - truth, axis=1).mean()
                                        < 0.5 * np.linalg.norm(truth[9] - truth[0]))  # fmt: skip
            band = "doubt" if cfg.confirm < c.presence[j] < cfg.accept else "other"
            add(img, c.affines[j], int(ok), f"candidate, {band}", group)

    for style, fill, num, seed in SETS:
        num = max(int(scale * num), 4)
        root, gt = renders(fill, num, seed, cache, style)
        for i in track(range(num), f"renders {style} {fill}"):
            img = read_rgb(root / "training" / "rgb" / f"{i:08d}.jpg")
            for _ in range(2):
                add(img, roi_affine(*jitter_roi(*mediapipe_roi(gt[i]), rng), n), 1,
                    "true hand's region", f"{seed}/{i}")  # fmt: skip
            add_candidates(img, gt[i], f"{seed}/{i}")
    for name, img in track(hand_free_images(), "hand-free images"):
        img = np.ascontiguousarray(img)
        add_candidates(img, None, name)
        h, w = img.shape[:2]
        for _ in range(40):
            side = rng.uniform(0.15, 0.6) * min(h, w)
            centre = rng.uniform([side / 2, side / 2], [w - side / 2, h - side / 2])
            a = rng.uniform(0, 2 * np.pi)
            R2 = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
            add(img, roi_affine(centre, side, R2, n), 0, "hand-free, random", name)
    return np.stack(crops), np.array(labels), np.array(kinds), np.array(groups)


def features(crops: np.ndarray) -> np.ndarray:
    net = efficientnet_lite("lite0").eval()
    out = []
    with torch.no_grad():
        for i in track(range(0, len(crops), 64), "EfficientNet-Lite0 features"):
            x = torch.as_tensor(crops[i : i + 64]).permute(0, 3, 1, 2).float() / 255
            out.append(net(normalise_lite(x)).double())
    return torch.cat(out).numpy()


def logistic(X: np.ndarray, y: np.ndarray, lam: float) -> tuple[np.ndarray, float]:
    """L2-regularised logistic regression, classes weighted equally, by L-BFGS."""
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y, dtype=torch.float64)
    weight = torch.where(yt > 0.5, 0.5 / yt.mean(), 0.5 / (1 - yt.mean()))
    w = torch.zeros(X.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=500, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        bce = torch.nn.functional.binary_cross_entropy_with_logits(Xt @ w + b, yt,
                                                                   reduction="none")  # fmt: skip
        loss = (weight * bce).mean() + lam * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach().numpy(), float(b.detach())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", type=float, default=1.0, help="share of each render set")
    ap.add_argument("--lam", type=float, default=0.1, help="the L2 weight")
    ap.add_argument("--cache", type=Path, default=Path("out/bench-detect"))
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    crops, y, kinds, groups = collect(args.scale, args.cache, rng)
    F = features(crops)
    # A quarter of the renders and two of the six hand-free images, whole, held out.
    free = np.unique(groups[kinds == "hand-free, random"])
    rendered = np.setdiff1d(np.unique(groups), free)
    held = np.isin(groups, np.concatenate([rng.choice(rendered, len(rendered) // 4, False),
                                           rng.choice(free, 2, False)]))  # fmt: skip
    mu, sd = F[~held].mean(0), F[~held].std(0) + 1e-6
    X = (F - mu) / sd
    w, b = logistic(X[~held], y[~held], args.lam)
    p = 1 / (1 + np.exp(-(X @ w + b)))
    table = Table(title=f"P(hand) of held-out crops ({held.sum()} of {len(y)}; L2 {args.lam:g})")
    for col in ("crops", "label", "n", "p10", "median", "p90"):
        table.add_column(col, justify="left" if col in ("crops", "label") else "right")
    for kind in np.unique(kinds):
        for label in (1, 0):
            m = held & (kinds == kind) & (y == label)
            if m.any():
                q = np.quantile(p[m], [0.1, 0.5, 0.9])
                table.add_row(kind, "hand" if label else "not", str(m.sum()),
                              *(f"{v:.2f}" for v in q))  # fmt: skip
    Console(width=120).print(table)
    bar = np.quantile(p[held & (y == 0)], 0.995)
    doubt = held & (kinds == "candidate, doubt") & (y == 1)
    print(f"A bar at the 99.5th percentile of the held-out negatives ({bar:.3f}) keeps "
          f"{(p[held & (y == 1)] > bar).mean():.0%} of the held-out hands and "
          f"{(p[doubt] > bar).mean():.0%} of the correct candidates in doubt.")


if __name__ == "__main__":
    main()
