"""The ``monohand`` command: one verb per job, each a thin layer over a library function.

The verbs live by family: ``reconstruct`` (the main job: reconstruct, serve), ``evaluate``
(evaluate, predict, evaluate-real), ``train`` (train, ablate), ``data`` (detect, synth,
import-photos) and ``models`` (demo, convert-model); ``common`` holds what they share and
``usage`` the checks of paths and choices that every verb makes before any work.
"""

from __future__ import annotations

from .common import app, say

# Each module registers its verbs, in the order of the imports: ``monohand --help`` lists
# them so, the main job first.
# isort: off
from . import reconstruct, evaluate, train, data, models  # noqa: F401
# isort: on

__all__ = ["app", "main", "user_errors"]


def user_errors() -> tuple[type[BaseException], ...]:
    """The library's errors about a user's files and values: their messages name the file or
    the value, so the command line shows them as one line, not a traceback."""
    from ..data.freihand import DatasetError
    from ..data.images import ImageError
    from ..evaluate.io import EvalInputError
    from ..models.assets import AssetError

    return (ImageError, EvalInputError, AssetError, DatasetError, FileNotFoundError,
            IsADirectoryError, NotADirectoryError, PermissionError)  # fmt: skip


def main() -> None:
    """The ``monohand`` command: every verb's library errors about user input reach the user
    as ``error: <message>`` with exit code 1 (commands catch what they expect themselves;
    this is the one place that catches what a new command forgets); other exceptions are
    bugs, and keep their tracebacks."""
    import warnings

    from .. import native_log
    from ..data.detection import SideWarning
    from ..data.intrinsics import CameraWarning

    native_log.enable()
    warnings.simplefilter("ignore", CameraWarning)  # reconstruct says it once per input
    warnings.simplefilter("ignore", SideWarning)  # it says hands of a side the model lacks too
    try:
        app()
    except Exception as e:
        if not isinstance(e, user_errors()):
            raise
        say("error", e)
        raise SystemExit(1) from None
