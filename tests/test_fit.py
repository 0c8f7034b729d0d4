"""The fit (``monohand.fit``): a known hand recovered, confidences, and its fast paths
(the closed-form schedule, the pixel albedo, the covered pixels) against what they replace;
the silhouette stage."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import Tensor

from monohand.evaluate.align import procrustes_align
from monohand.fit import (
    WEIGHTED_TERMS,
    FitConfig,
    FitInputs,
    PoseParams,
    fit_hands,
    fit_terms,
    relative_confidence,
    uvz_of,
    weighted_total,
)
from monohand.models.base import HandModel
from monohand.models.openhand import OpenHand
from monohand.models.procedural import box_hand_data
from monohand.models.skinned import SkinnedHand
from monohand.render.camera import project


def test_fitting_recovers_a_known_hand():
    hand = OpenHand()
    g = torch.Generator().manual_seed(4)
    angles = hand.pose_space.sample(2, g)
    go = torch.tensor([[2.0, 0.3, -0.2], [1.2, -0.5, 0.4]])
    betas = 0.5 * torch.randn(2, 10, generator=g)
    transl = torch.tensor([[0.1, 0.0, 0.5]] * 2)
    pose = hand.pose_space.to_axis_angle(angles)
    truth = hand(global_orient=go, hand_pose=pose, betas=betas, transl=transl)
    K = torch.tensor([[[600.0, 0, 320], [0, 600.0, 240], [0, 0, 1]]]).repeat(2, 1, 1)
    world = truth.joints - truth.joints.mean(1, keepdim=True)
    inputs = FitInputs(project(truth.joints, K), torch.ones(2, 21), K, world=world)
    res = fit_hands(hand, inputs, FitConfig(photo_iters=0))
    assert (res.reprojection_px < 2.0).all()
    aligned = procrustes_align(res.output.joints.double().numpy(), truth.joints.double().numpy())
    pa = np.linalg.norm(aligned - truth.joints.numpy(), axis=-1).mean(1) * 1000
    assert (pa < 6.0).all(), pa


def test_no_steps_keeps_one_of_the_starts_as_it_is():
    """``iters=0``: each hand's two PnP starts (with and without the world landmarks) are
    scored, not moved, and the better kept per hand (each start scored here by the whole
    objective on its own; it raised ``UnboundLocalError`` with two starts); negative steps
    are refused."""
    hand = OpenHand()
    g = torch.Generator().manual_seed(5)
    pose = hand.pose_space.to_axis_angle(hand.pose_space.sample(2, g))
    truth = hand(global_orient=torch.tensor([[2.0, 0.3, -0.2], [1.2, -0.5, 0.4]]),
                 hand_pose=pose, transl=torch.tensor([[0.1, 0.0, 0.5]] * 2))  # fmt: skip
    K = torch.tensor([[[600.0, 0, 320], [0, 600.0, 240], [0, 0, 1]]]).repeat(2, 1, 1)
    world = truth.joints - truth.joints.mean(1, keepdim=True)
    # world landmarks from a mirrored hand: the two starts differ
    world = world * torch.tensor([1.0, 1.0, -1.0])
    inputs = FitInputs(project(truth.joints, K) + 3.0, torch.ones(2, 21), K, world=world)
    cfg = FitConfig(iters=0, photo_iters=0, silhouette_iters=0)
    both = fit_hands(hand, inputs, cfg)
    alone = [fit_hands(hand, inputs, replace(cfg, two_starts=False)),
             fit_hands(hand, replace(inputs, world=None), cfg)]  # the other start alone
    assert not torch.allclose(alone[0].transl, alone[1].transl, atol=1e-3)
    # each start scored by the whole objective (world term included), independently
    params = PoseParams(hand, 2, torch.float32)
    rel = replace(inputs, confidence=relative_confidence(inputs.confidence))
    scores = torch.stack([weighted_total(fit_terms(hand, params, rel, cfg, r.global_orient,
                                                   r.pose_params, r.betas, uvz_of(r.transl),
                                                   mesh=False)[1], cfg)
                          for r in alone])  # fmt: skip
    for k in range(2):  # each hand its better start, unmoved
        best = alone[int(scores[:, k].argmin())]
        assert torch.allclose(both.transl[k], best.transl[k], atol=1e-6)
        assert torch.allclose(both.global_orient[k], best.global_orient[k], atol=1e-6)
    assert {"keypoints", "world"} <= set(both.losses)
    with pytest.raises(ValueError, match="iters"):
        fit_hands(hand, inputs, replace(cfg, iters=-1))


def test_the_objective_weighs_every_term_and_refuses_one_without_a_weight():
    cfg = FitConfig()
    terms = {name: torch.tensor([float(k + 1), 0.5]) for k, name in enumerate(WEIGHTED_TERMS)}
    want = sum(getattr(cfg, f"w_{name}") * terms[name] for name in WEIGHTED_TERMS)
    assert torch.allclose(weighted_total(terms, cfg), want)
    del terms["world"]  # an absent term counts 0
    assert torch.allclose(weighted_total(terms, cfg), want - cfg.w_world * torch.tensor([2.0, 0.5]))
    with pytest.raises(KeyError, match="w_<name>"):
        weighted_total({**terms, "wrinkles": torch.ones(2)}, cfg)


class OwnHand(HandModel):
    """A hand model of one's own, written against ``HandModel``'s interface only (the box
    hand inside; none of its pose data, PCA or joint limits exposed)."""

    name, side = "own", "right"

    def __init__(self):
        super().__init__()
        self._inner = SkinnedHand(box_hand_data(), dtype=torch.float64)
        self.num_pose_params, self.num_shape_params = 45, 0
        self.joint_names = self._inner.joint_names
        self.register_buffer("parents", self._inner.parents)
        self.register_buffer("faces", self._inner.faces)
        self.uvs = self.face_uvs = None

    @property
    def num_vertices(self) -> int:
        return self._inner.num_vertices

    def forward(self, global_orient=None, hand_pose=None, betas=None, transl=None,
                texture=None):  # fmt: skip
        return self._inner(global_orient=global_orient, hand_pose=hand_pose, transl=transl)


def test_a_model_of_ones_own_is_fitted_through_the_interface_alone():
    """No MANO pose data, no anatomical angles: its hand_pose numbers are fitted from 0
    with a squared-norm prior, and a known hand's keypoints are met."""
    hand = OwnHand()
    assert not hasattr(hand, "data") and not hasattr(hand, "pose_space")
    pose = torch.zeros(1, 45, dtype=torch.float64)
    pose[0, 2] = 0.6  # the index finger bent
    go = torch.tensor([[2.0, 0.3, -0.2]], dtype=torch.float64)
    truth = hand(global_orient=go, hand_pose=pose,
                 transl=torch.tensor([[0.05, 0.0, 0.5]], dtype=torch.float64))  # fmt: skip
    K = torch.tensor([[[600.0, 0, 320], [0, 600.0, 240], [0, 0, 1]]], dtype=torch.float64)
    inputs = FitInputs(project(truth.joints, K), torch.ones(1, 21, dtype=torch.float64), K,
                       world=truth.joints - truth.joints.mean(1, keepdim=True))  # fmt: skip
    res = fit_hands(hand, inputs, FitConfig(photo_iters=0, silhouette_iters=0))
    assert (res.reprojection_px < 3.0).all(), res.reprojection_px


