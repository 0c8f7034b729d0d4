"""``PackedMatrix``: oneDNN's pre-packed product against ``torch.addmm``, its gradient, copies."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch

from conftest import make_mano_arrays
from monohand.models.mano import mano_data_from_arrays
from monohand.models.packed import PackedMatrix
from monohand.models.skinned import SkinnedHand

ONEDNN = torch.backends.mkldnn.is_available()


def _matrix(n=300, k=37, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, k, generator=g, dtype=dtype), torch.randn(n, generator=g, dtype=dtype)


@pytest.mark.parametrize("rows", [1, 7, 8, 64, 300])  # MKL below MIN_ROWS, oneDNN from it
@pytest.mark.parametrize("bias", [True, False])
def test_product_equals_addmm(rows, bias):
    w, b = _matrix()
    m = PackedMatrix(w, b if bias else None)
    assert (m.packed is not None) == ONEDNN  # the packed route exists wherever oneDNN does
    x = torch.randn(rows, w.shape[1], generator=torch.Generator().manual_seed(rows))
    want = x.double() @ w.double().T + (b.double() if bias else 0)
    got = m(x)
    assert got.dtype == torch.float32 and got.shape == (rows, w.shape[0])
    assert (got.double() - want).abs().max() < 2e-5 * want.abs().max()
    # a strided input (a transposed view) is the same product
    assert torch.allclose(m(x.T.contiguous().T), got, rtol=0, atol=1e-6 * want.abs().max().item())


@pytest.mark.parametrize("rows", [3, 64])
def test_gradient_in_the_input(rows):
    w, b = _matrix(n=50, k=11)
    x = torch.randn(rows, 11, generator=torch.Generator().manual_seed(1), requires_grad=True)
    up = torch.randn(rows, 50, generator=torch.Generator().manual_seed(2))
    (PackedMatrix(w, b)(x) * up).sum().backward()
    assert torch.allclose(x.grad, up @ w, atol=1e-5)  # d(x W^T + b)/dx applied to up: up W
    # finite differences in float64 on the same matrix (the float64 route is addmm's)
    xd = x.detach().double().requires_grad_()
    assert torch.autograd.gradcheck(PackedMatrix(w.double(), b.double()), (xd,))


def test_float64_and_autocast_take_torchs_product():
    w, b = _matrix(dtype=torch.float64)
    assert PackedMatrix(w, b).packed is None
    w32, b32 = _matrix()
    m = PackedMatrix(w32, b32)
    x = torch.randn(64, w32.shape[1])
    with torch.autocast("cpu", torch.bfloat16):  # as addmm under autocast: bfloat16 out
        got = m(x)
        want = torch.addmm(b32, x, w32.T)
    assert got.dtype == want.dtype == torch.bfloat16 and torch.equal(got, want)


def test_made_in_inference_mode_serves_autograd():
    w, b = _matrix(n=20, k=5)
    with torch.inference_mode():
        m = PackedMatrix(w, b)
        assert m(torch.ones(16, 5)).shape == (16, 20)
    x = torch.ones(16, 5, requires_grad=True)
    m(x).sum().backward()
    assert torch.allclose(x.grad, w.sum(0).expand(16, 5))


def test_copies_and_pickles_pack_again():
    w, b = _matrix()
    m = PackedMatrix(w, b)
    x = torch.randn(64, w.shape[1])
    for other in (copy.deepcopy(m), pickle.loads(pickle.dumps(m))):
        assert (other.packed is not None) == ONEDNN
        assert torch.equal(other(x), m(x))
    # a layer whose rig was made (it holds packed matrices) copies too
    hand = SkinnedHand(mano_data_from_arrays(make_mano_arrays(0), "<generated>"))
    pose = torch.randn(64, 45, generator=torch.Generator().manual_seed(3)) * 0.5
    before = hand(hand_pose=pose).vertices
    assert torch.equal(copy.deepcopy(hand)(hand_pose=pose).vertices, before)
    # ... and pickles without its rig, a cache it makes again when used
    data = pickle.dumps(hand)
    assert b"models.rig" not in data and b"PackedMatrix" not in data
    assert torch.equal(pickle.loads(data)(hand_pose=pose).vertices, before)


def test_layer_gradients_through_the_packed_product():
    """Batch 64 in float32 (the packed route, its backward) against the float64 layer."""
    arrays = make_mano_arrays(1)
    hands = [SkinnedHand(mano_data_from_arrays(arrays, "<generated>"), dtype=dt)
             for dt in (torch.float32, torch.float64)]  # fmt: skip
    g = torch.Generator().manual_seed(4)
    x = dict(hand_pose=torch.randn(64, 45, generator=g) * 0.5,
             betas=torch.randn(64, 10, generator=g))  # fmt: skip
    up = torch.randn(64, 778, 3, generator=g, dtype=torch.float64)
    grads = []
    for hand in hands:
        inputs = {k: v.to(hand.v_template.dtype, copy=True).requires_grad_() for k, v in x.items()}
        (hand(**inputs).vertices * up.to(hand.v_template.dtype)).sum().backward()
        grads.append([inputs[k].grad.double() for k in x])
    for a, b in zip(*grads, strict=True):
        assert (a - b).abs().max() < 1e-5 * b.abs().max()


def _ran_onednn(fn) -> bool:
    """Whether ``fn()`` ran oneDNN's packed product (seen by the profiler)."""
    with torch.profiler.profile() as prof:
        fn()
    return any(e.name == "mkldnn::_linear_pointwise" for e in prof.events())


