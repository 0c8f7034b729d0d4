"""MediaPipe's hand detector, with per-joint confidences: the photos' and videos' detector,
and the labeller of training sets (``detect_files``, written as ``data.detection_file``).

``MediaPipeHands`` runs MediaPipe's hand landmarker offline (the bundle in ``assets/``).
MediaPipe gives a score per hand, none per joint. Ours: run the landmarker on the image and on
``tta`` transformed copies (mirror, and turns of +-20 degrees about the hand), map the copies'
landmarks back, and measure how far each joint moves. A joint that the network places in the
same spot however the image is presented is probably right; one that wanders is a guess. The
confidence of joint j is ``hand_score * exp(-(spread_j / (0.08 * hand_size))^2)``, hand_size
the wrist-to-middle-knuckle distance in pixels (a copy that misses the hand counts a whole
hand size in the hand's best joint, and not in the other joints' ratios to it:
``data.detection.views_confidence``). ``tests/test_keypoints.py`` shows on real photos that
low confidence goes with high error. The hands come as ``data.detection.HandDetection``.
"""

from __future__ import annotations

import atexit
import math
import weakref
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..native_log import quiet_native
from .detection import NUM_JOINTS, HandDetection, hand_size, views_confidence
from .images import check_rgb

if TYPE_CHECKING:
    from collections.abc import Callable


# The augmented copies whose detections give the per-joint confidences (``tta``): the image
# mirrored, and turned 20 degrees either way.
TTA_VIEWS = ("mirror", "rot+", "rot-")


def default_model_path() -> Path:
    """The MediaPipe hand bundle that ships in the package (``data/assets``)."""
    return Path(str(resources.files("monohand.data") / "assets" / "hand_landmarker.task"))


def _affine_rotation(angle_deg: float, center: np.ndarray) -> np.ndarray:
    """2x3 matrix rotating pixels by ``angle_deg`` about ``center`` (as cv2.getRotationMatrix2D)."""
    a = np.deg2rad(angle_deg)
    c, s = np.cos(a), np.sin(a)
    return np.array(
        [[c, s, (1 - c) * center[0] - s * center[1]], [-s, c, s * center[0] + (1 - c) * center[1]]]
    )


def _turn_xy(points: np.ndarray, linear: np.ndarray) -> np.ndarray:
    """(N, 3) points with their x, y mapped by a 2x2 rotation (z kept)."""
    out = points.copy()
    out[:, :2] = points[:, :2] @ linear.T
    return out


def one_per_hand(found: list[HandDetection]) -> list[HandDetection]:
    """Detections of several views of one image merged, best-scored first: of two whose
    keypoints lie within half the kept one's size of each other on average (one hand seen
    twice), the higher score is kept."""
    merged: list[HandDetection] = []
    for d in sorted(found, key=lambda d: -d.score):
        if all(np.linalg.norm(d.keypoints - m.keypoints, axis=1).mean() >= 0.5 * m.size
               for m in merged):  # fmt: skip
            merged.append(d)
    return merged


def _one_per_side(found: list[HandDetection]) -> list[HandDetection]:
    """``one_per_hand`` among each side's detections: two hands labelled alike that lie within
    half the better one's size of each other are one hand seen twice (two real hands pressed
    together carry two labels, whatever their keypoints' distance)."""
    kept = [d for side in ("right", "left")
            for d in one_per_hand([h for h in found if h.side == side])]  # fmt: skip
    return sorted(kept, key=lambda d: -d.score)


