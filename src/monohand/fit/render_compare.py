"""The fit's render-and-compare stages: the silhouette stage (the keypoint objective plus the
rendered outline's distance to the hand's mask, ``fit_silhouette``, ``mask_distances``) and
the appearance stage (texture and light against the crop's pixels, geometry fixed,
``fit_appearance``)."""

from __future__ import annotations

import functools

import cv2
import numpy as np
import torch
from torch import Tensor

from .. import losses as L
from ..models.base import HandModel, HandOutput
from ..optim import FitAdam
from ..render import Renderer
from ..render.camera import project_affine
from ..render.rasterize import silhouette
from ..render.renderer import take_pixels
from ..render.shade import default_light, sample_texture
from .objective import fit_terms, image_hand_size, weighted_total
from .params import PoseParams, param_groups
from .records import FitConfig, FitInputs


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
