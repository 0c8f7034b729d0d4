"""MediaPipe's detection rate and 2D error on OpenHand renders, with and without the bordered
retry of ``MediaPipeHands(retry_pad=...)``, the tiled retry (``retry_tiles``) and the landmark
network over windows (``retry_windows``; with it, false detections on photos without a hand).

python bench/bench_detect.py                   # 150 renders per framing, retry_pad 0 and 0.3
python bench/bench_detect.py --num 300 --pads 0,0.15,0.3,0.5 --max-hands 1,2,4
python bench/bench_detect.py --max-hands 4 --tiles    # + the last pad with the tiled retry
python bench/bench_detect.py --max-hands 4 --windows  # + the last pad with the windows
python bench/bench_detect.py --max-hands 4 --windows --style v3 --num 400 --seed 20261205 \
    --framings training              # renders with held objects, forearms, photo effects
python bench/bench_detect.py --max-hands 4 --windows --no-second-opinion  # the windows alone
python bench/bench_detect.py --max-hands 4 --pads 0.3 --windows --turns  # + whole-image turns
python bench/bench_detect.py --max-hands 4 --pads 0.3 --min-scores 0.3,0.1,0.2,0.5  # score bars

Two framings of the synthetic generator (``data.synthetic``, 256², their own seed): the
training sets' (the hand spans 0.55-0.9 of the frame) and close-ups whose hand spans 0.9-1.4
frames, so that it touches or leaves the border, as in tight crops of real photos. The retry
only runs where the plain image gave nothing, so it cannot lose a hand; the table says how
many each setting adds to the first ``--pads`` value's hands (0: the plain image) at the same
max hands, and how far their keypoints are from the projected ground truth. MediaPipe is
asked for at least two hands (asked for one, it reads only its best palm candidate), and the
best-scored ``max_hands`` are kept, so ``--max-hands 1`` keeps the best of up to two (since
2026-12-05; numbers measured before then read one palm). The windows' hands in doubt are
confirmed by the shipped network, as under ``monohand reconstruct`` (since 2026-12-05; off:
``--no-second-opinion``). The hand-free photos are searched by the same searcher, its
``--window-set`` settings included (until 2026-12-05 by the default one). The windows' landmark
network runs on LiteRT, as under ``monohand reconstruct`` (``--scorer port``: the PyTorch port,
as until 2026-12-06). Renders are cached under ``out/bench-detect``.
"""

from __future__ import annotations

import argparse
import time
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image
from rich.console import Console
from rich.progress import track
from rich.table import Table

from monohand.config import with_overrides
from monohand.data.freihand import read_freihand
from monohand.data.images import read_rgb
from monohand.data.mediapipe_hands import MediaPipeHands
from monohand.data.synthetic import SynthConfig, generate
from monohand.data.window_search import WindowSearchConfig, window_searcher
from monohand.hybrid import network_agreement
from monohand.nets import load_network
from monohand.nets.mediapipe_hand import mediapipe_hand_net
from monohand.nets.mediapipe_litert import LiteRTHandNet

FRAMINGS = {"training framing (0.55-0.9)": (0.55, 0.9), "close-ups (0.9-1.4)": (0.9, 1.4)}


