"""MediaPipe's hand-landmark network in plain PyTorch: a hand-specific pretrained encoder.

The network is ``hand_landmarks_detector.tflite`` of the MediaPipe bundle that monohand ships
(Apache-2.0, ``data/assets/MEDIAPIPE_LICENSE.md``): a MobileNetV2-like stack of inverted
residual blocks (ReLU6, no squeeze-excite) ending in a 1152-channel global average and four
linear heads. ``tools/convert_mediapipe_landmarks.py`` read its graph once with the ``tflite``
package and wrote the float16 weights to ``assets/mediapipe_hand_landmarks.pt``; nothing here
needs TensorFlow or LiteRT. ``tests/test_mediapipe_port.py`` checks the port against the LiteRT
interpreter on real crops.

Input: (B, 3, 224, 224) RGB in [0, 1] (MediaPipe's tensor range for this model), a crop
that MediaPipe would make: the hand upright (wrist below the middle knuckle), its palm box
enlarged twice (``data.crops.mediapipe_roi``).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .layers import same_pad

INPUT_SIZE = 224
FEATURES = 1152
WEIGHTS_FILE = "mediapipe_hand_landmarks.pt"

# (expanded channels or 0 for none, depthwise kernel, stride, output channels or 0 for none).
# The stem is a 3x3 stride-2 convolution to 24 channels. A block adds its input back when
# its stride is 1 and it keeps the channel count. The last block has no projection: its
# depthwise output is averaged into the 1152 features.
BLOCKS: tuple[tuple[int, int, int, int], ...] = (
    (0, 3, 1, 16),
    (64, 3, 2, 24),
    (144, 3, 1, 24),
    (144, 5, 2, 40),
    (240, 5, 1, 40),
    (240, 3, 2, 80),
    (480, 3, 1, 80),
    (480, 3, 1, 80),
    (480, 5, 1, 112),
    (672, 5, 1, 112),
    (672, 5, 1, 112),
    (672, 5, 2, 192),
    (1152, 5, 1, 192),
    (1152, 5, 1, 192),
    (1152, 5, 1, 192),
    (1152, 3, 1, 0),
)


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow's "SAME" padding (see ``same_pad``). At stride 1 an odd
    kernel's SAME padding is symmetric, so the convolution pads itself (no extra copy)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1):
        super().__init__(cin, cout, kernel, stride, padding=kernel // 2 if stride == 1 else 0,
                         groups=groups)  # fmt: skip

    def forward(self, x: Tensor) -> Tensor:
        if self.stride[0] > 1:
            x = same_pad(x, self.kernel_size[0], self.stride[0])
        return super().forward(x)


class InvertedResidual(nn.Module):
    """1x1 expansion + ReLU6, kxk depthwise + ReLU6, 1x1 projection, identity shortcut."""

    def __init__(self, cin: int, expand: int, kernel: int, stride: int, cout: int) -> None:
        super().__init__()
        mid = expand or cin
        self.expand = SameConv2d(cin, mid, 1) if expand else None
        self.depthwise = SameConv2d(mid, mid, kernel, stride, groups=mid)
        self.project = SameConv2d(mid, cout, 1) if cout else None
        self.residual = stride == 1 and cout == cin

    def forward(self, x: Tensor) -> Tensor:
        # in place: the convolutions' outputs are fresh, and a new 50 MB activation per
        # ReLU6 costs more than the clamp itself (~10 % of a batch's time, same numbers)
        y = x if self.expand is None else F.relu6(self.expand(x), inplace=True)
        y = F.relu6(self.depthwise(y), inplace=True)
        if self.project is None:
            return y
        y = self.project(y)
        return y + x if self.residual else y


@dataclass
class HandLandmarks:
    """The network's outputs for a batch of crops.

    Attributes:
        features: (B, 1152) pooled features, the input of the linear heads.
        screen: (B, 21, 3) landmarks in crop pixels (x, y of a 224x224 crop; z, relative depth
            in the same pixel units, smaller towards the camera), FreiHAND/MediaPipe order.
        world: (B, 21, 3) metric landmarks, metres, centred near the hand's middle, axes of
            the crop (x right, y down).
        presence: (B,) probability that the crop holds a hand.
        handedness: (B,) MediaPipe's handedness probability (its "right" score).
    """

    features: Tensor
    screen: Tensor
    world: Tensor
    presence: Tensor
    handedness: Tensor


class MediaPipeHandNet(nn.Module):
    """The landmark network (see the module doc); ``features(x)`` is the encoder alone."""

    out_channels = FEATURES
    input_size = INPUT_SIZE

    def __init__(self) -> None:
        super().__init__()
        self.stem = SameConv2d(3, 24, 3, 2)
        blocks, cin = [], 24
        for expand, kernel, stride, cout in BLOCKS:
            blocks.append(InvertedResidual(cin, expand, kernel, stride, cout))
            cin = cout or (expand or cin)
        self.blocks = nn.Sequential(*blocks)
        self.screen = nn.Linear(FEATURES, 63)
        self.world = nn.Linear(FEATURES, 63)
        self.presence = nn.Linear(FEATURES, 1)
        self.handedness = nn.Linear(FEATURES, 1)

    def feature_map(self, x: Tensor) -> Tensor:
        """(B, 3, H, W) in [0, 1] -> (B, 1152, H/32, W/32)."""
        return self.blocks(F.relu6(self.stem(x), inplace=True))

    def features(self, x: Tensor) -> Tensor:
        """(B, 3, H, W) in [0, 1] -> (B, 1152) pooled features."""
        return self.feature_map(x).mean((2, 3))

    def heads(self, features: Tensor) -> HandLandmarks:
        """The four linear heads on (B, 1152) features."""
        b = features.shape[0]
        return HandLandmarks(
            features=features,
            screen=self.screen(features).view(b, 21, 3),
            world=self.world(features).view(b, 21, 3),
            presence=torch.sigmoid(self.presence(features))[:, 0],
            handedness=torch.sigmoid(self.handedness(features))[:, 0],
        )

    def forward(self, x: Tensor) -> HandLandmarks:
        """(B, 3, 224, 224) RGB in [0, 1] -> ``HandLandmarks``."""
        return self.heads(self.features(x))


def weights_path() -> Path:
    """The shipped float16 state dict (written by ``tools/convert_mediapipe_landmarks.py``)."""
    return Path(str(resources.files("monohand.nets") / "assets" / WEIGHTS_FILE))


def mediapipe_hand_net(weights: str | Path | None = None) -> MediaPipeHandNet:
    """The ported network with MediaPipe's weights (float32, eval mode).

    Args:
        weights: a state dict file (``weights_only`` loading); default: the shipped one.
    """
    path = Path(weights) if weights is not None else weights_path()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such weights file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        net = MediaPipeHandNet()
        net.load_state_dict({k: v.float() for k, v in state.items()})
    except Exception as e:  # noqa: BLE001 - a foreign file fails in many ways
        raise ValueError(f"{path}: not a MediaPipe hand-landmark state dict ({e})") from e
    return net.eval()
