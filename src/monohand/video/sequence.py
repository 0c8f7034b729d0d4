"""Reconstructing a video: hands tracked across frames, fits warm-started, shape shared,
pose smoothed.

Per frame: detect; match detections to tracks (``track.py``); fit each hand starting from its
track's previous fit (a few short steps instead of a cold PnP start and two stages); hold its
shape at the mean of its first ``shape_frames`` fits; reuse its texture and light from its
first frame; then smooth global rotation, translation and pose with a One-Euro filter
(``smooth.py``). The warm start begins from the unsmoothed fit so that the filter's lag never
feeds back into the fit. A track that is lost for a frame starts cold again.

Hands that touch (``ReconstructConfig.together``; overlapping keypoint boxes) are one problem
in every frame, as in a photo (``methods.reconstruct_image``): each is fitted by the
photo's touching recipe on a cold frame (the network's prediction one start beside PnP's, no
prior: its crop shows both hands) and from its own last fit on a warm one (``warm_fit``, no
prior), then the pair is refined together (``methods.refine_pairs``) before the fits are
remembered and smoothed; once a track's shape is held, a touching hand holds its last
fit's (the pair's one shape) rather than its track's own. On rendered touching pairs
turning before the camera (``bench/bench_video_twohands.py``, 2026-12-06) the hands'
relative depth error went from 1.70 to 0.44 cm on average (frames over 3 cm 17 -> 0 of
120; 2.27 -> 0.79 cm on ``--seed 7026``, where it was chosen), at 0.49 cm with the warm
pair's 10 refinement steps (``warm_pair_iters``). Hands whose boxes do not
overlap are not tested for crossing meshes here (a photo's ``overlap_depth`` rule).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from ..data.detection import HandDetection, SideWarning, check_detections, same_hand
from ..data.images import check_rgb
from ..data.intrinsics import CameraWarning, as_intrinsics, implausible_field_of_view
from ..data.window_search import follow_hands
from ..fit import FitConfig, FitInit, FitResult, PoseParams, fit_hands
from ..hybrid import network_predict, network_start
from ..methods import (
    fit_config_for,
    fit_inputs,
    hands_from_fit,
    hybrid_start,
    overlapping_hands,
    refine_pairs,
    touching_hand_pairs,
)
from ..models.base import has_texture_space
from ..reconstruct import HandReconstruction, Reconstructor
from ..twohands import part_results
from .smooth import PoseSmoother, SmoothingConfig
from .track import HandTracker, Track


@dataclass
class SequenceConfig:
    """How a video's frames are reconstructed beyond each frame's ``ReconstructConfig``
    (the comments below say why each default is what it is).

    Attributes:
        warm_start: a track's later frames start from its last fit (or, under the hybrid,
            ``network_each_frame``) rather than cold.
        shape_frames: the number of first fits whose mean shape a track then holds.
        smoothing: the One-Euro filter's settings (``smoothing.enabled``: on or off).
        warm_fit: the fit of a frame started from the last fit.
        network_each_frame: under the hybrid, a warm frame starts from its own network
            prediction (with its prior) instead of the last fit.
        warm_silhouette: whether such a frame keeps the fit's silhouette stage.
        warm_pair_iters: the joint refinement's steps for a touching pair refined together
            in the last frame too (None: a photo's).
    """

    warm_start: bool = True
    shape_frames: int = 5  # fits whose mean shape the track keeps
    smoothing: SmoothingConfig = field(default_factory=SmoothingConfig)
    # A warm frame's fit: short, small steps (the start is close), no appearance stage.
    warm_fit: FitConfig = field(
        default_factory=lambda: FitConfig(iters=30, iters_3d=0, lr=0.015, photo_iters=0,
                                          silhouette_iters=0)
    )
    # Under the hybrid, a warm frame starts from the network's prediction for this frame (its
    # prior kept; the track's texture, light and shape reused, so no appearance stage)
    # instead of from the previous fit with ``warm_fit``, whose 30 steps carry no prior. On
    # the rendered clip (``bench/bench_video.py --source clip``, smoothed): PA-MPJPE 10.60 ->
    # 9.84 mm, MPJPE 20.0 -> 17.2 mm, jitter 2.49 -> 2.52 mm/frame², 5.8 -> 4.6 frames/s
    # (a cold hybrid frame: 4.0).
    network_each_frame: bool = True
    # A warm hybrid frame (from its network prediction) skips the fit's silhouette stage, its
    # steps given to the keypoint stage: on the rendered clip the stage made those frames
    # 0.45 mm better in PA-MPJPE but took them from 4.8 to 3.6 frames/s, under the 4.5 that
    # ``network_each_frame`` was held to. A cold frame keeps it; a frame from the last fit
    # (``warm_fit``) has none.
    warm_silhouette: bool = False
    # The joint refinement's steps for a touching pair whose hands are both warm and were
    # refined together in the last frame too (None: ``TogetherConfig.iters``, a photo's 40):
    # they start from that refined pair.
    # Chosen on rendered touching pairs (``bench/bench_video_twohands.py --seed 7026``,
    # 2026-12-06; 40 / 20 / 10 steps: relative depth 0.76 / 0.68 / 0.66 cm mean, PA-MPJPE
    # 3.30 / 3.28 / 3.28 mm, no frame over 3 cm or 5 mm); on the benchmark's seed 0.44 ->
    # 0.49 cm, 1.99 -> 1.83 cm at most, PA-MPJPE 3.72 -> 3.66 mm, 2.5 -> 4.0 frames/s.
    warm_pair_iters: int | None = 10


@dataclass
class FrameResult:
    index: int
    hands: list[HandReconstruction]
    warm: list[bool]  # per hand: continued its track (not a cold start; see network_each_frame)


class SequenceReconstructor:
    """Wraps a ``Reconstructor``: ``step(image, K)`` per frame, in order."""

    def __init__(self, rec: Reconstructor, cfg: SequenceConfig | None = None,
                 fps: float = 30.0) -> None:  # fmt: skip
        if not fps > 0:
            raise ValueError(f"SequenceReconstructor: fps must be above 0, got {fps}")
        self.rec = rec
        self.cfg = cfg or SequenceConfig()
        self.dt = 1.0 / fps
        self.tracker = HandTracker()
        self.frame = -1
        self.size: tuple[int, int] | None = None  # (H, W) of the first frame
        self._side_warned = False  # (hands of a side the model lacks: said once)

    def step(self, image: np.ndarray, K: np.ndarray,
             detections: list[HandDetection] | None = None) -> FrameResult:  # fmt: skip
        """Reconstruct the next frame: ``image`` (H, W, 3) uint8 RGB, ``K`` (3, 3) pixels.
        ``detections``: this frame's hands from a detector of one's own (at most
        ``max_hands`` are used); None: MediaPipe's, and the hands of the previous frame it
        lost, followed (``_follow``). Every frame has the first's size (``ValueError``
        otherwise, before anything changes: tracks and warm starts are in its pixels)."""
        rc = self.rec.cfg
        image, K = check_rgb(image), as_intrinsics(K)
        if self.size is not None and image.shape[:2] != self.size:
            (h, w), (h0, w0) = image.shape[:2], self.size
            raise ValueError(f"frame {self.frame + 1}: {w}x{h}, the sequence's first frame "
                             f"{w0}x{h0}: a sequence keeps one size (its tracks and warm "
                             "starts are in its pixels); start a new SequenceReconstructor "
                             "for another")  # fmt: skip
        self.size = image.shape[:2]
        self.frame += 1
        if rc.method != "network" and (doubt := implausible_field_of_view(
                K, image.shape[:2])) is not None:  # (the network's path warns itself)
            warnings.warn(doubt, CameraWarning, stacklevel=2)
        if detections is None:
            detections = self._follow(image, self.rec.detect(image, windows=False))
        else:
            detections = self.rec.first_hands(check_detections(detections, image.shape[:2]))
        tracks = self.tracker.update(self.frame, detections)
        for d, t in zip(detections, tracks, strict=True):
            t.state["keypoints"] = d.keypoints
        # A hand's side is its track's vote, not this frame's guess.
        detections = [replace(d, side=t.side) for d, t in zip(detections, tracks, strict=True)]
        if rc.method == "network":  # the network has no fit to warm-start
            hands = self.rec.reconstruct(image, K, detections)
            for h, t in zip(hands, tracks, strict=True):
                h.track = t.id
            return FrameResult(self.frame, hands, [False] * len(hands))
        models = self.rec.models
        pairs = touching_hand_pairs(detections, models, rc)
        touching = {i for p in pairs for i in p}
        overlapping = overlapping_hands(detections, rc)
        fits: dict[int, tuple] = {}  # per hand: (model, its fit's inputs, its fit, its start)
        warm: dict[int, bool] = {}
        for n, (d, t) in enumerate(zip(detections, tracks, strict=True)):
            model = models.get(d.side)
            if model is None:  # NIMBLE has no left hand
                if not self._side_warned:
                    warnings.warn(f"frame {self.frame}: a {d.side} hand not reconstructed: "
                                  f"{self.rec.sides_only} (said once per sequence)",
                                  SideWarning, stacklevel=2)  # fmt: skip
                    self._side_warned = True
                continue
            prev: FitResult | None = t.state.get("fit")
            if t.state.get("side", d.side) != d.side:  # the vote turned: a new hand to fit
                t.state.clear()
                prev = None
            t.state["side"] = d.side
            t.state["keypoints"] = d.keypoints  # (again, where the side's turn cleared it)
            is_warm = (
                self.cfg.warm_start and prev is not None and t.state["frame"] == self.frame - 1
            )
            touches = n in touching
            if is_warm and touches:
                # From its last fit, refined with its pair's: a touching hand's crop shows
                # both hands, which misleads the network (as in a photo).
                init, fit_cfg = FitInit.from_result(prev), self.cfg.warm_fit
            elif is_warm:
                if rc.method == "hybrid" and self.cfg.network_each_frame:
                    pred = network_predict(image, K, [d], self.rec.net, self.rec.net_size)
                    init = network_start(model, self.rec.net.hand, pred)
                    init.texture, init.light = prev.texture, prev.light  # no appearance stage
                    fit_cfg = rc.hybrid_fit
                    if not self.cfg.warm_silhouette:  # its steps go to the keypoint stage
                        fit_cfg = replace(fit_cfg, silhouette_iters=0,
                                          iters=fit_cfg.iters + fit_cfg.silhouette_iters)
                else:
                    init, fit_cfg = FitInit.from_result(prev), self.cfg.warm_fit
            elif rc.method == "hybrid":  # a cold start from the network's prediction
                pred = network_predict(image, K, [d], self.rec.net, self.rec.net_size)
                init, fit_cfg = hybrid_start(model, self.rec.net.hand, pred, [0], touches, rc)
            else:
                init, fit_cfg = None, rc.fit
            if is_warm and len(t.state["shapes"]) >= self.cfg.shape_frames:
                # (a touching hand keeps its last fit's: the pair's one shape)
                init.betas = prev.betas if touches else t.state["shape"]
                init.fix_shape = True
            fit_cfg = fit_config_for(fit_cfg, n in overlapping, rc, touches)
            inputs = fit_inputs(image, K, [d], rc.crop_size, fit_cfg.silhouette_iters > 0,
                                detections)  # fmt: skip
            fits[n] = (model, inputs, fit_hands(model, inputs, fit_cfg, init), init)
            warm[n] = is_warm
        pairs = [(a, b) for a, b in pairs if a in fits and b in fits]
        pair_cfg = rc
        # (fewer steps only for a pair refined together in the last frame too: its start)
        if self.cfg.warm_pair_iters is not None and all(
                warm[i] and tracks[i].state.get("paired") == self.frame - 1
                for p in pairs for i in p):  # fmt: skip
            pair_cfg = replace(rc, together_cfg=replace(rc.together_cfg,
                                                        iters=self.cfg.warm_pair_iters))
        fits = refine_pairs(fits, pairs, pair_cfg)
        order = sorted(fits)
        shown = []
        for n in order:
            model, _, res, _ = fits[n]
            t = tracks[n]
            if t.state.get("frame", self.frame - 1) != self.frame - 1:
                t.state.pop("smoother", None)  # the track was lost: the filter's past is stale
            self._remember(t, res)
            if any(n in p for p in pairs):
                t.state["paired"] = self.frame  # refined with its pair in this frame
            shown.append(self._smooth(model, t, res) if self.cfg.smoothing.enabled else res)
        if pairs and self.cfg.smoothing.enabled:
            # Each hand's filter moves it by its own lag: a smoothed pair can cross again.
            at = {n: k for k, n in enumerate(order)}
            shown = part_results([fits[n][0] for n in order], shown,
                                 [(at[a], at[b]) for a, b in pairs])  # fmt: skip
        hands = []
        for n, res in zip(order, shown, strict=True):
            model, inputs = fits[n][:2]
            (hand,) = hands_from_fit(model, res, [detections[n]], inputs.K)
            hand.track = tracks[n].id
            hands.append(hand)
        return FrameResult(self.frame, hands, [warm[n] for n in order])

    def _follow(self, image: np.ndarray, detections: list[HandDetection]
                ) -> list[HandDetection]:  # fmt: skip
        """``detections`` plus the hands of the previous frame that MediaPipe's palm
        detector lost in this one, found again by its landmark network where they were
        (``data.window_search.follow_hands``; only with ``ReconstructConfig.search_windows``,
        whose network it uses), at most ``max_hands`` in all."""
        net, room = self.rec.landmark_net, self.rec.cfg.max_hands - len(detections)
        if net is None or room <= 0:
            return detections
        lost = [t for t in self.tracker.unmatched(self.frame, detections)
                if "keypoints" in t.state]
        found = [d for d in follow_hands(image, net, [t.state["keypoints"] for t in lost]) if d]
        kept = list(detections)
        for d in found:  # two lost tracks may lead to one hand: it is added once
            if len(kept) - len(detections) < room and not any(same_hand(d, k) for k in kept):
                kept.append(d)
        return kept

    def _remember(self, t: Track, res: FitResult) -> None:
        shapes = t.state.setdefault("shapes", [])
        if len(shapes) < self.cfg.shape_frames:
            shapes.append(res.betas)
            t.state["shape"] = torch.stack(shapes).mean(0)
        t.state["fit"], t.state["frame"] = res, self.frame

    def _smooth(self, model, t: Track, res: FitResult) -> FitResult:
        """``res`` with smoothed global rotation, translation and pose (model re-run)."""
        sm = t.state.setdefault("smoother", PoseSmoother(self.cfg.smoothing))
        go, pose, tr = sm(
            res.global_orient[0].double().numpy(),
            res.pose_params[0].double().numpy(),
            res.transl[0].double().numpy(),
            self.dt,
        )
        dt = res.transl.dtype
        go, pose, tr = (torch.as_tensor(x, dtype=dt)[None] for x in (go, pose, tr))
        hand_pose = PoseParams(model, 1, dt).hand_pose(pose)
        with torch.no_grad():
            out = model(global_orient=go, hand_pose=hand_pose, betas=res.betas, transl=tr,
                        texture=res.texture if has_texture_space(model) else None)  # fmt: skip
        return replace(res, global_orient=go, hand_pose=hand_pose, pose_params=pose,
                       transl=tr, output=out)  # fmt: skip


@dataclass
class SequenceSummary:
    frames: int
    frames_with_hands: int
    seconds: float
    paths: list
    together: list[int] = field(default_factory=list)  # frames whose hands touched (refined)
    crossing: list[int] = field(default_factory=list)  # ... whose pair still crossed > 5 mm
    removed: list = field(default_factory=list)  # an earlier run's files that this one removed
    # per track whose side turned during the video: (frame, side) where each run of one
    # side began (its vote, MediaPipe's handedness, was near a coin flip; the frames of
    # each run were fitted with that side's model)
    side_runs: dict[int, list[tuple[int, str]]] = field(default_factory=dict)


def _frame_files(out, stem: str) -> dict[str, list]:
    """The files in ``out`` named like a frame's of a video ``stem`` (``<stem>_<5 digits>``
    then ``.json``, ``_<i>.<mesh>``, ...), by frame stem."""
    from ..outputs import glob_escape

    frames: dict[str, list] = {}
    for f in out.glob(glob_escape(stem) + "_*"):
        k = f.name[len(stem) + 1 : len(stem) + 6]
        rest = f.name[len(stem) + 6 :]
        if len(k) == 5 and k.isdigit() and rest[:1] in (".", "_"):
            frames.setdefault(f"{stem}_{k}", []).append(f)
    return frames


def of_sequence(record: dict, source: str) -> bool:
    """Whether a frame's earlier ``record`` is a frame of the video or folder of frames
    ``source`` (as given; compared resolved): its ``image`` is ``<video>#<k>`` or a file in
    that folder."""
    from pathlib import Path

    image = str(record.get("image", ""))
    video, _, k = image.rpartition("#")
    whole = Path(video) if video and k.isdigit() else Path(image).parent
    try:
        return whole.resolve() == Path(source).resolve()
    except (OSError, RuntimeError):
        return False


def check_sequence_outputs(out_dir, stem: str, source: str, overwrite: bool = False
                           ) -> None:  # fmt: skip
    """Before a video's files are written as ``stem`` (its frames ``<stem>_<k>.*``, the
    overlay video and the tracks), every file of those names already in ``out_dir`` is
    checked, since how many frames there will be is not known: ``outputs.OutputClash`` for a
    frame's file that monohand did not write, a frame's record of another video or photo
    (``of_sequence``; unless ``overwrite``), ``<stem>_tracks.json`` that is not monohand's,
    or ``<stem>_overlay.mp4`` without a record of this stem beside it."""
    from pathlib import Path

    from ..data.images import earlier_output, monohand_file
    from ..outputs import OutputClash, earlier_record, owned_outputs

    out = Path(out_dir)
    frame_files = _frame_files(out, stem)
    for fstem, files in sorted(frame_files.items()):
        record = earlier_record(out, fstem)
        if record is not None and not overwrite and not of_sequence(record, source):
            raise OutputClash(f"{out / (fstem + '.json')} holds the hands of another photo or "
                              f"video ({record.get('image') or 'unnamed'}), not of {source}: "
                              "not replaced; give another --out, or --overwrite to replace "
                              "it")  # fmt: skip
        owned = set(owned_outputs(out, fstem, record))
        if theirs := sorted(f for f in files if f not in owned):
            raise OutputClash(f"{theirs[0]}: named like a frame of {stem} and monohand did not "
                              "write it (not replaced; move it or give another --out)")
    tracks, video = out / f"{stem}_tracks.json", out / f"{stem}_overlay.mp4"
    if (tracks.exists() or tracks.is_symlink()) and not monohand_file(tracks, tracks=True):
        raise OutputClash(f"{tracks}: exists and is not monohand's (not replaced; move it or "
                          "give another --out)")  # fmt: skip
    # an overlay video is monohand's beside its tracks, or beside frames of this stem (a run
    # stopped between the video and the tracks)
    if (video.exists() or video.is_symlink()) and not (earlier_output(video) or frame_files):
        raise OutputClash(f"{video}: exists and monohand did not write it (not replaced; move "
                          "it or give another --out)")  # fmt: skip


def write_sequence(
    seq: SequenceReconstructor,
    frames: Iterable[np.ndarray],
    K: np.ndarray,
    out_dir,
    stem: str,
    fps: float | None = None,
    mesh_formats: tuple[str, ...] = (".glb",),
    model_name: str | None = None,
    progress=None,
    k_source: str = "given",
    source: str | None = None,
    frame_names: list[str] | None = None,
    overwrite: bool = False,
    times: list[float] | None = None,
) -> SequenceSummary:
    """Reconstruct frames in order and write per frame ``<stem>_<k>.json`` and
    ``<stem>_<k>_<i>.glb``, the overlay video ``<stem>_overlay.mp4`` and ``<stem>_tracks.json``
    (per track: frame indices and joints3d, for analysis). ``fps``: the files' frame rate
    (None: ``seq``'s). ``progress(k)`` after each frame;
    ``model_name``: the hand model the files name, by default the reconstructor's (a
    network's own); ``k_source``: where K came from (the records' ``K_source``);
    ``source``: the input's path, the records' ``image`` is ``<source>#<k>`` (default: the
    stem), or ``frame_names[k]`` where the frames are files (``--sequence``). A frame's
    hands are in the order of their tracks (its record's, its meshes' ``_<i>``; the overlay
    names and colours each by its track). An earlier run's frames beyond this one's last
    are removed at the end (``overwrite``: another source's of this stem too), so the folder
    holds one run's files; the summary lists what was removed. ``times``: each frame's time in
    seconds (``frames.read_frames``' list, filled as the frames are read), written to the
    tracks as ``times``."""
    import json
    import time
    from pathlib import Path

    from ..atomic import atomic_write
    from ..notes import CROSSING
    from ..outputs import OutputClash, earlier_record, owned_outputs, write_outputs
    from ..record import TRACKS_FORMAT, record_header
    from ..viz import overlay_image
    from .frames import VideoWriter

    out = Path(out_dir)
    fps = 1.0 / seq.dt if fps is None else fps
    check_sequence_outputs(out, stem, source or stem, overwrite)
    t0 = time.perf_counter()
    tracks: dict[int, dict] = {}
    side_runs: dict[int, list[tuple[int, str]]] = {}
    paths, n, found = [], 0, 0
    together, crossing, removed = [], [], []
    with VideoWriter(out / f"{stem}_overlay.mp4", fps) as video:
        for k, image in enumerate(frames):
            r = seq.step(image, K)
            order = sorted(range(len(r.hands)), key=lambda i: (r.hands[i].track is None,
                                                               r.hands[i].track or 0, i))
            hands = [r.hands[i] for i in order]
            fstem = f"{stem}_{k:05d}"
            paths += write_outputs(out, fstem, image, K, hands, k_source,
                                   frame_names[k] if frame_names else f"{source or stem}#{k}",
                                   mesh_formats, model_name or seq.rec.cfg.model, overlay=False,
                                   method=seq.rec.cfg.method,
                                   network=seq.rec.network_name,
                                   model_path=getattr(seq.rec, "model_path", None),
                                   overwrite=True, removed=removed)  # (checked above)
            video.add(np.asarray(overlay_image(image, K, hands, side_views=False)))
            for h, warm in zip(hands, [r.warm[i] for i in order], strict=True):
                t = tracks.setdefault(h.track, {"frames": [], "joints3d": [], "warm": []})
                runs = side_runs.setdefault(h.track, [])
                if not runs or runs[-1][1] != h.side:
                    runs.append((k, h.side))
                t["side"] = h.side  # the track's side at its last frame (the vote's, as turned)
                t["frames"].append(k)
                t["joints3d"].append(np.round(h.joints3d, 6).tolist())
                t["warm"].append(warm)
            n, found = n + 1, found + bool(hands)
            if any("contact" in h.fit for h in hands):
                together.append(k)
            if any(h.fit.get("crossing", 0.0) > CROSSING for h in hands):
                crossing.append(k)
            if progress is not None:
                progress(k)
    paths.append(out / f"{stem}_overlay.mp4")
    for fstem in sorted(_frame_files(out, stem)):  # frames an earlier, longer run wrote
        if int(fstem[-5:]) < n:
            continue
        try:
            record = earlier_record(out, fstem)
            ours = record is not None and (overwrite or of_sequence(record, source or stem))
            stale = owned_outputs(out, fstem, record) if ours else []
        except OutputClash:  # not monohand's: left as it is
            continue
        for old in stale:
            old.unlink()
        removed += stale
    header = record_header()
    summary = {"format": TRACKS_FORMAT, "format_version": 1,
               "monohand_version": header["monohand_version"], "units": "metres, the "
               "camera's frame (as the frames' records)", "joint_names": header["joint_names"],
               "source": source or stem, "method": seq.rec.cfg.method,
               **({} if seq.rec.network_name is None else {"network": seq.rec.network_name}),
               "frames": n, "fps": fps,
               **({} if times is None else {"times": list(times[:n])}),
               "K": K.tolist(), "K_source": k_source, "tracks": tracks}  # fmt: skip
    p = atomic_write(out / f"{stem}_tracks.json", lambda t: t.write_text(json.dumps(summary)))
    paths.append(p)
    return SequenceSummary(n, found, time.perf_counter() - t0, paths, together, crossing,
                           removed, {i: r for i, r in side_runs.items() if len(r) > 1})