def renders(fill: tuple[float, float], num: int, seed: int, cache: Path, style: str = "v1"):
    prefix = "" if style == "v1" else f"{style}-"
    root = cache / f"{prefix}fill{fill[0]}-{fill[1]}-n{num}-seed{seed}"
    if not root.is_dir():
        generate(root, SynthConfig(num=num, size=256, seed=seed, eval_fraction=0.0, fill=fill,
                                   style=style))  # fmt: skip
    data = read_freihand(root, "training")
    uvw = np.einsum("nij,nkj->nki", data.K, data.xyz)
    return root, uvw[..., :2] / uvw[..., 2:]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--num", type=int, default=150)
    ap.add_argument("--seed", type=int, default=20261126)
    ap.add_argument("--pads", default="0,0.3", help="retry_pad values, comma-separated")
    ap.add_argument("--max-hands", default="1,4", help="MediaPipe's num_hands values (the "
                    "first hand is scored); reconstruct uses 4, detect 1")  # fmt: skip
    ap.add_argument("--cache", type=Path, default=Path("out/bench-detect"))
    ap.add_argument("--style", default="v1", choices=["v1", "v2", "v3"],
                    help="the renders' style (data.synthetic): v3 adds held objects")  # fmt: skip
    ap.add_argument("--framings", default="training,close-ups",
                    help="which framings (their names' first words), comma-separated")  # fmt: skip
    ap.add_argument("--window-set", action="append", default=[], metavar="NAME=VALUE",
                    help="a WindowSearchConfig setting for --windows (repeatable)")  # fmt: skip
    ap.add_argument("--second-opinion", action=argparse.BooleanOptionalAction, default=True,
                    help="the shipped network confirms the windows' hands in doubt, as under "
                         "monohand reconstruct's default method")  # fmt: skip
    ap.add_argument("--scorer", default="litert", choices=["litert", "port"],
                    help="the windows' landmark network: run by LiteRT, as under monohand "
                         "reconstruct (since 2026-12-06), or the PyTorch port")  # fmt: skip
    ap.add_argument("--min-scores", default="0.3",
                    help="MediaPipe's detection and presence bars (MediaPipeHands' min_score), "
                         "comma-separated; the first is the reference of 'added'")
    ap.add_argument("--tiles", action="store_true", help="also the last pad + the tiled retry")
    ap.add_argument("--windows", action="store_true",
                    help="also the last pad + the landmark network over windows")  # fmt: skip
    ap.add_argument("--turns", action="store_true",
                    help="also the last pad + the mirrored and quarter-turned image "
                         "(retry_turns; + the windows with --windows)")  # fmt: skip
    args = ap.parse_args()
    pads = [float(p) for p in args.pads.split(",")]
    settings = ([(p, "") for p in pads] + ([(pads[-1], "tiles")] if args.tiles else [])
                + ([(pads[-1], "windows")] if args.windows else [])
                + ([(pads[-1], "turns" + (" + windows" if args.windows else ""))]
                   if args.turns else []))  # fmt: skip
    counts = [int(m) for m in args.max_hands.split(",")]
    bars = [float(b) for b in args.min_scores.split(",")]
    settings = [(p, more, bar) for bar in bars for p, more in settings]
    wcfg = with_overrides(WindowSearchConfig(), args.window_set, "--window-set")
    wanted = [w for w in args.framings.split(",") if w]
    if unknown := [w for w in wanted if not any(n.startswith(w) for n in FRAMINGS)]:
        ap.error(f"--framings: unknown {', '.join(unknown)} (training, close-ups)")
    searcher = None
    if args.windows:
        second = None
        if args.second_opinion:
            net, size = load_network()
            second = partial(network_agreement, net=net, size=size)
        scorer = LiteRTHandNet() if args.scorer == "litert" else mediapipe_hand_net()
        searcher = window_searcher(scorer, wcfg, second)
    table = Table(title=f"MediaPipe on {args.num} OpenHand renders ({args.style}) per framing, "
                        "256²; wrong: detections half a hand size or more from the hand"
                        )  # fmt: skip
    for col in ("framing", "max hands", "min score", "retry_pad", "found", "mean 2D error px",
                "added", "their 2D error px", "wrong", "ms / image"):  # fmt: skip
        table.add_column(col, justify="left" if col == "framing" else "right")
    for name, fill in FRAMINGS.items():
        if not any(name.startswith(w) for w in wanted):
            continue
        root, gt = renders(fill, args.num, args.seed, args.cache, args.style)
        images = [read_rgb(root / "training" / "rgb" / f"{i:08d}.jpg") for i in range(len(gt))]
        plain: dict[int, np.ndarray] = {}  # per max_hands: found by the plain image
        for max_hands, (pad, more, bar) in ((m, p) for m in counts for p in settings):
            windows = searcher if "windows" in more else None
            with MediaPipeHands(max_hands=max_hands, retry_pad=pad, retry_tiles=more == "tiles",
                                retry_turns="turns" in more, retry_windows=windows,
                                min_score=bar) as det:  # fmt: skip
                t = time.perf_counter()
                hands = [det.detect(im) for im in track(images, f"{name}, {max_hands}, {pad}")]
                ms = 1e3 * (time.perf_counter() - t) / len(images)
            err = np.array([np.linalg.norm(h[0].keypoints - g, axis=1).mean() if h else np.nan
                            for h, g in zip(hands, gt, strict=True)])  # fmt: skip
            wrong = sum(np.linalg.norm(d.keypoints - g, axis=1).mean()
                        >= 0.5 * np.linalg.norm(g[9] - g[0])
                        for h, g in zip(hands, gt, strict=True) for d in h)  # fmt: skip
            found = ~np.isnan(err)
            added = found & ~plain.setdefault(max_hands, found)
            table.add_row(
                name,
                f"{max_hands}",
                f"{bar:g}",
                f"{pad:g}" + (f" + {more}" if more else ""),
                f"{found.sum()}/{len(err)}",
                f"{np.nanmean(err):.1f}",
                f"{added.sum()}",
                f"{err[added].mean():.1f}" if added.any() else "-",
                f"{wrong}",
                f"{ms:.0f}",
            )
    Console(width=130).print(table)
    if args.windows or args.turns or len(bars) > 1:
        for bar in bars:
            false_positives(pads[-1], searcher, args.turns, bar)