def _turned_copies(h: int, w: int) -> list[tuple[Callable, Callable, np.ndarray, bool]]:
    """``MediaPipeHands``'s whole-image copies of an h x w image (``retry_turns``): for the
    mirrored image and the image turned a quarter turn counter-clockwise (``np.rot90``, k=1)
    and clockwise (k=3), (image -> copy, the copy's (N, 2) pixels -> the image's, the 2x2 map
    of the copy's in-plane axes to the image's, whether the copy is mirrored)."""

    def mirror_back(uv):
        return np.stack([w - 1 - uv[:, 0], uv[:, 1]], 1)

    def ccw_back(uv):  # rot90(image, 1)[v', u'] = image[u', w - 1 - v']
        return np.stack([w - 1 - uv[:, 1], uv[:, 0]], 1)

    def cw_back(uv):  # rot90(image, 3)[v', u'] = image[h - 1 - u', v']
        return np.stack([uv[:, 1], h - 1 - uv[:, 0]], 1)

    return [(lambda im: im[:, ::-1], mirror_back, np.diag([-1.0, 1.0]), True),
            (lambda im: np.rot90(im, 1), ccw_back, np.array([[0.0, -1.0], [1.0, 0.0]]), False),
            (lambda im: np.rot90(im, 3), cw_back, np.array([[0.0, 1.0], [-1.0, 0.0]]), False)]


_OPEN: weakref.WeakSet = weakref.WeakSet()  # detectors not closed yet


@atexit.register  # (at import, before MediaPipe's own hook: atexit runs last-registered first)
def _close_open_detectors() -> None:
    """Close the detectors their users left open, once the program's threads have finished.
    A landmarker still open at teardown is closed by its own ``__del__``, which then finds
    MediaPipe's module emptied and prints a traceback. By now MediaPipe's thread pool is shut
    down: its shutdown flag (its own exit hook's, set here too, whichever ran first) turns
    the native close into nothing, so that closing only marks each landmarker closed."""
    try:
        from mediapipe.tasks.python.core import mediapipe_c_utils

        getattr(mediapipe_c_utils, "_python_exit", lambda: None)()
    except ImportError:  # (no detector was made: nothing to close)
        return
    for detector in list(_OPEN):
        try:
            detector.close()
        except Exception:  # noqa: BLE001  (at exit: the others are still closed)
            pass


