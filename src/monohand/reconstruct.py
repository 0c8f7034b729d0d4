"""The main job: 3D hands from photos. Detect, crop, fit, and write what people can use.

``Reconstructor`` holds the detector and the models (or the network); ``reconstruct_image``
fits every hand found in one RGB image (+ K), ``network_reconstruct`` runs the network on
them; both give ``HandReconstruction`` records. Their files are written by
``export.write_outputs``, the overlay drawn by ``viz.overlay_image``; K comes from
``data.intrinsics.camera_for_image``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from .data.augment import crop_around
from .data.keypoints import HandDetection, MediaPipeHands
from .fit import FitConfig, FitInputs, FitResult, fit_hands
from .models.base import HandModel, has_texture_space
from .models.registry import load_models
from .nets.handnet import load_network
from .record import PARAMETER_NAMES, HandReconstruction, hand_record


@dataclass
class ReconstructConfig:
    model: str = "openhand"  # openhand | mano | nimble
    model_path: str | None = None  # MANO file/folder or NIMBLE folder/.npz
    # method "network": a checkpoint of ``monohand train``; None: the shipped network
    checkpoint: str | None = None
    method: str = "fit"
    max_hands: int = 4
    crop_size: int = 128
    # Per-joint confidences from test-time augmentation (3 more detector runs): the fit
    # weighs its keypoints by them; the network only needs the crop. None: fit only.
    tta: bool | None = None
    fit: FitConfig = field(default_factory=FitConfig)


# -- reconstruction ------------------------------------------------------------------------


class Reconstructor:
    """Holds the detector and the models; ``__call__(image, K)`` -> hands."""

    def __init__(self, cfg: ReconstructConfig | None = None) -> None:
        self.cfg = cfg or ReconstructConfig()
        self.net = None
        if self.cfg.method == "network":
            self.net, self.net_size = load_network(self.cfg.checkpoint, self.cfg.model_path)
            self.models = {"right": self.net.hand}
        elif self.cfg.method == "fit":
            self.models = load_models(self.cfg.model, self.cfg.model_path)
        else:
            raise ValueError(f"unknown method {self.cfg.method!r}: fit or network")
        use_tta = self.cfg.method == "fit" if self.cfg.tta is None else self.cfg.tta
        tta = ("mirror", "rot+", "rot-") if use_tta else ()
        self.detector = MediaPipeHands(max_hands=self.cfg.max_hands, tta=tta)

    def close(self) -> None:
        self.detector.close()

    def __enter__(self) -> Reconstructor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __call__(self, image: np.ndarray, K: np.ndarray) -> list[HandReconstruction]:
        return self.reconstruct(image, K, self.detector.detect(image)[: self.cfg.max_hands])

    def reconstruct(
        self, image: np.ndarray, K: np.ndarray, detections: list[HandDetection]
    ) -> list[HandReconstruction]:
        """The hands of ``detections`` by this reconstructor's method (network or fit)."""
        if self.net is not None:
            return network_reconstruct(image, K, detections, self.net, self.net_size)
        return reconstruct_image(image, K, detections, self.models, self.cfg)


def network_reconstruct(
    image: np.ndarray, K: np.ndarray, detections: list[HandDetection], net, size: int
) -> list[HandReconstruction]:
    """The network's hands: one batched forward pass over the detected hands' crops.

    Each crop's camera is the image's turned and scaled (``data.crops``: MediaPipe's crop for
    the MediaPipe encoder, else a square box), so the network's output is mapped back to the
    image's camera frame exactly. Left hands: the crop is mirrored, the right-hand network
    run, and its output mirrored back (their triangles re-wound to keep outward normals).
    """
    if not detections:
        return []
    hand = net.hand
    crops = [_network_crop(image, K, d, net, size) for d in detections]
    img = torch.as_tensor(np.stack([c.image for c in crops]), dtype=torch.float32)
    img = img.permute(0, 3, 1, 2) / 255.0
    Ks = torch.as_tensor(np.stack([c.K for c in crops]), dtype=torch.float32)
    with torch.no_grad():
        p, ho = net(img, Ks)
        tex_map, vcols = hand.albedo(p.texture) if has_texture_space(hand) else (None, None)
    faces = hand.faces.numpy()
    face_uvs = None if hand.face_uvs is None else hand.face_uvs.numpy()
    out = []
    for k, (d, c) in enumerate(zip(detections, crops, strict=True)):
        f, fu = faces, face_uvs
        if c.mirrored:
            f = faces[:, [0, 2, 1]]
            fu = None if face_uvs is None else face_uvs[:, [0, 2, 1]]
        out.append(
            hand_record(
                hand, d, c.to_camera(ho.joints[k].double().numpy()),
                c.to_camera(ho.vertices[k].double().numpy()), K, f, fu,
                texture=None if tex_map is None else tex_map[k].numpy(),
                vertex_colors=None if vcols is None else vcols[k].numpy(),
                parameters={n: getattr(p, n)[k].tolist() for n in PARAMETER_NAMES},
                fit={},
            )
        )  # fmt: skip
    return out


