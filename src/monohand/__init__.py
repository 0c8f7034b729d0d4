"""monohand: 3D hand reconstruction from a single RGB image (S2HAND's model-based pipeline with
pluggable hand models: OpenHand, MANO, NIMBLE).

    import monohand
    hand = monohand.create("openhand")            # a hand model by name, as smplx.create
    out = hand(global_orient=..., hand_pose=..., betas=...)   # a HandOutput, metres
    net, size = monohand.load_network()           # the shipped S2HAND network
    with monohand.Reconstructor() as rec:         # detect + reconstruct photos
        hands = rec(image, K)
        hands = rec.reconstruct(image, K, [monohand.HandDetection(...)])  # one's own detector
    seq = monohand.SequenceReconstructor(rec)     # a video: seq.step(frame, K) per frame

Names load lazily (``monohand --help`` stays fast); ``__version__`` is the package's.
``monohand.evaluate`` is the evaluation package (FreiHAND's protocol: ``evaluate_arrays``).
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

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
    "HandReconstruction": ".record",
    "SequenceReconstructor": ".video.sequence",
    "SequenceConfig": ".video.sequence",
    "hand_notes": ".notes",
    "read_rgb": ".data.images",
    "camera_for_image": ".data.intrinsics",
    "CameraWarning": ".data.intrinsics",
}
__all__ = ["__version__", *sorted(_EXPORTS)]


# subpackages, and the modules the README calls as monohand.<module>.<name>
_SUBPACKAGES = ("data", "evaluate", "models", "nets", "render", "video", "native_log", "export",
                "outputs")


def __getattr__(name: str):
    if name in _SUBPACKAGES:  # monohand.evaluate.evaluate_arrays without importing it first
        return import_module(f".{name}", __name__)
    target = _EXPORTS.get(name)
    if target is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(target, __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return [*__all__, *_SUBPACKAGES]
