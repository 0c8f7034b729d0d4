"""The fit's records: what it is given (``FitInputs``), its settings (``FitConfig``), a start
to fit from (``FitInit``) and what it returns (``FitResult``); ``hand_of`` takes one hand
of a batch of them."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch
from torch import Tensor

from ..models.base import HandOutput


@dataclass
class FitInputs:
    """What is known about B hands of one side.

    Attributes:
        keypoints: (B, 21, 2) detected keypoints, pixels of the image of ``K``.
        confidence: (B, 21) per-joint confidences in [0, 1] (``methods.fit_inputs``
            gives them relative to each hand's best joint, the only way the fit uses them).
        K: (B, 3, 3) intrinsics of that image.
        world: (B, 21, 3) MediaPipe's metric landmarks (hand-centred, in roughly the camera's
            axes: 5-25 degrees off, docs/DESIGN.md), or None.
        crop: (B, h, w, 3) RGB crops around the hands in [0, 1] for stage 2, or None.
        crop_K: (B, 3, 3) intrinsics of the crops.
        mask: (B, h, w) the hands' masks in the crops (``data.hand_mask``) in {0, 1} for
            the silhouette stage, or None; mask_weight: (B, h, w) where to believe them.
    """

    keypoints: Tensor
    confidence: Tensor
    K: Tensor
    world: Tensor | None = None
    crop: Tensor | None = None
    crop_K: Tensor | None = None
    mask: Tensor | None = None
    mask_weight: Tensor | None = None

    def __post_init__(self) -> None:
        _check_inputs(self)


# Each field's shape after the batch axis (None: any size).
_SHAPES = {"keypoints": (21, 2), "confidence": (21,), "K": (3, 3), "world": (21, 3),
           "crop": (None, None, 3), "crop_K": (3, 3), "mask": (None, None),
           "mask_weight": (None, None)}  # fmt: skip


def _check_inputs(x: FitInputs) -> None:
    """``FitInputs``' fields checked when made, each error naming its field: torch tensors
    of floats with the shapes above and one batch size; the cameras and landmarks in the
    keypoints' dtype; keypoints and K finite, keypoints in pixels (a hand spanning under 2
    pixels within [-1.5, 1.5] was given normalised coordinates)."""
    b = None
    for name, tail in _SHAPES.items():
        t = getattr(x, name)
        if t is None:
            continue
        if not isinstance(t, Tensor):
            raise TypeError(f"FitInputs.{name} must be a torch tensor, got a "
                            f"{type(t).__name__} (torch.as_tensor(x, dtype=torch.float32) "
                            f"converts one)")  # fmt: skip
        want = "(B, " + ", ".join("*" if n is None else str(n) for n in tail) + ")"
        if t.ndim != 1 + len(tail) or any(n is not None and n != m
                                          for n, m in zip(tail, t.shape[1:], strict=True)):
            hint = (" (one hand: add the batch axis, x[None])"
                    if tuple(t.shape) == tuple(n for n in tail) else "")  # fmt: skip
            raise ValueError(f"FitInputs.{name} must be {want}, got {tuple(t.shape)}{hint}")
        if not torch.is_floating_point(t):
            raise TypeError(f"FitInputs.{name} must be floating-point, got {t.dtype}")
        if b is None:
            b = len(t)
        elif len(t) != b:
            raise ValueError(f"FitInputs.{name} has {len(t)} hands, keypoints {b}")
    for name in ("K", "world", "crop_K"):
        t = getattr(x, name)
        if t is not None and t.dtype != x.keypoints.dtype:
            raise TypeError(f"FitInputs.{name} is {t.dtype} but keypoints are "
                            f"{x.keypoints.dtype}: give them one dtype")  # fmt: skip
    for name in ("keypoints", "K"):
        if not torch.isfinite(getattr(x, name)).all():
            raise ValueError(f"FitInputs.{name} is not finite")
    # Normalised coordinates: a hand within [-1.5, 1.5] spanning under 2 pixels (a tiny hand
    # far from the image's corner is a detector's, and stays the fit's to try).
    span = (x.keypoints.amax(1) - x.keypoints.amin(1)).amax(-1)
    unit = x.keypoints.abs().flatten(1).amax(1) <= 1.5
    if (bad := (span < 2.0) & unit).any():
        i = int(bad.nonzero()[0, 0])
        raise ValueError(f"FitInputs.keypoints: hand {i} spans {float(span[i]):.3g} pixels "
                         f"within [-1.5, 1.5]: normalised coordinates? The fit needs pixels of "
                         f"the image of K")


@dataclass
class FitConfig:
    """The fit's steps and the weights of its objective (``weighted_total``)."""

    # Chosen on synthetic renders with bench/bench_fit.py, never on real photos (but for the
    # silhouette stage's, below: on real validation frames, for the hybrid): 80 steps
    # (as accurate as 120 there, a third faster), the rotation-free world term and w_pca 1e-2
    # (together 16.7 -> 15.0 mm PA-MPJPE on the renders; docs/RESULTS.md has the table). 60 steps
    # at lr 0.05 scored as well on the renders but left one of the touching-hands test
    # scenes 7 cm off in relative depth: fewer steps are not safe.
    iters: int = 80  # Adam steps of the keypoint stage (0: the start as it is, scored)
    iters_3d: int = 40  # first steps: match the PnP-placed 3D landmarks (articulation, pose)
    # Adam's step for rotation and pose parameters; the translation's (x/z, y/z, log z) is a
    # tenth of it, the shape's twice it; each cosine-annealed over ``iters`` towards one
    # floor, a twentieth of ``lr``.
    lr: float = 0.04
    # The weights of the objective's terms (``WEIGHTED_TERMS``; each term is (B,) per hand):
    w_keypoints: float = 1.0  # 2D keypoints: Geman-McClure of residuals in hand sizes
    w_world: float = 0.5  # MediaPipe's world landmarks, normalised by a bone (``world_frame``)
    w_limits: float = 1.0  # squared violation of OpenHand's joint limits, radians^2
    w_pca: float = 1e-2  # the pose prior: PCA Mahalanobis (or squared PCA coefficients)
    w_shape: float = 1e-3  # squared norm of the shape coefficients (each ~ N(0, 1))
    w_collision: float = 2e3  # fingers' bone spheres overlapping, metres^2
    # The appearance stage (OpenHand: texture and light against the crop's pixels, pose kept):
    photo_iters: int = 30  # its Adam steps (0: none)
    photo_lr: float = 0.08
    w_texture: float = 1e-3  # squared texture coefficients
    w_light: float = 1e-2  # the light's squared distance from the default light
    robust_sigma: float = 0.1  # the keypoint term's Geman-McClure scale, hand sizes
    # The hand's size in the image, the unit of the 2D residuals and of the silhouette
    # stage's distances (``image_hand_size``):
    # "length" (wrist to middle knuckle) or "palm" (the larger of it and the palm's width,
    # which a hand pointing at the camera does not foreshorten). "palm" measured on
    # 2026-12-06 (docs/RESULTS.md, "A hand size that foreshortening does not shrink"): no
    # gain for lone hands on renders or real validation frames; touching hands use it
    # (``twohands.TogetherConfig.hand_size``).
    hand_size: str = "length"
    # MediaPipe's world landmarks compared "camera" (in the camera's orientation, as given)
    # or "free" (after the best rotation: articulation and proportions only; the 2D
    # keypoints and PnP set the orientation).
    world_frame: str = "free"
    # Also start from PnP on the model's own joints, not only on MediaPipe's world landmarks,
    # and keep per hand the start that ends with the lower objective (world landmarks with a
    # wrong depth profile can put PnP at half the true depth; the fits then stay there).
    two_starts: bool = True
    # The pull towards a start given as a prior (``FitInit.prior``: the hybrid's network
    # prediction), per squared radian of the pose parameters and per squared shape unit.
    w_prior_pose: float = 0.1
    w_prior_shape: float = 1e-2
    # Silhouette stage (after stage 1, before the appearance; where ``inputs.mask`` is given):
    # steps of the whole objective plus the rendered outline's distance to the hand's mask;
    # 0: none. Chosen on 2026-12-05 for the hybrid on real validation photos (10.16 -> 9.80 mm
    # PA-MPJPE, ``methods.hybrid_fit_config``); here, on the renders, 15.08 -> 14.56 / 14.70
    # mm (v1 / v2). Not for hands that touch (``reconstruct_image``: measured worse).
    silhouette_iters: int = 10
    silhouette_lr: float = 0.01
    w_silhouette: float = 3.0


