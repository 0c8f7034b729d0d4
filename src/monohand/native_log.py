"""Quieting the native libraries' chatter on the command line's stderr.

MediaPipe and the LiteRT runtime under it write informational lines straight to file
descriptor 2 from C++ ("INFO: [environment.cc:36] Creating LiteRT environment ...",
"W0000 ... Input tensor memory is not aligned ..."): about a dozen per run, none of them
actionable, drowning the command's own messages. No environment variable silences them.

Only the ``monohand`` command turns the filter on (``enable``; a library must not touch its
host's descriptors unasked; ``disable`` undoes it), and ``MONOHAND_NATIVE_LOG=1`` keeps
everything. Once on, each MediaPipe call runs inside ``quiet_native()``: descriptor 2 points
at a temporary file for the call's duration, and afterwards every line that is not such
chatter is written to the real stderr. Outside those calls descriptor 2 is the real stderr,
so crashes elsewhere report as usual. ``sys.stderr`` (Python's messages, rich's progress
bars, tracebacks), where it writes to descriptor 2, is replaced by a stream on a duplicate
of the real stderr, so that it is never held in a call's file; where the host has pointed it
elsewhere (a ``StringIO``, a test's capture), it is left alone. A file rather than a pipe:
no reader thread, and no writer that blocks when a pipe fills.
"""

from __future__ import annotations

import atexit
import faulthandler
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

# glog/absl lines are "<level><MMDD> <time> ..." with the level I (info) or W (warning);
# LiteRT's are "INFO: ..."; absl adds one "WARNING: Logging before InitGoogle() ..." banner.
NOISE = re.compile(rb"^(INFO: |WARNING: Logging before InitGoogle\(\)|[IW]\d{4} )")
_real_fd: int | None = None  # a duplicate of the real stderr, once enabled
_swapped: tuple[TextIO, TextIO] | None = None  # (the host's sys.stderr, ours), where replaced
_kept: list[TextIO] = []  # streams of ours still held by others after ``disable``: left open
_lock = threading.Lock()  # descriptor 2 is process-wide: one window at a time


def is_noise(line: bytes) -> bool:
    """Whether one line (bytes, with or without its newline) is native informational chatter."""
    return NOISE.match(line) is not None


def _on_descriptor_2(stream) -> bool:
    """Whether ``stream`` writes to file descriptor 2 (not a ``StringIO``, not elsewhere)."""
    try:
        return stream.fileno() == 2
    except (AttributeError, OSError, ValueError):
        return False


def enable() -> None:
    """Turn the filter on for this process (the ``monohand`` command does; see the module
    doc). Idempotent; does nothing when ``MONOHAND_NATIVE_LOG=1`` or stderr is closed."""
    global _real_fd, _swapped
    if os.environ.get("MONOHAND_NATIVE_LOG") == "1":
        return
    with _lock:
        if _real_fd is not None:
            return
        try:
            real = os.dup(2)
            mine = os.dup(real) if _on_descriptor_2(sys.stderr) else None
        except OSError:
            return
        if mine is not None:
            host = sys.stderr
            host.flush()
            sys.stderr = os.fdopen(mine, "w", buffering=1, encoding=host.encoding or "utf-8",
                                   errors="backslashreplace")  # fmt: skip
            _swapped = (host, sys.stderr)
            if faulthandler.is_enabled():  # keep crash tracebacks on the real stderr
                faulthandler.enable(file=sys.stderr)
        _real_fd = real
    atexit.register(_at_exit)


def disable() -> None:
    """Turn the filter off: ``sys.stderr`` is the host's again where ``enable`` replaced it
    and nobody has since, and the duplicates are closed; a stream of ours that someone else
    now holds (a ``redirect_stderr`` that will put it back, a logging handler) is kept open,
    so that their writes still reach the terminal. Idempotent."""
    with _lock:  # (not inside another thread's window)
        _disable()
    atexit.unregister(_at_exit)


def _disable() -> None:
    """``disable``'s work, ``_lock`` held."""
    global _real_fd, _swapped
    if _real_fd is None:
        return
    if _swapped is not None:
        host, ours = _swapped
        if sys.stderr is ours:
            sys.stderr = host
            if faulthandler.is_enabled():  # (it wrote to ours)
                faulthandler.enable(file=host if _on_descriptor_2(host) else 2)
            try:
                ours.close()
            except OSError:  # (its last flush to a closed stderr)
                pass
        else:
            _kept.append(ours)
    os.close(_real_fd)
    _real_fd = _swapped = None


def _at_exit() -> None:
    """``disable`` at the interpreter's exit, unless a thread still sits in a window (a
    daemon thread stopped inside a MediaPipe call): exit is not held up for it."""
    if _lock.acquire(timeout=1.0):
        try:
            _disable()
        finally:
            _lock.release()


@contextmanager
def quiet_native() -> Iterator[None]:
    """Run the block with native chatter on descriptor 2 filtered out (when ``enable``d; a
    plain block otherwise). Blocks on other threads wait for each other."""
    if _real_fd is None:
        yield
        return
    with _lock, tempfile.TemporaryFile() as held:
        real = _real_fd
        if real is None:  # (disabled meanwhile)
            yield
            return
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(real, 2)
            held.seek(0)
            kept = b"".join(line for line in held.read().splitlines(keepends=True)
                            if not is_noise(line))  # fmt: skip
            if kept:
                try:
                    os.write(real, kept)
                except OSError:  # stderr closed (e.g. a pipe whose reader ended)
                    pass
