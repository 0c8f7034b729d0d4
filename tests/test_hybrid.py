"""Network and fitting together: the network's prediction as the fit's start and prior.

References: the network's own joints in the photo's camera frame (a start must reproduce them
exactly, on either side), mirror symmetry of the model's left and right layers, known poses
that the prior must pull towards, and a fit from PnP.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from monohand.data.detection import HandDetection
from monohand.data.synthetic import SynthConfig, generate
from monohand.fit import FitConfig, FitInit, FitInputs, PoseParams, fit_hands
from monohand.hybrid import _pose_params, network_predict, network_start
from monohand.models.openhand import OpenHand
from monohand.models.registry import create
from monohand.nets import load_network
from monohand.reconstruct import ReconstructConfig, Reconstructor
from monohand.render.camera import project

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "hand.jpg"


@pytest.fixture(scope="module")
def net():
    return load_network()[0]


@pytest.fixture(scope="module")
def render(tmp_path_factory):
    """One v2 render of an unseen seed: image, K, joints."""
    from monohand.data.freihand import read_freihand
    from monohand.data.images import read_rgb

    root = tmp_path_factory.mktemp("hybrid") / "set"
    generate(root, SynthConfig(num=2, seed=4711, size=256, fill=(0.4, 0.7), style="v2",
                               eval_fraction=0.0, batch=2))  # fmt: skip
    ix = read_freihand(root, "training")
    return read_rgb(ix.image_path(0)), ix.K[0], ix.xyz[0]


def _detection(K: np.ndarray, xyz: np.ndarray, side: str) -> HandDetection:
    uv = project(torch.as_tensor(xyz)[None], torch.as_tensor(K)[None])[0].numpy()
    return HandDetection(uv, np.ones(21), 1.0, side)


def _joints(model, init: FitInit) -> np.ndarray:
    hand_pose = PoseParams(model, len(init.betas), torch.float32).hand_pose(init.pose_params)
    out = model(global_orient=init.global_orient, hand_pose=hand_pose, betas=init.betas,
                transl=init.transl)  # fmt: skip
    return out.joints.double().numpy()


def test_the_start_reproduces_the_networks_hands_on_both_sides(net, render):
    """The right hand and its mirror image (a left hand in the mirrored photo, which the
    network sees mirrored back, in MediaPipe's rolled crop): each side's model, started by
    ``network_start``, puts its joints on the network's own camera-frame joints."""
    image, K, xyz = render
    w = image.shape[1]
    Km = np.array([[-1.0, 0, w - 1], [0, 1, 0], [0, 0, 1]]) @ K @ np.diag([-1.0, 1, 1])
    for img, cam, joints, side in ((image, K, xyz, "right"),
                                   (np.ascontiguousarray(image[:, ::-1]), Km,
                                    xyz * [-1, 1, 1], "left")):  # fmt: skip
        pred = network_predict(img, cam, [_detection(cam, joints, side)], net, 224)
        model = OpenHand(side=side)
        init = network_start(model, net.hand, pred)
        assert init.prior and not init.pnp_start
        assert np.abs(_joints(model, init) - pred.joints).max() < 1e-5, side
        # and the network's hand is where the photo's hand is (within 3 cm: its depth)
        assert np.linalg.norm(pred.joints[0] - joints, axis=-1).mean() < 0.03


def test_axis_angle_starts_are_mirrored_for_left_models():
    """A MANO-layout model (no anatomical space), whose mean pose is added to its input: the
    left layer at the converted pose gives the right layer's joints mirrored."""
    right = create("boxhand", flat_hand_mean=False)
    left = create("boxhand", side="left", flat_hand_mean=False)
    g = torch.Generator().manual_seed(2)
    pose = 0.3 * torch.randn(2, 45, generator=g)
    kind = PoseParams(left, 2, torch.float32).kind
    assert kind == "axis_angle"
    left_pose = _pose_params(left, right, pose, kind)
    jr = right(hand_pose=pose).joints
    jl = left(hand_pose=left_pose).joints
    assert torch.allclose(jl, jr * torch.tensor([-1.0, 1, 1]), atol=1e-6)
    assert torch.allclose(_pose_params(right, right, pose, kind), pose, atol=1e-6)


def _known_hand(seed: int = 5):
    hand = OpenHand()
    g = torch.Generator().manual_seed(seed)
    angles = hand.pose_space.sample(1, g)
    go = torch.tensor([[2.0, 0.3, -0.2]])
    transl = torch.tensor([[0.05, 0.0, 0.5]])
    truth = hand(global_orient=go, hand_pose=hand.pose_space.to_axis_angle(angles), transl=transl)
    K = torch.tensor([[[600.0, 0, 320], [0, 600.0, 240], [0, 0, 1]]])
    return hand, angles, go, transl, truth, K


def test_the_prior_pulls_the_pose_towards_the_start():
    """Keypoints of one pose, a start (and prior) at another: a weak prior lets the fit
    follow the keypoints, a strong one keeps the pose at the prior's."""
    hand, angles, go, transl, truth, K = _known_hand()
    inputs = FitInputs(project(truth.joints, K), torch.ones(1, 21), K)
    other = angles + 0.25
    init = FitInit(go, other, torch.zeros(1, 10), transl, prior=True)
    dist = {}
    for w in (1e-3, 1e3):
        cfg = FitConfig(iters=60, photo_iters=0, w_prior_pose=w)
        res = fit_hands(hand, inputs, cfg, init)
        dist[w] = ((res.pose_params - other) ** 2).mean().item()
        assert "prior_pose" in res.losses and "prior_shape" in res.losses
    assert dist[1e3] < 1e-3 < 1e-2 < dist[1e-3], dist
    # without ``prior`` the start is only a start: no prior terms
    res = fit_hands(hand, inputs, FitConfig(iters=5, photo_iters=0),
                    FitInit(go, other, torch.zeros(1, 10), transl))  # fmt: skip
    assert "prior_pose" not in res.losses


def test_a_wrong_start_is_rescued_by_the_pnp_starts():
    """A start turned half a revolution away: alone it stays wrong; with ``pnp_start`` the
    fit also starts from PnP and keeps the start whose objective ends lower."""
    hand, angles, go, transl, truth, K = _known_hand(7)
    world = truth.joints - truth.joints.mean(1, keepdim=True)
    inputs = FitInputs(project(truth.joints, K), torch.ones(1, 21), K, world=world)
    flipped = go + torch.tensor([[0.0, np.pi, 0.0]])
    cfg = FitConfig(photo_iters=0)
    alone = fit_hands(hand, inputs, cfg, FitInit(flipped, angles, torch.zeros(1, 10), transl))
    start = FitInit(flipped, angles, torch.zeros(1, 10), transl, pnp_start=True)
    both = fit_hands(hand, inputs, cfg, start)
    assert both.reprojection_px.item() < 2.0 < alone.reprojection_px.item()
    assert both.output.joints.shape == (1, 21, 3)


def test_hybrid_reconstructs_the_example_closer_to_its_keypoints_than_the_network():
    """examples/hand.jpg: the hybrid's joints, projected, lie closer to MediaPipe's keypoints
    than the network's, and its record carries the fit's terms, the prior's among them."""
    from monohand.data.images import read_rgb
    from monohand.data.intrinsics import camera_for_image

    image = read_rgb(EXAMPLE)
    K, _ = camera_for_image(EXAMPLE, image.shape[:2])
    with Reconstructor(ReconstructConfig(method="hybrid", tta=False)) as rec:
        dets = rec.detector.detect(image)
        assert dets
        hybrid = rec.reconstruct(image, K, dets)
        rec.cfg.method = "network"
        network = rec.reconstruct(image, K, dets)
    assert len(hybrid) == len(network) == len(dets)
    h, n = hybrid[0], network[0]
    assert h.fit["reprojection_px"] < n.fit["reprojection_px"]
    assert "prior_pose" in h.fit and "keypoints" in h.fit
    assert np.linalg.norm(h.joints3d - n.joints3d, axis=1).mean() < 0.03


def test_hybrid_refuses_a_model_the_network_was_not_trained_on():
    with pytest.raises(ValueError, match="^the shipped network: a network trained on the "
                                         "'openhand' hand model, not 'boxhand'"):  # fmt: skip
        Reconstructor(ReconstructConfig(method="hybrid", model="boxhand"))
    with pytest.raises(ValueError, match="unknown method"):
        Reconstructor(ReconstructConfig(method="fitting"))


def test_reconstruct_command_with_method_hybrid(tmp_path):
    """The command line's hybrid: one hand of the example, its fit terms in the JSON."""
    import json

    from typer.testing import CliRunner

    from monohand.cli import app

    res = CliRunner().invoke(app, ["reconstruct", str(EXAMPLE), "--method", "hybrid",
                                   "--out", str(tmp_path)])  # fmt: skip
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "hand.json").read_text())
    hands = doc["hands"]
    assert len(hands) == 1 and "prior_pose" in hands[0]["fit"]
    assert (tmp_path / "hand_0.glb").is_file()
