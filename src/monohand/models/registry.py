"""Hand models by name: the one place that maps "openhand" / "boxhand" / "mano" / "nimble" to
layers (``create``; ``monohand.create`` is the same function)."""

from __future__ import annotations

from pathlib import Path

from .base import HandModel

MODELS = ("openhand", "boxhand", "mano", "nimble")


def create(name: str = "openhand", path: str | Path | None = None, side: str = "right",
           **kwargs) -> HandModel:  # fmt: skip
    """A hand model by name, as smplx's ``create``.

    Args:
        name: "openhand" (shipped, textured; ``path``: another OpenHand build), "boxhand"
            (made in code), "mano" (``path``: ``MANO_RIGHT.pkl``/``MANO_LEFT.pkl``, the
            ``.npz`` of ``monohand convert-model``, or a folder), "nimble" (``path``: NIMBLE's
            folder or ``.npz``; right hands only).
        side: "right" or "left".
        **kwargs: passed to the model's class (e.g. MANO's ``use_pca``, NIMBLE's
            ``texture_size``).
    """
    # smplx's create(model_path, model_type="mano", is_rhand=...): say how its words map
    smplx_words = {"model_path": "path", "model_type": "name", "is_rhand": "side='right'/'left'",
                   "batch_size": "(none: the inputs' batch size)", "ext": "(none)"}  # fmt: skip
    if unknown := [k for k in kwargs if k in smplx_words]:
        raise TypeError("create: " + "; ".join(f"smplx's {k} is {smplx_words[k]} here"
                                               for k in unknown))  # fmt: skip
    if side not in ("right", "left"):
        raise ValueError(f"side must be 'right' or 'left', got {side!r}")
    if name == "openhand":
        from .openhand import OpenHand

        return OpenHand(path, side=side, **kwargs)
    if name == "boxhand":
        from .procedural import box_hand_data
        from .skinned import SkinnedHand, mirror_data

        data = box_hand_data()
        return SkinnedHand(data if side == "right" else mirror_data(data), **kwargs)
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}: one of {', '.join(MODELS)}")
    if path is None:
        raise ValueError(f"model {name!r} needs its files, which cannot ship: give path= "
                         "(ReconstructConfig's model_path, --model-path on the command "
                         "line)")  # fmt: skip
    if name == "mano":
        from .mano import MANO

        return MANO(path, side=side, **kwargs)
    if side == "left":
        raise ValueError("NIMBLE has right hands only")
    from .nimble import NIMBLE

    return NIMBLE(path, **({"texture_size": 256} | kwargs))


def load_models(model: str, path: str | None = None) -> dict[str, HandModel]:
    """The right- and left-hand layers of a model name (``create``; NIMBLE: right only)."""
    sides = ("right",) if model == "nimble" else ("right", "left")
    return {side: create(model, path, side) for side in sides}
