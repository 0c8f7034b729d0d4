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
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace

import cv2
import numpy as np
import torch
from torch import Tensor

from . import losses as L
from .geometry import kabsch
from .models.base import HandModel, HandOutput, has_texture_space
from .optim import FitAdam, cosine_schedule
from .render import Renderer
from .render.camera import project, project_affine
from .render.rasterize import silhouette
from .render.renderer import take_pixels
from .render.shade import default_light, sample_texture


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


def initial_pose(
    model: HandModel, inputs: FitInputs, pose: Tensor, use_world: bool = True
) -> tuple[Tensor, Tensor, Tensor]:
    """Global rotation (B, 3), translation (B, 3) and 3D keypoint targets (B, 21, 3) from PnP.

    ``pose``: (B, P) the model's hand pose to start from. The object points are MediaPipe's
    world landmarks when given and ``use_world`` (they carry the observed pose), else the
    model's joints at ``pose``; PnP places them in the camera (the returned targets), and a
    rotation aligns the model's joints to them.
    """
    b = inputs.keypoints.shape[0]
    with torch.no_grad():
        j0 = model(hand_pose=pose).joints.double().numpy()
    go, tr, targets = np.zeros((b, 3)), np.zeros((b, 3)), np.zeros((b, 21, 3))
    for i in range(b):  # initialisation only: OpenCV's PnP per hand
        world = inputs.world is not None and use_world
        # contiguous: OpenCV refuses a strided view (NIMBLE's batched joints are one)
        obj = np.ascontiguousarray(inputs.world[i].double().numpy() if world else j0[i])
        img = np.ascontiguousarray(inputs.keypoints[i].double().numpy())
        K = inputs.K[i].double().numpy()
        # PnP on the joints found (confidence > 0): a detector's missing joints (OpenPose's)
        # sit at a made-up place; all of them where fewer than 6 were found
        seen = (inputs.confidence[i] > 0).numpy()
        use = seen if seen.sum() >= 6 else np.ones(len(img), bool)
        o, m = np.ascontiguousarray(obj[use]), np.ascontiguousarray(img[use])
        ok, rvec, tvec = cv2.solvePnP(o, m, K, None, flags=cv2.SOLVEPNP_SQPNP)
        if not ok:
            ok, rvec, tvec = cv2.solvePnP(o, m, K, None, flags=cv2.SOLVEPNP_EPNP)
        rc = cv2.Rodrigues(rvec)[0]
        cam = obj @ rc.T + tvec.ravel()  # joints in the camera frame
        if cam[:, 2].min() <= 0:  # behind the camera: fall back to a frontal guess
            scale = np.linalg.norm(img[9] - img[0]) / max(np.linalg.norm(obj[9] - obj[0]), 1e-6)
            z = K[0, 0] / max(scale, 1e-6)
            cam = obj - obj.mean(0) + np.linalg.inv(K) @ np.r_[img.mean(0), 1.0] * z
        targets[i] = cam
        r = kabsch(torch.as_tensor(j0[i])[None], torch.as_tensor(cam)[None])[0].numpy()
        go[i] = cv2.Rodrigues(r)[0].ravel()
        tr[i] = cam.mean(0) - (j0[i] @ r.T).mean(0)
    dt = inputs.keypoints.dtype
    return (
        torch.as_tensor(go, dtype=dt),
        torch.as_tensor(tr, dtype=dt),
        torch.as_tensor(targets, dtype=dt),
    )


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


