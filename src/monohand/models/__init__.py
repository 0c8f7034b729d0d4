"""Hand models: MANO, NIMBLE, OpenHand (shipped) and the box hand, behind one output type.

``create(name, path=None, side="right")`` is the one way to get a model by name. The classes
load lazily, so importing this package costs nothing until one is used.
"""

from __future__ import annotations

from importlib import import_module

_EXPORTS = {
    "HandModel": ".base",
    "HandOutput": ".base",
    "MANO": ".mano",
    "NIMBLE": ".nimble",
    "OpenHand": ".openhand",
    "SkinnedHand": ".skinned",
    "create": ".registry",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
