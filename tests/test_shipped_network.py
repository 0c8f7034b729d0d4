"""The network that ships with monohand: its file, and what it does on hands it never saw.

The references are independent of the network: ground-truth joints of freshly rendered hands
(a seed the training set did not use), the mean hand as the baseline any trained network must
beat, and mirror symmetry for left hands.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from monohand.data.detection import HandDetection
from monohand.data.synthetic import SynthConfig, generate
from monohand.evaluate.align import procrustes_align
from monohand.nets import load_network, shipped_network_path
from monohand.reconstruct import network_reconstruct
from monohand.render.camera import project

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "hand.jpg"


@pytest.fixture(scope="module")
def net():
    return load_network()[0]


@pytest.fixture(scope="module")
def renders(tmp_path_factory):
    """12 v2 renders of a seed that no training set used, with their K and joints."""
    from monohand.data.freihand import read_freihand
    from monohand.data.images import read_rgb

    root = tmp_path_factory.mktemp("unseen") / "set"
    generate(root, SynthConfig(num=12, seed=90210, size=256, fill=(0.4, 0.7), style="v2",
                               eval_fraction=0.0, batch=12))  # fmt: skip
    ix = read_freihand(root, "training")
    images = [read_rgb(ix.image_path(i)) for i in range(12)]
    return images, ix.K, ix.xyz


def test_the_file_is_small_half_precision_and_carries_its_card():
    path = shipped_network_path()
    assert path.stat().st_size < 15e6
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert state["encoder"] == "pretrained"  # MediaPipe's weights ship once, beside it
    floats = [v for v in state["net"].values() if v.is_floating_point()]
    assert floats and all(v.dtype == torch.float16 for v in floats)
    for key in ("encoder", "data", "steps", "losses", "figures", "licences"):
        assert key in state["card"], key


def _pa_mpjpe(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    aligned = procrustes_align(pred, gt)
    return np.linalg.norm(aligned - gt, axis=-1).mean(-1)


def _detections(K: np.ndarray, xyz: np.ndarray, side: str = "right") -> list[HandDetection]:
    uv = project(torch.as_tensor(xyz)[None], torch.as_tensor(K)[None])[0].numpy()
    return [HandDetection(uv, np.ones(21), 1.0, side)]


def test_it_beats_the_mean_hand_on_unseen_renders(net, renders):
    """Aligned error against the ground truth, and against the model's mean hand (what a
    network that learned nothing predicts): at least 35 % less."""
    images, Ks, xyz = renders
    pred = np.stack([network_reconstruct(im, K, _detections(K, j), net, 224)[0].joints3d
                     for im, K, j in zip(images, Ks, xyz, strict=True)])  # fmt: skip
    with torch.no_grad():
        mean = net.hand().joints[0].double().numpy()
    err = _pa_mpjpe(pred, xyz)
    base = _pa_mpjpe(np.repeat(mean[None], len(xyz), 0), xyz)
    assert err.mean() < 0.65 * base.mean(), (err.mean(), base.mean())


def test_a_mirrored_photo_gives_the_mirrored_hand(net, renders):
    """A right hand's photo mirrored left-right, reconstructed as a left hand, must give the
    right hand's joints mirrored (x -> -x in a camera whose principal point is mirrored)."""
    image, K, xyz = renders[0][0], renders[1][0], renders[2][0]
    right = network_reconstruct(image, K, _detections(K, xyz), net, 224)[0]
    w = image.shape[1]
    flip = np.array([[-1.0, 0, w - 1], [0, 1, 0], [0, 0, 1]])
    Km = flip @ K @ np.diag([-1.0, 1, 1])  # the mirrored photo's camera (a proper K)
    mirrored = np.ascontiguousarray(image[:, ::-1])
    left = network_reconstruct(mirrored, Km, _detections(Km, xyz * [-1, 1, 1], "left"), net,
                               224)[0]  # fmt: skip
    assert np.abs(left.joints3d * [-1, 1, 1] - right.joints3d).max() < 2e-3
    assert np.allclose(left.faces, right.faces[:, [0, 2, 1]])


