"""What a user should know about a photo's reconstructed hands beyond its files: which hands
were refined together as touching, a pair whose meshes still cross, a hand far from its
detected keypoints. Said by ``monohand reconstruct`` and shown by the web page, from the
hands' own records (their ``fit`` terms and detections), so both say the same; a video's,
counted over its frames (``video_notes``), by the command."""

from __future__ import annotations

from .record import HandReconstruction

# A touching pair's meshes still entering each other deeper than this (metres, the record's
# ``crossing``): the parting moves a pair 1 cm at most, so such a pair's own fits are wrong.
CROSSING = 5e-3
# A hand ending this many of its sizes (wrist to middle knuckle) from its detected keypoints,
# on average, disagrees with its detection as a whole, not in a joint or two.
FAR_FROM_KEYPOINTS = 0.5
# A photo's shorter side, pixels, under which "no hand found" says the photo is small.
SMALL_PHOTO = 100


def small_photo(shape: tuple[int, ...]) -> str:
    """What "no hand found" adds for an image of ``shape`` (H, W, ...) too small for the
    detector, or "" (the command line and the web page say it alike)."""
    h, w = shape[:2]
    if min(h, w) >= SMALL_PHOTO:
        return ""
    return (f" (a {w}x{h} photo: small for the detector, which reads a photo at 192x192 and "
            "a hand at 224x224)")


# How to have hands fitted one by one, for the command line's users and the library's alike.
ONE_BY_ONE = "--one-by-one, or ReconstructConfig(together=False)"


def hand_notes(hands: list[HandReconstruction], method: str, one_by_one: str | None = ONE_BY_ONE
               ) -> list[tuple[str, str]]:  # fmt: skip
    """(kind, text) per thing worth saying, kind "note" or "warning"; hands are named by
    their index (the files' ``_<i>``, the record's order). ``method``: the one that made them
    ("fit", "network", "hybrid"), for the advice; a ``ValueError`` for another.
    ``one_by_one``: how the reader has touching hands fitted one by one (None: where they
    cannot, as on the web page, nothing is said of it)."""
    if method not in ("fit", "network", "hybrid"):
        raise ValueError(f"hand_notes: method is the one that made the hands (fit, network or "
                         f"hybrid; a Reconstructor's cfg.method), got {method!r}")  # fmt: skip
    out = []
    pairs = [i for i, h in enumerate(hands) if "contact" in h.fit]
    if pairs:
        how = f" (one by one instead: {one_by_one})" if one_by_one else ""
        out.append(("note", f"hands {_and(pairs)} were refined together as touching{how}"))
    crossing = {i: h.fit["crossing"] for i, h in enumerate(hands)
                if h.fit.get("crossing", 0.0) > CROSSING}  # fmt: skip
    if crossing:
        out.append(("warning", f"hands {_and(list(crossing))} still enter each other by up to "
                               f"{1000 * max(crossing.values()):.1f} mm: their own fits are "
                               "likely wrong (a touching pair is parted by 1 cm at most)"))
    for i, h in enumerate(hands):
        size = max(float(h.detection.size), 1.0)
        px = float(h.fit["reprojection_px"])
        if px > FAR_FROM_KEYPOINTS * size:
            # a network that does not know such hands (one's own checkpoint, early in
            # training) pulls the hybrid's fit off them; the fit alone follows the keypoints
            hint = (", or a network that does not know such hands; the fit method follows "
                    "the keypoints alone" if method != "fit" else "")  # fmt: skip
            out.append(("warning", f"hand {i} ends {px:.0f} px from its detected keypoints on "
                                   f"average, {px / size:.1f} times its size (wrist to middle "
                                   f"knuckle: {size:.0f} px): a doubtful detection{hint}"))
    return out


def video_notes(frames: int, together: list[int], crossing: list[int],
                side_runs: dict[int, list[tuple[int, str]]] | None = None
                ) -> list[tuple[str, str]]:  # fmt: skip
    """(kind, text) for a video of ``frames`` frames: the frames (indices) in which hands
    were refined together as touching (``together``), those in which a refined pair still
    crossed by over ``CROSSING`` (``crossing``), and the tracks whose side turned
    (``side_runs``: per track, (first frame, side) of each run of one side,
    ``SequenceSummary.side_runs``); a frame's own hands are named in its record."""
    out = []
    for track, runs in sorted((side_runs or {}).items()):
        spans = ", ".join(f"{side} from frame {k}" for k, side in runs)
        out.append(("warning", f"track {track}'s side turned {len(runs) - 1} time(s) ({spans}): "
                               f"MediaPipe's left/right guess for it was near a coin flip, and "
                               f"each run of frames was fitted as its side; check its side in "
                               f"the overlay"))  # fmt: skip
    if together:
        out.append(("note", f"in {len(together)} of {frames} frames hands were refined "
                            f"together as touching ({_frames(together)}; one by one instead: "
                            f"{ONE_BY_ONE})"))  # fmt: skip
    if crossing:
        out.append(("warning", f"in {len(crossing)} frame(s) a touching pair's hands still "
                               f"enter each other by over {1000 * CROSSING:.0f} mm "
                               f"({_frames(crossing)}; "
                               "each hand's fit \"crossing\" in those frames' records): their own "
                               "fits are likely wrong"))
    return out


def _frames(ks: list[int], shown: int = 6) -> str:
    """[0, 1, 2, 7] -> 'frames 0-2, 7' (at most ``shown`` runs, then how many more)."""
    runs: list[list[int]] = []
    for k in sorted(ks):
        if runs and k == runs[-1][1] + 1:
            runs[-1][1] = k
        else:
            runs.append([k, k])
    words = [f"{a}" if a == b else f"{a}-{b}" for a, b in runs[:shown]]
    more = f" and {len(runs) - shown} more runs" if len(runs) > shown else ""
    return f"frame{'s' * (len(ks) > 1)} {', '.join(words)}{more}"


def _and(items: list) -> str:
    """[0, 1, 2] -> '0, 1 and 2'."""
    words = [str(i) for i in items]
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"
