"""S2HAND's parameter heads: pose, shape, texture, light, camera, from pooled features."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..geometry import rotation_6d_to_matrix, rotmat_to_axis_angle
from ..render.shade import LIGHT_SIZE, default_light

ROTATIONS = ("6d", "axis_angle")


@dataclass
class HeadOutput:
    """Regressed parameters, (B, ...) each.

    Attributes:
        global_orient: (B, 3) axis-angle in the camera frame.
        hand_pose: (B, P) the model's pose parameters (PCA or axis-angle).
        betas: (B, S); texture: (B, T); light: (B, 11) S2HAND's light.
        keypoints2d: (B, 21, 2) image pixels from the 2D keypoint branch, or None.
        transl: (B, 3) metres, camera frame, from (u, v, log-depth) relative to the crop so the
            hand stays consistent with the image's K (see ``HandHeads.forward``).
    """

    global_orient: Tensor
    hand_pose: Tensor
    betas: Tensor
    texture: Tensor
    light: Tensor
    transl: Tensor
    keypoints2d: Tensor | None = None  # (B, 21, 2) pixels, from the 2D branch when present


def _mlp(cin: int, cout: int, hidden: int = 256) -> nn.Sequential:
    """Linear -> ReLU -> Linear, the last layer near zero."""
    net = nn.Sequential(nn.Linear(cin, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, cout))
    nn.init.normal_(net[2].weight, std=1e-3)  # start near the mean hand, as S2HAND
    nn.init.zeros_(net[2].bias)
    return net


class HandHeads(nn.Module):
    """Pose, shape, texture, light and camera heads (S2HAND's split of one feature vector).

    Args:
        in_features: backbone feature size.
        num_pose, num_shape, num_texture: the hand model's parameter counts.
        depth_prior: metres, the depth the camera head starts from.
        rotation: how the pose head regresses the global rotation: "axis_angle" (S2HAND's)
            or "6d" (continuous; see ``rotation_6d_to_matrix``).
        hidden: width of each head's hidden layer.
        depth_per_focal: 0, or metres of depth per pixel of focal length: the camera head's
            depth is then this times the mean focal length times exp(offset). In crops that
            frame the hand alike whatever its distance (MediaPipe's), the image cannot tell
            the depth but the crop's focal length can: z = f S / s with the hand's size S
            and its size s in the crop both about constant.
    """

    def __init__(
        self,
        in_features: int,
        num_pose: int,
        num_shape: int,
        num_texture: int,
        depth_prior: float = 0.6,
        rotation: str = "axis_angle",
        hidden: int = 256,
        depth_per_focal: float = 0.0,
    ) -> None:
        super().__init__()
        if rotation not in ROTATIONS:
            raise ValueError(f"rotation must be one of {ROTATIONS}, got {rotation!r}")
        self.rotation = rotation
        self.rot_size = 6 if rotation == "6d" else 3
        self.pose = _mlp(in_features, self.rot_size + num_pose, hidden)
        if rotation == "6d":  # start at the identity, as axis-angle's zero output does
            with torch.no_grad():
                self.pose[2].bias[:6] = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0])
        self.shape = _mlp(in_features, num_shape, hidden)
        self.texture = _mlp(in_features, num_texture, hidden) if num_texture else None
        self.light = _mlp(in_features, LIGHT_SIZE, hidden)
        self.camera = _mlp(in_features, 3, hidden)
        self.num_texture = num_texture
        self.register_buffer("light_prior", default_light(1)[0])
        self.depth_prior = depth_prior
        self.depth_per_focal = depth_per_focal

    def forward(self, features: Tensor, K: Tensor, image_size: tuple[int, int]) -> HeadOutput:
        """Regress parameters for images whose intrinsics are K (B, 3, 3).

        The camera head predicts the hand root's pixel offset from the image centre (in units
        of the image size) and its log-depth offset; the translation is their back-projection
        with K, so it agrees with the image's camera by construction.
        """
        b = features.shape[0]
        p = self.pose(features)
        cam = self.camera(features)
        h, w = image_size
        uv = torch.stack([(w - 1) / 2 + cam[:, 0] * w, (h - 1) / 2 + cam[:, 1] * h], -1)
        if self.depth_per_focal:
            z = self.depth_per_focal * 0.5 * (K[:, 0, 0] + K[:, 1, 1]) * torch.exp(cam[:, 2])
        else:
            z = self.depth_prior * torch.exp(cam[:, 2])
        ray = torch.linalg.solve(
            K, torch.cat([uv, torch.ones(b, 1, dtype=uv.dtype, device=uv.device)], 1)[..., None]
        )[..., 0]
        transl = ray * z[:, None]
        tex = self.texture(features) if self.texture is not None else features.new_zeros(b, 0)
        r = p[:, : self.rot_size]
        if self.rotation == "6d":
            r = rotmat_to_axis_angle(rotation_6d_to_matrix(r))
        return HeadOutput(
            global_orient=r,
            hand_pose=p[:, self.rot_size :],
            betas=self.shape(features),
            texture=tex,
            light=self.light_prior + self.light(features),
            transl=transl,
        )
