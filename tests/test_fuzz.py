"""Every reader of user files, fed truncated, bit-flipped and wrong-typed copies of a valid
file (a seeded mutator, a bounded budget): a correct result or a clear error that names the
file; never another exception.

Readers: images (``read_rgb``), predictions (``evaluate.io.load_prediction``), real-photo
annotations (``data.realhands.load_realhands``), model pickles and .npz files
(``models.assets``), training configs (``config.load_config``).
"""

from __future__ import annotations

import io
import json
import pickle

import numpy as np
import pytest
from omegaconf.errors import OmegaConfBaseException
from PIL import Image

from monohand.config import load_config
from monohand.data.images import ImageError, read_rgb
from monohand.data.realhands import load_realhands
from monohand.evaluate.io import EvalInputError, load_prediction
from monohand.models.assets import AssetError, load_npz, load_pickle

CASES = 60  # mutations per reader (a bounded budget: about 5 s in all)
SEED = 20261202


def _png() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (16, 12, 3), np.uint8)).save(
        buf, format="PNG")  # fmt: skip
    return buf.getvalue()


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((16, 12, 3), 120, np.uint8)).save(buf, format="JPEG")
    return buf.getvalue()


def _prediction() -> bytes:
    return json.dumps([[[[0.01 * j, 0.0, 0.5] for j in range(21)]] * 2, []]).encode()


def _annotations() -> bytes:
    sample = {"image": "a.jpg", "K": [[500, 0, 64], [0, 500, 64], [0, 0, 1]],
              "joints3d": [[0.0, 0.0, 0.5]] * 21, "joints2d": [[64.0, 64.0]] * 21,
              "hand": "right", "source": "test"}  # fmt: skip
    return json.dumps({"joint_order": [], "units": "m", "samples": [sample, sample]}).encode()


def _pickle() -> bytes:
    return pickle.dumps({"v_template": np.zeros((4, 3)), "f": np.array([[0, 1, 2]]),
                         "kintree_table": np.zeros((2, 16), np.int64)}, protocol=2)  # fmt: skip


def _npz() -> bytes:
    buf = io.BytesIO()
    np.savez(buf, a=np.arange(6.0).reshape(2, 3), b=np.array([1, 2]))
    return buf.getvalue()


def _yaml() -> bytes:
    return b"steps: 5\nbatch: 2\nlr: 0.001\nmodel:\n  backbone: resnet18\n"


READERS = {
    "image.png": (_png, read_rgb, (ImageError,)),
    "image.jpg": (_jpeg, read_rgb, (ImageError,)),
    "pred.json": (_prediction, load_prediction, (EvalInputError,)),
    "annotations.json": (_annotations, load_realhands, (ValueError,)),
    "model.pkl": (_pickle, load_pickle, (AssetError,)),
    "model.npz": (_npz, load_npz, (AssetError,)),
    "config.yaml": (_yaml, load_config, (ValueError, OmegaConfBaseException)),
}


def _retyped(tree, rng: np.random.Generator):
    """A copy of a parsed JSON document with one value, anywhere, of another type."""
    other = [None, "x", 3, -1.5, [], {}, [[1, 2]], {"a": 1}, True]
    if not isinstance(tree, (list, dict)) or not tree or rng.random() < 0.25:
        return other[rng.integers(len(other))]
    keys = list(range(len(tree))) if isinstance(tree, list) else list(tree)
    k = keys[rng.integers(len(keys))]
    out = list(tree) if isinstance(tree, list) else dict(tree)
    out[k] = _retyped(tree[k], rng)
    return out


def _mutations(data: bytes, rng: np.random.Generator, text: bool):
    """Truncations, bit flips, byte runs overwritten, and (for text files) values swapped for
    other JSON/YAML types, in the text and (JSON) in the parsed document."""
    for _ in range(CASES):
        kind = rng.integers(5 if text else 3)
        if kind == 4 and data.startswith((b"{", b"[")):
            yield json.dumps(_retyped(json.loads(data), rng)).encode()
            continue
        kind = min(kind, 3)
        b = bytearray(data)
        if kind == 0:  # truncated
            yield bytes(b[: rng.integers(len(b))])
        elif kind == 1:  # bits flipped
            for i in rng.integers(len(b), size=rng.integers(1, 8)):
                b[i] ^= 1 << int(rng.integers(8))
            yield bytes(b)
        elif kind == 2:  # a run of random bytes
            i = rng.integers(len(b))
            b[i : i + 16] = rng.integers(0, 256, 16, dtype=np.uint8).tobytes()
            yield bytes(b)
        else:  # a number or a bracket replaced by another type's spelling
            s = data.decode()
            spots = [i for i, c in enumerate(s) if c in "0123456789[{"]
            i = int(rng.choice(spots))
            word = str(rng.choice(['"x"', "null", "{}", "[]", "true", "-1", "1e999", "NaN"]))
            yield (s[:i] + word + s[i + 1 :]).encode()


@pytest.mark.parametrize("name", list(READERS))
def test_readers_refuse_damaged_files_by_name(tmp_path, name):
    make, read, allowed = READERS[name]
    rng = np.random.default_rng([SEED, *name.encode()])  # reproducible across runs
    text = name.endswith((".json", ".yaml"))
    path = tmp_path / name
    path.write_bytes(make())
    read(path)  # the valid file reads
    for k, data in enumerate(_mutations(make(), rng, text)):
        path.write_bytes(data)
        try:
            read(path)
        except allowed as e:
            assert name in str(e) or isinstance(e, OmegaConfBaseException), (k, e)
        except Exception as e:  # noqa: BLE001 - the property under test
            pytest.fail(f"mutation {k} of {name}: {type(e).__name__}: {e}\n{data[:200]!r}")
