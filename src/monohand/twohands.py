"""Hands of one photo fitted together: hands that touch are one problem, not several.

A single photo fixes each hand's depth only through its apparent size, so two hands fitted
one by one can merge into each other or sit tens of centimetres apart although they touch.
Hands whose 2D keypoint boxes overlap (``touching_pairs``), and hands whose own fits'
meshes interpenetrate although their boxes do not (``interpenetrating_pairs``: a pair seen
end on), are refined jointly after their own fits (``refine_touching``): each keeps its fit's
terms (``fit.fit_terms``: 2D keypoints, world landmarks, pose and shape priors, the network's
prior where the hybrid gave one) and the pair adds

- ``interhand_penetration``: spheres along both hands' bones may not overlap (and, with
  ``TogetherConfig.w_mesh_penetration``, no vertex of one mesh may lie inside the other:
  ``models.collision.mesh_penetration``);
- ``contact_gap``: the two hands' closest spheres should touch (such a pair is read as
  touching; weak, so a clear 2D size difference still wins);
- ``shared_shape``: the two hands of one person have the same shape (the left model is the
  right one's mirror, so their shape coefficients mean the same).

After the refinement, a pair still apart (closest spheres over ``TogetherConfig.close_gap``)
is moved along the hands' rays until it is not, by 8 cm at most (``close_along_rays``: the
refinement's small translation steps cannot move a hand centimetres in depth), and a pair
whose meshes still cross is parted by the shortest rigid shift (``TogetherConfig.separate``).

Before that, a touching left and right hand are given one shape (``share_shape``): each
hand's depth is read from its size in the image, so two hands fitted with different sizes
sit at inconsistent depths; scaled together to the mean shape, their relative depth follows
from their image sizes alone.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import Tensor

from . import losses as L
from .data.detection import HandDetection
from .data.hand_mask import hands_mask
from .fit import (
    HAND_SIZES,
    FitConfig,
    FitInit,
    FitInputs,
    FitResult,
    PoseParams,
    fit_terms,
    image_hand_size,
    mask_distances,
    relative_confidence,
    transl_of,
    uvz_of,
    weighted_total,
)
from .models.base import HandModel, has_texture_space
from .models.collision import (
    HAND_FRONT,
    HAND_REACH,
    capped_faces,
    deepest_penetration,
    mesh_penetration,
    separating_shift,
)
from .models.joints import FREIHAND_BONES
from .optim import FitAdam, cosine_schedule
from .render.camera import project, project_affine
from .render.rasterize import silhouette

_BONES = torch.tensor(FREIHAND_BONES)


@dataclass
class TogetherConfig:
    iters: int = 40  # joint steps after the shared shape (0: the shared shape alone)
    lr: float = 0.01
    w_penetration: float = 2e3  # per m^2 of sphere overlap (the fit's finger collision's)
    w_contact: float = 30.0  # per m^2 of gap between the closest spheres
    w_shared_shape: float = 1e-2
    radius: float = 0.0075  # metres, of the spheres along the bones (the fit's finger collision's)
    # Keypoint boxes grown by this share of their larger side before the overlap test: the
    # joints lie a finger's or palm's half thickness inside the skin, so the joint boxes of
    # two hands pressed together can be ~3 cm apart (palms together seen from the side).
    pad: float = 0.1
    # What the refinement moves: "placement" (each hand's rotation and translation; pose and
    # shape stay as fitted) or "all".
    free: str = "placement"
    # A touching left and right hand are read as one person's: one shape for both (the mean
    # of their fits'), each hand moved along its ray to keep its size in the image.
    tie_shape: bool = True
    # The pair's rendered outline (both meshes, one coverage) against their one mask
    # (``data.hand_mask.hands_mask``) in each hand's crop; 0: off. On the touching-hands
    # renders (seed 5026, hybrid, placement) w 3 closed the relative-depth tail of the old
    # scenes (1.03 / 4.46 -> 0.80 / 2.89 cm, mean / max) but pushed one pair 6.7 mm into each
    # other, a pair whose true hands interpenetrated by 6.4 mm; on the corrected scenes
    # (2026-12-05, late) it measured 0.92 / 3.33 cm (2 pairs over 3 cm) against the
    # default's 0.96 / 2.76 (none).
    w_silhouette: float = 0.0
    # The meshes' own interpenetration (``models.collision.mesh_penetration``: each vertex
    # inside the other hand, its squared depth), per m^2; the bone spheres above miss the
    # palms' and fingers' surfaces. 0: off. At 1e4 (seed 5026, corrected scenes) no pair
    # interpenetrates (3.3 mm at most without), but one pair's relative depth goes from 2.8 to
    # 3.8 cm off (mean 0.99 against 0.96 cm).
    w_mesh_penetration: float = 0.0
    # Hands whose boxes do not overlap but whose own fits' meshes interpenetrate deeper than
    # this (metres, >= 0; ``interpenetrating_pairs``) are refined together too: two hands
    # seen end on can touch with their keypoint boxes apart (meshes that cross touch). Such
    # hands were fitted as lone ones (under the hybrid with the network's prior: see
    # ``refit_found``); a left and a right one get one shape (``tie_shape``). inf: off.
    overlap_depth: float = 0.0
    # Under the hybrid, the hands of such a pair are first fitted again as touching ones (the
    # fit's recipe, the network one start, no prior: their crops show both hands) before the
    # refinement. With the box test blinded (pad -0.5, so that every pair is found this way;
    # seed 7026, 48 scenes, 2026-12-06): PA-MPJPE 7.15 -> 6.67 mm, relative depth 3.38 ->
    # 3.15 cm.
    refit_found: bool = True
    # After the refinement, a pair whose meshes still cross is moved apart rigidly along the
    # shortest separating shift (``models.collision.separating_shift``), half of it each: the
    # bone spheres miss the palms' surfaces, so the contact can press the meshes millimetres
    # into each other, and a penalty on the meshes slides the hands along their rays instead
    # (see ``w_mesh_penetration``). The shift is along the normals of the surfaces the
    # deepest vertices entered, and never over 1 cm (``LONGEST_SHIFT``; a pair only a longer
    # one would part stays as refined), so the pair's relative depth moves by a few
    # millimetres at most. Chosen on the touching-hands renders
    # (seeds 7026 and 8026, 48 scenes each, hybrid, 2026-12-06): penetration at most 4.45 and
    # 4.91 mm -> 0 on both, relative depth 1.06 / 5.16 -> 1.06 / 5.21 and 0.91 / 2.74 ->
    # 0.91 / 2.74 cm (mean / max), no scene added over 3 cm. False: off.
    separate: bool = True
    # The refinement, and the own fits of hands fitted as touching (their boxes overlap, or
    # refitted under the hybrid, ``refit_found``), measure 2D residuals in this hand size
    # (``FitConfig.hand_size``): "palm", the larger of the wrist-to-knuckle length and the
    # palm's width, which foreshortening does not shrink to a few pixels as it does the
    # length alone in a hand pointing at the camera (lone hands keep "length": the real
    # validation frames measured it 0.03 mm worse there). Chosen under the hybrid on the
    # touching-hands renders (seeds 7026 and 8026, 48 scenes each, pairs parted,
    # 2026-12-06): 1.06 / 5.21 -> 0.95 / 5.33 cm (2 -> 1 scenes over 3 cm) and 0.91 / 2.74
    # -> 0.90 / 2.64 (none), no pair crossing; on the benchmark's seed mixed (one scene over
    # 3 cm fewer, the mean 1.11 -> 1.22 cm; the fit's 1.21 -> 1.25). docs/RESULTS.md.
    hand_size: str = "palm"
    # After the refinement, before the parting: a pair whose closest bone spheres are still
    # further apart than this (metres of surface gap, ``contact_gap``'s) is moved along the
    # hands' rays by the smallest opposite depth shift (at most ``CLOSE_REACH``) that brings
    # the gap to it (``close_along_rays``); a pair that no such shift closes (hands side by
    # side: depth barely changes their gap) stays. The scenes' true pairs are 1-13 mm apart
    # there; a fitted pair several centimetres apart has one hand at the wrong depth. Chosen
    # on the touching-hands renders (seeds 7026 / 8026, 48 scenes each, hybrid, 2026-12-06,
    # docs/RESULTS.md), by a rule set after a first rule's results were known (the first,
    # fewer scenes over 3 cm, no candidate could meet; docs/rules/): relative depth 0.95 ->
    # 0.92 and 0.90 -> 0.90 cm (mean), no scene added over 3 cm (1 cm of slack added one).
    # inf: off.
    close_gap: float = 0.015


def keypoint_box(keypoints: np.ndarray, pad: float = 0.0) -> np.ndarray:
    """(21, 2) pixels -> [x0, y0, x1, y1], grown by ``pad`` times its larger side."""
    lo, hi = keypoints.min(0), keypoints.max(0)
    grow = pad * (hi - lo).max()
    return np.r_[lo - grow, hi + grow]


def touching_pairs(detections: list[HandDetection], pad: float = 0.1) -> list[tuple[int, int]]:
    """Index pairs (i < j) of hands whose keypoint boxes (grown by ``pad``) overlap."""
    boxes = [keypoint_box(d.keypoints, pad) for d in detections]
    return [(i, j) for i in range(len(boxes)) for j in range(i + 1, len(boxes))
            if (np.minimum(boxes[i][2:], boxes[j][2:])
                > np.maximum(boxes[i][:2], boxes[j][:2])).all()]  # fmt: skip


def interpenetrating_pairs(vertices: dict[int, Tensor], faces: dict[int, Tensor],
                           depth: float = 0.0, skip: list[tuple[int, int]] = ()
                           ) -> list[tuple[int, int]]:  # fmt: skip
    """Pairs (i < j) of fitted hands whose meshes interpenetrate: a vertex of one lies more
    than ``depth`` metres (``models.collision.deepest_penetration``) inside the other.

    Args:
        vertices: per hand index, (1, V, 3) its fitted mesh; faces: per hand index, (F, 3).
        depth: metres, >= 0 (below 0 every two hands would be read as touching).
        skip: pairs not to test (already known to touch).
    """
    if depth < 0:
        raise ValueError(f"TogetherConfig.overlap_depth must be >= 0 metres (inf: off), got "
                         f"{depth}: below 0 every two hands would be read as touching")  # fmt: skip
    out = []
    keys = sorted(vertices)
    with torch.no_grad():
        for n, i in enumerate(keys):
            for j in keys[n + 1 :]:
                if (i, j) in skip:
                    continue
                # candidates as in the penalty: near the other hand and behind its surface
                deepest = deepest_penetration(vertices[i], faces[i], vertices[j], faces[j],
                                              HAND_REACH, HAND_FRONT)  # fmt: skip
                if deepest.max() > depth:
                    out.append((i, j))
    return out


def bone_points(joints: Tensor, samples: int = 4) -> Tensor:
    """(B, 21, 3) -> (B, 20 samples, 3): points evenly along the 20 bones (ends excluded at
    the base, included at the tip), the centres of the hand's collision spheres."""
    t = torch.linspace(0, 1, samples + 1, dtype=joints.dtype, device=joints.device)[1:]
    a, b = joints[:, _BONES[:, 0]], joints[:, _BONES[:, 1]]  # (B, 20, 3)
    return (a[:, :, None] + (b - a)[:, :, None] * t[:, None]).flatten(1, 2)


