"""The fit's objective: its unweighted terms for parameters as optimised (``fit_terms``),
weighted and summed (``weighted_total``), in a unit of the hand's size in the image
(``image_hand_size``), with confidences relative to each hand's best joint
(``relative_confidence``)."""

from __future__ import annotations

import torch
from torch import Tensor

from .. import losses as L
from ..models.base import HandModel, HandOutput
from ..render.camera import project
from .params import PoseParams, transl_of
from .records import FitConfig, FitInputs


def relative_confidence(conf: Tensor) -> Tensor:
    """(B, 21) confidences -> weights relative to each hand's most confident joint; a hand
    whose joints all have confidence 0 gets equal weights.

    The detector's confidences measure agreement between augmented views, and a hand that
    no augmentation found again gets uniformly tiny ones (down to exp(-156), or 0 in
    float32). Only their ratios within a hand should weight its joints: every weighted loss
    of the fit divides by the weights' sum, which is clamped, so tiny confidences would
    otherwise erase the hand's keypoints from the fit.
    """
    if not (torch.isfinite(conf).all() and (conf >= 0).all()):
        raise ValueError("confidences must be finite and non-negative")
    top = conf.amax(1, keepdim=True)
    return torch.where(top > 0, conf / torch.where(top > 0, top, 1.0), 1.0)


# OpenHand's palm: wrist to middle knuckle 84.7 mm, index to little knuckle 63.7 mm.
PALM_LENGTH_PER_WIDTH = 1.33


HAND_SIZES = ("length", "palm")


def image_hand_size(keypoints: Tensor, rule: str = "length", floor: float = 0.0) -> Tensor:
    """A hand's size in the image, pixels: (..., 21, 2) keypoints -> (...,), at least ``floor``.

    "length": wrist to middle knuckle. It shrinks to a few pixels when the hand points at the
    camera, and the residuals measured in it (and the robust kernel's width) with it. "palm":
    the larger of that length and the palm's width (index to little knuckle) times
    ``PALM_LENGTH_PER_WIDTH``; the two cross each other, so one of them is foreshortened at
    most by about 1/sqrt(2) whichever way the palm turns (the same value as "length" when the
    palm faces the camera and the hand's proportions are the template's)."""
    length = (keypoints[..., 9, :] - keypoints[..., 0, :]).norm(dim=-1)
    if rule == "palm":
        width = (keypoints[..., 17, :] - keypoints[..., 5, :]).norm(dim=-1)
        length = torch.maximum(length, PALM_LENGTH_PER_WIDTH * width)
    elif rule != "length":
        raise ValueError(f"hand_size: expected one of {HAND_SIZES}, got {rule!r}")
    return length.clamp_min(floor)


def fit_terms(
    model: HandModel,
    params: PoseParams,
    inputs: FitInputs,
    cfg: FitConfig,
    go: Tensor,
    angles: Tensor,
    betas: Tensor,
    uvz: Tensor,
    prior: tuple[Tensor, Tensor] | None = None,
    mesh: bool = True,
    keypoints_2d: bool = True,
) -> tuple[HandOutput | Tensor, dict[str, Tensor]]:
    """The model's output and the fit's unweighted terms (B,) each for parameters as
    optimised (``uvz``: see ``uvz_of``; ``prior``: pose parameters and shape to pull
    towards). Confidences must already be relative (``relative_confidence``). With
    ``mesh=False`` only the (B, 21, 3) keypoints are posed and returned in the output's
    place (a ``HandOutput`` with ``mesh``): every term here needs only them (a new term that
    needs the vertices belongs under ``if mesh``, and the keypoint stage then poses the
    mesh). ``keypoints_2d=False`` leaves out the 2D keypoint term (steps whose every hand
    matches 3D targets instead). A new term needs its weight too (``WEIGHTED_TERMS``)."""
    hand_pose = params.hand_pose(angles)
    pose = {"global_orient": go, "hand_pose": hand_pose, "betas": betas, "transl": transl_of(uvz)}
    out = model(**pose) if mesh else None
    joints = out.joints if mesh else model.keypoints(**pose)
    kp, conf = inputs.keypoints, inputs.confidence
    terms = {}
    if keypoints_2d:
        size = image_hand_size(kp, cfg.hand_size, 10.0)
        terms["keypoints"] = L.keypoints_2d(project(joints, inputs.K), kp, conf, size,
                                            cfg.robust_sigma)  # fmt: skip
    terms.update(params.prior(angles, hand_pose))
    terms["shape"] = L.shape_prior(betas)
    terms["collision"] = L.finger_collision(joints)
    if inputs.world is not None:
        world = L.joints_3d_norm if cfg.world_frame == "camera" else L.joints_3d_norm_rotfree
        terms["world"] = world(joints, inputs.world, conf)
    if prior is not None:
        terms["prior_pose"] = L.parameter_prior(angles, prior[0])
        terms["prior_shape"] = L.parameter_prior(betas, prior[1])
    return (out if mesh else joints), terms


# The fit's terms, each weighed by ``FitConfig.w_<name>``, summed in this order.
WEIGHTED_TERMS = ("keypoints", "world", "limits", "pca", "shape", "collision", "prior_pose",
                  "prior_shape", "silhouette")  # fmt: skip


def weighted_total(terms: dict[str, Tensor], cfg: FitConfig) -> Tensor:
    """The fit's objective (B,): ``fit_terms`` (and the silhouette stage's term) weighted by
    ``cfg``'s ``w_<name>``. A term that is not in ``WEIGHTED_TERMS`` is refused: a new term
    must get its weight here, not be left out of the objective while reported."""
    if unknown := set(terms) - set(WEIGHTED_TERMS):
        raise KeyError(f"fit terms without a weight in FitConfig: {sorted(unknown)} (add "
                       f"w_<name> and the name to WEIGHTED_TERMS)")  # fmt: skip
    total = 0.0
    for name in WEIGHTED_TERMS:
        if name in terms:
            total = total + getattr(cfg, f"w_{name}") * terms[name]
    return total
