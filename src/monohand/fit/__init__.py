"""Reconstruction by optimisation: fit the hand model to detected keypoints and the photo.

Batched over hands (all of one side and model). Stage 1 fits global rotation, translation,
pose (anatomical angles) and shape to the detected 2D keypoints (confidence-weighted,
robust) and MediaPipe's metric world landmarks (a scale-free 3D term), with the anatomical
limits, the PCA pose prior, the shape prior and a finger-collision penalty. The silhouette
stage (where ``FitInputs.mask`` is given and ``FitConfig.silhouette_iters`` > 0) goes on
with the same objective plus the rendered outline's distance to the hand's mask in its crop
(``data.hand_mask``). Stage 2 is render-and-compare: with the geometry fixed, it fits the
skin texture coefficients and S2HAND's 11-number light so that the rendered hand matches the
photo inside the hand. Every per-hand loss comes from ``monohand.losses``.

The rooms: ``records`` (inputs, settings, starts, results), ``params`` (how a hand is
parametrised and stepped), ``placement`` (the PnP start), ``objective`` (the terms and their
weighted total), ``render_compare`` (the silhouette and appearance stages), ``hands``
(``fit_hands``: the stages in order).
"""

from .hands import fit_hands
from .objective import (
    HAND_SIZES,
    PALM_LENGTH_PER_WIDTH,
    WEIGHTED_TERMS,
    fit_terms,
    image_hand_size,
    relative_confidence,
    weighted_total,
)
from .params import PoseParams, param_groups, transl_of, uvz_of
from .placement import initial_pose
from .records import FitConfig, FitInit, FitInputs, FitResult, hand_of
from .render_compare import fit_appearance, fit_silhouette, mask_distances

__all__ = [
    "HAND_SIZES", "PALM_LENGTH_PER_WIDTH", "WEIGHTED_TERMS", "FitConfig", "FitInit", "FitInputs",
    "FitResult", "PoseParams", "fit_appearance", "fit_hands", "fit_silhouette", "fit_terms",
    "hand_of", "image_hand_size", "initial_pose", "mask_distances", "param_groups",
    "relative_confidence", "transl_of", "uvz_of", "weighted_total",
]  # fmt: skip
