"""Reading JSON files with errors that name the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson  # FreiHAND's annotations are ~150 MB of JSON: 2-3x faster than the stdlib


def read_json(path: Path, error: type[ValueError] = ValueError):
    """The parsed contents of ``path``; ``error`` (a ``ValueError`` subclass, the caller's
    own) names the file when it is missing or not valid JSON."""
    if not path.is_file():
        raise error(f"{path}: no such file")
    data = path.read_bytes()
    # A UTF-8 byte-order mark (Windows' editors write one) is no part of the
    # JSON text, which orjson alone would refuse.
    data = data.removeprefix(b"\xef\xbb\xbf")
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):  # (Windows PowerShell 5's Out-File writes it)
        raise error(f"{path}: UTF-16 text; JSON files are read as UTF-8: save it as UTF-8")
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as e:
        for word in (b"NaN", b"Infinity"):
            if word in data:  # Python's json.dump writes them; JSON has no such numbers
                where = _non_finite_at(data)
                raise error(f"{path}: not valid JSON: it holds {word.decode()}{where} (a "
                            "non-finite number, which JSON cannot hold)") from e  # fmt: skip
        raise error(f"{path}: not valid JSON ({e})") from e


def _non_finite_at(data: bytes) -> str:
    """" at [i][j]..." for the first non-finite number of a JSON text that Python's json
    reads (which takes NaN and Infinity), or "" where it cannot tell: which sample, which
    joint, in a predictions file of thousands."""
    import json
    import math

    try:
        node = json.loads(data)
    except ValueError:
        return ""
    stack = [(node, "")]
    while stack:  # depth first, in order
        x, at = stack.pop()
        if isinstance(x, float) and not math.isfinite(x):
            return f" at {at}"
        if isinstance(x, list):
            stack += [(v, f"{at}[{i}]") for i, v in reversed(list(enumerate(x)))]
        elif isinstance(x, dict):
            stack += [(v, f"{at}[{k!r}]") for k, v in reversed(list(x.items()))]
    return ""


# -- nested lists of numbers, without Python lists --------------------------------------------

# What remains of a JSON text of numbers when the numbers and the blanks are taken out.
_NUMBER_BYTES = b"0123456789+-.eE \t\n\r"


def _skeleton(shape: tuple[int, ...]) -> bytes:
    """The brackets and commas of a regular nested list of numbers of ``shape`` (a length 0,
    always the last: ``_shape`` stops there, gives ``[]``)."""
    s = b"[" + b"," * (shape[-1] - 1) + b"]"
    for n in reversed(shape[:-1]):
        s = b"[" + b",".join([s] * n) + b"]"
    return s


def _shape(node) -> tuple[int, ...]:
    """The shape a regular nested list starting as ``node`` has (read from first elements)."""
    import simdjson

    shape = []
    while isinstance(node, simdjson.Array):
        shape.append(len(node))
        if not len(node):
            break
        node = node[0]
    return tuple(shape)


def read_numeric_json(data: bytes) -> np.ndarray | list[np.ndarray] | None:
    """A JSON text holding a regular nested list of numbers, as one float64 array, or a list
    of such lists (FreiHAND's ``[xyz_list, verts_list]``) as a list of arrays; None for any
    other text (the caller then reads it with ``read_json`` and checks it itself).

    simdjson parses the numbers straight into one buffer: FreiHAND's 200 MB of vertices in
    0.6 s, against 3 s for ``orjson.loads`` and the lists' conversion to an array. The buffer
    holds the numbers in order however they nest, so the text's brackets and commas are
    compared with those of the regular shape read from the first elements: any ragged or
    mis-nested list falls back. Values are the correctly rounded doubles, as orjson's.
    """
    try:
        import simdjson
    except ImportError:  # an optional speed-up: the plain path gives the same arrays
        return None
    doc = None
    try:
        doc = simdjson.Parser().parse(data)
        if not isinstance(doc, simdjson.Array):
            return None
        whole = _shape(doc)
        skeleton = data.translate(None, _NUMBER_BYTES)
        if skeleton == _skeleton(whole):
            return np.frombuffer(doc.as_buffer(of_type="d"), np.float64).reshape(whole)
        parts = [_shape(doc[i]) for i in range(len(doc))]
        if len(parts) != len(doc) or any(not p for p in parts):
            return None
        if skeleton != b"[" + b",".join(_skeleton(p) for p in parts) + b"]":
            return None
        flat = np.frombuffer(doc.as_buffer(of_type="d"), np.float64)  # owns its memory
        ends = np.cumsum([int(np.prod(p)) for p in parts])
        return [a.reshape(p) for a, p in zip(np.split(flat, ends[:-1]), parts, strict=True)]
    except (ValueError, TypeError, RuntimeError):  # not JSON, or not numbers only
        return None
    finally:
        del doc  # the parser may not be reused while its documents live
