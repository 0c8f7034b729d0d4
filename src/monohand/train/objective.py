"""The training objective: every configured loss of a batch (2D keypoints, 3D, bones,
priors, and the render-and-compare terms), averaged over the batch."""

from __future__ import annotations

import torch
from torch import Tensor

from .. import losses as L
from ..config import TrainConfig
from ..models.base import HandModel
from ..render.camera import project


def compute_losses(
    cfg: TrainConfig, batch: dict, params, out, hand: HandModel | None = None,
    render: bool = True,
) -> dict[str, Tensor]:  # fmt: skip
    """Every active loss, averaged over the batch (scalars), each already multiplied by its
    ``cfg.loss`` weight: the loss trained is their sum. ``hand``: the model (for the
    photometric term's albedo). ``render``: whether the render-and-compare terms are on yet
    (``loss.render_from``).

    Items with ``has_3d`` = 0 (real photos, ``data.photos``) have the detector's keypoints
    in place of the ground truth's: the 2D and bone terms take them with their confidences
    (or, without ``loss.use_confidence``, where found), and the 3D terms leave them out."""
    lc = cfg.loss
    uv = project(out.joints, batch["K"])
    ones = torch.ones_like(batch["confidence"])
    # "Without confidence" still leaves out what the detector did not find (all 0).
    found = (batch["confidence"].amax(1, keepdim=True) > 0).to(ones.dtype).expand_as(ones)
    labelled = batch["confidence"] if lc.use_confidence else found
    has_3d = batch.get("has_3d")
    target = batch["joints2d"] if lc.keypoints_target == "gt" else batch["keypoints"]
    if lc.keypoints_target == "gt":
        conf = ones if has_3d is None else torch.where(has_3d[:, None] > 0, ones, labelled)
    else:
        conf = labelled
    size = (target[:, 9] - target[:, 0]).norm(dim=-1).clamp_min(4.0)
    jw = torch.tensor(L.S2HAND_JOINT_WEIGHTS, dtype=uv.dtype, device=uv.device)
    wconf = conf * jw if lc.joint_weights else conf
    if lc.keypoints_form == "s2hand":
        k2d = L.s2hand_keypoints(uv, target, wconf)
    else:
        k2d = L.keypoints_2d(uv, target, wconf, size, lc.keypoints_sigma)
    terms = {"keypoints_2d": lc.keypoints_2d * k2d.mean()}
    if lc.bone:
        bone_target = batch["joints2d"] if lc.bone_target == "gt" else batch["keypoints"]
        if lc.bone_confidence:
            bc = batch["confidence"]
        else:  # unweighted, but never towards missed detections
            bc = found if lc.bone_target == "labels" else None
            if bc is None and has_3d is not None:  # photos: their labels, where found
                bc = torch.where(has_3d[:, None] > 0, ones, found)
        terms["bone"] = lc.bone * L.bone_orientation_2d(uv, bone_target, bc).mean()

    def over_3d(per_item: Tensor) -> Tensor:  # the mean over the items with 3D labels
        if has_3d is None:
            return per_item.mean()
        return (per_item * has_3d).sum() / has_3d.sum().clamp_min(1.0)

    if lc.joints_3d:
        root = 0 if lc.joints_3d_frame == "root" else None
        terms["joints_3d"] = lc.joints_3d * over_3d(L.joints_3d(out.joints, batch["joints3d"],
                                                                root))  # fmt: skip
    if lc.joints_3d_norm:
        terms["joints_3d_norm"] = lc.joints_3d_norm * over_3d(
            L.joints_3d_norm(out.joints, batch["joints3d"])
        )
    if lc.shape_prior:
        terms["shape_prior"] = lc.shape_prior * L.shape_prior(params.betas).mean()
    if lc.pose_prior:
        terms["pose_prior"] = lc.pose_prior * L.pose_l2_prior(params.hand_pose).mean()
    if lc.pose_limits and hand is not None and hasattr(hand, "pose_space"):
        angles = hand.pose_space.from_axis_angle(params.hand_pose)
        terms["pose_limits"] = lc.pose_limits * L.pose_limits(angles, hand.pose_space).mean()
    if lc.collision:
        terms["collision"] = lc.collision * L.finger_collision(out.joints).mean()
    if render and (lc.silhouette or lc.photometric or lc.mean_colour or lc.ssim):
        terms.update(render_losses(cfg, batch, params, out, hand))
    if params.keypoints2d is not None and (lc.integral or lc.consistency):
        branch = params.keypoints2d
        if lc.integral:
            terms["integral"] = (
                lc.integral * L.integral_keypoints(branch, target, conf, size).mean()
            )
        if lc.consistency:
            # an item the detector missed has no labelled size (its zeros would make it
            # 4 px and its term dozens of times the others'): its projection's instead
            own = (uv[:, 9] - uv[:, 0]).norm(dim=-1).clamp_min(4.0).detach()
            csize = torch.where(conf.amax(1) > 0, size, own)
            terms["consistency"] = lc.consistency * L.consistency_2d_3d(uv, branch, csize).mean()
    if lc.scale_2d:
        terms["scale_2d"] = lc.scale_2d * L.projected_scale(uv, target, conf).mean()
    if lc.scale_prior:
        terms["scale_prior"] = lc.scale_prior * L.scale_prior(out.joints).mean()
    if lc.laplacian and hand is not None:
        ref = _reference_mesh(hand)
        terms["laplacian"] = lc.laplacian * L.laplacian(out.vertices, out.faces, ref).mean()
    return terms


