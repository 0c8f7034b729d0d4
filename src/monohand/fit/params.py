"""How the fit parametrises a hand: the pose as each model's parameters with their prior
(``PoseParams``), the translation as (x/z, y/z, log z) (``uvz_of``, ``transl_of``), and
the optimiser's groups with their steps (``param_groups``)."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .. import losses as L
from ..models.base import HandModel


class PoseParams:
    """How the fit parametrises a model's hand pose, and the pose's prior.

    - OpenHand (has ``pose_space``): anatomical angles (B, 15, 3) from the relaxed pose;
      prior = limits + PCA.
    - Models with NIMBLE-style normalised PCA pose coefficients (``use_pose_pca``), and any
      model of one's own with neither of the others' pose data: its ``hand_pose`` numbers
      from 0; prior = their squared norm.
    - MANO-layout models: 45 axis-angle numbers from the mean pose; prior = PCA Mahalanobis.
    """

    def __init__(self, model: HandModel, b: int, dtype: torch.dtype) -> None:
        self.model = model
        data = getattr(model, "data", None)
        if hasattr(model, "pose_space"):
            self.kind = "anatomical"
            self.init = torch.as_tensor(model.pose_space.relaxed, dtype=dtype)[None].repeat(b, 1, 1)
        elif data is None:  # (NIMBLE's use_pose_pca, or a model of one's own)
            self.kind = "pca"
            self.init = torch.zeros(b, model.num_pose_params, dtype=dtype)
        else:
            self.kind = "axis_angle"
            flat = getattr(model, "flat_hand_mean", True)
            start = data.hands_mean if flat else np.zeros(45)
            self.init = torch.as_tensor(start, dtype=dtype)[None].repeat(b, 1)
        if data is not None:
            flat = getattr(model, "flat_hand_mean", True)
            self.mean = torch.as_tensor(data.hands_mean if flat else np.zeros(45), dtype=dtype)
            self.comps = torch.as_tensor(data.hands_components, dtype=dtype)
            self.std = torch.as_tensor(_pca_std(model), dtype=dtype)

    def hand_pose(self, p: Tensor) -> Tensor:
        """Optimised parameters -> the model's ``hand_pose`` input."""
        return self.model.pose_space.to_axis_angle(p) if self.kind == "anatomical" else p

    def prior(self, p: Tensor, hand_pose: Tensor) -> dict[str, Tensor]:
        """Prior terms (B,) of the pose."""
        if self.kind == "pca":
            return {"pca": (p**2).mean(1)}
        terms = {"pca": L.pose_pca_prior(hand_pose, self.mean, self.comps, self.std)}
        if self.kind == "anatomical":
            terms["limits"] = L.pose_limits(p, self.model.pose_space)
        return terms


def uvz_of(transl: Tensor) -> Tensor:
    """(B, 3) wrist translation -> (x/z, y/z, log z), as the fit optimises it: Adam's steps
    are then relative to the depth, so a hand 20 cm away and one 2 m away converge alike."""
    z = transl[:, 2:].clamp_min(0.05)
    return torch.cat([transl[:, :2] / z, torch.log(z)], 1)


def transl_of(uvz: Tensor) -> Tensor:
    """The inverse of ``uvz_of``: (B, 3) -> (B, 3) metres."""
    z = torch.exp(uvz[:, 2:])
    return torch.cat([uvz[:, :2] * z, z], 1)


def param_groups(lr: float, go: Tensor, angles: Tensor, betas: Tensor, uvz: Tensor,
                 fix_shape: bool = False) -> list[dict]:  # fmt: skip
    """The fit's Adam groups: rotation and pose at ``lr``; the translation (x/z, y/z, log z) at
    a tenth (a step of 0.01 in x/z is already several pixels); the shape at twice, unless
    ``fix_shape`` holds it (then it is in no group)."""
    groups = [{"params": [go, angles], "lr": lr}, {"params": [uvz], "lr": lr * 0.1}]
    if not fix_shape:
        groups.append({"params": [betas], "lr": lr * 2})
    return groups


def _pca_std(model: HandModel) -> np.ndarray:
    """Standard deviations of the PCA pose coefficients."""
    return np.asarray(getattr(model, "pose_pca_std", np.ones(len(model.data.hands_components))))