def interhand_penetration(joints_a: Tensor, joints_b: Tensor, radius: float = 0.0075) -> Tensor:
    """Overlap of two hands' bone spheres: sum over sphere pairs of (2 radius - d)^2 where
    positive. (B, 21, 3) x2 -> (B,) metres^2."""
    d = torch.cdist(bone_points(joints_a), bone_points(joints_b))
    return (torch.relu(2 * radius - d) ** 2).sum((1, 2))


def contact_gap(joints_a: Tensor, joints_b: Tensor, radius: float = 0.0075) -> Tensor:
    """Squared gap between the two hands' closest spheres (0 when they touch or overlap).
    (B, 21, 3) x2 -> (B,) metres^2."""
    d = torch.cdist(bone_points(joints_a), bone_points(joints_b)).flatten(1).amin(1)
    return torch.relu(d - 2 * radius) ** 2


def refine_touching(
    models: list[HandModel],
    inputs: list[FitInputs],
    results: list[FitResult],
    pairs: list[tuple[int, int]],
    fit_cfg: FitConfig,
    cfg: TogetherConfig | None = None,
    inits: list[FitInit | None] | None = None,
) -> list[FitResult]:
    """Refine the hands of ``pairs`` jointly, from their own fits.

    Args:
        models, inputs, results: per hand of the photo (one hand each: B = 1), its model
            (its side's), its fit's inputs and its fit.
        pairs: hands that touch (``touching_pairs``, ``interpenetrating_pairs``).
        fit_cfg: the fit's settings (its terms' weights; the hand size is ``cfg``'s);
            ``inits``: the starts the hands were fitted from, whose ``prior`` is kept.
    Returns:
        ``results`` with the hands of any pair replaced by the joint refinement (appearance
        kept; the output re-run; a pair still crossing parted, ``TogetherConfig.separate``;
        ``losses`` gain "penetration" and "contact", "crossing" (metres: how deep the final
        meshes still enter each other, ``models.collision.deepest_penetration``; a hand of
        several pairs keeps each pair term's largest), and
        "mesh_penetration" where ``cfg.w_mesh_penetration`` is on). A hand fitted with the
        network's prior keeps it, weighed by ``fit_cfg`` (the fit's weights).
    """
    cfg = cfg or TogetherConfig()
    hands = sorted({i for p in pairs for i in p})
    if not hands:
        return list(results)
    inits = inits or [None] * len(results)
    params = {i: PoseParams(models[i], 1, results[i].betas.dtype) for i in hands}
    starts = {i: [results[i].global_orient, results[i].pose_params, results[i].betas,
                  results[i].transl] for i in hands}  # fmt: skip
    if cfg.tie_shape:
        for group in _left_right_groups(pairs, [m.side for m in models]):
            share_shape([models[i] for i in group], [params[i] for i in group],
                        [starts[i] for i in group])  # fmt: skip
    state = {}
    for i in hands:
        go, angles, betas, transl = starts[i]
        state[i] = [t.detach().clone().requires_grad_() for t in (go, angles, betas,
                                                                 uvz_of(transl))]  # fmt: skip
    if cfg.free not in ("placement", "all"):
        raise ValueError(f"TogetherConfig.free must be 'placement' or 'all', got {cfg.free!r}")
    check_hand_size(cfg)
    fit_cfg = replace(fit_cfg, hand_size=cfg.hand_size)  # the pair's own
    if cfg.iters < 0:
        raise ValueError(f"TogetherConfig.iters must be >= 0 (0: one shape only), got {cfg.iters}")
    moved = (0, 3) if cfg.free == "placement" else (0, 1, 2, 3)
    for i in hands:
        for k in set(range(4)) - set(moved):
            state[i][k].requires_grad_(False)
    # The translation's (x/z, y/z, log z) steps a tenth of the rest, as in the fit: a step of
    # 0.01 in x/z is already several pixels.
    groups = [{"params": [state[i][k] for i in hands], "lr": cfg.lr * (0.1 if k == 3 else 1)}
              for k in moved]  # fmt: skip
    opt = FitAdam(groups)
    schedule = cosine_schedule(opt, cfg.iters, eta_min=cfg.lr * 0.05)
    rel = {i: replace(inputs[i], confidence=relative_confidence(inputs[i].confidence))
           for i in hands}  # fmt: skip
    priors = {i: (inits[i].pose_params, inits[i].betas)
              if inits[i] is not None and inits[i].prior else None for i in hands}  # fmt: skip

    union = {}
    if cfg.w_silhouette > 0:
        union = _union_masks(pairs, inputs, fit_cfg.hand_size)
    caps = {}  # each mesh's holes capped, once (``models.collision.capped_faces``)
    if cfg.w_mesh_penetration > 0:
        for i in hands:
            f, holes = capped_faces(models[i].faces.cpu().numpy(), models[i].num_vertices)
            caps[i] = (torch.as_tensor(f, device=models[i].faces.device), holes)

    def objective() -> tuple[dict, dict, Tensor]:
        outs, terms, total = {}, {}, 0.0
        for i in hands:
            outs[i], terms[i] = fit_terms(models[i], params[i], rel[i], fit_cfg, *state[i],
                                          priors[i])  # fmt: skip
            total = total + weighted_total(terms[i], fit_cfg).sum()
        pair_terms = {}
        for a, b in pairs:
            pen = interhand_penetration(outs[a].joints, outs[b].joints, cfg.radius)
            # Contact moves the hands only as wholes (their translations): through the pose
            # it would bend a finger towards the other hand instead.
            gap = contact_gap(*(_rigid(outs[i].joints, state[i][3]) for i in (a, b)),
                              cfg.radius)  # fmt: skip
            shared = ((state[a][2] - state[b][2]) ** 2).sum(1)
            pair_terms[a, b] = {"penetration": pen, "contact": gap}
            total = total + (cfg.w_penetration * pen + cfg.w_contact * gap
                             + cfg.w_shared_shape * shared).sum()  # fmt: skip
            if caps:
                mesh = mesh_penetration(outs[a].vertices, models[a].faces, outs[b].vertices,
                                        models[b].faces, caps_a=caps[a],
                                        caps_b=caps[b])  # fmt: skip
                pair_terms[a, b]["mesh_penetration"] = mesh
                total = total + cfg.w_mesh_penetration * mesh.sum()
            if (a, b) in union:
                verts = torch.cat([outs[a].vertices, outs[b].vertices], 1)
                faces = torch.cat([models[a].faces, models[b].faces + outs[a].vertices.shape[1]])
                for i, (inside, outside, weight) in zip((a, b), union[a, b], strict=True):
                    alpha = silhouette(verts, faces, inputs[i].crop_K, inside.shape[1:])
                    sil = L.silhouette_distance(alpha, inside, outside, weight)
                    total = total + cfg.w_silhouette * sil.sum()
        return terms, pair_terms, total

    for it in range(cfg.iters):
        opt.zero_grad()
        objective()[2].backward()
        opt.step()
        schedule(it + 1)
    if cfg.close_gap < float("inf"):
        for a, b in pairs:
            close_along_rays(models[a], models[b], params[a], params[b], state[a], state[b],
                             cfg.close_gap, cfg.radius)  # fmt: skip
    if cfg.separate:
        _separate(models, params, state, pairs)
    with torch.no_grad():  # the terms of the final state (iters = 0: of the start)
        terms, pair_terms, _ = objective()
    out = list(results)
    for i in hands:
        out[i] = _result(models[i], params[i], results[i], state[i], rel[i], terms[i])
    with torch.no_grad():
        for a, b in pairs:
            # what the user should know: meshes still crossing (a shift over LONGEST_SHIFT
            # would have been needed: the pair's own fits are wrong, not pressed too far)
            pair_terms[a, b]["crossing"] = deepest_penetration(
                out[a].output.vertices, models[a].faces, out[b].output.vertices,
                models[b].faces, HAND_REACH, HAND_FRONT)  # fmt: skip
    for i in hands:
        merged: dict[str, Tensor] = {}  # a hand in several pairs: each term's largest
        for (a, b), named in pair_terms.items():
            if i in (a, b):
                for k, v in named.items():
                    merged[k] = torch.maximum(merged[k], v) if k in merged else v.detach()
        out[i].losses.update(merged)
    return out