def _reference_mesh(hand: HandModel) -> Tensor:
    """The model's mesh at zero parameters (cached): the Laplacian's reference surface."""
    ref = getattr(hand, "_laplacian_reference", None)
    if ref is None:
        with torch.no_grad():
            ref = hand().vertices[0]
        hand._laplacian_reference = ref
    return ref


def render_losses(cfg: TrainConfig, batch: dict, params, out, hand: HandModel | None):
    """Silhouette and photometric terms: render-and-compare at the input size, or, on stored
    features (no image), the silhouette alone at the stored masks' size and camera."""
    from ..models.base import has_texture_space
    from ..render import Renderer

    lc = cfg.loss
    if "image" not in batch:
        if "mask_K" not in batch:
            raise ValueError("render-and-compare on stored features needs the stored masks "
                             "(loss.silhouette with data.cache_views)")  # fmt: skip
        r = Renderer(tuple(batch["mask"].shape[-2:]))(out.vertices, out.faces, batch["mask_K"])
        return {"silhouette": lc.silhouette * L.silhouette(r.silhouette, batch["mask"]).mean()}
    h, w = batch["image"].shape[-2:]
    textured = hand is not None and has_texture_space(hand)
    kw = {}
    if textured:
        tex_map, vertex_albedo = hand.albedo(params.texture)
        if lc.photometric or lc.ssim:
            kw = dict(texture=tex_map, uvs=hand.uvs, face_uvs=hand.face_uvs, light=params.light)
    r = Renderer((h, w))(out.vertices, out.faces, batch["K"], **kw)
    terms = {}
    if lc.silhouette:
        if "mask" not in batch:
            raise ValueError("loss.silhouette needs masks (training/mask/ in the dataset), "
                             "and a batch came without them (photos of data.photos have none)")
        terms["silhouette"] = lc.silhouette * L.silhouette(r.silhouette, batch["mask"]).mean()
    image = batch["image"].permute(0, 2, 3, 1)
    if textured and lc.photometric:
        terms["photometric"] = lc.photometric * L.photometric(r.rgb, image, r.mask.float()).mean()
        terms["texture_prior"] = lc.texture_prior * L.texture_regulariser(params.texture).mean()
    if textured and lc.ssim:
        m = r.mask.float()[..., None]
        terms["ssim"] = lc.ssim * (1 - L.ssim(r.rgb * m, image * m)).mean()
    if textured and lc.mean_colour:
        mask = batch["mask"] if "mask" in batch else r.mask.float()
        terms["mean_colour"] = lc.mean_colour * L.mean_colour(vertex_albedo, image, mask).mean()
    return terms
