"""Ship a trained network: ``src/monohand/nets/assets/s2hand_openhand_mediapipe.pt`` (float16,
no optimiser, MediaPipe's frozen encoder left out: it ships once, as
``mediapipe_hand_landmarks.pt``) with its model card inside and as ``MODEL_CARD.md`` beside it.

    python tools/ship_network.py out/release/last.ckpt \\
        --synthetic out/release/eval_v2/metrics.json --real out/release/real/metrics.json \\
        --data "monohand synth out/data/synth_v2 --num 16000 --seed 11 ..."

The figures are read from ``monohand evaluate`` (synthetic validation split) and ``monohand
evaluate-real`` (realhands) metrics files, so the card says what was measured, nothing else.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from monohand.atomic import atomic_write  # noqa: E402
from monohand.nets.handnet import export_network, shipped_network_path  # noqa: E402

RENDERS = ("synthetic renders of OpenHand (CC0) over scikit-image's sample photos (each under "
           "its own open licence, see skimage/data) and matplotlib's Grace Hopper photo "
           "(public domain)")  # fmt: skip


def licences(cfg: dict) -> dict:
    """The weights' and the training data's licences; a photo set's from its own record."""
    data = RENDERS + "; no real photo was trained on"
    if cfg["data"].get("photos"):
        from monohand.data.photos import read_photo_set

        info = read_photo_set(cfg["data"]["photos"])
        data = (f"{RENDERS}; and {len(info['images'])} real photos without 3D labels "
                f"(their MediaPipe keypoints only): {info['licence']}")  # fmt: skip
    return {
        "weights": "MIT (monohand's heads); the encoder is MediaPipe's hand-landmark network, "
        "Apache-2.0 (src/monohand/data/assets/MEDIAPIPE_LICENSE.md)",
        "training data": data,
    }


def card(state: dict, synthetic: dict | None, real: dict | None, data: str) -> dict:
    cfg = state["config"]
    active = {k: v for k, v in cfg["loss"].items() if isinstance(v, float) and v}
    photos = cfg["data"].get("photos") or None
    return {
        "encoder": f"{cfg['model']['backbone']} (frozen: {cfg['model']['freeze_encoder']}, "
        f"landmark inputs: {cfg['model']['landmark_inputs']}), heads of width "
        f"{cfg['model']['head_hidden']}, hand model {cfg['model']['name']}",
        "data": {"command": data, "crop": cfg["data"]["crop"],
                 "views_per_image": cfg["data"]["cache_views"],
                 **({"photos": photos, "photos_repeat": cfg["data"]["photos_repeat"]}
                    if photos else {})},  # fmt: skip
        "steps": state["step"],
        "batch": cfg["batch"],
        "losses": active | {"keypoints_target": cfg["loss"]["keypoints_target"]},
        "figures": {"synthetic_validation": synthetic, "realhands": real},
        "licences": licences(cfg),
    }


def markdown(c: dict) -> str:
    lines = ["# monohand's shipped network", "",
             "Written by `tools/ship_network.py`; the same card is inside the weights file "
             "(`torch.load(..., weights_only=True)[\"card\"]`).", ""]  # fmt: skip
    for key, value in c.items():
        lines += [f"## {key}", ""]
        if isinstance(value, dict):
            lines += ["```json", json.dumps(value, indent=2), "```"]
        else:
            lines.append(str(value))
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--synthetic", type=Path, help="monohand evaluate's metrics.json")
    ap.add_argument("--real", type=Path, help="monohand evaluate-real's metrics.json")
    ap.add_argument("--data", default="", help="the command that made the training set")
    ap.add_argument("--out", type=Path, default=shipped_network_path())
    args = ap.parse_args()
    state = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
    read = lambda p: json.loads(p.read_text()) if p else None  # noqa: E731
    c = card(state, read(args.synthetic), read(args.real), args.data)
    export_network(args.checkpoint, args.out, c)
    atomic_write(args.out.with_name("MODEL_CARD.md"), lambda t: t.write_text(markdown(c)))
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB) and its MODEL_CARD.md")


if __name__ == "__main__":
    main()
