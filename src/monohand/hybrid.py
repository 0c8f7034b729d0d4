"""Network and fitting together (S2HAND's test-time recipe): the network's prediction for a
hand's crop becomes the fit's start and prior.

``network_predict`` runs a ``HandNet`` once over the crops of the detected hands of one
photo (MediaPipe's crop for the MediaPipe encoder, else a square box; left hands mirrored
and predicted as right ones) and maps its hands back to the photo's camera frame
(``network_on_crops`` does the same for crops already cut).
``network_start`` turns the prediction for some of those hands into a ``fit.FitInit`` for a
hand model of either side: the pose in the fit's own parametrisation (``fit.PoseParams``),
the shape as predicted, and the global rotation and translation that put that model's
joints onto the network's in the photo's camera frame (closed-form Kabsch, so the start is
exact whatever the crop's roll or mirroring).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .data.augment import crop_around
from .data.crops import HandCrop, hand_crop
from .data.detection import HandDetection
from .data.intrinsics import camera_for_image
from .fit import FitInit, PoseParams
from .geometry import kabsch, rotmat_to_axis_angle
from .models.base import HandModel, HandOutput
from .models.skinned import mirror_axis_angle
from .nets.heads import HeadOutput


@dataclass
class NetworkPrediction:
    """A network's output for the B detected hands of one photo.

    Attributes:
        params: the regressed parameters (right-hand model, each crop's camera frame).
        output: the network's hand model at ``params`` (crop frames), B hands.
        crops: the B crops (``HandCrop.to_camera`` maps crop-frame points to the photo's).
        joints: (B, 21, 3) metres, the photo's camera frame.
        vertices: (B, V, 3) metres, the photo's camera frame.
        evaluation_vertices: (B, V', 3) the same mesh in MANO's topology where the model has
            one (``HandOutput.evaluation_vertices``), else ``vertices``.
    """

    params: HeadOutput
    output: HandOutput
    crops: list[HandCrop]
    joints: np.ndarray
    vertices: np.ndarray
    evaluation_vertices: np.ndarray


def network_crop(image: np.ndarray, K: np.ndarray, d: HandDetection, net, size: int) -> HandCrop:
    """The crop of one detected hand that ``net`` takes (mirrored for a left hand)."""
    left = d.side == "left"
    if net.input_crop == "mediapipe":
        return hand_crop(image, K, d.keypoints, size, mirror=left)
    crop, Kc = crop_around(image, K, d.keypoints, size)
    if left:
        crop = np.ascontiguousarray(crop[:, ::-1])
        Kc = np.array([[-1.0, 0, size - 1], [0, 1, 0], [0, 0, 1]]) @ Kc @ np.diag([-1.0, 1, 1])
    return HandCrop(crop, np.eye(3), Kc, np.eye(3), left)


def network_on_crops(net, crops: list[HandCrop]) -> NetworkPrediction:
    """One batched forward pass of ``net`` (a ``HandNet``) over ``crops`` (at least one, each
    of the size the network takes), its hands mapped back to each crop's photo frame."""
    device = next(net.parameters()).device  # (a network training on a GPU: its check)
    img = torch.as_tensor(np.stack([c.image for c in crops]), dtype=torch.float32, device=device)
    Ks = torch.as_tensor(np.stack([c.K for c in crops]), dtype=torch.float32, device=device)
    with torch.no_grad():
        p, out = net(img.permute(0, 3, 1, 2) / 255.0, Ks)

    def to_camera(points: Tensor) -> np.ndarray:
        return np.stack([c.to_camera(x) for c, x in zip(crops, points.double().cpu().numpy(),
                                                         strict=True)])  # fmt: skip

    verts = to_camera(out.vertices)
    ev = out.evaluation_vertices
    return NetworkPrediction(p, out, crops, to_camera(out.joints), verts,
                             verts if ev is out.vertices else to_camera(ev))  # fmt: skip


def network_predict(
    image: np.ndarray, K: np.ndarray, detections: list[HandDetection], net, size: int
) -> NetworkPrediction:
    """``network_on_crops`` over the crops of ``detections`` (at least one) in one photo.

    Args:
        image: (H, W, 3) uint8 RGB; K: (3, 3) its intrinsics.
        net: a ``HandNet`` (``nets.handnet.load_network``) taking ``size``-pixel crops.
    """
    if not detections:
        raise ValueError("network_predict needs at least one detected hand")
    return network_on_crops(net, [network_crop(image, K, d, net, size) for d in detections])


def network_agreement(image: np.ndarray, detections: list[HandDetection], net, size: int
                      ) -> np.ndarray:  # fmt: skip
    """How far ``net``'s joints for each detection's crop lie from the detection's keypoints:
    (N,) mean image distance over the 21 joints, in hand sizes (the detection's wrist to
    middle knuckle); [] for no detection. The window search's second opinion on hands in
    doubt (``data.window_search``); the image's own camera matters little here (the crop's
    2D joints are the network's either way), so a default one is used."""
    if not detections:
        return np.zeros(0)
    K, _ = camera_for_image(None, image.shape)
    joints = network_predict(image, K, detections, net, size).joints @ K.T
    uv = joints[..., :2] / joints[..., 2:]
    kp = np.stack([d.keypoints for d in detections])
    sizes = np.maximum(np.linalg.norm(kp[:, 9] - kp[:, 0], axis=1), 1.0)
    return np.linalg.norm(uv - kp, axis=2).mean(1) / sizes


def network_start(
    model: HandModel,
    net_hand: HandModel,
    pred: NetworkPrediction,
    rows: list[int] | None = None,
    prior: bool = True,
    pnp_start: bool = False,
) -> FitInit:
    """The fit's start for hands ``rows`` of ``pred`` (all when None), for ``model``.

    Args:
        model: the hand model to fit, of the side of these hands (``net_hand``'s layer or
            its mirror image, with the same pose and shape spaces).
        net_hand: the network's own (right-hand) model.
        prior: the start is also the fit's prior (``FitInit.prior``).
        pnp_start: the fit also starts from PnP and keeps the better (``FitInit.pnp_start``).
    Returns:
        ``FitInit`` (B = len(rows)) in ``model``'s float32 parameters, the photo's camera frame.
    """
    rows = list(range(len(pred.crops))) if rows is None else list(rows)
    if model.num_shape_params != net_hand.num_shape_params:
        raise ValueError(f"the network's hand model has {net_hand.num_shape_params} shape "
                         f"parameters, the fitted one {model.num_shape_params}: fit the "
                         "network's own model")  # fmt: skip
    mirrored = [pred.crops[r].mirrored for r in rows]
    if any(m != (model.side == "left") for m in mirrored):
        raise ValueError(f"network_start: hands {rows} are not all {model.side} hands")
    dt = torch.float32
    hp = pred.params.hand_pose[rows].to(dt)
    betas = pred.params.betas[rows].to(dt)
    params = PoseParams(model, len(rows), dt)
    pose = _pose_params(model, net_hand, hp, params.kind)
    target = torch.as_tensor(pred.joints[rows], dtype=dt)
    with torch.no_grad():
        hand_pose = params.hand_pose(pose)
        rest = model(hand_pose=hand_pose, betas=betas).joints
        rot = kabsch(rest, target)
        go = rotmat_to_axis_angle(rot)
        placed = model(global_orient=go, hand_pose=hand_pose, betas=betas).joints
        transl = target.mean(1) - placed.mean(1)
    # No texture: the fit's appearance stage matches the photo better than the network.
    return FitInit(go, pose, betas, transl, prior=prior, pnp_start=pnp_start)


def _pose_params(model: HandModel, net_hand: HandModel, hand_pose: Tensor, kind: str) -> Tensor:
    """The network's hand pose (B, P) of ``net_hand`` (right) -> ``model``'s pose parameters as
    the fit optimises them (``PoseParams``): anatomical angles (which mean the same pose on
    either side), axis-angle (mirrored for a left model), or PCA coefficients (right only)."""
    if kind == "pca":
        return hand_pose
    full = net_hand.expand_hand_pose(hand_pose)  # 45 axis-angle numbers, the mean included
    if kind == "anatomical":
        return net_hand.pose_space.from_axis_angle(full - net_hand.hand_mean)
    if model.side == "left":
        full = mirror_axis_angle(full)
    return full - model.hand_mean
