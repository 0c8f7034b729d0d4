"""Quieting the native libraries' chatter on the command line's stderr.

MediaPipe and the LiteRT runtime under it write informational lines straight to file
descriptor 2 from C++ ("INFO: [environment.cc:36] Creating LiteRT environment ...",
"W0000 ... Input tensor memory is not aligned ..."): about a dozen per run, none of them
actionable, drowning the command's own messages. No environment variable silences them.

``filter_native_stderr`` moves descriptor 2 onto a pipe whose reader thread drops those lines
and forwards every other line (errors, Python's own output written through descriptor 2) to the
real stderr; ``sys.stderr`` is pointed at the real stderr directly, so Python's messages, rich's
progress bars and tracebacks never pass through the filter. Only the ``monohand`` command
installs it (never an import: a library must not touch its host's descriptors);
``MONOHAND_NATIVE_LOG=1`` keeps everything.
"""

from __future__ import annotations

import atexit
import os
import re
import sys
import threading

# glog/absl lines are "<level><MMDD> <time> ..." with the level I (info) or W (warning);
# LiteRT's are "INFO: ..."; absl adds one "WARNING: Logging before InitGoogle() ..." banner.
NOISE = re.compile(rb"^(INFO: |WARNING: Logging before InitGoogle\(\)|[IW]\d{4} )")
_FLUSH = b"\x00monohand-native-log-flush\n"
_installed = False


def is_noise(line: bytes) -> bool:
    """Whether one line (bytes, with or without its newline) is native informational chatter."""
    return NOISE.match(line) is not None


def _forward(read_fd: int, out_fd: int, flushed: threading.Event) -> None:
    with os.fdopen(read_fd, "rb", buffering=0) as pipe:
        buf = b""
        while chunk := pipe.read(65536):
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                if line.endswith(_FLUSH[:-1]):  # after an unfinished line, it ends that line
                    line = line[: -len(_FLUSH) + 1]
                    flushed.set()
                    if not line:
                        continue
                if not is_noise(line):
                    os.write(out_fd, line + b"\n")
        if buf and not is_noise(buf):
            os.write(out_fd, buf)


def filter_native_stderr() -> None:
    """Filter what native code writes to descriptor 2 from now on (see the module doc).
    Idempotent; does nothing when ``MONOHAND_NATIVE_LOG=1`` or descriptor 2 is closed."""
    global _installed
    if _installed or os.environ.get("MONOHAND_NATIVE_LOG") == "1":
        return
    try:
        real = os.dup(2)
    except OSError:
        return
    sys.stderr.flush()
    read_fd, write_fd = os.pipe()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    sys.stderr = os.fdopen(
        real, "w", buffering=1, encoding=sys.stderr.encoding or "utf-8", errors="backslashreplace"
    )
    flushed = threading.Event()
    threading.Thread(
        target=_forward, args=(read_fd, real, flushed), name="native-stderr", daemon=True
    ).start()

    def drain() -> None:
        # What native code wrote before exit reaches the terminal before the process ends;
        # lines written after this (C++ destructors at teardown) stay in the pipe.
        os.write(2, _FLUSH)
        flushed.wait(2.0)

    atexit.register(drain)
    _installed = True
