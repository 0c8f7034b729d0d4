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
