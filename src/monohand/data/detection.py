"""A detected hand: the record every detector gives and every reconstruction reads.

``HandDetection`` is what MediaPipe's labeller (``data.mediapipe_hands``), the window search
(``data.window_search``), a video's tracker and a detector of one's own give to
``Reconstructor``: 21 keypoints in the image's pixels (FreiHAND's order), a confidence per
joint, the hand's score and side, and MediaPipe's metric landmarks where there are some. It
checks its fields when made, naming the one that is wrong; ``check_detections`` checks them
against the image they should belong to. A detector that gives no per-joint confidence can
take one from how far each joint moves between views of the hand (``spread_confidence``,
``views_confidence``: the labeller's test-time augmentation and the window search's
re-crops): a joint placed in the same spot however the image is shown is probably right.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from ..models.joints import NUM_KEYPOINTS

NUM_JOINTS = NUM_KEYPOINTS  # (the name this module has always used)


@dataclass
class HandDetection:
    """One detected hand. Pixels of the input image; FreiHAND joint order (as MediaPipe's).

    Attributes:
        keypoints: (21, 2) pixels.
        confidence: (21,) in [0, 1].
        score: MediaPipe's score of the hand, its handedness category's (the probability
            of ``side``: 0.5 is a coin flip; MediaPipe does not give its presence; averaged
            over the image and its augmented copies with ``side_from_views``); the
            window search's hands (``data.window_search``) carry their presence instead, and
            hands seen only in the augmented copies (``more_from_views``) their sightings'
            mean score times the share of copies that saw them. One's own detector: the
            probability that the hand is a ``side`` hand (0.5 where it cannot tell); a
            video's tracks weigh their side votes by it (``video.track``).
        side: "left" or "right" as seen in an ordinary (unmirrored) photo.
        world: (21, 3) MediaPipe's metric landmarks (hand-centred, metres), or None.
    """

    keypoints: np.ndarray
    confidence: np.ndarray
    score: float
    side: str
    world: np.ndarray | None = None

    def __post_init__(self) -> None:
        # A detector of one's own is the likeliest source of a malformed hand: said here, by
        # its field, rather than deep inside a fit. Arrays become NumPy arrays (float ones
        # keep their precision).
        self.keypoints = _float_array(self.keypoints, (21, 2), "keypoints", "pixels")
        self.confidence = _float_array(self.confidence, (21,), "confidence",
                                       "in [0, 1]; np.ones(21) where the detector gives none")
        if ((self.confidence < 0) | (self.confidence > 1)).any():
            raise ValueError("HandDetection.confidence: expected (21,) in [0, 1], got values "
                             f"from {self.confidence.min():g} to {self.confidence.max():g}")
        if self.world is not None:
            self.world = _float_array(self.world, (21, 3), "world", "metres, hand-centred")
        if self.side not in ("left", "right"):
            raise ValueError(f"HandDetection.side: 'left' or 'right' (lower case, the hand as "
                             f"seen in an unmirrored photo), got {self.side!r}")
        if not isinstance(self.score, numbers.Real) or not np.isfinite(self.score):
            raise ValueError(f"HandDetection.score: expected a finite number, got "
                             f"{self.score!r}")
        self.score = float(self.score)

    def __repr__(self) -> str:
        # A line, not the arrays (~2 KB per hand in a notebook), as HandReconstruction's.
        x0, y0 = self.keypoints.min(0)
        x1, y1 = self.keypoints.max(0)
        return (f"HandDetection(side={self.side!r}, score={self.score:.2f}, keypoints in "
                f"x {x0:.0f}-{x1:.0f}, y {y0:.0f}-{y1:.0f} px, confidence "
                f"{self.confidence.min():.2f}-{self.confidence.max():.2f}, "
                f"world={'yes' if self.world is not None else 'None'})")

    @property
    def size(self) -> float:
        """Wrist to middle-finger knuckle, pixels."""
        return float(np.linalg.norm(self.keypoints[9] - self.keypoints[0]))


def same_hand(a: HandDetection, b: HandDetection) -> bool:
    """Two detections of one hand: keypoints on average within half a hand size, or (of one
    side: a left and a right hand may clasp) keypoint boxes overlapping by more than half the
    smaller one."""
    if np.linalg.norm(a.keypoints - b.keypoints, axis=1).mean() < 0.5 * max(a.size, b.size):
        return True
    if a.side != b.side:
        return False
    lo = np.maximum(a.keypoints.min(0), b.keypoints.min(0))
    hi = np.minimum(a.keypoints.max(0), b.keypoints.max(0))
    inter = np.prod(np.clip(hi - lo, 0, None))
    areas = [np.prod(d.keypoints.max(0) - d.keypoints.min(0)) for d in (a, b)]
    return inter > 0.5 * max(min(areas), 1e-9)


def _float_array(x, shape: tuple[int, ...], name: str, what: str) -> np.ndarray:
    """``x`` as a finite float array of ``shape`` (a float array as it is, anything else as
    float64), or a ValueError naming ``HandDetection.<name>``."""
    a = None
    if isinstance(x, np.ndarray) and x.dtype.kind == "f":
        a = x
    elif x is not None:
        try:
            a = np.asarray(x, np.float64)
        except (TypeError, ValueError):
            pass
    if a is None or a.shape != shape:
        got = f"shape {a.shape}" if a is not None else type(x).__name__
        raise ValueError(f"HandDetection.{name}: expected {shape} ({what}), got {got}")
    if not np.isfinite(a).all():
        bad = np.flatnonzero(~np.isfinite(a.reshape(shape[0], -1)).all(1)).tolist()
        raise ValueError(f"HandDetection.{name}: not finite (NaN or inf) at joints {bad}")
    return a


class SideWarning(UserWarning):
    """Hands of a side the reconstructor's model lacks (NIMBLE has right hands only) were
    given and not reconstructed (``reconstruct.Reconstructor.sides``); the command line says
    it itself."""


@runtime_checkable
class Detector(Protocol):
    """What ``reconstruct.Reconstructor(detector=...)`` asks of a hand detector
    (``data.mediapipe_hands.MediaPipeHands`` is one): ``detect(image, windows)``, the hands of an
    (H, W, 3) uint8 RGB image as ``HandDetection``s, best first ([] when none); ``windows``
    is MediaPipe's window search switch (None: the detector's default; videos pass False),
    which another detector may ignore."""

    def detect(self, image: np.ndarray, windows: bool | None = None) -> list[HandDetection]:
        ...


def check_detections(detections, size: tuple[int, int]) -> list[HandDetection]:
    """``detections`` as a list, or a ValueError for a hand whose keypoints cannot be pixels
    of an image of ``size`` (H, W): spanning under 2 pixels (keypoints normalised to [0, 1],
    as MediaPipe's Python API gives them, are the usual cause) or wholly outside the image (a
    detection of another image, or of another size); TypeError for what is not a
    ``HandDetection``."""
    if detections is None:
        raise TypeError("detections: a list of HandDetection, got None ([] for none)")
    if isinstance(detections, HandDetection):
        raise TypeError("detections: a list of HandDetection, got one HandDetection (give "
                        "[detection])")
    detections = list(detections)
    h, w = size
    for i, d in enumerate(detections):
        if not isinstance(d, HandDetection):
            raise TypeError(f"detection {i}: expected a HandDetection, got {type(d).__name__}")
        lo, hi = d.keypoints.min(0), d.keypoints.max(0)
        if (hi - lo).max() < 2.0:
            raise ValueError(f"detection {i}: its keypoints span {(hi - lo).max():.3g} pixels: "
                             "normalised to [0, 1]? Give pixels (x times the image's width, "
                             f"{w}, and y times its height, {h})")  # fmt: skip
        if (hi < 0).any() or lo[0] > w or lo[1] > h:
            raise ValueError(f"detection {i}: its keypoints (x {lo[0]:.0f}..{hi[0]:.0f}, y "
                             f"{lo[1]:.0f}..{hi[1]:.0f}) lie wholly outside the {w}x{h} "
                             "image: a detection of another image, or of another size?")
    return detections


def hand_size(keypoints: np.ndarray) -> float:
    """A hand's size in the image: wrist to middle-finger knuckle of its (21, 2) keypoints,
    pixels, at least 1 (the unit of the distances that decide whether two sightings are one
    hand)."""
    return max(float(np.linalg.norm(keypoints[9] - keypoints[0])), 1.0)


def spread_confidence(score: float, spread: np.ndarray, size: float) -> np.ndarray:
    """Per-joint confidence (21,) from how far each joint moved between views of the hand
    (``spread``, pixels) relative to its size (wrist to middle knuckle, pixels):
    ``score * exp(-(spread / (0.08 size))^2)`` (``data.mediapipe_hands``' module doc says why)."""
    return score * np.exp(-((spread / (0.08 * size)) ** 2))


def views_confidence(score: float, distances: list[np.ndarray | None], size: float
                     ) -> np.ndarray:  # fmt: skip
    """Per-joint confidence (21,) of a hand from its distances to each transformed copy's
    sighting of it ((21,) pixels per copy; None for a copy that missed the hand).

    The hand as a whole is scored as ``spread_confidence`` does with a miss counting a whole
    hand ``size``, by its best joint: a hand that copies miss stays doubtful. How its
    joints compare comes from the copies that saw it only: counted in, a miss adds the same
    hand size to every joint's spread, and inside the square of the Gaussian that turns the
    sighting copies' differences of a few pixels into ratios of a hundredth and less (one
    miss in three copies), so that the fit (which weighs a hand's joints relative to its
    best, ``fit.relative_confidence``) kept 1-6 of 21 joints of such hands (in the prayer
    photo, one 50 px off its keypoints). When every copy saw the
    hand this is ``spread_confidence`` of their mean distance; when none did, its joints are
    equal (``score * exp(-156)``)."""
    if not distances:
        return np.full(NUM_JOINTS, score)
    if all(d is not None for d in distances):
        return spread_confidence(score, np.mean(distances, axis=0), size)
    counted = [np.full(NUM_JOINTS, size) if d is None else d for d in distances]
    hand = spread_confidence(score, np.mean(counted, axis=0), size).max()
    seen = [d for d in distances if d is not None]
    if not seen:
        return np.full(NUM_JOINTS, hand)
    log_rel = -((np.mean(seen, axis=0) / (0.08 * size)) ** 2)
    return hand * np.exp(log_rel - log_rel.max())