@dataclass
class FitInit:
    """A start: the parameters of a previous fit (a video's last frame, as in ``FitResult``)
    or of a network's prediction (``hybrid``).

    ``fix_shape`` holds ``betas`` constant (a shape shared across a sequence). ``prior`` adds
    the squared distance of the pose parameters and the shape to this start as a prior
    (``FitConfig.w_prior_pose`` / ``w_prior_shape``). ``pnp_start``: also start from PnP (as
    without a start, both of the fit's PnP starts with ``two_starts``) and keep per hand the
    start that ends with the lower objective."""

    global_orient: Tensor  # (B, 3)
    pose_params: Tensor  # as optimised (see ``PoseParams``)
    betas: Tensor  # (B, S)
    transl: Tensor  # (B, 3)
    texture: Tensor | None = None  # (B, T): reused, stage 2 is skipped when given
    light: Tensor | None = None  # (B, 11)
    fix_shape: bool = False
    prior: bool = False
    pnp_start: bool = False

    @classmethod
    def from_result(cls, r: FitResult, fix_shape: bool = False) -> FitInit:
        return cls(r.global_orient, r.pose_params, r.betas, r.transl, r.texture, r.light,
                   fix_shape)  # fmt: skip


@dataclass
class FitResult:
    """Fitted parameters (detached) of B hands and the model's output for them."""

    global_orient: Tensor  # (B, 3) axis-angle, radians
    hand_pose: Tensor  # (B, model.num_pose_params): the model's hand_pose input
    pose_params: Tensor  # as optimised: anatomical angles, PCA coefficients or axis-angle
    betas: Tensor  # (B, model.num_shape_params)
    transl: Tensor  # (B, 3) metres, camera frame
    texture: Tensor  # (B, model.num_texture_params): 0 where not fitted
    light: Tensor  # (B, 11): S2HAND's light (``render.shade``)
    output: HandOutput
    reprojection_px: Tensor  # (B,) mean confidence-weighted 2D error of the final geometry
    # (B,) each: the terms at the last step's parameters, before its update (the objective
    # of the stage that ran last), and "photometric" where the appearance stage ran
    losses: dict[str, Tensor] = field(default_factory=dict)


def hand_of(obj, k: int):
    """Hand ``k`` of a batched ``FitInputs`` / ``FitResult`` / ``FitInit`` (or None), as a
    batch of one: every per-hand tensor (fields, dict values, the model output's) sliced to
    [k:k+1]; a model output's shared ``faces`` stay whole."""
    if obj is None:
        return None

    def cut(name: str, v):
        if isinstance(v, Tensor):
            return v if name == "faces" else v[k : k + 1]
        if isinstance(v, dict):
            return {n: cut(n, x) for n, x in v.items()}
        if isinstance(v, HandOutput):
            return replace(v, **{n: cut(n, x) for n, x in vars(v).items()})
        return v

    return replace(obj, **{n: cut(n, v) for n, v in vars(obj).items()})
