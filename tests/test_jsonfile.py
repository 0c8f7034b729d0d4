"""The JSON readers: the fast numeric path gives exactly the plain parser's arrays, and gives
up (None) on anything that is not a regular nested list of numbers."""

from __future__ import annotations

import json

import numpy as np
import orjson
import pytest

import monohand.evaluate.io as evio
from monohand.jsonfile import read_numeric_json


def _values(rng, shape):
    """Numbers as people's files hold them: doubles of every magnitude, ints, negative zero."""
    x = rng.normal(scale=10.0 ** rng.integers(-9, 4, shape), size=shape)
    x.flat[:: 7] = np.round(x.flat[:: 7])
    if x.size > 3:
        x.flat[3] = -0.0
    return x


@pytest.mark.parametrize("shape", [(5, 21, 3), (1, 778, 3), (3, 2), (4,), (0,)])
def test_regular_lists_read_as_the_plain_parser_reads_them(shape):
    rng = np.random.default_rng(sum(shape))
    x = _values(rng, shape)
    for text in (json.dumps(x.tolist()), json.dumps(x.tolist(), indent=2),
                 orjson.dumps(x, option=orjson.OPT_SERIALIZE_NUMPY).decode()):  # fmt: skip
        got = read_numeric_json(text.encode())
        want = np.asarray(orjson.loads(text), dtype=np.float64)
        assert got.shape == want.shape and got.dtype == np.float64
        assert np.array_equal(got, want) and got.flags.writeable
        assert np.array_equal(np.signbit(got), np.signbit(want))  # -0.0 kept


def test_a_list_of_regular_lists_reads_as_parts():
    rng = np.random.default_rng(1)
    xyz, verts = _values(rng, (6, 21, 3)), _values(rng, (6, 778, 3))
    got = read_numeric_json(json.dumps([xyz.tolist(), verts.tolist()]).encode())
    assert isinstance(got, list) and len(got) == 2
    assert np.array_equal(got[0], xyz) and np.array_equal(got[1], verts)
    got = read_numeric_json(json.dumps([xyz.tolist(), []]).encode())
    assert np.array_equal(got[0], xyz) and got[1].size == 0


@pytest.mark.parametrize("text", [
    "[[[1,2,3],[4,5]]]",  # ragged points
    "[[[1,2,3]],[[4,5,6],[7,8,9]]]x",  # trailing junk
    "[[[1,2,3],4,[5,6,7]]]",  # a number where a point belongs, same count of numbers
    "[[[1,2,3]],[[4,5,6],[7,8]]]",  # one part ragged (as parts, each must be regular)
    '[[[1,2,"3"]]]', "[[[1,2,true]]]", "[[[1,2,null]]]",  # not numbers
    "[[[NaN,2,3]]]", "[[[1e400,2,3]]]",  # not JSON numbers / not a double
    '{"xyz": [1, 2, 3]}', "3", "",  # not a list
])  # fmt: skip
def test_anything_else_gives_none(text):
    assert read_numeric_json(text.encode()) is None


def test_evaluation_files_read_the_same_either_way(tmp_path, monkeypatch):
    """FreiHAND's ground truth and a prediction through the fast path and through the plain
    one (the reader without simdjson) give identical arrays; a bad file the same message."""
    rng = np.random.default_rng(2)
    xyz, verts = _values(rng, (7, 21, 3)), _values(rng, (7, 778, 3))
    (tmp_path / "evaluation_xyz.json").write_text(json.dumps(xyz.tolist()))
    (tmp_path / "evaluation_verts.json").write_text(json.dumps(verts.tolist()))
    evio.save_prediction(tmp_path / "pred.json", xyz, verts)
    (tmp_path / "bad.json").write_text(json.dumps([xyz.tolist(), verts[:, :5].tolist()[:6]]))

    def read_all():
        gt = evio.load_freihand_gt(tmp_path)
        pred = evio.load_prediction(tmp_path / "pred.json")
        with pytest.raises(evio.EvalInputError) as e:
            evio.load_prediction(tmp_path / "bad.json")
        return gt, pred, str(e.value)

    fast = read_all()
    monkeypatch.setattr(evio, "read_numeric_json", lambda data: None)
    plain = read_all()
    for a, b in zip([*fast[0], *fast[1]], [*plain[0], *plain[1]], strict=True):
        assert np.array_equal(a, b)
    assert np.array_equal(fast[0][0], xyz) and np.array_equal(fast[1][1], verts)
    assert fast[2] == plain[2] and "6 meshes" in fast[2]
