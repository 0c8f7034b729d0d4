"""Networks: image encoders (ResNets named like torchvision's, EfficientNet-Lite, MediaPipe's
hand-landmark network), S2HAND's parameter heads, the 2D keypoint branch, and ``HandNet``
(encoder + heads + hand model) with ``load_network`` (a checkpoint, or the shipped network)."""

from .backbone import ResNet, resnet
from .handnet import ENCODERS, HandNet, load_network, shipped_network_path
from .heads import HandHeads, HeadOutput
from .keypoints2d import KeypointBranch, soft_argmax_2d
from .mediapipe_hand import HandLandmarks, MediaPipeHandNet, mediapipe_hand_net

__all__ = [
    "ENCODERS",
    "HandHeads",
    "HandLandmarks",
    "HandNet",
    "HeadOutput",
    "KeypointBranch",
    "MediaPipeHandNet",
    "ResNet",
    "load_network",
    "mediapipe_hand_net",
    "resnet",
    "shipped_network_path",
    "soft_argmax_2d",
]