def fit_hands(
    model: HandModel,
    inputs: FitInputs,
    cfg: FitConfig | None = None,
    init: FitInit | None = None,
) -> FitResult:
    """Fit ``model`` (OpenHand, MANO or NIMBLE) to B hands (see the module doc).

    ``init``: start from these parameters instead of PnP (no 3D-landmark stage for this
    start, so ``cfg.iters_3d`` is ignored unless ``init.pnp_start``); a video's frames are
    fitted this way from the previous one, the hybrid from the network's prediction.
    """
    cfg = cfg or FitConfig()
    if cfg.world_frame not in ("camera", "free"):
        raise ValueError(f"world_frame must be 'camera' or 'free', got {cfg.world_frame!r}")
    if cfg.hand_size not in HAND_SIZES:
        raise ValueError(f"hand_size must be one of {HAND_SIZES}, got {cfg.hand_size!r}")
    if cfg.iters < 0:
        raise ValueError(f"FitConfig.iters must be >= 0 (0: the start as it is), got {cfg.iters}")
    b = inputs.keypoints.shape[0]
    dt = inputs.keypoints.dtype
    inputs = replace(inputs, confidence=relative_confidence(inputs.confidence))
    params = PoseParams(model, b, dt)
    # Every start is fitted side by side in one batch: (pose params, orientation,
    # translation, shape, 3D targets of the first steps or None), (B, ...) each.
    starts: list[tuple[Tensor, Tensor, Tensor, Tensor, Tensor | None]] = []
    if init is not None:
        starts.append((init.pose_params.to(dt), init.global_orient.to(dt),
                       init.transl.to(dt), init.betas.to(dt), None))  # fmt: skip
    if init is None or init.pnp_start:
        zero_shape = torch.zeros(b, model.num_shape_params, dtype=dt)
        pose0 = params.hand_pose(params.init)
        go_w, tr_w, t_w = initial_pose(model, inputs, pose0)
        starts.append((params.init, go_w, tr_w, zero_shape, t_w))
        if cfg.two_starts and inputs.world is not None:
            go_m, tr_m, t_m = initial_pose(model, inputs, pose0, use_world=False)
            starts.append((params.init, go_m, tr_m, zero_shape, t_m))
    n = len(starts)
    angles, go0, tr0, betas0 = (torch.cat([s[k] for s in starts]) for k in range(4))
    with_3d = torch.cat([torch.full((b,), s[4] is not None) for s in starts])
    targets = None
    if with_3d.any():
        targets = torch.cat([s[4] if s[4] is not None else torch.zeros(b, 21, 3, dtype=dt)
                             for s in starts])  # fmt: skip
    iters_3d = cfg.iters_3d if targets is not None else 0
    prior = None
    if init is not None and init.prior:
        prior = (init.pose_params.to(dt).repeat(n, *[1] * (init.pose_params.dim() - 1)),
                 init.betas.to(dt).repeat(n, 1))  # fmt: skip
    full_inputs = inputs
    if n > 1:
        known = (inputs.keypoints, inputs.confidence, inputs.K, inputs.world)
        inputs = FitInputs(*(None if t is None else torch.cat([t] * n) for t in known))
        params = PoseParams(model, n * b, dt)
    go = go0.clone().requires_grad_()
    uvz = uvz_of(tr0).requires_grad_()
    angles = angles.clone().requires_grad_()
    fix_shape = init is not None and init.fix_shape
    betas = betas0.clone().requires_grad_(not fix_shape)
    groups = param_groups(cfg.lr, go, angles, betas, uvz, fix_shape)
    # Adam's fused kernel: one call per group and step, half the time of its default here.
    opt = FitAdam(groups)
    schedule = cosine_schedule(opt, cfg.iters, eta_min=cfg.lr * 0.05)
    kp, conf = inputs.keypoints, inputs.confidence
    terms: dict[str, Tensor] = {}
    all_3d = bool(with_3d.all())
    for it in range(cfg.iters):
        opt.zero_grad()
        stage_3d = it < iters_3d
        joints, terms = fit_terms(model, params, inputs, cfg, go, angles, betas, uvz, prior,
                                  mesh=False, keypoints_2d=not (stage_3d and all_3d))  # fmt: skip
        if stage_3d:
            # A well-posed start: 3D distance to the PnP-placed landmarks, in hand lengths,
            # in the 2D term's place (its key and weight). Only then do the 2D keypoints take
            # over (their depth is ambiguous).
            d3 = L.joints_3d_in_lengths(joints, targets)
            kp_term = d3 if all_3d else torch.where(with_3d, d3, terms["keypoints"])
            terms = {**terms, "keypoints": kp_term}
        total = weighted_total(terms, cfg)
        total.sum().backward()
        opt.step()
        schedule(it + 1)
    if cfg.iters == 0:  # no step: each start as it is, scored by the 2D objective
        with torch.no_grad():
            _, terms = fit_terms(model, params, inputs, cfg, go, angles, betas, uvz, prior,
                                 mesh=False)  # fmt: skip
            total = weighted_total(terms, cfg)
    if n > 1:  # keep, per hand, the start with the lower final objective
        with torch.no_grad():
            pick = total.detach().view(n, b).argmin(0) * b + torch.arange(b)
        go, angles, betas, uvz = (t.detach()[pick] for t in (go, angles, betas, uvz))
        terms = {k: v.detach()[pick] for k, v in terms.items()}
        inputs, params = full_inputs, PoseParams(model, b, dt)
        kp, conf = inputs.keypoints, inputs.confidence
    if cfg.silhouette_iters > 0 and inputs.mask is not None:
        go, angles, betas, uvz, terms = fit_silhouette(
            model, params, inputs, cfg, (go, angles, betas, uvz),
            None if prior is None else (prior[0][:b], prior[1][:b]), fix_shape)  # fmt: skip
    with torch.no_grad():
        tr = transl_of(uvz)
        hand_pose = params.hand_pose(angles)
        out = model(global_orient=go, hand_pose=hand_pose, betas=betas, transl=tr)
        err = (project(out.joints, inputs.K) - kp).norm(dim=-1)
        reproj = (conf * err).sum(1) / conf.sum(1).clamp_min(1e-6)
    texture = torch.zeros(b, model.num_texture_params, dtype=dt)
    light = default_light(b, dt)
    has_albedo = has_texture_space(model)  # a texture space (OpenHand)
    if init is not None and init.texture is not None:
        texture = init.texture.to(dt)
        light = init.light.to(dt) if init.light is not None else light
    elif has_albedo and inputs.crop is not None and cfg.photo_iters > 0:
        texture, light, terms["photometric"] = fit_appearance(model, out, inputs, cfg)
    with torch.no_grad():
        final = model(
            global_orient=go,
            hand_pose=hand_pose,
            betas=betas,
            transl=tr,
            texture=texture if has_albedo else None,
        )
    return FitResult(go.detach(), hand_pose.detach(), angles.detach(), betas.detach(), tr.detach(),
                     texture, light, final.detach(), reproj,
                     {k: v.detach() for k, v in terms.items()})  # fmt: skip


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