def _union_masks(pairs: list[tuple[int, int]], inputs: list[FitInputs], hand_size: str = "length"
                 ) -> dict:  # fmt: skip
    """Per pair (a, b) with crops: for each of a and b, the pair's one mask in that hand's
    crop as (inside, outside, weight) (1, h, w) each (``fit.mask_distances``, in hand sizes
    by the fit's rule ``hand_size``: ``fit.image_hand_size``)."""
    out = {}
    for a, b in pairs:
        if inputs[a].crop is None or inputs[b].crop is None:
            continue
        per = []
        for own, i in enumerate((a, b)):
            x = inputs[i]
            crop = (x.crop[0].clamp(0, 1) * 255).round().byte().numpy()
            kps = [project_affine(inputs[j].keypoints, x.crop_K, x.K)[0] for j in (a, b)]
            m = hands_mask(crop, [k.double().numpy() for k in kps])
            size = image_hand_size(kps[own], hand_size, 4.0)
            mask = torch.as_tensor(m.mask, dtype=x.crop.dtype)[None]
            inside, outside = mask_distances(mask, size[None])
            per.append((inside, outside, torch.as_tensor(m.weight)[None]))
        out[a, b] = per
    return out


def share_shape(models: list[HandModel], params: list[PoseParams], starts: list[list[Tensor]]
               ) -> None:  # fmt: skip
    """Give the hands of one group (their ``[global_orient, pose parameters, betas,
    transl]`` starts, changed in place) the mean of their shapes. A monocular fit reads a
    hand's depth from its size in the image, so each hand's whole placement is scaled about
    the camera centre by how much its new shape grows or shrinks it: its projection stays,
    and the hands' depths become consistent with one hand size."""
    with torch.no_grad():
        mean = sum(s[2] for s in starts) / len(starts)
        for model, par, s in zip(models, params, starts, strict=True):
            go, angles, betas, transl = s
            hand_pose = par.hand_pose(angles)
            own, tied = (model.keypoints(global_orient=go, hand_pose=hand_pose, betas=b,
                                         transl=torch.zeros_like(transl))
                         for b in (betas, mean))  # fmt: skip
            ratio = _bone_length(tied) / _bone_length(own)  # (B,)
            s[2] = mean.clone()
            s[3] = ratio[:, None] * (own.mean(1) + transl) - tied.mean(1)


