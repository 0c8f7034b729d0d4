"""Safe loading: the restricted unpickler admits model files and refuses everything else."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from monohand.models.assets import AssetError, load_npz, load_pickle, save_npz


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/monohand_pwned",))


@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_malicious_pickle_is_refused(tmp_path, protocol):
    marker = "/tmp/monohand_pwned"
    if os.path.exists(marker):
        os.remove(marker)
    p = tmp_path / "MANO_RIGHT.pkl"
    p.write_bytes(pickle.dumps({"v_template": _Evil()}, protocol=protocol))
    with pytest.raises(AssetError, match=r"MANO_RIGHT\.pkl.*refusing.*(posix|os)\.system"):
        load_pickle(p)
    assert not os.path.exists(marker)


def test_other_globals_are_refused(tmp_path):
    p = tmp_path / "x.pkl"
    p.write_bytes(pickle.dumps({"a": np.random.default_rng(0)}, protocol=2))
    with pytest.raises(AssetError, match="refusing"):
        load_pickle(p)


def test_plain_numpy_pickle_loads(tmp_path):
    p = tmp_path / "x.pkl"
    arr = np.arange(12, dtype=np.float32).reshape(3, 4)
    p.write_bytes(pickle.dumps({"a": arr, "s": {1, 2}, "n": np.float64(2.5)}, protocol=2))
    out = load_pickle(p)
    assert np.array_equal(out["a"], arr) and out["a"].dtype == np.float32
    assert out["s"] == {1, 2} and out["n"] == 2.5


@pytest.mark.parametrize("content", [b"", b"not a pickle at all", b"\x80\x02}q\x00(X"])
def test_corrupt_pickle_gives_clear_error(tmp_path, content):
    p = tmp_path / "bad.pkl"
    p.write_bytes(content)
    with pytest.raises(AssetError, match=r"bad\.pkl"):
        load_pickle(p)


def test_missing_file(tmp_path):
    with pytest.raises(AssetError, match="no such file"):
        load_pickle(tmp_path / "nope.pkl")
    with pytest.raises(AssetError, match="no such file"):
        load_npz(tmp_path / "nope.npz")


def test_npz_refuses_object_arrays(tmp_path):
    p = tmp_path / "obj.npz"
    np.savez(p, a=np.array([{"x": 1}], dtype=object))
    with pytest.raises(AssetError, match=r"obj\.npz: not a plain .npz archive \(it holds "
                                         r"objects, not plain arrays\)"):  # fmt: skip
        load_npz(p)
    # a text file named .npz: said as such (numpy's words advised unsafe loading)
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(AssetError, match=r"text\.npz: not a .npz archive \(not a zip file"):
        load_npz(tmp_path / "text.npz")


def test_save_npz_is_atomic_and_round_trips(tmp_path):
    p = tmp_path / "sub" / "m.npz"
    save_npz(p, {"a": np.eye(3)})
    assert np.array_equal(load_npz(p)["a"], np.eye(3))
    assert [x.name for x in p.parent.iterdir()] == ["m.npz"]


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_numpy_pickles_of_every_protocol_load(tmp_path, protocol):
    p = tmp_path / "x.pkl"
    arr = np.asfortranarray(np.arange(6.0).reshape(2, 3))
    p.write_bytes(pickle.dumps({"a": arr}, protocol=protocol))
    assert np.array_equal(load_pickle(p)["a"], arr)
