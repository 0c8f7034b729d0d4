"""ResNet-18/34/50 in plain PyTorch, with torchvision's parameter names.

The registry's torchvision is a CUDA build that does not load beside the CPU torch here, so
the encoders are written out; their ``state_dict`` keys and shapes are torchvision's
(``conv1``, ``bn1``, ``layer1.0.conv1``, ..., ``layer4.x.downsample.0/1``, ``fc``), so ImageNet
weights saved from torchvision load with ``load_state_dict`` (see ``load_backbone_weights``).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(cin, planes, stride, self.expansion)

    def forward(self, x: Tensor) -> Tensor:
        idt = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + idt)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)  # stride here (v1.5)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(cin, planes, stride, self.expansion)

    def forward(self, x: Tensor) -> Tensor:
        idt = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + idt)


def _downsample(cin: int, planes: int, stride: int, expansion: int) -> nn.Sequential | None:
    if stride == 1 and cin == planes * expansion:
        return None
    return nn.Sequential(
        nn.Conv2d(cin, planes * expansion, 1, stride, bias=False),
        nn.BatchNorm2d(planes * expansion),
    )


_LAYERS = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
}


class ResNet(nn.Module):
    """A torchvision-compatible ResNet; ``forward`` returns the pooled features (B, C) and
    ``features`` the last feature map (B, C, H/32, W/32)."""

    def __init__(self, depth: int = 18, num_classes: int = 1000) -> None:
        super().__init__()
        if depth not in _LAYERS:
            raise ValueError(f"depth must be one of {sorted(_LAYERS)}, got {depth}")
        block, counts = _LAYERS[depth]
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin, layers = 64, []
        for i, (planes, n) in enumerate(zip((64, 128, 256, 512), counts, strict=True)):
            blocks = []
            for j in range(n):
                blocks.append(block(cin, planes, 2 if (j == 0 and i > 0) else 1))
                cin = planes * block.expansion
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)  # kept for weight compatibility; unused
        self.out_channels = cin
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def features(self, x: Tensor) -> Tensor:
        """(B, 3, H, W) normalised images -> (B, C, H/32, W/32)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward(self, x: Tensor) -> Tensor:
        """(B, 3, H, W) -> (B, C) globally pooled features."""
        return self.avgpool(self.features(x)).flatten(1)


def resnet(depth: int = 18, weights: str | Path | None = None) -> ResNet:
    """A ResNet, optionally with torchvision ImageNet weights from a local file."""
    net = ResNet(depth)
    if weights is not None:
        load_backbone_weights(net, weights)
    return net


def load_backbone_weights(net: ResNet, path: str | Path) -> None:
    """Load a torchvision ``state_dict`` file (``weights_only=True``); clear error on mismatch."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    state = torch.load(path, map_location="cpu", weights_only=True)
    missing, unexpected = net.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(
            f"{path}: not a torchvision ResNet-compatible state dict "
            f"(missing {missing[:3]}..., unexpected {unexpected[:3]}...)"
        )


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalise(images: Tensor) -> Tensor:
    """(B, 3, H, W) in [0, 1] -> ImageNet-normalised."""
    mean = torch.tensor(IMAGENET_MEAN, device=images.device, dtype=images.dtype)[:, None, None]
    std = torch.tensor(IMAGENET_STD, device=images.device, dtype=images.dtype)[:, None, None]
    return (images - mean) / std
