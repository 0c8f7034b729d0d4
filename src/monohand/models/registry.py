"""Hand models by name: the one place that maps "openhand" / "mano" / "nimble" to layers."""

from __future__ import annotations

from .base import HandModel
from .openhand import OpenHand


def load_models(model: str, path: str | None = None) -> dict[str, HandModel]:
    """The right- and left-hand layers of a model name: openhand (shipped), boxhand (made in
    code), mano (``path``: MANO file or folder), nimble (``path``: NIMBLE folder or .npz; right
    hands only)."""
    if model == "openhand":
        return {side: OpenHand(side=side) for side in ("right", "left")}
    if model == "boxhand":
        from .procedural import box_hand_data
        from .skinned import SkinnedHand, mirror_data

        data = box_hand_data()
        return {"right": SkinnedHand(data), "left": SkinnedHand(mirror_data(data))}
    if path is None:
        raise ValueError(f"model {model!r} needs --model-path (its files cannot ship)")
    if model == "mano":
        from .mano import MANO

        return {side: MANO(path, side=side) for side in ("right", "left")}
    if model == "nimble":
        from .nimble import NIMBLE

        return {"right": NIMBLE(path, texture_size=256)}
    raise ValueError(f"unknown model {model!r}: openhand, boxhand, mano or nimble")
