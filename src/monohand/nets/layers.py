"""Small layers the ported encoders share."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def same_pad(x: Tensor, kernel: int, stride: int) -> Tensor:
    """TensorFlow's "SAME" padding of (B, C, H, W) for a square kernel and stride: the output
    has ceil(H / stride) rows, the extra row of an odd total going after (bottom/right),
    which symmetric PyTorch padding cannot express for stride 2 on even sizes. Both ported
    encoders (MediaPipe's, EfficientNet-Lite) were trained with it."""
    h, w = x.shape[-2:]
    ph = max((-(-h // stride) - 1) * stride + kernel - h, 0)
    pw = max((-(-w // stride) - 1) * stride + kernel - w, 0)
    return F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))
