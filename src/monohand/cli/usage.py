"""Checks of command-line values, answered before any work.

Every command checks its paths and choices with these before it loads a model or reads a
photo, so that a mistake costs no time: each failure is a ``typer.BadParameter`` naming the
option and what it expects, which typer prints under the usage line with exit code 2.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import typer


def _first_existing(paths: Iterable[Path]) -> Path | None:
    return next((p for p in paths if p.exists()), None)


def _blocked_by_file(path: Path) -> Path | None:
    """The first existing ancestor of ``path`` when it is a file (nothing can be made below)."""
    parent = _first_existing(path.absolute().parents)
    return parent if parent is not None and not parent.is_dir() else None


def _not_writable(path: Path) -> Path | None:
    """The folder that refuses to let ``path`` (a folder to write into) be written or made:
    ``path`` itself where it exists, else its first existing ancestor; None if writable.
    ``os.access`` also sees read-only file systems and immutable folders, which permission
    bits alone do not show (and root ignores). Where ``path`` is still to be made, a folder
    is made in that ancestor and removed at once: ``os.access`` says yes to root in /proc
    and /sys, where nothing can be made."""
    folder = _first_existing((path.absolute(), *path.absolute().parents))
    if folder is None or not folder.is_dir():
        return None
    if not os.access(folder, os.W_OK | os.X_OK):
        return folder
    if folder != path.absolute():
        try:
            probe = tempfile.mkdtemp(prefix=".monohand-probe-", dir=folder)
        except OSError:
            return folder
        try:
            os.rmdir(probe)
        except OSError:  # made, so writable: its removal is a courtesy
            pass
    return None


# What names a file, not a folder to be made: meshes, records, pictures, videos, weights.
FILE_SUFFIXES = (".glb", ".gltf", ".obj", ".ply", ".off", ".stl", ".json", ".png", ".jpg",
                 ".jpeg", ".mp4", ".npz", ".pt", ".ckpt", ".yaml", ".txt")  # fmt: skip


def out_folder(path: Path, option: str = "--out") -> Path:
    """A folder to write into: absent (it will be made) or a folder, not a file, and one this
    process may write (or make) before any work is done."""
    if path.exists() and not path.is_dir():
        raise typer.BadParameter(f"{path} is a file: give a folder", param_hint=option)
    if not path.exists() and path.suffix.lower() in FILE_SUFFIXES:
        # (a new folder "hand.glb" holding hand_0.glb surprises whoever asked for one file)
        raise typer.BadParameter(f"{path}: a file's name ({path.suffix}); this is the folder "
                                 f"the files go into, e.g. {path.with_suffix('')}",
                                 param_hint=option)  # fmt: skip
    if (f := _blocked_by_file(path)) is not None:
        raise typer.BadParameter(f"{path}: {f} is a file, not a folder", param_hint=option)
    if (f := _not_writable(path)) is not None:
        where = "" if f == path.absolute() else f" ({f} refuses new files)"
        raise typer.BadParameter(f"{path}: cannot be written{where}", param_hint=option)
    return path


def out_file(path: Path, option: str, suffixes: Iterable[str] = ()) -> Path:
    """A file to write: not a folder, below no file, with one of ``suffixes`` if given, in a
    folder this process may write (or make)."""
    suffixes = tuple(suffixes)
    if path.is_dir():
        raise typer.BadParameter(f"{path} is a folder: give a file name", param_hint=option)
    if suffixes and path.suffix.lower() not in suffixes:
        raise typer.BadParameter(f"{path}: expected a {' or '.join(suffixes)} file",
                                 param_hint=option)  # fmt: skip
    if (f := _blocked_by_file(path)) is not None:
        raise typer.BadParameter(f"{path}: {f} is a file, not a folder", param_hint=option)
    # written beside itself, then renamed (``atomic_write``): its folder must take new files
    if (f := _not_writable(path.parent)) is not None:
        raise typer.BadParameter(f"{path}: cannot be written ({f} refuses new files)",
                                 param_hint=option)  # fmt: skip
    return path


def existing(path: Path, option: str, kind: str = "file or folder") -> Path:
    """A path to read that exists and is of ``kind``: "file", "folder", "file or folder", or
    "checkpoint" (a file; a training run's folder given for it is answered with the
    last.ckpt it holds)."""
    if not path.exists():
        raise typer.BadParameter(f"{path}: no such {'file' if kind == 'checkpoint' else kind}",
                                 param_hint=option)  # fmt: skip
    if kind in ("file", "checkpoint") and not path.is_file():
        held = path / "last.ckpt"
        hint = f" (it holds {held})" if kind == "checkpoint" and held.is_file() else ""
        raise typer.BadParameter(f"{path} is a folder: give a file{hint}", param_hint=option)
    if kind == "folder" and not path.is_dir():
        raise typer.BadParameter(f"{path} is a file: give a folder", param_hint=option)
    return path


def one_of(value: str, choices: Iterable[str], option: str) -> str:
    """``value`` when it is one of ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        raise typer.BadParameter(f"unknown {value!r}: one of {', '.join(choices)}",
                                 param_hint=option)  # fmt: skip
    return value
