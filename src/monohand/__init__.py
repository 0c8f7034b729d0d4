"""monohand: 3D hand reconstruction from a single RGB image (S2HAND's model-based pipeline with
pluggable hand models: OpenHand, MANO, NIMBLE).

    import monohand
    hand = monohand.create("openhand")            # a hand model by name, as smplx.create
    out = hand(global_orient=..., hand_pose=..., betas=...)   # a HandOutput, metres
    net, size = monohand.load_network()           # the shipped S2HAND network
    with monohand.Reconstructor() as rec:         # detect + reconstruct photos
        hands = rec(image, K)
        hands = rec.reconstruct(image, K, [monohand.HandDetection(...)])  # one's own hands
    monohand.Reconstructor(detector=mine)         # one's own detector (monohand.Detector)
    seq = monohand.SequenceReconstructor(rec)     # a video: seq.step(frame, K) per frame

Names load lazily (``monohand --help`` stays fast; type checkers see them, and the
modules a user reaches for, typed);
``__version__`` is the package's. Every module of the package is reachable as
``monohand.<module>`` without importing it first: ``monohand.evaluate`` is the evaluation
package (FreiHAND's protocol: ``evaluate_arrays``), ``monohand.outputs.write_outputs``
writes a photo's files as the command does.
"""

from __future__ import annotations

from functools import cache
from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from pkgutil import iter_modules
from typing import TYPE_CHECKING

try:
    __version__ = version("monohand")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

_EXPORTS = {
    "HandModel": ".models.base",
    "HandOutput": ".models.base",
    "MANO": ".models.mano",
    "NIMBLE": ".models.nimble",
    "OpenHand": ".models.openhand",
    "create": ".models.registry",
    "Renderer": ".render.renderer",
    "HandNet": ".nets.handnet",
    "load_network": ".nets.handnet",
    "Reconstructor": ".reconstruct",
    "ReconstructConfig": ".reconstruct",
    "HandDetection": ".data.detection",
    "Detector": ".data.detection",
    "SideWarning": ".data.detection",
    "HandReconstruction": ".record",
    "SequenceReconstructor": ".video.sequence",
    "SequenceConfig": ".video.sequence",
    "hand_notes": ".notes",
    "read_rgb": ".data.images",
    "camera_for_image": ".data.intrinsics",
    "CameraWarning": ".data.intrinsics",
}
__all__ = ["__version__", *sorted(_EXPORTS)]

if TYPE_CHECKING:  # what type checkers and IDEs see (the names load lazily at run time)
    from . import (
        config,
        data,
        evaluate,
        export,
        fit,
        models,
        native_log,
        nets,
        notes,
        outputs,
        predict,
        reconstruct,
        record,
        render,
        train,
        video,
        viz,
    )
    from .data.detection import Detector, HandDetection, SideWarning
    from .data.images import read_rgb
    from .data.intrinsics import CameraWarning, camera_for_image
    from .models.base import HandModel, HandOutput
    from .models.mano import MANO
    from .models.nimble import NIMBLE
    from .models.openhand import OpenHand
    from .models.registry import create
    from .nets.handnet import HandNet, load_network
    from .notes import hand_notes
    from .reconstruct import ReconstructConfig, Reconstructor
    from .record import HandReconstruction
    from .render.renderer import Renderer
    from .video.sequence import SequenceConfig, SequenceReconstructor


def __getattr__(name: str):
    target = _EXPORTS.get(name)
    if target is not None:
        value = getattr(import_module(target, __name__), name)
        globals()[name] = value  # later lookups skip this function
        return value
    # a module of the package, as ``monohand.evaluate.evaluate_arrays`` or
    # ``monohand.outputs.write_outputs`` without importing it first
    if name in _modules():
        return import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@cache
def _modules() -> frozenset[str]:
    """The package's public modules and subpackages (not its data folders)."""
    return frozenset(m.name for m in iter_modules(__path__) if not m.name.startswith("_"))


def __dir__() -> list[str]:
    return [*__all__, *sorted(_modules())]
