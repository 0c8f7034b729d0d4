"""A hand's mask from its keypoints (``data.hand_mask``), on rendered hands whose true
silhouette is known."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from monohand.data.hand_mask import hand_mask, skeleton_seeds
from monohand.models.openhand import OpenHand
from monohand.render import Renderer
from monohand.render.camera import default_K, project

SIZE = 128


def _scene(seed: int, pose_scale: float = 1.0):
    """A skin-coloured OpenHand on a busy background of cool colours (the premise of a colour
    model: the hand's colours are not its surroundings'), with a skin-coloured
    disc in one corner. Returns (image uint8, keypoints (21, 2), true mask, disc mask)."""
    hand = OpenHand()
    g = torch.Generator().manual_seed(seed)
    angles = hand.pose_space.sample(1, g) * pose_scale
    pose = {"global_orient": torch.tensor([[2.9, 0.2, 0.3 * seed]]),
            "hand_pose": hand.pose_space.to_axis_angle(angles)}
    centre = hand(**pose).vertices[0].mean(0)  # the hand in the middle of the image
    out = hand(**pose, transl=torch.tensor([[0.0, 0.0, 0.42]]) - centre)
    rng = np.random.default_rng(seed)
    # tiles of saturated greens to blues, bright and dark: no skin colour among them
    hsv = rng.uniform((120, 0.5, 0.3), (250, 1.0, 0.9), (8, 8, 3)).astype(np.float32)
    tiles = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    bg = cv2.resize(tiles, (SIZE, SIZE), interpolation=cv2.INTER_NEAREST).astype(np.float64)
    # a skin-coloured disc touching the middle fingertip and reaching half a hand size
    # beyond it (a face behind the hand): GrabCut takes it, by its colour
    K = default_K((SIZE, SIZE), 40)
    kp = project(out.joints, K)[0].numpy()
    size = np.linalg.norm(kp[9] - kp[0])
    tip = kp[12] + (kp[12] - kp[11]) / np.linalg.norm(kp[12] - kp[11]) * 0.3 * size
    disc = np.zeros((SIZE, SIZE), np.uint8)
    cv2.circle(disc, tuple(int(v) for v in np.round(tip)), int(0.2 * size), 1, -1)
    bg[disc > 0] = (0.85, 0.65, 0.55)
    colours = torch.tensor([0.85, 0.65, 0.55]).expand(1, out.vertices.shape[1], 3)
    with torch.no_grad():
        # mostly ambient light: no side of the hand in shadow as dark as the darkest tiles
        light = torch.tensor([[0.8, 0.3, 1, 1, 1, 1, 1, 1, 0.0, -0.45, -0.9]])
        r = Renderer(SIZE)(out.vertices, hand.faces, K, vertex_colors=colours, light=light,
                           background=torch.as_tensor(bg, dtype=torch.float32)[None])  # fmt: skip
    image = (r.rgb[0].clamp(0, 1) * 255).round().byte().numpy()
    keypoints = project(out.joints, K)[0].numpy()
    return image, keypoints, r.mask[0].numpy(), disc > 0


def test_the_mask_of_a_rendered_hand_is_its_silhouette():
    ious = []
    for seed in range(4):
        image, kp, truth, disc = _scene(seed)
        found = hand_mask(image, kp)
        assert found.mask.shape == truth.shape and found.weight.dtype == np.float32
        believed = found.weight > 0
        ious.append((found.mask & truth & believed).sum() / ((found.mask | truth) & believed).sum())
        # The skin-coloured disc is in the mask; where it is further than 0.35 hand sizes
        # from the hand's bones it is not this hand's skin, and carries no weight.
        ys, xs = np.mgrid[:SIZE, :SIZE]
        pts = np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float64)
        far = (_segment_distances(pts, kp) > 0.36 * np.linalg.norm(kp[9] - kp[0]))
        far = far.reshape(SIZE, SIZE) & disc & found.mask
        assert far.sum() > 10 and (found.weight[far] == 0).all()
        # Behind the wrist (the forearm's side) nothing is believed; ahead of it, on the
        # hand, everything.
        axis = kp[9] - kp[0]
        behind = (xs - kp[0, 0]) * axis[0] + (ys - kp[0, 1]) * axis[1] < -1.0
        assert (found.weight[behind] == 0).all()
        assert found.weight[~behind & truth].mean() > 0.99
    # (the misses: the rendered mesh's open wrist, dark inside, and background next to the
    # fingers taken for skin where the sure seeds' anti-aliased pixels mix both colours)
    assert np.mean(ious) > 0.85 and min(ious) > 0.65, ious


def _segment_distances(points: np.ndarray, kp: np.ndarray) -> np.ndarray:
    """(N,) exact distance of each point to the nearest bone segment or the palm polygon."""
    from monohand.data.hand_mask import _BONES, _PALM

    best = np.full(len(points), np.inf)
    for a, b in _BONES:
        d = kp[b] - kp[a]
        t = np.clip(((points - kp[a]) @ d) / max(d @ d, 1e-12), 0, 1)
        best = np.minimum(best, np.linalg.norm(points - (kp[a] + t[:, None] * d), axis=1))
    hull = cv2.convexHull(kp[list(_PALM)].astype(np.float32))
    inside = np.array([cv2.pointPolygonTest(hull, (float(x), float(y)), False) >= 0
                       for x, y in points])  # fmt: skip
    return np.where(inside, 0.0, best)


def test_pixels_nearer_another_hand_are_left_to_it():
    image, kp, truth, _ = _scene(1)
    other = kp + 0.6 * np.linalg.norm(kp[9] - kp[0]) * np.array([1.0, 0.3])
    alone = hand_mask(image, kp)
    cv2.setRNGSeed(123)  # other work drawing from OpenCV's generator in between
    cv2.randu(np.zeros((8, 8)), 0.0, 1.0)
    shared = hand_mask(image, kp, [other])
    assert np.array_equal(alone.mask, shared.mask)  # the cut is the same, the weight not
    ys, xs = np.mgrid[:SIZE, :SIZE]
    pts = np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float64)
    own, theirs = _segment_distances(pts, kp), _segment_distances(pts, other)
    clear = np.abs(own - theirs) > 2.0  # away from the rasterised lines' half-pixel doubt
    w_alone, w_shared = alone.weight.ravel(), shared.weight.ravel()
    assert (w_shared[clear & (theirs < own)] == 0).all()
    keep = clear & (theirs > own)
    assert np.array_equal(w_shared[keep], w_alone[keep])
    assert (clear & (theirs < own) & (w_alone > 0)).sum() > 200  # the rule had work to do


def test_seeds_are_sure_on_the_bones_and_sure_background_far_away():
    _, kp, truth, _ = _scene(0)
    seeds = skeleton_seeds(kp, truth.shape)
    for j in range(21):  # every joint lies on a sure-hand bone
        x, y = np.round(kp[j]).astype(int)
        assert seeds[y, x] == cv2.GC_FGD
    size = np.linalg.norm(kp[9] - kp[0])
    ys, xs = np.mgrid[: truth.shape[0], : truth.shape[1]]
    d = np.min([np.hypot(xs - x, ys - y) for x, y in kp], axis=0)
    assert (seeds[d > 1.5 * size] == cv2.GC_BGD).all()
    assert set(np.unique(seeds)) == {cv2.GC_BGD, cv2.GC_FGD, cv2.GC_PR_BGD}


def test_a_hand_with_no_background_to_learn_from_gives_no_evidence():
    # The hand's sure pixels cover the whole (small) image: no background to learn.
    image = np.full((5, 5, 3), 200, np.uint8)
    kp = np.stack([np.linspace(0, 4, 21), np.linspace(4, 0, 21)], 1)
    kp[9] = kp[0] + (200.0, 0.0)
    found = hand_mask(image, kp)
    assert not found.weight.any()


def test_bad_inputs_are_named():
    image, kp, _, _ = _scene(0)
    with pytest.raises(ValueError, match="image: expected"):
        hand_mask(image.astype(np.float32), kp)
    with pytest.raises(ValueError, match="image: expected"):
        hand_mask(image[..., 0], kp)
    with pytest.raises(ValueError, match="keypoints: expected"):
        hand_mask(image, kp[:20])
    with pytest.raises(ValueError, match="keypoints: expected"):
        hand_mask(image, np.full((21, 2), np.nan))
    with pytest.raises(ValueError, match="others: expected"):
        hand_mask(image, kp, [kp[:5]])
    from monohand.data.hand_mask import hands_mask

    with pytest.raises(ValueError, match="skeletons: expected"):
        hands_mask(image, [kp, kp[:, :1]])
