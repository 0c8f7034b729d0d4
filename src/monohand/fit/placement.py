"""Where a fit starts: each hand placed by PnP on its keypoints (``initial_pose``), from
MediaPipe's world landmarks or the model's own joints."""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import Tensor

from ..geometry import kabsch
from ..models.base import HandModel
from .records import FitInputs


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