def _network_crop(image: np.ndarray, K: np.ndarray, d: HandDetection, net, size: int):
    """The crop of one detected hand that ``net`` takes (``HandCrop``)."""
    from .data.crops import HandCrop, hand_crop

    left = d.side == "left"
    if net.input_crop == "mediapipe":
        return hand_crop(image, K, d.keypoints, size, mirror=left)
    crop, Kc = crop_around(image, K, d.keypoints, size)
    if left:
        crop = np.ascontiguousarray(crop[:, ::-1])
        Kc = np.array([[-1.0, 0, size - 1], [0, 1, 0], [0, 0, 1]]) @ Kc @ np.diag([-1.0, 1, 1])
    return HandCrop(crop, np.eye(3), Kc, np.eye(3), left)


def fit_inputs(
    image: np.ndarray, K: np.ndarray, dets: list[HandDetection], crop_size: int
) -> FitInputs:
    """``FitInputs`` of hands detected in one image (crops for the appearance stage)."""
    pairs = [crop_around(image, K, d.keypoints, crop_size) for d in dets]
    crops, crop_ks = zip(*pairs, strict=True)
    f32 = torch.float32
    world = None if any(d.world is None for d in dets) else np.stack([d.world for d in dets])
    return FitInputs(
        keypoints=torch.as_tensor(np.stack([d.keypoints for d in dets]), dtype=f32),
        confidence=torch.as_tensor(np.stack([d.confidence for d in dets]), dtype=f32),
        K=torch.as_tensor(K, dtype=f32)[None].repeat(len(dets), 1, 1),
        world=None if world is None else torch.as_tensor(world, dtype=f32),
        crop=torch.as_tensor(np.stack(crops), dtype=f32) / 255.0,
        crop_K=torch.as_tensor(np.stack(crop_ks), dtype=f32),
    )


def hands_from_fit(
    model: HandModel, res: FitResult, dets: list[HandDetection], K: Tensor
) -> list[HandReconstruction]:
    """One ``HandReconstruction`` per fitted hand of ``res`` (K: (B, 3, 3))."""
    if has_texture_space(model):
        tex_maps, vcols = (t.detach().numpy() for t in model.albedo(res.texture))
    else:  # no texture space: a uniform skin colour
        tex_maps, vcols = None, [None] * len(dets)
    faces = model.faces.numpy()
    face_uvs = None if model.face_uvs is None else model.face_uvs.numpy()
    return [
        hand_record(
            model, d, res.output.joints[k].numpy(), res.output.vertices[k].numpy(),
            K[k].numpy(), faces, face_uvs,
            texture=None if tex_maps is None else tex_maps[k],
            vertex_colors=vcols[k],
            parameters={name: getattr(res, name)[k].tolist() for name in PARAMETER_NAMES},
            fit={"reprojection_px": float(res.reprojection_px[k]),
                 **{name: float(v[k]) for name, v in res.losses.items()}},
        )
        for k, d in enumerate(dets)
    ]  # fmt: skip


def reconstruct_image(
    image: np.ndarray,
    K: np.ndarray,
    detections: list[HandDetection],
    models: dict[str, HandModel],
    cfg: ReconstructConfig,
) -> list[HandReconstruction]:
    """Fit every detected hand of one image (batched per side)."""
    out: list[HandReconstruction | None] = [None] * len(detections)
    for side in ("right", "left"):
        idx = [i for i, d in enumerate(detections) if d.side == side]
        if not idx or side not in models:  # NIMBLE has no left hand
            continue
        model = models[side]
        dets = [detections[i] for i in idx]
        inputs = fit_inputs(image, K, dets, cfg.crop_size)
        res = fit_hands(model, inputs, cfg.fit)
        for k, hand in enumerate(hands_from_fit(model, res, dets, inputs.K)):
            out[idx[k]] = hand
    return [h for h in out if h is not None]
