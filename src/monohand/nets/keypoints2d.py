"""The 2D keypoint branch: heatmaps from a feature map and integral soft-argmax."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def soft_argmax_2d(heatmaps: Tensor, beta: float = 1.0) -> Tensor:
    """Integral soft-argmax: expected pixel position under softmax(beta * heatmap).

    Args:
        heatmaps: (B, J, h, w) logits.
    Returns:
        (B, J, 2) positions (x, y) in heatmap pixels, pixel centres at integers.
    """
    b, j, h, w = heatmaps.shape
    p = torch.softmax(beta * heatmaps.reshape(b, j, -1), dim=-1).reshape(b, j, h, w)
    xs = torch.arange(w, dtype=p.dtype, device=p.device)
    ys = torch.arange(h, dtype=p.dtype, device=p.device)
    return torch.stack([(p.sum(2) * xs).sum(-1), (p.sum(3) * ys).sum(-1)], -1)


class KeypointBranch(nn.Module):
    """Upsamples a backbone feature map (B, C, H/32, W/32) to 21 heatmaps at H/4 and returns
    keypoints in input-image pixels (B, 21, 2) via ``soft_argmax_2d``."""

    def __init__(self, in_channels: int, num_joints: int = 21, width: int = 128) -> None:
        super().__init__()
        layers, c = [], in_channels
        for _ in range(3):  # /32 -> /4
            layers += [
                nn.ConvTranspose2d(c, width, 4, 2, 1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            ]
            c = width
        self.up = nn.Sequential(*layers)
        self.head = nn.Conv2d(width, num_joints, 1)

    def forward(self, features: Tensor, image_size: tuple[int, int]) -> tuple[Tensor, Tensor]:
        """Returns (heatmaps (B, J, h, w), keypoints (B, J, 2) in image pixels)."""
        hm = self.head(self.up(features))
        h, w = hm.shape[-2:]
        xy = soft_argmax_2d(hm)
        scale = torch.tensor(
            [image_size[1] / w, image_size[0] / h], dtype=xy.dtype, device=xy.device
        )
        return hm, (xy + 0.5) * scale - 0.5