def _left_right_groups(pairs: list[tuple[int, int]], sides: list[str]) -> list[list[int]]:
    """The connected groups of hands joined by touching pairs of a left and a right hand
    (two hands of one side that touch belong to two people), each sorted."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    edges = np.array([p for p in pairs if sides[p[0]] != sides[p[1]]], dtype=np.int64)
    n = len(sides)
    graph = coo_matrix((np.ones(len(edges)), tuple(edges.reshape(-1, 2).T)), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    groups = [np.flatnonzero(label == k).tolist() for k in np.unique(label)]
    return [g for g in groups if len(g) > 1]


# The longest shift that parts two hands (metres): a pair only a longer one would part is
# no surface contact pressed too far but a wrong fit, which a rigid move would not mend.
LONGEST_SHIFT = 0.01


def check_hand_size(cfg: TogetherConfig) -> None:
    """A ``ValueError`` naming ``TogetherConfig.hand_size`` unless it is a ``fit.HAND_SIZES``
    rule (checked before any hand is fitted, not when a pair first turns up)."""
    if cfg.hand_size not in HAND_SIZES:
        raise ValueError(f"TogetherConfig.hand_size must be one of {HAND_SIZES}, got "
                         f"{cfg.hand_size!r}")  # fmt: skip


def _separate(models: list[HandModel], params: dict[int, PoseParams], state: dict[int, list],
              pairs: list[tuple[int, int]], rounds: int = 3) -> None:  # fmt: skip
    """Move each pair whose meshes cross apart (``separating_shift``, at most
    ``LONGEST_SHIFT``), half the shift each: the hands' translations in ``state``
    (orientation, pose, shape, uvz) are changed in place. Pairs that share a hand are
    parted again, up to ``rounds`` times, while parting one makes another cross."""
    with torch.no_grad():
        verts = {}
        for i in {i for p in pairs for i in p}:
            go, angles, betas, _ = state[i]
            verts[i] = models[i](global_orient=go, hand_pose=params[i].hand_pose(angles),
                                 betas=betas, transl=transl_of(state[i][3])).vertices  # fmt: skip
        for _ in range(rounds):
            moved = False
            for a, b in pairs:
                shift = separating_shift(verts[a], models[a].faces, verts[b], models[b].faces,
                                         HAND_REACH, HAND_FRONT, longest=LONGEST_SHIFT)  # fmt: skip
                if not shift.any():
                    continue
                moved = True
                for i, half in ((a, -0.5), (b, 0.5)):
                    state[i][3].copy_(uvz_of(transl_of(state[i][3]) + half * shift))
                    verts[i] = verts[i] + half * shift[:, None]
            if not moved or len(pairs) == 1:
                break


CLOSE_REACH = 0.08  # metres: the longest depth shift between a pair's hands (close_gap)


def close_along_rays(model_a: HandModel, model_b: HandModel, params_a: PoseParams,
                     params_b: PoseParams, state_a: list[Tensor], state_b: list[Tensor],
                     gap: float, radius: float = 0.0075,
                     reach: float = CLOSE_REACH) -> float:  # fmt: skip
    """Close a pair's gap along the hands' rays: where the closest bone spheres of hands a
    and b (one each, batches of one; ``state_*``: [orientation, pose parameters, shape, uvz]
    as refined) are more than ``gap`` metres apart (surfaces, as ``contact_gap``), move a by
    -d/2 and b by +d/2 along the unit rays through their joints' centroids (the centroids'
    image positions stay; each hand's image size changes with its depth, by a few percent),
    the smallest |d| <= ``reach`` that brings the gap to ``gap``: the shortest on a 1 mm
    grid (of either sign), then bisected towards 0 on its side (so within 1 mm of the
    shortest). The uvz in the states are changed in place. A pair within ``gap``, or that no
    such shift brings there, stays. Returns d, metres (0 where nothing moved). A hand in two
    pairs is moved by each in turn (``refine_touching``: pairs in order, no recheck)."""
    if state_a[3].shape[0] != 1 or state_b[3].shape[0] != 1:
        raise ValueError(f"close_along_rays: one hand per state (batches of one), got "
                         f"{state_a[3].shape[0]} and {state_b[3].shape[0]}")  # fmt: skip
    step = 0.001
    n = int(round(reach / step))
    if n < 1:
        raise ValueError(f"close_along_rays: reach must be at least {step} m, got {reach}")
    with torch.no_grad():
        joints, rays = [], []
        for model, params, (go, angles, betas, uvz) in ((model_a, params_a, state_a),
                                                        (model_b, params_b, state_b)):  # fmt: skip
            j = model.keypoints(global_orient=go, hand_pose=params.hand_pose(angles),
                                betas=betas, transl=transl_of(uvz))[0].double()  # fmt: skip
            joints.append(j)
            rays.append(j.mean(0) / j.mean(0).norm())
        k = torch.arange(-n, n + 1, device=joints[0].device)
        grid = step * k[k.abs().argsort(stable=True)].double()  # no shift first, then longer
        gaps = _gaps_along_rays(joints, rays, grid, radius)
        closing = (gaps <= gap).nonzero()
        if gaps[0] <= gap or len(closing) == 0:
            return 0.0
        hi = grid[closing[0, 0]]
        lo = hi - torch.sign(hi) * step  # its grid neighbour nearer 0, still open (seen before)
        for _ in range(12):
            mid = 0.5 * (lo + hi)
            if _gaps_along_rays(joints, rays, mid[None], radius)[0] <= gap:
                hi = mid
            else:
                lo = mid
        for state, half, ray in ((state_a, -0.5, rays[0]), (state_b, 0.5, rays[1])):
            uvz = state[3]
            uvz.copy_(uvz_of(transl_of(uvz) + (half * hi * ray).to(uvz.dtype)))
        return float(hi)


def _gaps_along_rays(joints: list[Tensor], rays: list[Tensor], d: Tensor, radius: float
                     ) -> Tensor:  # fmt: skip
    """(N,) shifts -> (N,) surface gaps (metres) of two hands' joints (21, 3) moved by
    -d/2 and +d/2 along their unit rays (3,)."""
    ja = joints[0][None] - 0.5 * d[:, None, None] * rays[0]
    jb = joints[1][None] + 0.5 * d[:, None, None] * rays[1]
    return contact_gap(ja, jb, radius).sqrt()


def part_results(models: list[HandModel], results: list[FitResult],
                 pairs: list[tuple[int, int]]) -> list[FitResult]:  # fmt: skip
    """``results`` with each pair of ``pairs`` whose meshes cross moved apart as after the
    refinement (``separating_shift``, at most ``LONGEST_SHIFT``, half each; once per pair):
    translations changed, outputs re-run; each pair's hands' "crossing" loss (metres,
    ``deepest_penetration``) measured again on what is returned. For results changed after
    the refinement (a video's smoothing moves each hand of a pair by its own filter).
    Batches of one."""
    out = list(results)
    with torch.no_grad():
        for a, b in pairs:
            shift = separating_shift(out[a].output.vertices, models[a].faces,
                                     out[b].output.vertices, models[b].faces, HAND_REACH,
                                     HAND_FRONT, longest=LONGEST_SHIFT)  # fmt: skip
            if shift.any():
                for i, half in ((a, -0.5), (b, 0.5)):
                    r = out[i]
                    tr = r.transl + half * shift.to(r.transl.dtype)
                    texture = r.texture if has_texture_space(models[i]) else None
                    out[i] = replace(r, transl=tr, output=models[i](
                        global_orient=r.global_orient, hand_pose=r.hand_pose, betas=r.betas,
                        transl=tr, texture=texture))  # fmt: skip
        crossing: dict[int, Tensor] = {}  # a hand in several pairs: the largest
        for a, b in pairs:
            deep = deepest_penetration(out[a].output.vertices, models[a].faces,
                                       out[b].output.vertices, models[b].faces, HAND_REACH,
                                       HAND_FRONT)  # fmt: skip
            for i in (a, b):
                crossing[i] = torch.maximum(crossing[i], deep) if i in crossing else deep
        for i, deep in crossing.items():
            out[i] = replace(out[i], losses={**out[i].losses, "crossing": deep})
    return out


def _bone_length(joints: Tensor) -> Tensor:
    """(B, 21, 3) -> (B,) the summed length of the 20 bones."""
    return (joints[:, _BONES[:, 1]] - joints[:, _BONES[:, 0]]).norm(dim=-1).sum(1)


def _rigid(joints: Tensor, uvz: Tensor) -> Tensor:
    """``joints`` whose gradient reaches only the translation (``uvz``)."""
    tr = transl_of(uvz)
    return joints.detach() + (tr - tr.detach())[:, None]


def _result(model: HandModel, params: PoseParams, before: FitResult, state: list[Tensor],
            inputs: FitInputs, terms: dict[str, Tensor]) -> FitResult:  # fmt: skip
    go, angles, betas, uvz = (t.detach() for t in state)
    with torch.no_grad():
        hand_pose = params.hand_pose(angles)
        tr = transl_of(uvz)
        out = model(global_orient=go, hand_pose=hand_pose, betas=betas, transl=tr,
                    texture=before.texture if has_texture_space(model) else None)  # fmt: skip
        err = (project(out.joints, inputs.K) - inputs.keypoints).norm(dim=-1)
        conf = inputs.confidence
        reproj = (conf * err).sum(1) / conf.sum(1).clamp_min(1e-6)
    losses = {**before.losses, **{k: v.detach() for k, v in terms.items()}}
    return replace(before, global_orient=go, hand_pose=hand_pose, pose_params=angles,
                   betas=betas, transl=tr, output=out, reprojection_px=reproj,
                   losses=losses)  # fmt: skip


def __getattr__(name: str):
    if name == "row":  # moved to ``fit.hand_of`` (2026-12-06)
        import warnings

        from .fit import hand_of

        warnings.warn("monohand.twohands.row is now monohand.fit.hand_of", DeprecationWarning,
                      stacklevel=2)  # fmt: skip
        return hand_of
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