@pytest.mark.skipif(not ONEDNN, reason="torch without oneDNN")
@pytest.mark.filterwarnings("ignore:TF32 acceleration on top of oneDNN")  # flags() says it
def test_the_packed_route_is_taken_where_it_applies():
    w, b = _matrix()
    m = PackedMatrix(w, b)
    x = torch.randn(64, w.shape[1])
    assert _ran_onednn(lambda: m(x))
    assert _ran_onednn(lambda: m(x.requires_grad_()).sum().backward())
    assert not _ran_onednn(lambda: m(x[: m.MIN_ROWS - 1]))
    with torch.backends.mkldnn.flags(enabled=False):  # switched off: torch's product
        assert not _ran_onednn(lambda: m(x))
    with torch.autocast("cpu", torch.bfloat16):
        assert not _ran_onednn(lambda: m(x))


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")  # torch.func's import
def test_forward_mode_and_torch_func_transforms():
    import torch.autograd.forward_ad as fwad

    w, b = _matrix(n=20, k=6)
    m = PackedMatrix(w, b)
    g = torch.Generator().manual_seed(5)
    x, t = torch.randn(16, 6, generator=g), torch.randn(16, 6, generator=g)
    with fwad.dual_level():  # the tangent of a linear map: t W^T (x itself needs no grad)
        tangent = fwad.unpack_dual(m(fwad.make_dual(x, t))).tangent
    assert tangent is not None and torch.allclose(tangent, t @ w.T, atol=1e-5)
    jac = torch.func.jacrev(m)(x)  # (16, 20, 16, 6): row i's outputs depend on row i alone
    assert torch.allclose(jac[3, :, 3], w) and jac[3, :, 4].abs().max() == 0
    xs = torch.randn(3, 16, 6, generator=g)
    assert torch.allclose(torch.func.vmap(m)(xs), torch.stack([m(v) for v in xs]), atol=1e-5)


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")  # inside the compiler
def test_under_torch_compile():
    w, b = _matrix(n=40, k=9)
    m = PackedMatrix(w, b)
    x = torch.randn(16, 9, generator=torch.Generator().manual_seed(6))
    compiled = torch.compile(lambda v: m(v) * 2.0)  # inductor makes its own product here
    assert torch.allclose(compiled(x), m(x) * 2.0, atol=1e-5)


def test_bad_arguments_are_named():
    w, b = _matrix(n=10, k=4)
    with pytest.raises(ValueError, match="constants"):
        PackedMatrix(w.requires_grad_(), b)
    m = PackedMatrix(w.detach(), b)
    with pytest.raises(ValueError, match="input of 5 columns for a matrix of 4"):
        m(torch.ones(8, 5))
