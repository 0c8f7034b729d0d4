"""Networks: image encoders (ResNets named like torchvision's), parameter heads, the 2D
keypoint branch."""

from .backbone import ResNet, resnet
from .heads import HandHeads, HeadOutput
from .keypoints2d import KeypointBranch, soft_argmax_2d

__all__ = ["HandHeads", "HeadOutput", "KeypointBranch", "ResNet", "resnet", "soft_argmax_2d"]
