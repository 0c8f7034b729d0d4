"""Hand tracks across frames: which detection of this frame is which hand of the last.

Matching is the Hungarian algorithm on the distance between keypoint centres in units of the
hand's size, plus ``side_penalty`` when a detection's left/right label differs from the
track's: two hands that cross keep their tracks, yet one hand whose label flickers (MediaPipe's
handedness is a per-frame guess) stays one track. A track's side is the vote of its detections
so far, each label voting with its margin over a coin flip, ``2 * score - 1`` (the score is
MediaPipe's handedness probability, since 2026-12-06 averaged over the frame and its
augmented copies, ``data.mediapipe_hands.side_vote``: on the clip 9.79 -> 9.71 mm): a label at 0.5
counts for nothing. (With each label voting
its score, a hand labelled near 0.5 either way flipped side, and hand model, from one frame to
the next; on the rendered clip the margins change nothing, 2026-12-05.) ``side_margin``: how
far the other side must lead to turn it (0: a majority; 1.0 measured worse on the clip, 9.92
against 9.84 mm PA-MPJPE, holding a wrong first label too long). A detection farther than
``gate`` sizes from every track (pairs beyond it take no part in the assignment) starts a
new one; a track unseen for more than ``max_missed``
frames ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..data.detection import HandDetection


@dataclass
class Track:
    id: int
    centre: np.ndarray  # (2,) pixels, keypoints' mean at the last sighting
    size: float  # pixels
    last_frame: int
    side: str = "right"  # the first detection's, until the vote turns (``HandTracker``)
    votes: dict[str, float] = field(default_factory=lambda: {"left": 0.0, "right": 0.0})
    state: dict = field(default_factory=dict)  # what the reconstructor keeps per hand


class HandTracker:
    def __init__(self, gate: float = 1.5, max_missed: int = 5, side_penalty: float = 2.0,
                 side_margin: float = 0.0) -> None:  # fmt: skip
        self.gate = gate
        self.max_missed = max_missed
        self.side_penalty = side_penalty
        self.side_margin = side_margin
        self.tracks: list[Track] = []
        self._next_id = 0

    def _match(self, frame: int, detections: list[HandDetection]
               ) -> tuple[list[Track], list[Track | None]]:  # fmt: skip
        """(the tracks still alive at ``frame``, the track each detection continues or None):
        the Hungarian assignment of the module doc. Changes nothing."""
        alive = [t for t in self.tracks if frame - t.last_frame <= self.max_missed]
        assigned: list[Track | None] = [None] * len(detections)
        if detections and alive:
            dist = np.array([[np.linalg.norm(d.keypoints.mean(0) - t.centre) / t.size
                              for t in alive] for d in detections])  # fmt: skip
            differ = np.array([[d.side != t.side for t in alive] for d in detections])
            # Pairs beyond the gate can never match: left in the assignment, one of them could
            # take a detection from a track within the gate (a hand whose label turned, 0 sizes
            # away, lost to the other hand's track 1.7 sizes away, then refused by the gate).
            cost = np.where(dist <= self.gate, dist + self.side_penalty * differ, 1e9)
            rows, cols = linear_sum_assignment(cost)
            for r, c in zip(rows, cols, strict=True):
                if dist[r, c] <= self.gate:
                    assigned[r] = alive[c]
        return alive, assigned

    def unmatched(self, frame: int, detections: list[HandDetection]) -> list[Track]:
        """The tracks seen in the frame before ``frame`` that ``update`` would leave without a
        detection of ``frame`` (the same assignment: a detection continues one track at
        most): the hands the detector lost. Changes nothing."""
        alive, assigned = self._match(frame, detections)
        taken = {t.id for t in assigned if t is not None}
        return [t for t in alive if t.last_frame == frame - 1 and t.id not in taken]

    def update(self, frame: int, detections: list[HandDetection]) -> list[Track]:
        """The track of each detection (same order), updated to this frame."""
        self.tracks, assigned = self._match(frame, detections)
        for i, d in enumerate(detections):
            t = assigned[i]
            if t is None:
                t = Track(self._next_id, d.keypoints.mean(0), max(d.size, 1.0), frame, d.side)
                self._next_id += 1
                self.tracks.append(t)
                assigned[i] = t
            t.centre, t.size, t.last_frame = d.keypoints.mean(0), max(d.size, 1.0), frame
            t.votes[d.side] += max(2.0 * d.score - 1.0, 0.0)
            other = "left" if t.side == "right" else "right"
            if t.votes[other] > t.votes[t.side] + self.side_margin:
                t.side = other
        return assigned  # type: ignore[return-value]
