"""The main job: 3D hands from photos. Detect, crop, fit, and write what people can use.

``Reconstructor`` holds the detector and the models (or the network); ``reconstruct_image``
fits every hand found in one RGB image (+ K), ``network_reconstruct`` runs the network on
them; both give ``HandReconstruction`` records. Their files are written by
``outputs.write_outputs``, the overlay drawn by ``viz.overlay_image``; K comes from
``data.intrinsics.camera_for_image``. ``reconstruct_photo`` is the per-photo job of the
command and the web page: K, hands, files.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import Tensor

from .data.augment import crop_around
from .data.detection import Detector, HandDetection, SideWarning, check_detections
from .data.hand_mask import hand_mask
from .data.images import check_rgb
from .data.intrinsics import (
    CameraWarning,
    as_intrinsics,
    camera_for_image,
    implausible_field_of_view,
)
from .data.keypoints import TTA_VIEWS, MediaPipeHands
from .export import HandRig
from .fit import (
    FitConfig,
    FitInit,
    FitInputs,
    FitResult,
    PoseParams,
    fit_hands,
    hand_of,
    relative_confidence,
)
from .hybrid import network_agreement, network_predict, network_start
from .models.assets import AssetError
from .models.base import HandModel, has_texture_space
from .models.registry import create, load_models
from .nets.handnet import load_network
from .outputs import check_outputs, image_digest, output_files, write_outputs
from .record import PARAMETER_NAMES, HandReconstruction, hand_record
from .twohands import (
    TogetherConfig,
    check_hand_size,
    interpenetrating_pairs,
    refine_touching,
    touching_pairs,
)


@dataclass
class ReconstructConfig:
    """What ``Reconstructor`` does: the hand model, the method, the detector's settings and
    the fit's. Outputs are in metres in the photo's camera frame (OpenCV axes) whatever the
    method; see ``record.HandReconstruction``. (The comments below say why each default is
    what it is.)

    Attributes:
        model, model_path: the hand model ("openhand", "mano", "nimble") and its files.
        checkpoint: a ``monohand train`` checkpoint for the network (None: the shipped one).
        method: "auto" (the hybrid where a network is at hand, else the fit), "hybrid",
            "fit" or "network".
        max_hands: hands per image, at most (>= 1).
        search_windows: look again with MediaPipe's landmark network over windows where
            its palm detector finds no hand (photos; seconds per such photo).
        crop_size: the fit's crop of a hand, pixels (>= 16).
        tta, more_from_views: per-joint confidences from augmented copies of the photo (None,
            the default: on for the fit and the hybrid, which weigh their keypoints by them;
            off for the network, whose hands then carry the detection's score as each
            joint's confidence), and hands only those copies see.
        fit, hybrid_fit, pnp_start: the fit's settings alone and under the hybrid, and
            whether the hybrid also starts from PnP.
        together, together_cfg, silhouette_touching: touching hands refined as one pair
            (``twohands``), its settings, and the silhouette stage for them.
    """

    # openhand | mano | nimble (| boxhand: the test model made in code, fitted only)
    model: str = "openhand"
    model_path: str | None = None  # MANO file/folder or NIMBLE folder/.npz
    # methods "network" and "hybrid": a checkpoint of ``monohand train``; None: the shipped
    # network
    checkpoint: str | None = None
    # auto | fit | network | hybrid (the network's prediction starts the fit). "auto": the
    # hybrid where a network for the model is at hand (OpenHand's ships; or ``checkpoint``),
    # else the fit.
    method: str = "auto"
    max_hands: int = 4
    # Where MediaPipe finds no hand, look again with its landmark network over windows of the
    # photo (``data.window_search``: hands holding things, gloves; seconds per such photo).
    search_windows: bool = True
    crop_size: int = 128
    # Per-joint confidences from test-time augmentation (3 more detector runs): the fit
    # weighs its keypoints by them; the network only needs the crop. None: fit and hybrid.
    tta: bool | None = None
    # A hand those augmented copies see (at least this many of them) and the photo itself
    # does not is kept too (``MediaPipeHands.more_from_views``; 0: never; no copies, no
    # such hands). Chosen on renders (2026-12-05, 2 against 1 and 0, rule set before: the
    # most hands added on two-hand scenes with no more than 1 % wrong ones added on
    # single-hand renders): two-hand scenes 248 -> 273 of 360 hands (1 wrong added),
    # single-hand renders (700) and hand-free photos unchanged; 1 added 40 but 13 wrong
    # on the single-hand renders.
    more_from_views: int = 2
    fit: FitConfig = field(default_factory=FitConfig)
    # The hybrid's fit (it starts near the answer) and whether it also starts from PnP.
    hybrid_fit: FitConfig = field(default_factory=lambda: hybrid_fit_config())
    pnp_start: bool = False
    # Hands that touch (overlapping keypoint boxes) refined together (``twohands``).
    together: bool = True
    together_cfg: TogetherConfig = field(default_factory=TogetherConfig)
    # The fit's silhouette stage for hands whose boxes overlap another's too (together or
    # not). Off: two hands of one colour that touch make one blob, which their masks split
    # by the nearer skeleton only; on the touching-hands renders the stage put the pairs
    # further apart in depth (``bench/bench_twohands.py --touching-silhouette``).
    silhouette_touching: bool = False


METHODS = ("fit", "network", "hybrid")

MIN_CROP = 16  # pixels: a hand's crop smaller than this shows no outline to fit


def shipped_openhand(cfg: ReconstructConfig) -> bool:
    """Whether ``cfg`` names the OpenHand that the shipped network was trained on: the
    model "openhand" with no ``model_path``, or one whose file holds the shipped asset's
    bytes (another OpenHand build is another model to that network)."""
    if cfg.model != "openhand":
        return False
    if cfg.model_path is None:
        return True
    from .models.openhand import default_model_path

    given, shipped = Path(cfg.model_path), default_model_path()
    try:
        return given.is_file() and given.read_bytes() == shipped.read_bytes()
    except OSError:
        return False


def resolve_method(cfg: ReconstructConfig) -> str:
    """The method "auto" stands for with these settings (others are returned as given): the
    hybrid where a network for the model is at hand (a checkpoint, or the shipped network
    for the shipped OpenHand), else the fit."""
    if cfg.method != "auto":
        return cfg.method
    return "hybrid" if cfg.checkpoint or shipped_openhand(cfg) else "fit"


def hybrid_fit_config() -> FitConfig:
    """The hybrid's fit settings: a prior on the network's pose and shape, MediaPipe's world
    landmarks at twice the fit's weight, a robust 2D term twice as wide as the fit's, 30
    short steps, since the start is already close, then 10 steps with the silhouette's
    distance to the hand's mask in the photo (``data.hand_mask``) added. No 3D steps: they
    belong to PnP starts (``pnp_start``).

    Chosen on real photos that are not the evaluation set (``bench/bench_real_val.py``: Ge et
    al.'s frames 200-582; realhands holds frames 0-149): 10.97 -> 10.17 mm PA-MPJPE there
    against the previous choice made on renders (priors 10 / 1, w_world 0.25, 20 steps), on
    which MediaPipe's 3D is twice as far off as on photos, so they had leaned on the network;
    the silhouette stage then 10.16 -> 9.80 mm on every second frame (2026-12-05).
    """
    return FitConfig(iters=30, iters_3d=0, lr=0.02, w_world=1.0, w_prior_pose=3.0,
                     w_prior_shape=1.0, robust_sigma=0.2, silhouette_iters=10,
                     w_silhouette=3.0)  # fmt: skip


# -- reconstruction ------------------------------------------------------------------------


class Reconstructor:
    """Holds the detector and the models; ``__call__(image, K)`` -> hands.

    The detector holds native resources: use it as a context manager (``with
    Reconstructor() as rec:``) or call ``close()``; one left open is closed when collected
    or when the interpreter exits. Write a photo's files with ``outputs.write_outputs`` (the
    command's meshes, JSON and overlay) or ``reconstruct_photo``.

    ``detector``: a hand detector of one's own (``data.detection.Detector``: ``detect(image,
    windows)`` -> ``HandDetection``s) in MediaPipe's place, for photos and videos alike
    (MediaPipe's window search and a video's lost hands found again by its landmark network
    stay off with it); it stays the caller's (``close()`` leaves it open). For detections
    one already has, ``reconstruct(image, K, detections)`` needs no detector."""

    def __init__(self, cfg: ReconstructConfig | None = None, detector: Detector | None = None
                 ) -> None:  # fmt: skip
        if detector is not None and not isinstance(detector, Detector):
            raise TypeError(f"detector must have detect(image, windows) -> list of "
                            f"HandDetection (data.detection.Detector), got "
                            f"{type(detector).__name__}")  # fmt: skip
        self.cfg = replace(cfg or ReconstructConfig())
        self._closed = False
        if self.cfg.max_hands < 1:
            raise ValueError(f"max_hands must be at least 1, got {self.cfg.max_hands}")
        if self.cfg.crop_size < MIN_CROP:  # the fit's crop (silhouette, appearance), pixels
            raise ValueError(f"crop_size must be at least {MIN_CROP} pixels, got "
                             f"{self.cfg.crop_size}")
        self.net = None
        method = self.cfg.method = resolve_method(self.cfg)
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}: auto or one of {', '.join(METHODS)}")
        if method in ("network", "hybrid"):
            if not self.cfg.checkpoint and self.cfg.model == "openhand" and (
                    not shipped_openhand(self.cfg)):  # fmt: skip
                raise ValueError(
                    f"--method {method}: the shipped network was trained on the shipped "
                    f"OpenHand, and --model-path gives another file ({self.cfg.model_path}), "
                    "which it would drive wrongly: --method fit fits that model (the default "
                    "for it), or give --checkpoint a network trained on it")  # fmt: skip
            # The network drives its own hand model. "openhand" (the default) stands for "the
            # network's", so that a checkpoint of another model needs no --model (nor, where
            # its file has not moved, --model-path); any other model named must be the
            # network's.
            expect = self.cfg.model if self.cfg.model != "openhand" else None
            self.net, self.net_size = load_network(self.cfg.checkpoint, self.cfg.model_path,
                                                   expect)  # fmt: skip
            self.models = {"right": self.net.hand}
            self.cfg.model = self.net.hand.name  # what the outputs say they are
            if method == "hybrid":  # the fit needs both sides of the network's model
                self.models = load_models(self.cfg.model,
                                          self.cfg.model_path or self.net.model_path)  # fmt: skip
            elif self.cfg.model != "nimble":  # the left layer, to state left hands' parameters
                try:
                    self.models["left"] = create(self.cfg.model,
                                                 self.cfg.model_path or self.net.model_path,
                                                 "left")  # fmt: skip
                except AssetError:  # (no left layer to be had: crop-frame parameters)
                    pass
        if method == "fit":
            self.models = load_models(self.cfg.model, self.cfg.model_path)
        use_tta = method != "network" if self.cfg.tta is None else self.cfg.tta
        tta = TTA_VIEWS if use_tta else ()
        windows = None
        # MediaPipe's landmark network alone, run by LiteRT (~3x the PyTorch port's speed
        # here): the photos' window search, and a video's hands followed where the palm
        # detector loses them (``video.sequence``). None with the search off, and with a
        # detector of one's own (MediaPipe's network would find hands in its place).
        self.landmark_net = None
        if self.cfg.search_windows and detector is None:
            from .data.window_search import window_searcher
            from .nets.mediapipe_litert import LiteRTHandNet

            # The shipped network (where this method loads it) is the search's second
            # opinion; its bar was calibrated on that network, not on a checkpoint of one's own.
            second = (None if self.net is None or self.cfg.checkpoint else
                      partial(network_agreement, net=self.net, size=self.net_size))  # fmt: skip
            self.landmark_net = LiteRTHandNet()
            windows = window_searcher(self.landmark_net, second_opinion=second)
        self._own_detector = detector is None
        # A model of one side (NIMBLE) asks MediaPipe for twice the hands: its own cap would
        # otherwise spend places on the other side's (``detect`` puts them last).
        asked = self.cfg.max_hands * (2 if len(self.sides) < 2 else 1)
        self.detector = detector if detector is not None else MediaPipeHands(
            max_hands=asked, tta=tta, retry_windows=windows,
            more_from_views=self.cfg.more_from_views)  # fmt: skip

    @property
    def model_path(self) -> str | None:
        """The hand model's file where one was given (``cfg.model_path``) or a checkpoint
        named it; None for a model that ships or is made in code. Recorded in the outputs."""
        if self.cfg.model_path:
            return str(self.cfg.model_path)
        return getattr(self.net, "model_path", None) or None

    @property
    def landmarks(self):
        """The former name of ``landmark_net`` (2026-12-06)."""
        warnings.warn("Reconstructor.landmarks is now Reconstructor.landmark_net",
                      DeprecationWarning, stacklevel=2)  # fmt: skip
        return self.landmark_net

    @property
    def sides(self) -> tuple[str, ...]:
        """The sides whose hands this reconstructor makes: both, but for a model with right
        hands only (NIMBLE) fitted (the network method mirrors a left hand's crop)."""
        if self.cfg.method == "network":
            return ("right", "left")
        return tuple(s for s in ("right", "left") if s in self.models)

    @property
    def network_name(self) -> str | None:
        """Which network makes or starts the hands: "shipped", the checkpoint's path as
        given, or None (the fit alone); recorded in the outputs."""
        if self.net is None:
            return None
        return str(self.cfg.checkpoint) if self.cfg.checkpoint else "shipped"

    def close(self) -> None:
        """Free the detector's native resources (one's own ``detector`` is left as it is);
        ``detect`` and ``__call__`` refuse after."""
        if self._own_detector:
            self.detector.close()
        self._closed = True

    def __enter__(self) -> Reconstructor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __call__(self, image: np.ndarray, K: np.ndarray) -> list[HandReconstruction]:
        """The hands of one photo: ``image`` a NumPy RGB uint8 array (H, W, 3)
        (``data.images.read_rgb``; OpenCV's ``cv2.imread`` gives BGR: ``image[..., ::-1]``
        makes it RGB), ``K`` its (3, 3) camera matrix in pixels (array, nested
        list or tensor; ``data.intrinsics.camera_for_image`` gives a photo's). Returns one
        ``HandReconstruction`` per hand found (metres, the photo's camera frame), best first;
        [] when none (the detector reads a photo at 192 x 192: one under ~100 pixels on its
        short side rarely shows it a hand)."""
        return self._reconstruct(image, K, self.detect(image))

    def detect(self, image: np.ndarray, windows: bool | None = None) -> list[HandDetection]:
        """The detector's hands of one (H, W, 3) uint8 RGB image, at most ``cfg.max_hands``;
        ``windows``: whether to search windows where MediaPipe finds none (None:
        ``cfg.search_windows``; videos skip it, their tracker bridges missed frames)."""
        if self._closed:
            raise RuntimeError("this Reconstructor was closed (close(), or the end of its "
                               "with block): make a new one")  # fmt: skip
        if self._own_detector:
            found = self.detector.detect(image, windows)  # (it checks the image)
        else:
            check_rgb(image)
            found = self.detector.detect(image, windows)
            if not isinstance(found, (list, tuple)):
                raise TypeError(f"{type(self.detector).__name__}.detect(image, windows) "
                                f"returned {type(found).__name__}, expected a list of "
                                f"HandDetection")  # fmt: skip
            found = check_detections(found, image.shape[:2])
        # hands of a side the model lacks (NIMBLE: left) after the others: they would take
        # the places of hands it can make
        found = sorted(found, key=lambda d: d.side not in self.sides)
        return found[: self.cfg.max_hands]

    def reconstruct(
        self, image: np.ndarray, K: np.ndarray, detections: list[HandDetection]
    ) -> list[HandReconstruction]:
        """The hands of ``detections`` in ``image`` by this reconstructor's method (``image``
        and ``K`` as ``__call__``'s). ``detections``: ``detect``'s, or a detector of one's own
        as ``HandDetection``s (keypoints in pixels of ``image``; ``data.detection``)."""
        return self._reconstruct(image, K, detections)

    def _reconstruct(self, image, K, detections: list[HandDetection]
                     ) -> list[HandReconstruction]:  # fmt: skip
        """``reconstruct``, for it and ``__call__``: a ``CameraWarning`` names their caller's
        line."""
        image, K = check_rgb(image), as_intrinsics(K)
        detections = check_detections(detections, image.shape[:2])
        if (doubt := implausible_field_of_view(K, image.shape[:2])) is not None:
            warnings.warn(doubt, CameraWarning, stacklevel=3)
        if skipped := [d.side for d in detections if d.side not in self.sides]:
            warnings.warn(f"{len(skipped)} {skipped[0]} hand(s) not reconstructed: "
                          f"{self.cfg.model} has {' and '.join(self.sides)} hands only",
                          SideWarning, stacklevel=3)  # fmt: skip
        if self.cfg.method == "network":
            return network_reconstruct(image, K, detections, self.net, self.net_size,
                                       self.models)  # fmt: skip
        if self.cfg.method == "hybrid":
            return reconstruct_image(image, K, detections, self.models, self.cfg, self.net,
                                     self.net_size)  # fmt: skip
        return reconstruct_image(image, K, detections, self.models, self.cfg)


def network_reconstruct(
    image: np.ndarray,
    K: np.ndarray,
    detections: list[HandDetection],
    net,
    size: int,
    models: dict[str, HandModel] | None = None,
) -> list[HandReconstruction]:
    """The network's hands: one batched forward pass over the detected hands' crops
    (``hybrid.network_predict``), mapped back to the image's camera frame exactly. Left
    hands: the crop is mirrored, the right-hand network run, and its output mirrored back
    (their triangles re-wound to keep outward normals).

    Each record's ``parameters`` pose ``models[side]`` (the network's model's layers; by
    default its right one) in the photo's camera frame, as the fit's do: the network's own,
    in its crop's camera, are turned into the photo's (``hybrid.network_start``). A hand
    whose side has no layer there (NIMBLE's left hands) keeps the crop's parameters of the
    mirrored right hand."""
    if not detections:
        return []
    hand = net.hand
    models = models or {"right": hand}
    pred = network_predict(image, K, detections, net, size)
    p = pred.params
    params = [{n: getattr(p, n)[k].tolist() for n in PARAMETER_NAMES}
              for k in range(len(detections))]  # fmt: skip
    for side, model in models.items():
        idx = [k for k, c in enumerate(pred.crops) if c.mirrored == (side == "left")]
        if not idx:
            continue
        start = network_start(model, hand, pred, idx, prior=False)
        with torch.no_grad():
            hand_pose = PoseParams(model, len(idx), torch.float32).hand_pose(start.pose_params)
        for j, k in enumerate(idx):
            params[k].update(global_orient=start.global_orient[j].tolist(),
                             hand_pose=hand_pose[j].tolist(), betas=start.betas[j].tolist(),
                             transl=start.transl[j].tolist())  # fmt: skip
    with torch.no_grad():
        tex_map, vcols = hand.albedo(p.texture) if has_texture_space(hand) else (None, None)
    faces = hand.faces.numpy()
    face_uvs = None if hand.face_uvs is None else hand.face_uvs.numpy()
    out = []
    for k, (d, c) in enumerate(zip(detections, pred.crops, strict=True)):
        f, fu = faces, face_uvs
        if c.mirrored:
            f = faces[:, [0, 2, 1]]
            fu = None if face_uvs is None else face_uvs[:, [0, 2, 1]]
        out.append(
            hand_record(
                hand, d, pred.joints[k], pred.vertices[k], K, f, fu,
                texture=None if tex_map is None else tex_map[k].numpy(),
                vertex_colors=None if vcols is None else vcols[k].numpy(),
                parameters=params[k],
                fit={},
            )
        )  # fmt: skip
    return out


def fit_inputs(
    image: np.ndarray, K: np.ndarray, dets: list[HandDetection], crop_size: int,
    masks: bool = False, image_hands: list[HandDetection] | None = None,
) -> FitInputs:
    """``FitInputs`` of hands detected in one image (crops for the appearance stage; with
    ``masks``, each hand's mask in its crop for the silhouette stage, pixels nearer another
    of ``image_hands`` (all the image's hands) left out). World landmarks only where every
    hand of ``dets`` has them (``reconstruct_image`` batches the others apart)."""
    pairs = [crop_around(image, K, d.keypoints, crop_size) for d in dets]
    crops, crop_ks = zip(*pairs, strict=True)
    f32 = torch.float32
    world = None if any(d.world is None for d in dets) else np.stack([d.world for d in dets])
    mask = weight = None
    if masks:
        found, photo = [], np.ones(image.shape[:2], np.uint8)
        for crop, crop_K, d in zip(crops, crop_ks, dets, strict=True):
            A = crop_K @ np.linalg.inv(K)  # image pixels -> crop pixels

            def to_crop(kp: np.ndarray, A=A) -> np.ndarray:
                return kp @ A[:2, :2].T + A[:2, 2]

            others = [to_crop(o.keypoints) for o in image_hands or () if o is not d]
            m = hand_mask(crop, to_crop(d.keypoints), others)
            # A crop reaching past the photo's edge is padded with its edge pixels, smeared
            # skin at a hand cut off by the edge: no evidence there.
            inside = cv2.warpAffine(photo, A[:2], (crop_size, crop_size),
                                    flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT,
                                    borderValue=0)  # fmt: skip
            found.append((m.mask, m.weight * inside))
        mask = torch.as_tensor(np.stack([m for m, _ in found]), dtype=f32)
        weight = torch.as_tensor(np.stack([w for _, w in found]), dtype=f32)
    # The fit uses only the ratios within a hand (``fit.relative_confidence``), taken here in
    # float64: a hand that most augmented copies missed can have every confidence under
    # float32's smallest (~1e-45), whose ratios still say which joints the copies agreed on.
    conf = relative_confidence(torch.as_tensor(np.stack([d.confidence for d in dets]),
                                               dtype=torch.float64))  # fmt: skip
    return FitInputs(
        keypoints=torch.as_tensor(np.stack([d.keypoints for d in dets]), dtype=f32),
        confidence=conf.to(f32),
        K=torch.as_tensor(K, dtype=f32)[None].repeat(len(dets), 1, 1),
        world=None if world is None else torch.as_tensor(world, dtype=f32),
        crop=torch.as_tensor(np.stack(crops), dtype=f32) / 255.0,
        crop_K=torch.as_tensor(np.stack(crop_ks), dtype=f32),
        mask=mask,
        mask_weight=weight,
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
            # the fit's own reprojection error weighs joints by their (relative) confidences;
            # ``hand_record`` adds the plain mean, the same for every method
            fit={"reprojection_weighted_px": float(res.reprojection_px[k]),
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
    net=None,
    net_size: int = 0,
) -> list[HandReconstruction]:
    """Fit every detected hand of one image (batched per side); with ``net`` (the hybrid),
    each fit starts from the network's prediction for the hand, and is pulled towards it.
    Hands that touch (overlapping boxes; unless ``cfg.together`` is off) are fitted by the
    fit's recipe (with the network's prediction as one more start, not as a prior), then
    refined together (``twohands``); so are hands whose boxes do not overlap but whose own
    fits interpenetrate (``twohands.interpenetrating_pairs``; under the hybrid fitted again
    as touching hands first, ``TogetherConfig.refit_found``). Hands are not tested again
    after that refit (a refitted hand that now enters a third is not caught)."""
    pairs = touching_hand_pairs(detections, models, cfg)
    pred = network_predict(image, K, detections, net, net_size) if net and detections else None
    touching = {i for p in pairs for i in p}
    overlapping = overlapping_hands(detections, cfg)  # (touching ones, together or not)

    def fit_group(side: str, idx: list[int], touches: bool, overlaps: bool) -> dict[int, tuple]:
        """Per hand of ``idx`` (one side's): (model, its fit's inputs, its fit, its start),
        batches of one."""
        model = models[side]
        dets = [detections[i] for i in idx]
        init, fit_cfg = ((None, cfg.fit) if pred is None else
                         hybrid_start(model, net.hand, pred, idx, touches, cfg))  # fmt: skip
        fit_cfg = fit_config_for(fit_cfg, overlaps, cfg, touches)
        inputs = fit_inputs(image, K, dets, cfg.crop_size, fit_cfg.silhouette_iters > 0,
                            detections)  # fmt: skip
        res = fit_hands(model, inputs, fit_cfg, init)
        return {i: (model, hand_of(inputs, k), hand_of(res, k), hand_of(init, k))
                for k, i in enumerate(idx)}  # fmt: skip

    hands: dict[int, tuple] = {}
    for side in ("right", "left"):
        if side not in models:  # NIMBLE has no left hand
            continue
        # hands on their own, hands that overlap another's box but are fitted on their own
        # (``together`` off), hands fitted together
        # (hands without world landmarks, from a detector of one's own, apart: a batch has
        # them for every hand or for none, ``fit_inputs``)
        for touches, overlaps in ((False, False), (False, True), (True, True)):
            for idx in _world_batches([i for i, d in enumerate(detections) if d.side == side
                                       and (i in touching) == touches
                                       and (i in overlapping) == overlaps], detections):
                hands.update(fit_group(side, idx, touches, overlaps))
    depth = cfg.together_cfg.overlap_depth
    if cfg.together and len(hands) > 1 and depth != float("inf"):
        # a pair the box test missed (seen end on) that its own fits pushed into each other
        found = interpenetrating_pairs({i: h[2].output.vertices for i, h in hands.items()},
                                       {i: h[0].faces for i, h in hands.items()}, depth,
                                       skip=pairs)  # fmt: skip
        if found and pred is not None and cfg.together_cfg.refit_found:
            # Under the hybrid those hands were fitted as lone ones, with the network's prior,
            # which their crops (showing both) mislead: fitted again as touching ones.
            again = sorted({i for p in found for i in p} - touching)
            for side in ("right", "left"):
                for idx in _world_batches([i for i in again if detections[i].side == side],
                                          detections):  # fmt: skip
                    hands.update(fit_group(side, idx, True, True))
        pairs += found
    hands = refine_pairs(hands, pairs, cfg)
    return [hands_from_fit(m, r, [detections[i]], x.K)[0]
            for i, (m, x, r, _) in sorted(hands.items())]  # fmt: skip


def _world_batches(idx: list[int], detections: list[HandDetection]) -> list[list[int]]:
    """``idx`` as batches of one fit: the hands with world landmarks, then those without (a
    batch has them for every hand or for none, ``fit_inputs``); no empty batch."""
    batches = [[i for i in idx if (detections[i].world is not None) == w] for w in (True, False)]
    return [b for b in batches if b]


def touching_hand_pairs(detections: list[HandDetection], models: dict[str, HandModel],
                        cfg: ReconstructConfig) -> list[tuple[int, int]]:  # fmt: skip
    """The index pairs of ``detections`` to refine together as touching (``touching_pairs``:
    boxes grown by ``cfg.together_cfg.pad`` that overlap), none unless ``cfg.together``, and
    only of hands ``models`` can fit (NIMBLE has no left hand). Checks
    ``TogetherConfig.hand_size`` first (before any hand is fitted)."""
    if not cfg.together:
        return []
    check_hand_size(cfg.together_cfg)
    pairs = touching_pairs(detections, cfg.together_cfg.pad) if len(detections) > 1 else []
    return [(a, b) for a, b in pairs if {detections[a].side, detections[b].side} <= set(models)]


def hybrid_start(model: HandModel, net_hand: HandModel, pred, rows: list[int], touches: bool,
                 cfg: ReconstructConfig) -> tuple[FitInit, FitConfig]:  # fmt: skip
    """The hybrid's start and fit for hands ``rows`` of the network's prediction ``pred``
    (``hybrid.network_predict``'s): a lone hand starts from the prediction, which is also
    its prior (``cfg.hybrid_fit``); a hand that touches another is fitted by the fit's
    recipe (``cfg.fit``) with the prediction one start beside PnP's, not a prior: its crop
    shows both hands, which the network never saw in training (``bench/bench_twohands.py``)."""
    init = network_start(model, net_hand, pred, rows, prior=not touches,
                         pnp_start=cfg.pnp_start or touches)  # fmt: skip
    return init, cfg.fit if touches else cfg.hybrid_fit


def refine_pairs(hands: dict[int, tuple], pairs: list[tuple[int, int]], cfg: ReconstructConfig
                 ) -> dict[int, tuple]:  # fmt: skip
    """``hands`` (per hand index: its model, its fit's inputs, its fit, its start; batches of
    one) with the fits of the hands of ``pairs`` (index pairs that touch) refined together
    (``twohands.refine_touching``, ``cfg.together_cfg``); the others as they were."""
    if not pairs:
        return hands
    order = sorted({i for p in pairs for i in p})
    at = {i: n for n, i in enumerate(order)}
    models, inputs, results, inits = (list(t) for t in zip(*(hands[i] for i in order),
                                                           strict=True))  # fmt: skip
    results = refine_touching(models, inputs, results, [(at[a], at[b]) for a, b in pairs],
                              cfg.fit, cfg.together_cfg, inits)  # fmt: skip
    out = dict(hands)
    for i, m, x, r, s in zip(order, models, inputs, results, inits, strict=True):
        out[i] = (m, x, r, s)
    return out


def overlapping_hands(detections: list[HandDetection], cfg: ReconstructConfig) -> set[int]:
    """Indices of the hands whose keypoint boxes overlap another's (``touching_pairs``, grown
    by ``cfg.together_cfg.pad``)."""
    if len(detections) < 2:
        return set()
    return {i for p in touching_pairs(detections, cfg.together_cfg.pad) for i in p}


def fit_config_for(fit_cfg: FitConfig, overlaps: bool, cfg: ReconstructConfig,
                   touches: bool = False) -> FitConfig:  # fmt: skip
    """``fit_cfg`` for a hand: one whose box overlaps another's, or one fitted as touching
    another (``overlaps``), has no silhouette stage unless ``cfg.silhouette_touching`` (its
    steps are not given to the keypoint stage: the touching hands' fits stay as they were
    measured); one fitted as one of a touching pair (``touches``) takes the pair's hand size
    (``TogetherConfig.hand_size``)."""
    if overlaps and not cfg.silhouette_touching:
        fit_cfg = replace(fit_cfg, silhouette_iters=0)
    if touches:
        fit_cfg = replace(fit_cfg, hand_size=cfg.together_cfg.hand_size)
    return fit_cfg


def hand_rig(models: dict[str, HandModel], hand: HandReconstruction) -> HandRig | None:
    """A reconstructed hand's skeleton for a skinned .glb (``export.HandRig``): its side's
    layer posed by its parameters (``SkinnedHand.joint_transforms``: OpenHand, MANO, the box
    hand); None for a layer without one (NIMBLE) or without that side."""
    layer = models.get(hand.side)
    if layer is None or not hasattr(layer, "joint_transforms"):
        return None
    dtype = layer.v_template.dtype
    args = {k: torch.as_tensor(np.asarray(hand.parameters[k]), dtype=dtype)[None]
            for k in ("global_orient", "hand_pose", "betas", "transl")}  # fmt: skip
    with torch.no_grad():
        world, rest_joints, _ = (t[0].double().numpy() for t in layer.joint_transforms(**args))
    return HandRig(world, rest_joints, layer.parents.numpy(), tuple(layer.joint_names),
                   layer.weights.double().numpy())  # fmt: skip


@dataclass
class PhotoResult:
    """What ``reconstruct_photo`` did for one photo: its hands (none: nothing written), its
    K (3, 3) and where K came from ("given", "exif", "default"), the files written, and the
    files of an earlier run of its name that this one does not write, removed (no hand: all
    of them; else, e.g., the meshes of a hand no longer found, another format's); the hands
    found of a side the model lacks (``Reconstructor.sides``), not reconstructed."""

    hands: list[HandReconstruction]
    K: np.ndarray
    K_source: str
    files: list[Path]
    removed: list[Path] = field(default_factory=list)
    unsupported: list[HandDetection] = field(default_factory=list)


def reconstruct_photo(
    rec: Reconstructor,
    image: np.ndarray,
    out_dir: str | Path,
    stem: str,
    name: str = "",
    K: np.ndarray | None = None,
    path: str | Path | None = None,
    formats: tuple[str, ...] = (".glb",),
    stage: Callable[[str], None] | None = None,
    overwrite: bool = False,
    rig: bool = False,
) -> PhotoResult:
    """The hands of one photo (H, W, 3) uint8 RGB and their files ``out_dir/stem``.*.

    K: the user's (3, 3), else the photo's EXIF (``path``), else the default. A photo without
    a hand writes nothing and removes what an earlier run wrote for ``stem`` (it would
    mislead). Files in the way that are not monohand's results of this photo (by the name
    ``name`` and the file's digest; ``overwrite``: another photo's results may go) stop it
    with an ``outputs.OutputClash`` before anything is fitted, written or removed. ``rig``:
    .glb files carry each hand's skeleton (``hand_rig``). ``stage`` hears what is being done
    (the web page shows it)."""
    say = stage or (lambda _: None)
    digest = image_digest(Path(path).read_bytes() if path else image)
    # before the work: the record and the files one hand would need (a user's hand_0.glb)
    check_outputs(out_dir, stem, output_files(out_dir, stem, 1, formats), name, digest,
                  overwrite)  # fmt: skip
    Kimg, source = camera_for_image(path, image.shape[:2], K)
    say("detecting hands")
    detections = rec.detect(image)
    unsupported = [d for d in detections if d.side not in rec.sides]
    detections = [d for d in detections if d.side in rec.sides]
    hands = []
    if detections:
        say(f"fitting {len(detections)} hand(s)")
        hands = rec.reconstruct(image, Kimg, detections)
    # what an earlier run of ``stem`` wrote and this one does not (all of it, for no hand)
    writes = output_files(out_dir, stem, len(hands), formats) if hands else frozenset()
    removed = check_outputs(out_dir, stem, writes, name, digest, overwrite)
    if not hands:
        for old in removed:
            old.unlink()
        return PhotoResult([], Kimg, source, [], removed, unsupported)
    say("writing the mesh and the overlay")
    files = write_outputs(out_dir, stem, image, Kimg, hands, source, name, formats, rec.cfg.model,
                          method=rec.cfg.method, network=rec.network_name, digest=digest,
                          overwrite=overwrite, model_path=rec.model_path,
                          rigs=[hand_rig(rec.models, h) for h in hands] if rig else None
                          )  # fmt: skip
    return PhotoResult(hands, Kimg, source, files, removed, unsupported)
