"""Moved (2026-12-06): S2HAND's detection file is ``data.detection_file``, MediaPipe's
detector ``data.mediapipe_hands``. Their names are still found here, with a
DeprecationWarning."""

from __future__ import annotations

import warnings
from importlib import import_module

_MOVED = {"save_detections": "detection_file", "load_detections": "detection_file",
          "detections_by_name": "detection_file"}  # fmt: skip


def __getattr__(name: str):
    home = _MOVED.get(name, "mediapipe_hands")
    module = import_module(f"{__package__}.{home}")
    if not hasattr(module, name):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(f"monohand.data.keypoints.{name} is now monohand.data.{home}.{name}",
                  DeprecationWarning, stacklevel=2)  # fmt: skip
    return getattr(module, name)
