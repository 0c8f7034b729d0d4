"""Safe loading of model asset files: pickles from other projects, ``.npz`` and ``.pt``.

Model files such as ``MANO_RIGHT.pkl`` are Python-2 pickles that reference ``chumpy`` and
``scipy.sparse`` classes. Plain ``pickle.load`` would import chumpy (unmaintained, broken on
current NumPy) and, worse, would execute whatever a tampered file asks for. ``load_pickle``
instead admits a short list of classes: NumPy's array reconstruction, scipy's sparse matrices,
a few builtins, and chumpy's classes, which are replaced by inert records and resolved to plain
NumPy arrays afterwards. Any other global is refused with an error naming the file.
"""

from __future__ import annotations

import copyreg
import io
import pickle
import zipfile
import zlib
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..atomic import atomic_write


class AssetError(ValueError):
    """A model asset file is missing, unsafe or malformed. The message names the file."""


class _Record:
    """Inert stand-in for an object of a foreign class: keeps its pickled state, runs nothing."""

    kind = "record"
    state: Any = None
    args: tuple = ()

    def __init__(self, *args: Any) -> None:
        self.args = args
        self.state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state


class _ChumpyRecord(_Record):
    kind = "chumpy"
    cls_name = ""


class _SparseRecord(_Record):
    kind = "sparse"
    fmt = ""


def _chumpy_class(name: str) -> type:
    return type(f"chumpy_{name}", (_ChumpyRecord,), {"cls_name": name})


def _sparse_class(fmt: str) -> type:
    return type(f"sparse_{fmt}", (_SparseRecord,), {"fmt": fmt})


def _reconstructor(cls: type, base: type, state: Any) -> Any:
    # copyreg._reconstructor as protocol 0/1 pickles call it, limited to our inert records.
    if not (isinstance(cls, type) and issubclass(cls, _Record)):
        raise pickle.UnpicklingError(f"refusing to reconstruct {cls!r}")
    return cls()


def _np_reconstruct(subtype: type, shape: Any, dtype: Any) -> np.ndarray:
    if subtype is not np.ndarray:
        raise pickle.UnpicklingError(f"refusing ndarray subtype {subtype!r}")
    return np.ndarray.__new__(subtype, shape, dtype)


def _np_scalar(dtype: np.dtype, data: Any = None) -> Any:
    if dtype.hasobject:
        raise pickle.UnpicklingError("refusing object-dtype scalar")
    if isinstance(data, str):  # Python-2 str read with encoding="latin1"
        data = data.encode("latin1")
    return np.frombuffer(data, dtype=dtype, count=1)[0]


def _encode_latin1(text: str, encoding: str = "latin1") -> bytes:
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("refusing _codecs.encode with unexpected arguments")
    return text.encode("latin1")


def _np_frombuffer(buf: bytes, dtype: np.dtype, shape: tuple, order: str) -> np.ndarray:
    # numpy's protocol-5 array reconstruction, without object dtypes.
    if np.dtype(dtype).hasobject:
        raise pickle.UnpicklingError("refusing object-dtype array")
    arr = np.frombuffer(buf, dtype=dtype)
    return arr.reshape(shape, order=order).copy()


_BUILTINS = {
    "set": set,
    "frozenset": frozenset,
    "object": object,
    "list": list,
    "dict": dict,
    "tuple": tuple,
    "slice": slice,
    "complex": complex,
    "bytearray": bytearray,
}
_NUMPY_MODULES = {"numpy.core.multiarray", "numpy._core.multiarray", "numpy"}
_SPARSE_FORMATS = {"csc_matrix": "csc", "csr_matrix": "csr", "coo_matrix": "coo"}


def _torch_rebuild_tensor_v2(
    storage, offset, size, stride, requires_grad=False, hooks=None, *extra
):
    import warnings
    from collections import OrderedDict as _OD

    from torch._utils import _rebuild_tensor_v2

    if hooks:
        raise pickle.UnpicklingError("refusing a tensor with backward hooks")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TypedStorage deprecation, inside torch's own helper
        return _rebuild_tensor_v2(
            storage, offset, tuple(size), tuple(stride), bool(requires_grad), _OD()
        )


def _torch_load_from_bytes(data: bytes):
    # torch's own helper calls torch.load without weights_only; this one cannot run code.
    import torch

    return torch.load(io.BytesIO(data), weights_only=True)