def mask_distances(mask: Tensor, scale: Tensor) -> tuple[Tensor, Tensor]:
    """(B, h, w) masks in {0, 1} -> (inside, outside) distance maps (B, h, w), in units of
    ``scale`` (B,) pixels (``losses.silhouette_distance``'s inputs)."""
    m = mask.detach().cpu().numpy() > 0.5
    far = float(sum(m.shape[1:]))  # beyond any distance in the image

    def edt(x: np.ndarray) -> np.ndarray:  # exact Euclidean distance to the nearest 0
        # (OpenCV gives ~1.8e19 where the image has no 0 at all: a mask that fills its crop)
        d = cv2.distanceTransform(x.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        return np.minimum(d, far)

    inside, outside = np.stack([edt(x) for x in m]), np.stack([edt(~x) for x in m])
    to = functools.partial(torch.as_tensor, dtype=mask.dtype, device=mask.device)
    s = scale.to(mask)[:, None, None]
    return to(inside) / s, to(outside) / s


def fit_silhouette(
    model: HandModel,
    params: PoseParams,
    inputs: FitInputs,
    cfg: FitConfig,
    start: tuple[Tensor, Tensor, Tensor, Tensor],
    prior: tuple[Tensor, Tensor] | None,
    fix_shape: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor, dict[str, Tensor]]:
    """The silhouette stage: ``cfg.silhouette_iters`` steps of stage 1's objective plus
    ``w_silhouette`` times the silhouette's distance to ``inputs.mask`` in the crops, from
    ``start`` = (orientation, pose parameters, shape, uvz): each hand's start already
    chosen, so the silhouette plays no part in that choice. Returns the same four (detached)
    and the terms (B,) each of the last step (before its update, as stage 1's)."""
    b, h, w = inputs.mask.shape
    if b != inputs.keypoints.shape[0] or inputs.crop_K is None:
        raise ValueError(f"FitInputs.mask: (B, h, w) for the B = {inputs.keypoints.shape[0]} "
                         f"hands, with their crops' crop_K; got {tuple(inputs.mask.shape)}, "
                         f"crop_K {'missing' if inputs.crop_K is None else 'given'}")  # fmt: skip
    for name in ("mask", "mask_weight"):
        x = getattr(inputs, name)
        if x is not None and (x.shape != inputs.mask.shape or not torch.isfinite(x).all()):
            raise ValueError(f"FitInputs.{name}: expected finite values, shape "
                             f"{tuple(inputs.mask.shape)}; got {tuple(x.shape)}")  # fmt: skip
    ren = _renderer(h, w)
    faces = model.faces
    topology = ren.topology(faces, None)
    kp_crop = project_affine(inputs.keypoints, inputs.crop_K, inputs.K)
    size = image_hand_size(kp_crop, cfg.hand_size, 4.0)
    inside, outside = mask_distances(inputs.mask, size)
    weight = inputs.mask_weight if inputs.mask_weight is not None else torch.ones_like(inside)
    go, angles, uvz = (t.detach().clone().requires_grad_() for t in (start[0], start[1], start[3]))
    betas = start[2].detach().clone().requires_grad_(not fix_shape)
    groups = param_groups(cfg.silhouette_lr, go, angles, betas, uvz, fix_shape)
    opt = FitAdam(groups)
    terms: dict[str, Tensor] = {}
    for _ in range(cfg.silhouette_iters):
        opt.zero_grad()
        out, terms = fit_terms(model, params, inputs, cfg, go, angles, betas, uvz, prior)
        alpha = silhouette(out.vertices, faces, inputs.crop_K, (h, w), topology, ren.sigma,
                           ren.band)  # fmt: skip
        terms["silhouette"] = L.silhouette_distance(alpha, inside, outside, weight)
        weighted_total(terms, cfg).sum().backward()
        opt.step()
    terms = {k: v.detach() for k, v in terms.items()}
    return go.detach(), angles.detach(), betas.detach(), uvz.detach(), terms


def fit_appearance(model: HandModel, geometry: HandOutput, inputs: FitInputs,
                   cfg: FitConfig) -> tuple[Tensor, Tensor, Tensor]:  # fmt: skip
    """Stage 2: texture coefficients (B, T) and light (B, 11) by render-and-compare on the
    crops, geometry fixed. Returns (texture, light, final photometric loss (B,))."""
    b, h, w = inputs.crop.shape[:3]
    dt = inputs.crop.dtype
    ren = _renderer(h, w)
    verts = geometry.vertices.detach()
    texture = torch.zeros(b, model.num_texture_params, dtype=dt, requires_grad=True)
    ref = default_light(b, dt)
    light = ref.clone().requires_grad_()
    opt = FitAdam([{"params": [texture, light], "lr": cfg.photo_lr}])
    with torch.no_grad():  # the geometry is fixed: rasterise once, re-shade every step
        g = ren.gbuffer(verts, model.faces, inputs.crop_K, model.uvs, model.face_uvs)
        mask = g.fragments.mask.to(dt)
        # Stay off the contour: its pixels mix hand and background.
        mask = -torch.nn.functional.max_pool2d(-mask[:, None], 5, 1, 2)[:, 0]
        # Only the pixels some hand covers: elsewhere every render is background and every
        # mask 0 (a third of a crop the hand fills; the loss is the same).
        pixels = (g.fragments.alpha > 0).any(0).flatten().nonzero()[:, 0]
        g = g.take(pixels)
        mask, crop = take_pixels(mask, pixels), take_pixels(inputs.crop, pixels)
    albedo = _pixel_albedo(model, g.uv)
    loss = torch.zeros(b, dtype=dt)
    for _ in range(cfg.photo_iters):
        opt.zero_grad()
        r = ren.compose(g, albedo(texture), light)
        loss = L.photometric(r.rgb, crop, mask)
        total = (
            loss
            + cfg.w_texture * L.texture_regulariser(texture)
            + cfg.w_light * L.light_regulariser(light, ref)
        )
        total.sum().backward()
        opt.step()
    return texture.detach(), light.detach(), loss.detach()


def _pixel_albedo(model: HandModel, uv: Tensor):
    """texture (B, T) -> the albedo seen at each pixel (B, H, W, 3), for the UVs (B, H, W, 2)
    of a fixed rasterisation. A linear texture space (OpenHand's mean + basis) is sampled
    at the pixels once, so a step costs one small product instead of decoding and sampling
    the whole map (a third of the appearance stage's time); it clamps to [0, 1] after the
    bilinear lookup instead of before. Other models decode their map every step."""
    mean, basis = getattr(model, "texture_mean", None), getattr(model, "texture_basis", None)
    if mean is None or basis is None:
        return lambda texture: sample_texture(model.albedo(texture)[0], uv)
    n_t, h, w, _ = basis.shape
    b, hh, ww = uv.shape[:3]
    maps = torch.cat([mean[None], basis]).permute(1, 2, 0, 3).reshape(1, h, w, -1)
    with torch.no_grad():
        px = sample_texture(maps.to(uv).expand(b, h, w, -1), uv)  # (B, H, W, 3 (1 + T))
        px = px.view(b, hh * ww, 1 + n_t, 3).permute(0, 2, 1, 3).reshape(b, 1 + n_t, -1)
    px_mean, px_basis = px[:, :1], px[:, 1:]

    def albedo(texture: Tensor) -> Tensor:
        flat = torch.baddbmm(px_mean, texture[:, None, :].to(px), px_basis)
        return flat.view(b, hh, ww, 3).clamp(0, 1)

    return albedo


@functools.lru_cache(maxsize=4)
def _renderer(h: int, w: int) -> Renderer:
    """One renderer per crop size, so its mesh topology is computed once per model."""
    return Renderer((h, w))


def _pca_std(model: HandModel) -> np.ndarray:
    """Standard deviations of the PCA pose coefficients."""
    return np.asarray(getattr(model, "pose_pca_std", np.ones(len(model.data.hands_components))))