def test_the_palm_hand_size_survives_a_hand_pointing_at_the_camera():
    from scipy.spatial.transform import Rotation

    from monohand.fit import image_hand_size

    hand = OpenHand()
    rest = hand.keypoints(global_orient=torch.zeros(1, 3), hand_pose=torch.zeros(1, 45),
                          betas=torch.zeros(1, 10), transl=torch.zeros(1, 3))[0].double()
    axis = (rest[9] - rest[0]).numpy()
    across = np.cross(axis, (rest[17] - rest[5]).numpy())  # the palm's normal
    # palm facing the camera (its normal along the optical axis), and then the wrist-to-
    # middle-knuckle axis along it (the hand pointing at the camera), 40 cm away
    face = Rotation.align_vectors([[0, 0, 1.0]], [across])[0]
    point = Rotation.align_vectors([[0, 0, 1.0]], [axis])[0]
    K = torch.tensor([[600.0, 0, 320], [0, 600.0, 240], [0, 0, 1]], dtype=torch.float64)
    uv = []
    for rot in (face, point):
        j = (rest - rest[0]) @ torch.as_tensor(rot.as_matrix()).T + torch.tensor([0, 0, 0.4])
        uv.append(project(j[None], K[None])[0])
    uv = torch.stack(uv)
    length, palm = image_hand_size(uv, "length"), image_hand_size(uv, "palm")
    truth = 600 * (rest[9] - rest[0]).norm() / 0.4  # the bone's unforeshortened image length
    assert torch.allclose(length[0], truth, rtol=0.05)  # a face-on palm: both its true size
    assert torch.allclose(palm[0], truth, rtol=0.05)
    assert length[1] < 0.05 * truth  # pointing at the camera, the bone is a dot
    assert palm[1] > 0.7 * truth  # the palm's width is not foreshortened
    assert image_hand_size(uv, "length", floor=1e4).eq(1e4).all()
    with pytest.raises(ValueError, match="hand_size"):
        image_hand_size(uv, "box")
    inputs = FitInputs(uv[:1].float(), torch.ones(1, 21), K[None].float())
    with pytest.raises(ValueError, match="hand_size"):  # before any step
        fit_hands(hand, inputs, FitConfig(hand_size="box"))