_TORCH_GLOBALS = {
    ("torch._utils", "_rebuild_tensor_v2"): _torch_rebuild_tensor_v2,
    ("torch.storage", "_load_from_bytes"): _torch_load_from_bytes,
}


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that only admits the classes model files need (see the module doc)."""

    def __init__(self, file: io.BufferedIOBase, source: str, allow_torch: bool = False) -> None:
        super().__init__(file, encoding="latin1")
        self.source = source
        self.allow_torch = allow_torch

    def find_class(self, module: str, name: str) -> Any:
        if module in ("__builtin__", "builtins") and name in _BUILTINS:
            return _BUILTINS[name]
        if module in ("copy_reg", "copyreg"):
            if name == "_reconstructor":
                return _reconstructor
            if name == "__newobj__":
                return copyreg.__newobj__
        if module in _NUMPY_MODULES and name in ("_reconstruct", "scalar", "ndarray", "dtype"):
            return {
                "_reconstruct": _np_reconstruct,
                "scalar": _np_scalar,
                "ndarray": np.ndarray,
                "dtype": np.dtype,
            }[name]
        if module == "_codecs" and name == "encode":
            # Python 3 writes bytes this way in protocols 0-2; it only encodes a str.
            return _encode_latin1
        if module in ("numpy.core.numeric", "numpy._core.numeric") and name == "_frombuffer":
            return _np_frombuffer
        if self.allow_torch and (module, name) in _TORCH_GLOBALS:
            return _TORCH_GLOBALS[(module, name)]
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        if module.startswith("scipy.sparse") and name in _SPARSE_FORMATS:
            return _sparse_class(_SPARSE_FORMATS[name])
        if module == "chumpy" or module.startswith("chumpy."):
            return _chumpy_class(name)
        raise pickle.UnpicklingError(
            f"{self.source}: refusing to load global '{module}.{name}'; this file is not a "
            "plain model asset (it may be corrupt or malicious)"
        )


def _sparse_to_scipy(rec: _SparseRecord, source: str) -> sp.spmatrix:
    st = rec.state if isinstance(rec.state, dict) else {}
    shape = st.get("_shape", st.get("shape"))
    try:
        if rec.fmt in ("csc", "csr"):
            cls = sp.csc_matrix if rec.fmt == "csc" else sp.csr_matrix
            return cls(
                (np.asarray(st["data"]), np.asarray(st["indices"]), np.asarray(st["indptr"])),
                shape=tuple(shape),
            )
        return sp.coo_matrix(
            (np.asarray(st["data"]), (np.asarray(st["row"]), np.asarray(st["col"]))),
            shape=tuple(shape),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise AssetError(f"{source}: malformed sparse matrix in pickle ({e})") from e


def _chumpy_to_numpy(rec: _ChumpyRecord, source: str) -> np.ndarray:
    st = rec.state if isinstance(rec.state, dict) else {}
    if "x" in st:  # chumpy.ch.Ch: the value lives in 'x'
        return np.asarray(_resolve(st["x"], source))
    if rec.cls_name == "Select" and "a" in st and "idxs" in st:
        # chumpy.reordering.Select: a.ravel()[idxs], reshaped to preferred_shape if present.
        base = np.asarray(_resolve(st["a"], source))
        out = base.ravel()[np.asarray(st["idxs"]).ravel()]
        if "preferred_shape" in st:
            out = out.reshape(tuple(st["preferred_shape"]))
        return out
    raise AssetError(
        f"{source}: unsupported chumpy object '{rec.cls_name}' (keys {sorted(st)}); "
        "convert the file with chumpy installed, or report it"
    )


def _resolve(obj: Any, source: str) -> Any:
    """Replace inert records by NumPy arrays / scipy matrices, recursively."""
    if isinstance(obj, _ChumpyRecord):
        return _chumpy_to_numpy(obj, source)
    if isinstance(obj, _SparseRecord):
        return _sparse_to_scipy(obj, source)
    if isinstance(obj, _Record):
        raise AssetError(f"{source}: unexpected object in pickle")
    if isinstance(obj, dict):
        return {k: _resolve(v, source) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_resolve(v, source) for v in obj)
    return obj


def load_pickle(path: str | Path, allow_torch: bool = False) -> Any:
    """Load a model pickle (Python 2 or 3) without executing foreign code.

    chumpy arrays become ``np.ndarray``, scipy sparse matrices stay scipy sparse matrices; with
    ``allow_torch`` torch tensors are rebuilt too (storages through ``weights_only`` loading),
    as NIMBLE's files need.

    Raises:
        AssetError: the file is missing, not a pickle, or references a class outside the
            admitted list (the message names the class).
    """
    path = Path(path)
    if not path.is_file():
        raise AssetError(f"{path}: no such file")
    try:
        with path.open("rb") as f:
            obj = SafeUnpickler(f, str(path), allow_torch).load()
    except pickle.UnpicklingError as e:
        if "refusing" in str(e):  # our own refusal of a class: it names what was refused
            raise AssetError(str(e) if str(path) in str(e) else f"{path}: {e}") from e
        # the unpickler's own complaint ("invalid load key", opcode errors): no pickle at all
        raise AssetError(f"{path}: not a model file (not a readable pickle: {e})") from e
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            OverflowError, MemoryError, SystemError) as e:  # fmt: skip
        # (a damaged length field can ask for more memory than there is; numpy's array
        # reconstructors, given damaged arguments, answer SystemError)
        raise AssetError(f"{path}: not a readable model pickle ({type(e).__name__}: {e})") from e
    return _resolve(obj, str(path))


def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    """Load every array of an ``.npz`` file, refusing object arrays (which need pickle)."""
    path = Path(path)
    if not path.is_file():
        raise AssetError(f"{path}: no such file")
    if not zipfile.is_zipfile(path):  # (numpy would read it as a pickle, and refuse that)
        raise AssetError(f"{path}: not a .npz archive (not a zip file: a file of another "
                         f"kind, or a damaged one)")  # fmt: skip
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except ValueError as e:
        # numpy's words for what it cannot read without pickle (a text file too) advise
        # unsafe loading: not ours to pass on
        why = "it holds objects, not plain arrays" if "pickle" in str(e) else str(e)
        raise AssetError(f"{path}: not a plain .npz archive ({why})") from e
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error, KeyError, NotImplementedError,
            RuntimeError,
            MemoryError, OverflowError) as e:  # fmt: skip
        raise AssetError(f"{path}: unreadable .npz archive ({type(e).__name__}: {e})") from e


def save_npz(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """Write arrays to ``path`` atomically (temporary file in the same folder, then rename)."""

    def write(tmp: Path) -> None:
        with tmp.open("wb") as f:
            np.savez_compressed(f, **arrays)

    atomic_write(path, write)
