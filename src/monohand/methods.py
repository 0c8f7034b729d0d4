"""One image's hands by each method: the network's (``network_reconstruct``), the fit's and
the hybrid's (``reconstruct_image``: batched per side; hands that touch refined together,
``twohands``), and the settings that choose between them (``ReconstructConfig``,
``resolve_method``). ``reconstruct`` holds them behind ``Reconstructor`` and the per-photo
job; here they take detections, a K and the models, and give ``HandReconstruction`` records.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import Tensor

from .data.augment import crop_around
from .data.detection import HandDetection
from .data.hand_mask import hand_mask
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
from .hybrid import network_predict, network_start
from .models.base import HandModel, has_texture_space
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
        max_hands: hands per image, at most (>= 1), of the detector's (hands given to
            ``Reconstructor.reconstruct`` are all reconstructed).
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
