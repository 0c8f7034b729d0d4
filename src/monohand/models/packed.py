"""Products with a constant matrix, through a GEMM that packs the matrix once.

The hand layer's largest product multiplies a batch by a matrix that never changes: the shape
and pose-corrective basis (MANO: 145 x 2,430). On the CPU, ``torch.mm`` (MKL's sgemm)
re-arranges the constant operand into its blocked layout on every call; oneDNN's product
(``torch.ops.mkldnn._linear_pointwise``, what ``torch.compile`` emits for a CPU ``Linear``)
takes it packed once, and at that shape measured 1.6x faster at batch 64. Its numbers equal
``torch.mm``'s to float32 rounding (the same products, another summation order).

oneDNN's operator has no derivatives: ``PackedMatrix`` differentiates in its input by a small
``autograd.Function`` (the matrix is a constant). Wherever the packed route does not apply
(CUDA, float64, autocast, oneDNN absent or switched off by ``torch.backends.mkldnn.flags``,
under ``torch.compile``, which makes its own kernels, under ``torch.func`` transforms and
forward-mode AD) the product is ``torch.addmm`` / ``torch.mm``.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd import forward_ad


def _packable(weight: Tensor) -> bool:
    return (
        weight.device.type == "cpu"
        and weight.dtype == torch.float32
        and torch.backends.mkldnn.is_available()
        and hasattr(torch.ops.mkldnn, "_linear_pointwise")
    )


class _PackedProduct(torch.autograd.Function):
    """x @ W^T (+ bias) by oneDNN, differentiable in x (linear in it). The old-style
    ``forward(ctx, ...)``: with ``setup_context`` (what ``torch.func`` needs) each call cost
    25 µs more, a tenth of the product at batch 64; under ``torch.func`` and forward-mode AD
    ``PackedMatrix`` takes ``torch.addmm`` instead."""

    @staticmethod
    def forward(ctx, x: Tensor, matrix: PackedMatrix) -> Tensor:
        ctx.matrix = matrix
        return torch.ops.mkldnn._linear_pointwise(x, matrix.packed, matrix.bias, "none", [], "")

    @staticmethod
    def backward(ctx, g: Tensor) -> tuple[Tensor, None]:
        return g.mm(ctx.matrix.weight), None  # d(x W^T)/dx applied to g: g W


def _transformed() -> bool:
    """Whether a ``torch.func`` transform or a forward-mode AD level is active (private
    flags of torch; where they are missing, assume so: the plain product is always right)."""
    functorch = getattr(torch._C, "_are_functorch_transforms_active", None)
    level = getattr(forward_ad, "_current_level", 0)
    return functorch is None or functorch() or level >= 0


class PackedMatrix:
    """y = x @ W^T + bias for a constant W, the matrix packed for the GEMM once.

    Args:
        weight: (N, K) the matrix W (as ``torch.nn.functional.linear`` takes it); a constant:
            it must not require grad, and must not be changed in place afterwards (the packed
            copy would not follow; make a new ``PackedMatrix``).
        bias: (N,) added to every row, or None.
    Calling it on x (M, K) returns (M, N), differentiable in x; x's dtype and device must be
    W's. Copies and pickles carry W and the bias, and pack again where they arrive.
    """

    # Below this many rows MKL's product is the faster (one row: 15 % of the layer's time).
    MIN_ROWS = 8

    def __init__(self, weight: Tensor, bias: Tensor | None = None) -> None:
        if weight.requires_grad or (bias is not None and bias.requires_grad):
            raise ValueError("PackedMatrix: the matrix and bias are constants (requires_grad "
                             "is set; pass .detach())")  # fmt: skip
        self.weight = weight
        self.bias = bias
        self.packed: Tensor | None = None
        if _packable(weight):
            with torch.no_grad(), torch.inference_mode(False):  # serves autograd afterwards too
                self.packed = torch.ops.mkldnn._reorder_linear_weight(weight.contiguous())

    def __call__(self, x: Tensor) -> Tensor:
        if x.shape[-1] != self.weight.shape[1]:
            raise ValueError(f"PackedMatrix: input of {x.shape[-1]} columns for a matrix of "
                             f"{self.weight.shape[1]} (shape {tuple(x.shape)})")  # fmt: skip
        if (
            self.packed is not None
            and x.shape[0] >= self.MIN_ROWS
            and x.dtype == torch.float32
            and x.device.type == "cpu"
            and not torch.is_autocast_enabled("cpu")
            and torch.backends.mkldnn.enabled
            and not torch.compiler.is_compiling()
            and not _transformed()
        ):
            x = x.contiguous()
            if torch.is_grad_enabled() and x.requires_grad:
                return _PackedProduct.apply(x, self)
            return torch.ops.mkldnn._linear_pointwise(x, self.packed, self.bias, "none", [], "")
        if self.bias is None:
            return x @ self.weight.T
        return torch.addmm(self.bias, x, self.weight.T)

    # oneDNN's packed tensor has no storage to copy or pickle: both pack again.
    def __getstate__(self) -> dict:
        return {"weight": self.weight, "bias": self.bias}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["weight"], state["bias"])
