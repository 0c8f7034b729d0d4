"""What a reconstruction gives for one hand: ``HandReconstruction`` (camera frame of the input
image, metres, OpenCV), made by ``hand_record`` for fitted and network hands alike, written
by ``export.write_outputs`` and drawn by ``viz.overlay_image``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .data.keypoints import HandDetection
from .models.base import HandModel
from .render.camera import project

SKIN_RGB = (0.80, 0.62, 0.52)  # the uniform albedo of models without a texture space
# What a reconstruction records of the model's inputs (a fit's or a network's).
PARAMETER_NAMES = ("global_orient", "hand_pose", "betas", "transl", "texture", "light")


@dataclass
class HandReconstruction:
    """One hand, camera frame of the input image (metres, OpenCV)."""

    side: str
    detection: HandDetection
    joints3d: np.ndarray  # (21, 3)
    joints2d: np.ndarray  # (21, 2) projection of joints3d
    vertices: np.ndarray  # (V, 3)
    faces: np.ndarray  # (F, 3)
    vertex_colors: np.ndarray  # (V, 3)
    texture: np.ndarray | None  # (h, w, 3) albedo map (models with a texture space)
    uvs: np.ndarray | None  # (T, 2)
    face_uvs: np.ndarray | None  # (F, 3)
    parameters: dict[str, list]
    fit: dict[str, float]
    track: int | None = None  # the hand's track in a video


def hand_record(
    model: HandModel,
    d: HandDetection,
    joints: np.ndarray,
    vertices: np.ndarray,
    K: np.ndarray,
    faces: np.ndarray,
    face_uvs: np.ndarray | None,
    texture: np.ndarray | None,
    vertex_colors: np.ndarray | None,
    parameters: dict[str, list],
    fit: dict[str, float],
) -> HandReconstruction:
    """One ``HandReconstruction`` (the joints projected with ``K`` (3, 3); a uniform skin where
    ``vertex_colors`` is None; ``fit`` gains ``reprojection_px``, the plain mean distance in
    pixels of the projected joints to the detected keypoints, whatever the method)."""
    j2 = project(torch.as_tensor(joints)[None], torch.as_tensor(K)[None])[0].numpy()
    if vertex_colors is None:
        vertex_colors = np.tile(SKIN_RGB, (len(vertices), 1))
    fit = {**fit, "reprojection_px": float(np.linalg.norm(j2 - d.keypoints, axis=1).mean())}
    return HandReconstruction(
        side=d.side,
        detection=d,
        joints3d=joints,
        joints2d=j2,
        vertices=vertices,
        faces=faces,
        vertex_colors=vertex_colors,
        texture=texture,
        uvs=None if model.uvs is None else model.uvs.numpy(),
        face_uvs=face_uvs,
        parameters=parameters,
        fit=fit,
    )
