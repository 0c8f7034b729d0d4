"""Writing files so that a reader never sees half of one: write a temporary file in the same
folder, then rename it over the destination (atomic on POSIX file systems)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


def atomic_write(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp_path)`` and rename ``tmp_path`` to ``path``; on failure nothing is left.

    The temporary name keeps the suffix, so writers that pick a format from it still work.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    try:
        write(tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
