"""Every loss of fitting and training, each a small documented function.

Shapes: B batch, J = 21 keypoints (FreiHAND order) unless stated. Losses return (B,) per
sample unless stated, so callers can weight, mask and average as they need.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .geometry import kabsch_centred
from .models.collision import finger_collision  # noqa: F401  (a loss; lives with collision)
from .models.joints import FREIHAND_PARENTS
from .models.pose_space import PoseSpace


def gmof(x: Tensor, sigma: float) -> Tensor:
    """Geman-McClure penalty of squared residuals x (any shape): sigma^2 x / (sigma^2 + x)."""
    return sigma**2 * x / (sigma**2 + x)


def keypoints_2d(
    pred: Tensor, target: Tensor, conf: Tensor, scale: Tensor, sigma: float = 0.1
) -> Tensor:
    """Confidence-weighted robust 2D keypoint loss.

    Args:
        pred: (B, J, 2) projected keypoints, pixels.
        target: (B, J, 2) detected keypoints, pixels.
        conf: (B, J) detection confidences in [0, 1] (0 = ignore).
        scale: (B,) hand size in pixels; residuals are measured in units of it, so the loss
            does not depend on the image resolution.
        sigma: robustness scale, in hand sizes.
    Returns:
        (B,) confidence-weighted mean of the Geman-McClure penalty.
    """
    r2 = ((pred - target) ** 2).sum(-1) / scale[:, None] ** 2
    return (conf * gmof(r2, sigma)).sum(1) / conf.sum(1).clamp_min(1e-6)


def joints_3d_in_lengths(pred: Tensor, target: Tensor) -> Tensor:
    """Mean squared 3D distance of the joints to targets, in the target's hand lengths
    (wrist to middle knuckle, at least 1 mm): the fit's first steps towards PnP-placed 3D
    landmarks, before the 2D keypoints take over. (B, 21, 3) x2 metres -> (B,)."""
    length = (target[:, 9] - target[:, 0]).norm(dim=-1).clamp_min(1e-3)
    return ((pred - target) ** 2).sum(-1).mean(1) / length**2


def normalised_joints(joints: Tensor, root: int = 0, ref: tuple[int, int] = (0, 9)) -> Tensor:
    """Root-relative joints divided by a reference bone length (wrist to middle MCP): the
    shape of the pose without its position and scale. (B, J, 3) -> (B, J, 3)."""
    rel = joints - joints[:, root : root + 1]
    length = (joints[:, ref[1]] - joints[:, ref[0]]).norm(dim=-1).clamp_min(1e-8)
    return rel / length[:, None, None]


def joints_3d_norm(pred: Tensor, target: Tensor, weight: Tensor | None = None) -> Tensor:
    """3D joint **norm** loss (the seed's "2D + 3D norm"): squared distance between
    ``normalised_joints`` of prediction and target, per sample, in squared hand lengths
    (wrist to middle knuckle). (B, J, 3) x2, ``weight`` (B, J) or None -> (B,)."""
    d = ((normalised_joints(pred) - normalised_joints(target)) ** 2).sum(-1)
    if weight is not None:
        return (weight * d).sum(1) / weight.sum(1).clamp_min(1e-6)
    return d.mean(1)


def joints_3d_norm_rotfree(pred: Tensor, target: Tensor, weight: Tensor | None = None) -> Tensor:
    """``joints_3d_norm`` after moving the target onto the prediction by a rotation and a
    translation (weighted Kabsch; the scale is already removed):
    only the articulation and proportions are compared, not the orientation, so a target
    whose frame is only roughly camera-aligned (MediaPipe's world landmarks) does not fight
    the 2D keypoints over the global rotation. The rotation is a detached closed form: at
    the optimum its derivative does not change the loss's gradient. (B, J, 3) x2 -> (B,)."""
    p, t = normalised_joints(pred), normalised_joints(target)
    w = torch.ones_like(p[..., 0]) if weight is None else weight
    total = w.sum(1, keepdim=True).clamp_min(1e-6)
    wn = (w / total)[..., None]
    pc = p - (wn * p).sum(1, keepdim=True)
    tc = t - (wn * t).sum(1, keepdim=True)
    with torch.no_grad():
        rot = kabsch_centred(tc, pc, wn)  # p_c ~ rot @ t_c
    d2 = ((pc - tc @ rot.transpose(1, 2)) ** 2).sum(-1)
    return (w * d2).sum(1) / total[:, 0]


def joints_3d(pred: Tensor, target: Tensor, root: int | None = 0) -> Tensor:
    """3D joint loss, metres squared: relative to joint ``root`` (the wrist), or in the
    camera frame with ``root=None`` (S2HAND's ``joint_3d``). (B, J, 3) x2 -> (B,)."""
    if root is None:
        return ((pred - target) ** 2).sum(-1).mean(1)
    p = pred - pred[:, root : root + 1]
    t = target - target[:, root : root + 1]
    return ((p - t) ** 2).sum(-1).mean(1)


def bone_directions_2d(joints2d: Tensor) -> Tensor:
    """Unit 2D bone vectors (B, 20, 2) from (B, 21, 2), parents as in FreiHAND order."""
    child = torch.arange(1, 21)
    parent = torch.tensor(FREIHAND_PARENTS[1:])
    v = joints2d[:, child] - joints2d[:, parent]
    return v / v.norm(dim=-1, keepdim=True).clamp_min(1e-6)


def bone_orientation_2d(pred: Tensor, target: Tensor, conf: Tensor | None = None) -> Tensor:
    """S2HAND's bone-orientation loss: squared difference of unit 2D bone directions,
    optionally weighted by the confidence of each bone's two joints (a weighted mean over the
    bones; S2HAND's is a plain one). (B, 21, 2) x2, ``conf`` (B, 21) or None -> (B,)."""
    d = ((bone_directions_2d(pred) - bone_directions_2d(target)) ** 2).sum(-1)
    if conf is None:
        return d.mean(1)
    child = torch.arange(1, 21)
    parent = torch.tensor(FREIHAND_PARENTS[1:])
    w = conf[:, child] * conf[:, parent]
    return (w * d).sum(1) / w.sum(1).clamp_min(1e-6)


def pose_limits(angles: Tensor, space: PoseSpace) -> Tensor:
    """Squared violation of the anatomical limits, radians^2. (B, 15, 3) -> (B,)."""
    return (space.limit_violation(angles) ** 2).sum((1, 2))


def pose_pca_prior(hand_pose: Tensor, mean: Tensor, components: Tensor, std: Tensor) -> Tensor:
    """Mahalanobis norm of an axis-angle hand pose in the model's PCA pose space.

    Args:
        hand_pose: (B, 45); mean: (45,); components: (C, 45) orthonormal rows; std: (C,).
    Returns:
        (B,) sum of squared standardised coefficients / C.
    """
    c = (hand_pose - mean) @ components.T / std.clamp_min(1e-6)
    return (c**2).mean(1)


def parameter_prior(params: Tensor, target: Tensor) -> Tensor:
    """Mean squared difference of parameters to a target (a network's prediction as the
    fit's prior), per sample. (B, ...) x2 -> (B,)."""
    return ((params - target) ** 2).flatten(1).mean(1)


def pose_l2_prior(hand_pose: Tensor) -> Tensor:
    """Squared norm of the hand pose (axis-angle from the model's zero pose, radians^2, or
    NIMBLE's PCA coefficients): training's pose prior. (B, P) -> (B,)."""
    return (hand_pose**2).sum(1)


def shape_prior(betas: Tensor) -> Tensor:
    """Squared norm of the shape coefficients (betas ~ N(0, 1)). (B, S) -> (B,)."""
    return (betas**2).sum(1)


def silhouette(pred: Tensor, target: Tensor, weight: Tensor | None = None) -> Tensor:
    """Mean squared difference of silhouettes. (B, H, W) x2 -> (B,)."""
    d = (pred - target) ** 2
    if weight is not None:
        return (weight * d).sum((1, 2)) / weight.sum((1, 2)).clamp_min(1e-6)
    return d.mean((1, 2))


def silhouette_distance(alpha: Tensor, inside: Tensor, outside: Tensor, weight: Tensor) -> Tensor:
    """A silhouette's misfit to a mask, each pixel weighted by how far it is from being right.

    Rendered coverage on the mask's background costs the pixel's distance to the mask;
    missing coverage inside the mask costs its distance to the background. At a contour
    pixel (where the anti-aliased coverage has a gradient) the pull is the difference of
    the two: the further the contour from the mask's edge, the stronger, where a squared
    difference of silhouettes pulls alike at every distance.

    Args:
        alpha: (B, H, W) rendered coverage in [0, 1].
        inside: (B, H, W) for the mask's pixels, their distance to its background; 0 off it.
        outside: (B, H, W) for the background's pixels, their distance to the mask; 0 on it.
        weight: (B, H, W) per-pixel weights (0: unknown).
    Returns:
        (B,) the weighted sum over pixels, divided by the weighted mask area (so in the units
        of the distances: a mean misplacement of the mask's area).
    """
    cost = weight * (alpha * outside + (1 - alpha) * inside)
    area = (weight * (inside > 0)).sum((1, 2)).clamp_min(1.0)
    return cost.sum((1, 2)) / area


def photometric(rendered: Tensor, image: Tensor, mask: Tensor) -> Tensor:
    """S2HAND's photometric loss: L1 between rendered and observed RGB inside the rendered
    hand, summed over the three channels (so in [0, 3] for colours in [0, 1]).
    (B, H, W, 3), (B, H, W, 3), (B, H, W) -> (B,)."""
    d = (rendered - image).abs().sum(-1)
    return (mask * d).sum((1, 2)) / mask.sum((1, 2)).clamp_min(1.0)


def texture_regulariser(texture: Tensor) -> Tensor:
    """Squared norm of texture coefficients (N(0, 1) space). (B, T) -> (B,)."""
    return (texture**2).sum(1)


def light_regulariser(light: Tensor, reference: Tensor) -> Tensor:
    """Squared distance of the 11-number light from a reference light. (B, 11) -> (B,)."""
    return ((light - reference) ** 2).sum(1)


def integral_keypoints(pred: Tensor, target: Tensor, conf: Tensor, size: Tensor) -> Tensor:
    """The 2D branch's loss: confidence-weighted mean distance between its soft-argmax
    keypoints and the labels, in hand sizes. (B, 21, 2) x2, (B, 21), (B,) -> (B,)."""
    d = (pred - target).norm(dim=-1) / size[:, None]
    return (conf * d).sum(1) / conf.sum(1).clamp_min(1e-6)


def consistency_2d_3d(projected: Tensor, branch: Tensor, size: Tensor) -> Tensor:
    """S2HAND's 2D-3D consistency: the 3D joints' projections against the 2D branch's
    keypoints, mean distance in hand sizes; both sides get gradients. (B, 21, 2) x2 pixels,
    ``size`` (B,) pixels -> (B,)."""
    return ((projected - branch).norm(dim=-1) / size[:, None]).mean(1)


def mean_colour(albedo_colours: Tensor, image: Tensor, mask: Tensor) -> Tensor:
    """S2HAND's texture mean-colour term: the mean predicted skin colour (vertex albedo
    (B, V, 3)) against the photo's mean colour inside the hand mask ((B, H, W, 3), (B, H, W)),
    squared. -> (B,). Keeps the albedo near the skin's colour before lighting explains it."""
    seen = (image * mask[..., None]).sum((1, 2)) / mask.sum((1, 2)).clamp_min(1.0)[:, None]
    return ((albedo_colours.mean(1) - seen) ** 2).sum(-1)


def scale_prior(joints: Tensor, reference: float = 0.083) -> Tensor:
    """Squared log-ratio of the wrist-to-middle-MCP length to a typical adult's (8.3 cm):
    the image fixes size/depth only together, this keeps the hand's size plausible.
    (B, 21, 3) -> (B,)."""
    length = (joints[:, 9] - joints[:, 0]).norm(dim=-1).clamp_min(1e-6)
    return torch.log(length / reference) ** 2


def uniform_laplacian(vertices: Tensor, faces: Tensor) -> Tensor:
    """v_i minus the mean of its mesh neighbours. (B, V, 3), (F, 3) -> (B, V, 3)."""
    n = vertices.shape[1]
    e = torch.cat([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    e = torch.cat([e, e.flip(1)]).unique(dim=0)  # each undirected edge both ways, once
    deg = torch.zeros(n, dtype=vertices.dtype, device=vertices.device).index_add_(
        0, e[:, 0], torch.ones(len(e), dtype=vertices.dtype, device=vertices.device)
    )
    nb = torch.zeros_like(vertices).index_add_(1, e[:, 0], vertices[:, e[:, 1]])
    return vertices - nb / deg.clamp_min(1)[None, :, None]


def laplacian(vertices: Tensor, faces: Tensor, reference: Tensor) -> Tensor:
    """Mesh smoothness against a reference surface (the model's template): squared
    difference of the Laplacian vectors' lengths, which rotations (pose) leave unchanged.
    (B, V, 3), (F, 3), (V, 3) -> (B,)."""
    lv = uniform_laplacian(vertices, faces).norm(dim=-1)
    lr = uniform_laplacian(reference[None], faces).norm(dim=-1)
    return ((lv - lr) ** 2).mean(1)


# S2HAND's per-joint weights of its 2D keypoint loss: the wrist twice, the fingertips 1.5x.
S2HAND_JOINT_WEIGHTS = (2.0,) + (1.0, 1.0, 1.0, 1.5) * 5


def s2hand_keypoints(pred: Tensor, target: Tensor, conf: Tensor, weights: Tensor | None = None
                     ) -> Tensor:  # fmt: skip
    """S2HAND's 2D keypoint loss in pixels: per joint distance d, ``d^2 / 10`` below 5 px and
    ``d - 2.5`` above (smooth at 5), averaged with weights ``(conf * w)^2``.
    (B, 21, 2) x2, (B, 21), (21,) -> (B,)."""
    d = (pred - target).norm(dim=-1)
    r = torch.where(d < 5, d**2 / 10, d - 2.5)
    w = conf if weights is None else conf * weights
    return (r * w**2).sum(1) / (w**2).sum(1).clamp_min(1e-12)


def _gauss_window(size: int, sigma: float, dtype, device) -> Tensor:
    x = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


def ssim(a: Tensor, b: Tensor, size: int = 11, sigma: float = 1.5) -> Tensor:
    """Structural similarity of images in [0, 1] (Wang et al. 2004: Gaussian window 11,
    sigma 1.5, C1 = 0.01^2, C2 = 0.03^2), mean over pixels and channels.
    (B, H, W, C) x2 -> (B,). The photometric loss's SSIM option uses 1 - ssim."""
    x, y = a.permute(0, 3, 1, 2), b.permute(0, 3, 1, 2)
    c = x.shape[1]
    w = _gauss_window(size, sigma, x.dtype, x.device).expand(c, 1, size, size)

    def blur(t):
        return torch.nn.functional.conv2d(t, w, groups=c)  # "valid": no padding artefacts

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return s.mean((1, 2, 3))


def projected_scale(pred: Tensor, target: Tensor, conf: Tensor) -> Tensor:
    """Squared log-ratio of the 2D spread of projected keypoints to the labels' (the
    confidence-weighted RMS distance from their centroid). Robust 2D losses can be lowered by
    shrinking a badly posed hand towards the labels' centre, i.e. by pushing it away from the
    camera; this term holds its projected size. (B, 21, 2) x2, (B, 21) -> (B,); samples whose
    labels all have confidence 0 give 0."""
    w = conf / conf.sum(1, keepdim=True).clamp_min(1e-6)

    def spread(x):
        c = (w[..., None] * x).sum(1, keepdim=True)
        return ((w * ((x - c) ** 2).sum(-1)).sum(1)).clamp_min(1e-6).sqrt()

    known = (conf.sum(1) > 0).to(pred.dtype)
    return known * torch.log(spread(pred) / spread(target)) ** 2