def test_its_parameters_pose_the_model_as_its_meshes_in_the_photos_camera(net, renders):
    """``parameters`` of the network's records, right and left hands, fed to the model of
    the hand's side, give the record's vertices: they are the photo's camera frame's, as
    the fit's (until 2026-12-05 they were the crop's camera's, off by centimetres)."""
    from monohand.models.registry import load_models

    models = load_models("openhand")
    image, K, xyz = renders[0][1], renders[1][1], renders[2][1]
    w = image.shape[1]
    flip = np.array([[-1.0, 0, w - 1], [0, 1, 0], [0, 0, 1]])
    Km = flip @ K @ np.diag([-1.0, 1, 1])
    mirrored = np.ascontiguousarray(image[:, ::-1])
    right = network_reconstruct(image, K, _detections(K, xyz), net, 224, models)[0]
    left = network_reconstruct(mirrored, Km, _detections(Km, xyz * [-1, 1, 1], "left"), net,
                               224, models)[0]  # fmt: skip
    for rec in (right, left):
        p = {k: torch.tensor(v)[None] for k, v in rec.parameters.items()
             if k in ("global_orient", "hand_pose", "betas", "transl")}  # fmt: skip
        with torch.no_grad():
            out = models[rec.side](**p)
        assert np.abs(out.vertices[0].numpy() - rec.vertices).max() < 1e-4, rec.side
        assert np.abs(out.joints[0].numpy() - rec.joints3d).max() < 1e-4, rec.side


def test_on_a_real_photo_it_lands_on_the_detected_hand(net):
    """examples/hand.jpg with MediaPipe's keypoints: the network's joints, projected, lie
    within a fifth of the hand's size of them on average (the camera head places the hand
    in the crop; the keypoints only choose the crop)."""
    from monohand.data.images import read_rgb
    from monohand.data.intrinsics import camera_for_image
    from monohand.data.mediapipe_hands import MediaPipeHands

    image = read_rgb(EXAMPLE)
    K, _ = camera_for_image(EXAMPLE, image.shape[:2])
    with MediaPipeHands(max_hands=1, tta=()) as det:
        dets = det.detect(image)
    assert dets
    hand = network_reconstruct(image, K, dets, net, 224)[0]
    err = np.linalg.norm(hand.joints2d - dets[0].keypoints, axis=1).mean()
    assert err < 0.2 * dets[0].size, (err, dets[0].size)


def test_a_file_that_is_no_checkpoint_is_named_without_unsafe_advice(tmp_path):
    """A JSON file and a pickle holding code given as checkpoints: one line naming the file;
    torch's advice to load without weights_only (arbitrary code) is not passed on."""
    import pickle

    from monohand.nets.handnet import load_network

    (tmp_path / "x.json").write_text("{}")
    (tmp_path / "code.ckpt").write_bytes(pickle.dumps(print, protocol=2))  # torch.save's protocol
    torch.save({"config": print}, tmp_path / "code.pt")  # torch.save's archive, code inside
    why = {"x.json": "not a torch.save zip archive",
           "code.ckpt": "not a torch.save zip archive",
           "code.pt": "not a file of plain tensors"}  # fmt: skip
    for name, reason in why.items():
        with pytest.raises(ValueError) as e:
            load_network(tmp_path / name)
        msg = str(e.value)
        assert msg.startswith(f"{tmp_path / name}: not a monohand training checkpoint"), msg
        assert reason in msg, msg
        assert "weights_only` set to `False" not in msg and "\n" not in msg, msg
    # a bare state dict: said as such (it said "('config')", a key's name)
    torch.save({"weight": torch.zeros(2)}, tmp_path / "linear.pt")
    with pytest.raises(ValueError, match=r"linear\.pt: a torch file, but not a monohand "
                                         r"training checkpoint \(no training config in it"):
        load_network(tmp_path / "linear.pt")