def test_only_the_ratios_of_a_hands_confidences_weight_its_fit():
    from monohand.fit import relative_confidence

    conf = torch.tensor([[0.2, 0.4] + [0.1] * 19, [0.0] * 21, [1e-45] * 21])
    rel = relative_confidence(conf)
    assert torch.allclose(rel[0], conf[0] / 0.4) and (rel[1:] == 1).all()
    for bad in (float("nan"), -0.1):
        with pytest.raises(ValueError, match="finite and non-negative"):
            relative_confidence(torch.tensor([[bad] + [0.5] * 20]))
    # A hand no augmentation found again (confidences ~exp(-156)) is fitted as one with
    # confidence 1: its keypoints still count.
    hand = OpenHand()
    relaxed = torch.as_tensor(hand.pose_space.relaxed[None], dtype=torch.float32)
    truth = hand(global_orient=torch.tensor([[2.0, 0.3, -0.2]]),
                 hand_pose=hand.pose_space.to_axis_angle(relaxed),
                 transl=torch.tensor([[0.05, 0.0, 0.5]]))  # fmt: skip
    K = torch.tensor([[[600.0, 0, 320], [0, 600.0, 240], [0, 0, 1]]])
    world = truth.joints - truth.joints.mean(1, keepdim=True)
    cfg = FitConfig(iters=30, iters_3d=10, photo_iters=0)
    runs = [
        fit_hands(hand, FitInputs(project(truth.joints, K), c, K, world=world), cfg)
        for c in (torch.ones(1, 21), torch.full((1, 21), 1e-40))
    ]
    assert torch.allclose(runs[0].output.joints, runs[1].output.joints, atol=1e-6)
    assert runs[1].reprojection_px.item() < 3.0


def test_pixel_albedo_equals_decoding_and_sampling_the_map():
    from monohand.fit.render_compare import _pixel_albedo
    from monohand.render.shade import sample_texture

    hand = OpenHand()
    g = torch.Generator().manual_seed(0)
    uv = torch.rand(2, 16, 12, 2, generator=g)
    # Small coefficients: inside [0, 1] the clamp before or after the lookup is the same.
    tex = 0.2 * torch.randn(2, hand.num_texture_params, generator=g)
    want = sample_texture(hand.albedo(tex)[0], uv)
    assert (_pixel_albedo(hand, uv)(tex) - want).abs().max() < 1e-5


