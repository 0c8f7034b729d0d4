"""The main job: 3D hands from photos. Detect, then reconstruct, and write what people can
use.

``Reconstructor`` holds the detector and the models (or the network) and makes an image's
hands by its method (``methods``: ``reconstruct_image`` fits them, ``network_reconstruct``
runs the network on them; both give ``HandReconstruction`` records). Their files are
written by ``outputs.write_outputs``, the overlay drawn by ``viz.overlay_image``; K comes
from ``data.intrinsics.camera_for_image``. ``reconstruct_photo`` is the per-photo job of
the command and the web page: K, hands, files. ``ReconstructConfig`` and the methods'
functions are ``methods``' and are found here too.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import numpy as np
import torch

from .data.detection import Detector, HandDetection, SideWarning, check_detections
from .data.images import check_rgb
from .data.intrinsics import (
    CameraWarning,
    as_intrinsics,
    camera_for_image,
    implausible_field_of_view,
)
from .data.mediapipe_hands import TTA_VIEWS, MediaPipeHands
from .export import HandRig
from .hybrid import network_agreement
from .methods import (
    METHODS,
    MIN_CROP,
    ReconstructConfig,
    fit_config_for,
    fit_inputs,
    hands_from_fit,
    hybrid_fit_config,
    hybrid_start,
    network_reconstruct,
    overlapping_hands,
    reconstruct_image,
    refine_pairs,
    resolve_method,
    shipped_openhand,
    touching_hand_pairs,
)
from .models.assets import AssetError
from .models.base import HandModel
from .models.registry import create, load_models
from .nets.handnet import load_network
from .outputs import check_outputs, image_digest, output_files, write_outputs
from .record import HandReconstruction

# ``methods``' names, found here as before they moved there (2026-12-06)
__all__ = [
    "METHODS", "MIN_CROP", "PhotoResult", "ReconstructConfig", "Reconstructor", "fit_config_for",
    "fit_inputs", "hand_rig", "hands_from_fit", "hybrid_fit_config", "hybrid_start",
    "network_reconstruct", "overlapping_hands", "reconstruct_image", "reconstruct_photo",
    "refine_pairs", "resolve_method", "shipped_openhand", "touching_hand_pairs",
]  # fmt: skip


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
    def sides_only(self) -> str:
        """The sides said, for messages: "nimble has right hands only"."""
        return f"{self.cfg.model} has {' and '.join(self.sides)} hands only"

    def first_hands(self, detections: list[HandDetection]) -> list[HandDetection]:
        """``detections`` cut to ``cfg.max_hands``, a side the model lacks (NIMBLE: left)
        after the others, so that such hands take no place of hands it can make."""
        ordered = sorted(detections, key=lambda d: d.side not in self.sides)
        return ordered[: self.cfg.max_hands]

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
        return self.first_hands(found)

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
                          f"{self.sides_only}", SideWarning, stacklevel=3)  # fmt: skip
        if self.cfg.method == "network":
            return network_reconstruct(image, K, detections, self.net, self.net_size,
                                       self.models)  # fmt: skip
        if self.cfg.method == "hybrid":
            return reconstruct_image(image, K, detections, self.models, self.cfg, self.net,
                                     self.net_size)  # fmt: skip
        return reconstruct_image(image, K, detections, self.models, self.cfg)


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
    detections: list[HandDetection] | None = None,
    keypoints_file: str | None = None,
) -> PhotoResult:
    """The hands of one photo (H, W, 3) uint8 RGB and their files ``out_dir/stem``.*.

    K: the user's (3, 3), else the photo's EXIF (``path``), else the default. A photo without
    a hand writes nothing and removes what an earlier run wrote for ``stem`` (it would
    mislead). Files in the way that are not monohand's results of this photo (by the name
    ``name`` and the file's digest; ``overwrite``: another photo's results may go) stop it
    with an ``outputs.OutputClash`` before anything is fitted, written or removed. ``rig``:
    .glb files carry each hand's skeleton (``hand_rig``). ``stage`` hears what is being done
    (the web page shows it). ``detections``: the photo's hands from a detector of one's own
    (e.g. ``data.detection_file.load_openpose_hands``), in place of the reconstructor's;
    ``keypoints_file``: the file they were read from, recorded in the JSON."""
    say = stage or (lambda _: None)
    digest = image_digest(Path(path).read_bytes() if path else image)
    # before the work: the record and the files one hand would need (a user's hand_0.glb)
    check_outputs(out_dir, stem, output_files(out_dir, stem, 1, formats), name, digest,
                  overwrite)  # fmt: skip
    Kimg, source = camera_for_image(path, image.shape[:2], K)
    if detections is None:
        say("detecting hands")
        detections = rec.detect(image)
    else:
        detections = rec.first_hands(check_detections(detections, image.shape[:2]))
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
                          keypoints_file=keypoints_file,
                          rigs=[hand_rig(rec.models, h) for h in hands] if rig else None
                          )  # fmt: skip
    return PhotoResult(hands, Kimg, source, files, removed, unsupported)