# scikit-image's sample photos that show no hand (astronaut and camera do; hands are not
# wanted here), for the windows' false detections.
HANDLESS = ("brick.png", "chelsea.png", "coffee.png", "coins.png", "color.png", "grass.png",
            "gravel.png", "horse.png", "hubble_deep_field.jpg", "moon.png", "rocket.jpg",
            "retina.jpg", "page.png", "text.png", "logo.png", "clock_motion.png",
            "chessboard_RGB.png", "motorcycle_left.png", "ihc.png", "cell.png")  # fmt: skip


def false_positives(pad: float, searcher, turns: bool = False, bar: float = 0.3) -> None:
    """Hands 'found' in photos without one, by the detector alone (at the score bar
    ``bar``), with the windows (``searcher``: ``window_searcher``'s; None: without) and,
    with ``turns``, with the whole-image turns before the windows."""
    from importlib import resources

    base = Path(str(resources.files("skimage") / "data"))
    images = [np.asarray(Image.open(base / n).convert("RGB")) for n in HANDLESS]
    table = Table(title=f"{len(images)} photos without a hand (scikit-image's samples), "
                        f"min score {bar:g}")  # fmt: skip
    for col in ("retry", "photos with a 'hand'", "which", "ms / image"):
        table.add_column(col, justify="left" if col in ("retry", "which") else "right")
    mores = [""] + (["windows"] if searcher else [])
    mores += ["turns" + (" + windows" if searcher else "")] if turns else []
    for more in mores:
        with MediaPipeHands(max_hands=2, retry_pad=pad, retry_turns="turns" in more,
                            retry_windows=searcher if "windows" in more else None,
                            min_score=bar) as det:  # fmt: skip
            t = time.perf_counter()
            hits = [n for n, im in zip(HANDLESS, track(images, f"hand-free, {more or 'plain'}"),
                                       strict=True) if det.detect(im)]  # fmt: skip
            ms = 1e3 * (time.perf_counter() - t) / len(images)
        table.add_row(f"pad {pad:g}" + (f" + {more}" if more else ""), str(len(hits)),
                      ", ".join(hits) or "-", f"{ms:.0f}")  # fmt: skip
    Console(width=130).print(table)


if __name__ == "__main__":
    main()
