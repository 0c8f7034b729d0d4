"""What a reconstruction gives for one hand: ``HandReconstruction`` (camera frame of the input
image, metres, OpenCV), made by ``hand_record`` for fitted and network hands alike, written
by ``outputs.write_outputs`` and drawn by ``viz.overlay_image``; what every record file
(``<stem>.json``) says of itself, ``record_header``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .data.detection import HandDetection
from .models.base import HandModel
from .render.camera import project

SKIN_RGB = (0.80, 0.62, 0.52)  # the uniform albedo of models without a texture space
# What a reconstruction records of the model's inputs (a fit's or a network's).
PARAMETER_NAMES = ("global_orient", "hand_pose", "betas", "transl", "texture", "light")


@dataclass
class HandReconstruction:
    """One reconstructed hand, in the photo's camera frame (metres, OpenCV axes: x right,
    y down, z forward).

    Attributes:
        side: "right" or "left" (as seen in the photo).
        detection: the detector's hand (2D keypoints in pixels, confidences, world landmarks).
        joints3d: (21, 3) metres, FreiHAND's joint order; joints2d: (21, 2) their projection
            with the photo's K, pixels.
        vertices: (V, 3) metres; faces: (F, 3) indices, outward normals. joints3d, joints2d
            and vertices are float32 whatever the method (the models' precision).
        vertex_colors: (V, 3) in [0, 1]; texture: (h, w, 3) albedo map in [0, 1] on
            ``uvs`` (T, 2) by ``face_uvs`` (F, 3), for models with a texture space, else
            None.
        parameters: what poses and shades it, as lists: the hand's layer's inputs
            (``global_orient``, ``hand_pose``, ``betas``, ``transl``; ``texture``) that
            pose it to ``vertices`` in this frame, and ``light`` (the renderer's, S2HAND's
            11 numbers). ``layer_inputs()``: the layer's alone, as tensors to call it with.
        fit: per-hand terms: ``reprojection_px`` (the plain mean distance of ``joints2d`` to
            the detected keypoints the detector found, confidence > 0, pixels) always, and the
            fit's final losses.
        track: the hand's track in a video, else None.
    """

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

    def layer_inputs(self, dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
        """``layer_inputs(self.parameters)``: the layer of the hand's model and side
        (``monohand.create(model, side=hand.side)``) called with them gives ``vertices``
        again; not for NIMBLE's left hands by ``--method network``, whose parameters are the
        mirrored right hand's that the network predicted."""
        return layer_inputs(self.parameters, dtype)

    def __repr__(self) -> str:
        # A line, not the arrays (~10 KB per hand in a notebook).
        wrist = ", ".join(f"{x:.3f}" for x in self.joints3d[0])
        track = "" if self.track is None else f", track={self.track}"
        return (f"HandReconstruction(side={self.side!r}{track}, wrist=({wrist}) m, "
                f"{len(self.vertices)} vertices, textured={self.texture is not None}, "
                f"reprojection {self.fit.get('reprojection_px', float('nan')):.1f} px)")


# The layer's own inputs among PARAMETER_NAMES (``light`` is the renderer's).
LAYER_INPUTS = ("global_orient", "hand_pose", "betas", "transl", "texture")


def layer_inputs(parameters: dict, dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    """A reconstruction's ``parameters`` (a ``HandReconstruction``'s, or the JSON record's
    ``hands[i]["parameters"]``: lists) -> the hand layer's keyword inputs as (1, n) tensors
    of ``dtype``: ``model(**layer_inputs(p))`` poses the hand as reconstructed. ``light``
    (not the layer's) and an empty ``texture`` (a model without a texture space) are left
    out."""
    out = {}
    for name in LAYER_INPUTS:
        if name in parameters and len(parameters[name]):
            out[name] = torch.as_tensor(parameters[name], dtype=dtype).reshape(1, -1)
    return out


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
    pixels of the projected joints to the detected keypoints found, whatever the method)."""
    joints = np.asarray(joints, dtype=np.float32)
    vertices = np.asarray(vertices, dtype=np.float32)
    j2 = project(torch.as_tensor(joints)[None], torch.as_tensor(K, dtype=torch.float32)[None]
                 )[0].numpy()  # fmt: skip
    if vertex_colors is None:
        vertex_colors = np.tile(SKIN_RGB, (len(vertices), 1))
    # over the joints the detector found (confidence > 0: OpenPose's missing joints are
    # placeholders), every joint where it found none
    found = d.confidence > 0 if (d.confidence > 0).any() else np.ones(len(j2), bool)
    fit = {**fit, "reprojection_px": float(np.linalg.norm(j2 - d.keypoints, axis=1)[found]
                                           .mean())}  # fmt: skip
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


FORMAT = "monohand.reconstruction"
FORMAT_VERSION = 1
TRACKS_FORMAT = "monohand.tracks"  # a video's <stem>_tracks.json (``video.sequence``)


def record_header() -> dict:
    """What every reconstruction record (``<stem>.json``, the web API's result) says about
    itself: its format and version (``schemas/reconstruction.schema.json``), the units, the
    camera frame and the joint order."""
    from importlib.metadata import PackageNotFoundError, version

    from .models.joints import FREIHAND_JOINT_NAMES

    try:
        mine = version("monohand")
    except PackageNotFoundError:  # run from a source tree that was never installed
        mine = "0+unknown"
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "monohand_version": mine,
        "units": "metres (3D), pixels of the photo (2D, K)",
        "frame": "the photo's camera, OpenCV: x right, y down, z forward; "
        "uv = (K X)[:2] / (K X)[2]",
        "joint_names": list(FREIHAND_JOINT_NAMES),
    }