def test_appearance_stage_sees_the_covered_pixels_only():
    # The loss over the covered pixels (GBuffer.take) equals the loss over the whole crop.
    from monohand import losses as L
    from monohand.fit.render_compare import _pixel_albedo, _renderer
    from monohand.render import default_light
    from monohand.render.camera import default_K
    from monohand.render.renderer import take_pixels

    hand = OpenHand()
    verts = hand(transl=torch.tensor([[0.08, 0.0, 0.35]])).vertices
    K = default_K((64, 64), 40, 1)
    ren = _renderer(64, 64)
    g = ren.gbuffer(verts, hand.faces, K, hand.uvs, hand.face_uvs)
    crop = torch.rand(1, 64, 64, 3, generator=torch.Generator().manual_seed(1))
    mask = g.fragments.mask.float()
    tex = 0.1 * torch.ones(1, hand.num_texture_params)
    light = default_light(1) * 1.2
    full = L.photometric(ren.compose(g, _pixel_albedo(hand, g.uv)(tex), light).rgb, crop, mask)
    pixels = (g.fragments.alpha > 0).any(0).flatten().nonzero()[:, 0]
    assert 0 < len(pixels) < 64 * 64
    part = g.take(pixels)
    m, c = take_pixels(mask, pixels), take_pixels(crop, pixels)
    sparse = L.photometric(ren.compose(part, _pixel_albedo(hand, part.uv)(tex), light).rgb, c, m)
    assert torch.allclose(sparse, full, rtol=1e-6)


def test_silhouette_stage_pulls_the_outline_to_the_mask():
    # Keypoints with a systematic error (the fingers' joints drawn towards the wrist, as a
    # detector that shortens a foreshortened hand would): the mask of the true hand pulls
    # the fitted outline back; without a mask nothing changes.
    from monohand.render import silhouette
    from monohand.render.camera import default_K

    hand = OpenHand()
    g = torch.Generator().manual_seed(7)
    angles = hand.pose_space.sample(2, g) * 0.5
    go = torch.tensor([[2.9, 0.2, 0.1], [2.6, -0.3, 0.5]])
    truth = hand(global_orient=go, hand_pose=hand.pose_space.to_axis_angle(angles),
                 transl=torch.tensor([[0.0, 0.02, 0.4], [0.01, 0.0, 0.45]]))  # fmt: skip
    size = (96, 96)
    K = default_K(size, 50).expand(2, 3, 3)
    with torch.no_grad():
        mask = (silhouette(truth.vertices, hand.faces, K, size) > 0.5).float()
    kp = project(truth.joints, K)
    kp = kp[:, :1] + (kp - kp[:, :1]) * 0.9
    world = truth.joints - truth.joints.mean(1, keepdim=True)
    inputs = FitInputs(kp, torch.ones(2, 21), K, world=world, crop_K=K, mask=mask,
                       mask_weight=torch.ones_like(mask))  # fmt: skip
    cfg = FitConfig(iters=40, iters_3d=20, photo_iters=0, w_world=0.0, silhouette_iters=0)

    def iou(res) -> Tensor:
        with torch.no_grad():
            s = silhouette(res.output.vertices, hand.faces, K, size) > 0.5
        m = mask > 0
        return (s & m).sum((1, 2)) / (s | m).sum((1, 2))

    plain = fit_hands(hand, inputs, cfg)
    with_mask = fit_hands(hand, inputs, replace(cfg, silhouette_iters=30, w_silhouette=3.0))
    assert (iou(with_mask) > iou(plain) + 0.03).all(), (iou(plain), iou(with_mask))
    assert "silhouette" in with_mask.losses and "silhouette" not in plain.losses
    no_mask = replace(inputs, mask=None, mask_weight=None)
    same = fit_hands(hand, no_mask, replace(cfg, silhouette_iters=30))
    assert torch.equal(same.output.joints, plain.output.joints)


