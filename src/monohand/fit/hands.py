"""``fit_hands``: the fit's stages in order, for B hands of one side and model (see the
package's doc)."""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import Tensor

from .. import losses as L
from ..models.base import HandModel, has_texture_space
from ..optim import FitAdam, cosine_schedule
from ..render.camera import project
from ..render.shade import default_light
from .objective import HAND_SIZES, fit_terms, relative_confidence, weighted_total
from .params import PoseParams, param_groups, transl_of, uvz_of
from .placement import initial_pose
from .records import FitConfig, FitInit, FitInputs, FitResult
from .render_compare import fit_appearance, fit_silhouette


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