class MediaPipeHands:
    """MediaPipe's hand landmarker with per-joint confidences (see the module doc).

    Args:
        model_path: a ``.task`` bundle; default: the shipped one.
        max_hands: hands per image.
        min_score: minimum detection / presence score.
        tta: augmentations for the confidence: "mirror", "rot+", "rot-" (empty: confidence =
            hand score for every joint).
        average: also return the mean over the views (the image and each copy that found the
            hand, mapped back) of the 2D keypoints and of the metric world landmarks, instead of
            the plain image's: a test-time-augmentation ensemble.
        retry_pad: when no hand is found, look again in the image framed by a grey border of
            this fraction of its longer side on every side (0: never). MediaPipe's palm
            detector misses hands that fill the frame or leave it: of 150 OpenHand renders
            whose hand spans 0.9-1.4 frames it found 48, and 89 with a 0.3 border
            (``bench/bench_detect.py``).
        retry_tiles: when the bordered copy finds nothing either, look in four overlapping
            tiles (the left, right, top and bottom two thirds of the image) and merge what they
            find (one detection per hand: the higher score where two tiles found the same).
            The palm detector sees the whole image at 192 x 192 and misses hands that are
            large, cut by the border and partly hidden (two hands on a trumpet); a tile shows
            them bigger relative to the rest, and without the occluder's full extent. Off by
            default: on renders it finds 9-10 more of 150 hands, but their keypoints are
            38-80 px off at 256² (``bench/bench_detect.py --tiles``), worse than none.
        retry_turns: when the bordered copy finds nothing either, look in the mirrored
            image and in the image turned a quarter either way, and keep what they find
            (mapped back; one detection per hand, the best-scored). The palm detector's
            answer depends on how a hand is presented (a mirrored copy finds hands the image
            does not, and the other way round). Off by default: before the window search on
            renders it adds 6 hands and 6 wrong detections over 700 (``bench/bench_detect.py
            --turns``, 2026-12-06).
        retry_windows: when nothing else found a hand, this function of (image, max_hands)
            looks again (``data.window_search.window_searcher``: the landmark network alone
            over windows of the image; seconds per image on a CPU). None: no such search.
        more_from_views: a hand that the augmented copies of ``tta`` find (at least this
            many of them: a copy rotated about a found hand shows its neighbour anew) and
            the image itself does not is kept too, at no extra detector run (0: never).
            ``ReconstructConfig`` uses 2, chosen on rendered two-hand scenes.
        one_per_side: of two hands of MediaPipe's own run with the same side whose keypoints
            lie within half the better one's size of each other on average, the better only
            (``one_per_hand`` among one side's: MediaPipe's landmarks can settle twice on
            one hand from two palm boxes). Chosen on renders (2026-12-06, rule set before:
            no set finds fewer hands or more wrong ones, one fewer wrong somewhere;
            ``bench/bench_two_hand_recall.py --settings 2,2s``): two-hand scenes 6 cm apart
            11 -> 10 wrong, every other set (two-hand scenes 1.6 and 16 cm apart, 700
            single-hand renders, 20 hand-free photos) unchanged, no hand lost.
        side_from_views: a hand's side (and ``score``) by the vote of the image and the
            copies of ``tta`` that found it (``side_vote``) instead of the image's alone.
            Chosen on renders of known side (``bench/bench_handedness.py``, 2026-12-06: 751
            found hands of 550 right-hand renders and their mirrors): 164 -> 153 with the
            wrong side. No copies (``tta=()``): the image's label either way.
    Use as a context manager, or call ``close()``.
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        max_hands: int = 2,
        min_score: float = 0.3,
        tta: tuple[str, ...] = TTA_VIEWS,
        average: bool = False,
        retry_pad: float = 0.3,
        retry_tiles: bool = False,
        retry_turns: bool = False,
        retry_windows: Callable[[np.ndarray, int], list[HandDetection]] | None = None,
        more_from_views: int = 0,
        side_from_views: bool = True,
        one_per_side: bool = True,
    ) -> None:
        from mediapipe.tasks import python as mp_tasks
        from mediapipe.tasks.python import vision

        if not math.isfinite(retry_pad) or retry_pad < 0:
            raise ValueError(f"retry_pad must be a finite fraction >= 0, got {retry_pad}")
        if isinstance(more_from_views, bool) or not isinstance(more_from_views, int) or (
                more_from_views < 0):  # fmt: skip
            raise ValueError(f"more_from_views must be a whole number of copies >= 0 (0: "
                             f"never), got {more_from_views!r}")  # fmt: skip
        path = Path(model_path) if model_path else default_model_path()
        if not path.is_file():
            raise FileNotFoundError(f"{path}: MediaPipe hand model bundle not found")
        opts = vision.HandLandmarkerOptions(
            base_options=mp_tasks.BaseOptions(model_asset_path=str(path)),
            # Never fewer than two: asked for one hand, MediaPipe reads only its best palm
            # candidate, in every augmented copy too, which may then find the other hand of
            # the photo (every joint's confidence 0) and keep a lower-scored hand; ``detect``
            # cuts its best-scored hands to ``max_hands`` instead.
            num_hands=max(max_hands, 2),
            min_hand_detection_confidence=min_score,
            min_hand_presence_confidence=min_score,
        )
        with quiet_native():
            self._landmarker = vision.HandLandmarker.create_from_options(opts)
        _OPEN.add(self)
        self.tta = tta
        self.average = average
        self.side_from_views = side_from_views
        self.retry_pad = retry_pad
        self.retry_tiles = retry_tiles
        self.retry_turns = retry_turns
        self.retry_windows = retry_windows
        self.more_from_views = more_from_views
        self.one_per_side = one_per_side
        self.max_hands = max_hands

    @property
    def closed(self) -> bool:
        """Whether ``close`` was called (``detect`` then refuses)."""
        return self._landmarker is None

    def close(self) -> None:
        if self._landmarker is not None:
            with quiet_native():
                self._landmarker.close()
            self._landmarker = None

    def __enter__(self) -> MediaPipeHands:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _run(self, image: np.ndarray) -> list[tuple[np.ndarray, float, str, np.ndarray]]:
        import mediapipe as mp

        img = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(image))
        with quiet_native():
            res = self._landmarker.detect(img)
        h, w = image.shape[:2]
        out = []
        for lms, hd, world in zip(
            res.hand_landmarks, res.handedness, res.hand_world_landmarks, strict=True
        ):
            xy = np.array([[p.x * w, p.y * h] for p in lms])
            wl = np.array([[p.x, p.y, p.z] for p in world])
            # Measured on ../shared/data/realhands (right for 44 of 45 hands of every fourth
            # image, README): this bundle's label is the hand as seen in the unmirrored
            # photo, despite the "mirrored selfie" note of MediaPipe's legacy docs.
            side = hd[0].category_name.lower()
            out.append((xy, float(hd[0].score), side, wl))
        return out

    def detect(self, image: np.ndarray, windows: bool | None = None) -> list[HandDetection]:
        """Hands in an RGB uint8 image (H, W, 3), best first; [] when none. Keypoints are in
        the image's pixels also when the hand was found in the bordered copy (``retry_pad``:
        every view then comes from that copy, so the confidences compare alike).
        ``windows=False`` skips this call's ``retry_windows``."""

        check_rgb(image)
        if self._landmarker is None:
            raise RuntimeError("this MediaPipeHands was closed (close(), or the end of its "
                               "with block): make a new one")  # fmt: skip
        return self._find(image, windows)[: self.max_hands]

    def _find(self, image: np.ndarray, windows: bool | None) -> list[HandDetection]:
        """``detect``'s hands, best first, before the cut to ``max_hands``."""
        import cv2

        hands = self._detect(image)
        if hands:
            return hands
        if self.retry_pad > 0:
            p = int(round(self.retry_pad * max(image.shape[:2])))
            framed = cv2.copyMakeBorder(image, p, p, p, p, cv2.BORDER_CONSTANT,
                                        value=(128,) * 3)  # fmt: skip
            hands = self._detect(framed)
            for d in hands:
                d.keypoints = d.keypoints - p
        if not hands and self.retry_turns:
            hands = self._detect_turned(image)
        if not hands and self.retry_tiles:
            hands = self._detect_tiles(image)
        if not hands and self.retry_windows is not None and windows is not False:
            hands = self.retry_windows(image, self.max_hands)
        return hands

    def _detect_turned(self, image: np.ndarray) -> list[HandDetection]:
        """Hands found in the mirrored image and in the image turned a quarter turn
        counter-clockwise and clockwise (see ``retry_turns``), in the image's pixels, with
        their world landmarks in its axes and their side as seen in it; one per hand (of two
        within half a hand size on average, the higher score), best first."""
        h, w = image.shape[:2]
        found: list[HandDetection] = []
        for copy, back, linear, mirrored in _turned_copies(h, w):
            for d in self._detect(np.ascontiguousarray(copy(image))):
                world = None if d.world is None else d.world.copy()
                if world is not None:
                    world[:, :2] = world[:, :2] @ linear.T
                side = _OTHER_SIDE[d.side] if mirrored else d.side
                found.append(HandDetection(back(d.keypoints), d.confidence, d.score, side,
                                           world))  # fmt: skip
        return one_per_hand(found)

    def _detect_tiles(self, image: np.ndarray) -> list[HandDetection]:
        """Hands found in the four overlapping two-thirds tiles (see ``retry_tiles``), in the
        image's pixels, merged: of two detections of one hand (mean keypoint distance under
        half the hand's size) the higher score is kept."""
        h, w = image.shape[:2]
        tiles = ((0, 0, w * 2 // 3, h), (w // 3, 0, w, h), (0, 0, w, h * 2 // 3), (0, h // 3, w, h))
        found: list[HandDetection] = []
        for x0, y0, x1, y1 in tiles:
            if x1 <= x0 or y1 <= y0:  # (an image a pixel or two wide)
                continue
            for d in self._detect(np.ascontiguousarray(image[y0:y1, x0:x1])):
                d.keypoints = d.keypoints + np.array([x0, y0], dtype=float)
                found.append(d)
        return one_per_hand(found)[: self.max_hands]

    def _detect(self, image: np.ndarray) -> list[HandDetection]:
        import cv2

        base = self._run(image)
        h, w = image.shape[:2]
        hands = []
        mirrored = None  # one mirrored run serves every hand
        # every copy's hands, mapped back: (xy, world, score, side, the copy's number)
        sightings: list[tuple] = []
        copies = 0
        for xy, score, side, world in base:
            size = hand_size(xy)
            views = []
            for aug in self.tta:
                # Each copy's (keypoints, world landmarks) mapped back to the image: the world
                # landmarks are in the image's axes (x right, y down), so they turn and mirror
                # with it; a mirrored hand's side is the other.
                if aug == "mirror":
                    if mirrored is None:
                        flip = np.array([-1.0, 1.0, 1.0])
                        mirrored = [(np.stack([w - 1 - f[0][:, 0], f[0][:, 1]], 1), f[3] * flip,
                                     f[1], _OTHER_SIDE[f[2]], copies)
                                    for f in self._run(np.ascontiguousarray(image[:, ::-1]))]
                        sightings += mirrored
                        copies += 1
                    back = mirrored
                else:
                    angle = 20.0 if aug == "rot+" else -20.0
                    m = _affine_rotation(angle, xy.mean(0))
                    rotated = cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR,
                                             borderMode=cv2.BORDER_REFLECT)  # fmt: skip
                    inv = cv2.invertAffineTransform(m)
                    back = [(f[0] @ inv[:, :2].T + inv[:, 2], _turn_xy(f[3], inv[:, :2]), f[1],
                             f[2], copies) for f in self._run(rotated)]  # fmt: skip
                    sightings += back
                    copies += 1
                # The same hand: the copy whose keypoints are closest on average.
                if back:
                    dists = [np.linalg.norm(b[0] - xy, axis=1).mean() for b in back]
                    k = int(np.argmin(dists))
                    views.append(back[k] if dists[k] < size else None)
                else:
                    views.append(None)
            if self.side_from_views:
                side, score = side_vote([(side, score)] + [(v[3], v[2]) for v in views
                                                           if v is not None])  # fmt: skip
            conf = views_confidence(score, [None if v is None else
                                            np.linalg.norm(v[0] - xy, axis=1)
                                            for v in views], size)  # fmt: skip
            if self.average:
                kept = [(xy, world)] + [v for v in views if v is not None]
                xy = np.mean([v[0] for v in kept], axis=0)
                world = np.mean([v[1] for v in kept], axis=0)
            hands.append(HandDetection(xy, conf, score, side, world))
        hands.sort(key=lambda d: -d.score)
        if self.one_per_side:
            hands = _one_per_side(hands)
        if self.more_from_views:  # after the image's own hands: never in place of one
            hands += _seen_in_copies(sightings, base, self.more_from_views, copies, (h, w))
        return hands


_OTHER_SIDE = {"left": "right", "right": "left"}


def side_vote(sightings: list[tuple[str, float]]) -> tuple[str, float]:
    """A hand's side from its sightings: (side, that side's score) each, as seen in the image
    (a mirrored copy's side turned back). MediaPipe's handedness score is the probability of
    its label, so each sighting gives P(right) = score or 1 - score; their mean decides (an
    exact 0.5: "right"). Returns the side and its mean probability (>= 0.5)."""
    if not sightings:
        raise ValueError("side_vote: no sighting")
    p = float(np.mean([s if side == "right" else 1.0 - s for side, s in sightings]))
    return ("right", p) if p >= 0.5 else ("left", 1.0 - p)


def _seen_in_copies(sightings: list[tuple], base: list[tuple], least: int, copies: int,
                    size_hw: tuple[int, int]) -> list[HandDetection]:  # fmt: skip
    """Hands the augmented copies found that the image itself did not (``MediaPipeHands``'s
    ``more_from_views``), best first.

    ``sightings``: (xy, world, score, side, copy) of the ``copies`` copies, mapped back to
    the image of ``size_hw`` (H, W). Those farther than its size from every hand of ``base``
    (the image's own) and centred inside the image (a turned copy's reflected border can
    show a hand outside it) are grouped: the same hand when under half the larger size
    apart on average, the best-scored first. A group seen by at least ``least`` different
    copies is a hand: the mean of its sightings, scored as a found hand is
    (``views_confidence``: a copy that missed it counts against the whole hand), so that it
    is never surer than the copies that saw it; its score the sightings' mean times the share
    of copies that saw it, its side the best sighting's."""
    h, w = size_hw

    def inside(xy: np.ndarray) -> bool:
        cx, cy = xy.mean(0)
        return 0 <= cx < w and 0 <= cy < h

    far = [v for v in sightings if inside(v[0])
           and all(np.linalg.norm(v[0] - b[0], axis=1).mean() >= hand_size(b[0])
                   for b in base)]  # fmt: skip
    groups: list[list[tuple]] = []
    for v in sorted(far, key=lambda v: -v[2]):
        for g in groups:
            if (np.linalg.norm(v[0] - g[0][0], axis=1).mean()
                    < 0.5 * max(hand_size(v[0]), hand_size(g[0][0]))):  # fmt: skip
                g.append(v)
                break
        else:
            groups.append([v])
    out = []
    for g in groups:
        seen = {v[4] for v in g}
        if len(seen) < least:
            continue
        xy = np.mean([v[0] for v in g], axis=0)
        world = np.mean([v[1] for v in g], axis=0)
        size = hand_size(xy)
        per_copy = [np.mean([np.linalg.norm(v[0] - xy, axis=1) for v in g if v[4] == c],
                            axis=0) if c in seen else None
                    for c in range(copies)]  # fmt: skip
        score = float(np.mean([v[2] for v in g])) * len(seen) / max(copies, 1)
        out.append(HandDetection(xy, views_confidence(score, per_copy, size),
                                 score, g[0][3], world))  # fmt: skip
    out.sort(key=lambda d: -d.score)
    return out


def detect_files(files, max_hands: int = 1, tta: bool = True, progress=None):
    """MediaPipe on image files -> (xy (M, 21, 2), conf (M, 21), names (M,), unreadable:
    one message per image that could not be read (naming it and why), the number without a
    hand). An image with no hand gets one all-zero entry (confidence 0), as S2HAND's files
    do; unreadable images are skipped."""
    from .images import ImageError, read_rgb

    xy, conf, names, failed, missed = [], [], [], [], 0
    with MediaPipeHands(max_hands=max_hands, tta=TTA_VIEWS if tta else ()) as det:
        for k, f in enumerate(files):
            try:
                hands = det.detect(read_rgb(f))[:max_hands]
            except ImageError as e:
                failed.append(str(e))
                continue
            if not hands:
                missed += 1
                xy.append(np.zeros((NUM_JOINTS, 2)))
                conf.append(np.zeros(NUM_JOINTS))
                names.append(str(f))
            for h in hands:
                xy.append(h.keypoints)
                conf.append(h.confidence)
                names.append(str(f))
            if progress:
                progress(k + 1)
    return (
        np.array(xy).reshape(-1, NUM_JOINTS, 2),
        np.array(conf).reshape(-1, NUM_JOINTS),
        names,
        failed,
        missed,
    )
