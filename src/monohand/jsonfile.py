"""Reading JSON files with errors that name the file."""

from __future__ import annotations

from pathlib import Path

import orjson  # FreiHAND's annotations are ~150 MB of JSON: 2-3x faster than the stdlib


def read_json(path: Path, error: type[ValueError] = ValueError):
    """The parsed contents of ``path``; ``error`` (a ``ValueError`` subclass, the caller's
    own) names the file when it is missing or not valid JSON."""
    if not path.is_file():
        raise error(f"{path}: no such file")
    data = path.read_bytes()
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as e:
        for word in (b"NaN", b"Infinity"):
            if word in data:  # Python's json.dump writes them; JSON has no such numbers
                raise error(f"{path}: not valid JSON: it holds {word.decode()} (a non-finite "
                            "number, which JSON cannot hold)") from e  # fmt: skip
        raise error(f"{path}: not valid JSON ({e})") from e