def test_silhouette_stage_keeps_a_fixed_shape_and_the_starts_prior():
    # Several starts (a prior start beside PnP's two), the prior pulled towards, the shape
    # held fixed: the stage runs on the chosen start of each hand, with its prior's rows.
    from monohand.fit import FitInit
    from monohand.render import silhouette
    from monohand.render.camera import default_K

    hand = OpenHand()
    g = torch.Generator().manual_seed(3)
    angles = hand.pose_space.sample(2, g) * 0.5
    go = torch.tensor([[2.9, 0.2, 0.1], [2.6, -0.3, 0.5]])
    betas = 0.5 * torch.randn(2, 10, generator=g)
    transl = torch.tensor([[0.0, 0.02, 0.4], [0.01, 0.0, 0.45]])
    truth = hand(global_orient=go, hand_pose=hand.pose_space.to_axis_angle(angles),
                 betas=betas, transl=transl)  # fmt: skip
    K = default_K((96, 96), 50).expand(2, 3, 3)
    with torch.no_grad():
        mask = (silhouette(truth.vertices, hand.faces, K, (96, 96)) > 0.5).float()
    world = truth.joints - truth.joints.mean(1, keepdim=True)
    inputs = FitInputs(project(truth.joints, K), torch.ones(2, 21), K, world=world, crop_K=K,
                       mask=mask, mask_weight=torch.ones_like(mask))  # fmt: skip
    init = FitInit(go + 0.1, angles, betas, transl, fix_shape=True, prior=True, pnp_start=True)
    res = fit_hands(hand, inputs, FitConfig(iters=20, iters_3d=10, photo_iters=0), init)
    assert torch.equal(res.betas, betas)
    assert {"silhouette", "prior_pose", "prior_shape"} <= set(res.losses)
    assert res.losses["silhouette"].shape == (2,) and (res.losses["prior_shape"] == 0).all()
    with pytest.raises(ValueError, match="FitInputs.mask"):
        fit_hands(hand, replace(inputs, crop_K=None), FitConfig(iters=2, photo_iters=0), init)
    nan = mask.clone()
    nan[0, 0, 0] = float("nan")
    for bad in (replace(inputs, mask_weight=nan), replace(inputs, mask_weight=mask[:, :5])):
        with pytest.raises(ValueError, match="FitInputs.mask_weight: expected finite"):
            fit_hands(hand, bad, FitConfig(iters=2, photo_iters=0), init)


def _inputs(**change):
    g = torch.Generator().manual_seed(0)
    kp = 100 + 80 * torch.rand(2, 21, 2, generator=g)
    K = torch.tensor([[500.0, 0, 128], [0, 500.0, 128], [0, 0, 1]]).expand(2, 3, 3)
    return {"keypoints": kp, "confidence": torch.ones(2, 21), "K": K, **change}


@pytest.mark.parametrize(
    "change, error, words",
    [
        ({"keypoints": np.zeros((2, 21, 2))}, TypeError,
         "FitInputs.keypoints must be a torch tensor, got a ndarray"),
        ({"K": torch.eye(3)}, ValueError, r"FitInputs.K must be \(B, 3, 3\), got \(3, 3\) "
                                          r"\(one hand: add the batch axis, x\[None\]\)"),
        ({"confidence": torch.ones(21)}, ValueError, r"FitInputs.confidence must be \(B, 21\)"),
        ({"world": torch.zeros(2, 20, 3)}, ValueError, r"FitInputs.world must be \(B, 21, 3\)"),
        ({"K": torch.eye(3, dtype=torch.float64).expand(2, 3, 3)}, TypeError,
         "FitInputs.K is torch.float64 but keypoints are torch.float32"),
        ({"confidence": torch.ones(3, 21)}, ValueError, "FitInputs.confidence has 3 hands, "
                                                        "keypoints 2"),
        ({"confidence": torch.ones(2, 21, dtype=torch.long)}, TypeError, "floating-point"),
        ({"keypoints": torch.rand(2, 21, 2)}, ValueError,
         r"hand \d spans .* pixels within \[-1.5, 1.5\]: normalised coordinates"),
        ({"keypoints": torch.full((2, 21, 2), float("nan"))}, ValueError, "not finite"),
    ],
)  # fmt: skip
def test_fit_inputs_name_what_is_wrong(change, error, words):
    """The fit's inputs are checked when made, each error naming its field (a researcher
    fitting keypoints of their own meets these before any of torch's or OpenCV's)."""
    FitInputs(**_inputs())  # the unchanged inputs are fine
    with pytest.raises(error, match=words):
        FitInputs(**_inputs(**change))


def test_a_tiny_hand_in_pixels_is_the_fits_to_try():
    """A hand spanning a pixel far from the corner (a detector's, collapsed) is not taken
    for normalised coordinates: no error where a video's frame would have crashed."""
    FitInputs(**_inputs(keypoints=300 + 0.5 * torch.rand(2, 21, 2)))
