"""The landmark network over windows (``data.window_search``): the geometry of turned crops
against numpy's own turns, and the search on real annotated photos against their labels (with
the network run by LiteRT, as ``monohand reconstruct`` does, and by its PyTorch port)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from monohand.data.detection import HandDetection, same_hand
from monohand.data.images import read_rgb
from monohand.data.window_search import (
    WindowSearchConfig,
    accepted,
    candidates,
    follow_hands,
    search_windows,
    unturn,
    windows,
)

REALHANDS = Path(__file__).resolve().parents[2] / "shared" / "data" / "realhands"


@pytest.fixture(scope="module", params=["litert", "port"])
def net(request):
    """The landmark network as ``monohand reconstruct`` runs it (LiteRT) and its PyTorch port."""
    if request.param == "litert":
        from monohand.nets.mediapipe_litert import LiteRTHandNet

        return LiteRTHandNet()
    from monohand.nets.mediapipe_hand import mediapipe_hand_net

    return mediapipe_hand_net()


@pytest.mark.parametrize("k", [0, 1, 2, 3])
def test_unturn_maps_a_marked_pixel_back(k):
    n = 7
    rng = np.random.default_rng(k)
    for _ in range(5):
        u, v = rng.integers(0, n, 2)
        a = np.zeros((n, n), dtype=int)
        a[v, u] = 1
        vt, ut = np.argwhere(np.rot90(a, k))[0]
        np.testing.assert_allclose(unturn(np.array([ut, vt], float), k, n), [u, v])


@pytest.mark.parametrize("h, w", [(300, 500), (1080, 1920), (9, 40)])
def test_windows_lie_inside_the_image_and_cover_it_at_every_scale(h, w):
    cfg = WindowSearchConfig(scales=(0.3, 0.65, 0.9), stride=0.4)
    win = windows(h, w, cfg)
    assert (win[:, :2] >= 0).all()
    assert (win[:, 0] + win[:, 2] <= w).all() and (win[:, 1] + win[:, 2] <= h).all()
    assert len(np.unique(win, axis=0)) == len(win)
    for s in np.unique(win[:, 2]):
        covered = np.zeros((h, w), bool)
        for x, y, _ in win[win[:, 2] == s]:
            covered[y : y + s, x : x + s] = True
        assert covered.all(), (h, w, s)
    if h >= 100:
        assert sorted(set(win[:, 2].tolist())) == [int(f * h) for f in cfg.scales]


def test_a_tiny_image_is_searched_for_nothing_and_a_wrong_one_refused(net):
    assert search_windows(np.full((20, 300, 3), 128, np.uint8), net) == []
    for bad in (np.zeros((64, 64), np.uint8), np.zeros((64, 64, 3), np.float32),
                np.zeros((64, 64, 4), np.uint8)):  # fmt: skip
        with pytest.raises(ValueError, match="RGB uint8"):
            search_windows(bad, net)


def test_same_hand_by_keypoints_or_boxes():
    kp = np.random.default_rng(0).uniform(0, 100, (21, 2))
    kp[0], kp[9] = (50, 100), (50, 40)  # 60 px hand

    def det(k):
        return HandDetection(k, np.ones(21), 1.0, "right")

    assert same_hand(det(kp), det(kp + 5))
    assert not same_hand(det(kp), det(kp + 150))
    shuffled = kp[np.random.default_rng(1).permutation(21)]  # same box, other joints
    assert same_hand(det(kp), det(shuffled))


def _annotated(n: int) -> list[dict]:
    data = json.loads((REALHANDS / "annotations.json").read_text())
    return [s for s in data["samples"] if s["image"].startswith("images/ge2019")][:n]


@pytest.mark.skipif(not (REALHANDS / "annotations.json").is_file(), reason="realhands absent")
def test_finds_real_hands_at_their_annotated_joints(net):
    """Real photos: the search finds the hand, its keypoints within a fifth of the hand's
    size of the annotation on average, on the annotated side."""
    for s, mirror in zip(_annotated(3), (False, True, False), strict=True):
        image = read_rgb(REALHANDS / s["image"])
        truth = np.asarray(s["joints2d"], dtype=float)
        side = s["hand"]
        if mirror:  # the same photo mirrored: the other hand, as far as anyone can tell
            image = np.ascontiguousarray(image[:, ::-1])
            truth[:, 0] = image.shape[1] - 1 - truth[:, 0]
            side = {"left": "right", "right": "left"}[side]
        found = search_windows(image, net, max_hands=2)
        assert found, s["image"]
        err = [np.linalg.norm(d.keypoints - truth, axis=1).mean() for d in found]
        best = found[int(np.argmin(err))]
        size = np.linalg.norm(truth[9] - truth[0])
        assert min(err) < 0.2 * size, (s["image"], err, size)
        assert best.side == side, (s["image"], mirror)
        # world landmarks in the image's axes: wrist -> middle knuckle points as in the photo
        w2, k2 = best.world[9, :2] - best.world[0, :2], truth[9] - truth[0]
        assert w2 @ k2 / (np.linalg.norm(w2) * np.linalg.norm(k2)) > 0.9
        assert 0.05 < np.ptp(best.world, 0).max() < 0.3
        assert ((best.confidence >= 0) & (best.confidence <= 1)).all()


@pytest.mark.skipif(not (REALHANDS / "annotations.json").is_file(), reason="realhands absent")
def test_a_hand_is_followed_from_where_it_was_and_nothing_where_none_is(net):
    """A video's hand looked for again from its previous frame's keypoints (the annotation
    moved by a tenth of the hand's size, as a hand moves between frames): found at its
    annotated joints; the same keypoints over an image without a hand: nothing."""
    (s,) = _annotated(1)
    image = read_rgb(REALHANDS / s["image"])
    truth = np.asarray(s["joints2d"], dtype=float)
    size = np.linalg.norm(truth[9] - truth[0])
    (found,) = follow_hands(image, net, [truth + [0.1 * size, -0.05 * size]])
    assert found is not None
    assert np.linalg.norm(found.keypoints - truth, axis=1).mean() < 0.2 * size
    y, x = np.mgrid[: image.shape[0], : image.shape[1]]
    blank = np.stack([x * 0.7, y * 0.5, 0 * x + 90], -1).astype(np.uint8)
    assert follow_hands(blank, net, [truth]) == [None]
    assert follow_hands(image, net, []) == []


def test_nothing_in_an_image_without_hands(net):
    y, x = np.mgrid[:240, :320]
    image = np.stack([x * 0.7, y, 0 * x + 90], -1).astype(np.uint8)
    assert search_windows(image, net) == []


@pytest.mark.skipif(not (REALHANDS / "annotations.json").is_file(), reason="realhands absent")
def test_detector_searches_windows_only_where_it_found_nothing(monkeypatch, net):
    """``MediaPipeHands(retry_windows=True)``: when its own passes find nothing (forced here),
    the windows' hand comes back; per call ``windows=False`` turns the search off."""
    from monohand.data.mediapipe_hands import MediaPipeHands

    s = _annotated(1)[0]
    image = read_rgb(REALHANDS / s["image"])
    calls = []

    def search(image, max_hands):
        calls.append(max_hands)
        return search_windows(image, net, max_hands)

    with MediaPipeHands(max_hands=1, tta=(), retry_windows=search) as det:
        own = det.detect(image)
        assert len(own) == 1 and calls == []  # found by MediaPipe: no search
        monkeypatch.setattr(det, "_detect", lambda image: [])
        assert det.detect(image, windows=False) == [] and calls == []
        found = det.detect(image)
        assert len(found) == 1 and calls == [1]
        truth = np.asarray(s["joints2d"])
        assert np.linalg.norm(found[0].keypoints - truth, axis=1).mean() < 0.2 * np.linalg.norm(
            truth[9] - truth[0])


def test_acceptance_by_presence_or_by_settled_keypoints():
    cfg = WindowSearchConfig()  # presence 0.5, accept 0.9, settled 0.03
    assert accepted(0.95, 0.5, cfg)  # confident: kept though it moved half a hand
    assert not accepted(0.99, 1.0, cfg)  # moved a whole hand size (wander): never
    assert accepted(0.99, 1.0, replace(cfg, wander=np.inf))
    assert accepted(0.7, 0.01, cfg) and not accepted(0.7, 0.05, cfg)
    assert not accepted(0.45, 0.0, cfg)  # under the floor: never
    assert not accepted(0.7, 0.01, replace(cfg, settled=0.0))


class _Speck:
    """A landmark network that sees a confident hand two pixels long in every crop: the
    collapse that a re-crop from tiny landmarks then magnifies."""

    input_size = 224

    def __call__(self, x):
        from monohand.nets.mediapipe_hand import HandLandmarks

        b = len(x)
        t = torch.linspace(0, 1, 21, dtype=torch.float32)
        hand = torch.stack([112 + 2 * torch.sin(6 * t), 112 - 2 * t, 0 * t], -1)
        return HandLandmarks(torch.zeros(b, 1152), hand.expand(b, 21, 3), torch.zeros(b, 21, 3),
                             torch.full((b,), 0.99), torch.full((b,), 0.9))  # fmt: skip


def test_collapsed_candidates_are_dropped():
    """Confident landmarks far smaller than a tenth of the smallest window (``min_size``) are
    no hand; without that check the same search returns them."""
    image = np.random.default_rng(0).integers(0, 255, (200, 300, 3), dtype=np.uint8)
    cfg = WindowSearchConfig(scales=(0.5,), turns=(0,), refine=1, wander=np.inf)
    assert search_windows(image, _Speck(), max_hands=4, cfg=cfg) == []
    found = search_windows(image, _Speck(), max_hands=4, cfg=replace(cfg, min_size=0.0))
    assert found and all(np.linalg.norm(d.keypoints[9] - d.keypoints[0]) < 1 for d in found)


def test_candidates_are_what_the_search_chooses_from():
    """``candidates`` before the rules: the speck's collapsed hands are there but not sane;
    a real photo's found hand is one of its sane candidates, row for row (keypoints, presence,
    movement against its own re-crop)."""
    image = np.random.default_rng(0).integers(0, 255, (200, 300, 3), dtype=np.uint8)
    cfg = WindowSearchConfig(scales=(0.5,), turns=(0,), refine=1)
    c = candidates(image, _Speck(), cfg)
    assert c is not None and len(c.presence) > 0 and not c.sane.any()
    assert candidates(image[:20], _Speck(), cfg) is None  # too small to search


@pytest.mark.skipif(not (REALHANDS / "annotations.json").is_file(), reason="realhands absent")
def test_a_found_hand_is_one_of_the_candidates(net):
    image = read_rgb(REALHANDS / _annotated(1)[0]["image"])
    cfg = WindowSearchConfig(scales=(0.65, 0.9), turns=(0,))
    found = search_windows(image, net, max_hands=1, cfg=cfg)
    c = candidates(image, net, cfg)
    assert found and c is not None
    rows = [i for i in range(len(c.presence))
            if np.allclose(c.keypoints[i], found[0].keypoints)]  # fmt: skip
    assert rows and all(c.sane[i] and c.presence[i] == found[0].score for i in rows)
    i = rows[0]
    moved = np.linalg.norm(c.keypoints[i] - c.previous[i], axis=1).mean()
    assert c.movement[i] == pytest.approx(moved / np.linalg.norm(c.keypoints[i, 9]
                                                                 - c.keypoints[i, 0]))


class _Wanderer:
    """A landmark network that sees a confident, well-sized hand two hand sizes to the left
    of the crop's centre and then to its right, by turns: keypoints that never settle."""

    input_size = 224

    def __init__(self):
        self.calls = 0

    def __call__(self, x):
        from monohand.nets.mediapipe_hand import HandLandmarks

        self.calls += 1
        b = len(x)
        t = torch.linspace(0, 1, 21, dtype=torch.float32)
        shift = 80.0 if self.calls % 2 else -80.0
        hand = torch.stack([112 + shift + 15 * torch.sin(6 * t), 140 - 40 * t, 0 * t], -1)
        return HandLandmarks(torch.zeros(b, 1152), hand.expand(b, 21, 3), torch.zeros(b, 21, 3),
                             torch.full((b,), 0.99), torch.full((b,), 0.9))  # fmt: skip


def test_wandering_candidates_are_dropped():
    """Keypoints that jump by hand sizes at every re-crop (``wander``) are no hand, however
    confident; without that check the same search returns them."""
    image = np.random.default_rng(1).integers(0, 255, (200, 300, 3), dtype=np.uint8)
    cfg = WindowSearchConfig(scales=(0.5,), turns=(0,), refine=2, min_size=0.0)
    assert search_windows(image, _Wanderer(), max_hands=4, cfg=cfg) == []
    assert search_windows(image, _Wanderer(), max_hands=4, cfg=replace(cfg, wander=np.inf))


class _Dimmed:
    """The landmark network with its presence scaled: a real hand that it doubts."""

    def __init__(self, net, factor: float):
        self.net, self.factor, self.input_size = net, factor, net.input_size

    def __call__(self, x):
        out = self.net(x)
        return replace(out, presence=out.presence * self.factor)


@pytest.mark.skipif(not (REALHANDS / "annotations.json").is_file(), reason="realhands absent")
def test_a_doubted_hand_is_kept_when_its_keypoints_settle(net):
    """Presence scaled to 0.8x (a real hand at ~0.78, under ``accept``): found by the settled
    keypoints alone, at the annotated joints; with the second opinion off, not found."""
    s = _annotated(1)[0]
    image = read_rgb(REALHANDS / s["image"])
    dimmed = _Dimmed(net, 0.8)
    found = search_windows(image, dimmed, max_hands=1)
    assert len(found) == 1 and found[0].score < WindowSearchConfig().accept
    truth = np.asarray(s["joints2d"], dtype=float)
    err = np.linalg.norm(found[0].keypoints - truth, axis=1).mean()
    assert err < 0.2 * np.linalg.norm(truth[9] - truth[0])
    off = replace(WindowSearchConfig(), settled=0.0)
    assert search_windows(image, dimmed, max_hands=1, cfg=off) == []


@pytest.mark.skipif(not (REALHANDS / "annotations.json").is_file(), reason="realhands absent")
def test_a_doubted_hand_is_kept_when_a_second_network_agrees(net):
    """Presence scaled to ~0.86 (between ``confirm`` and ``accept``) and the settled rule
    off: the hand is found, at its annotated joints, when the shipped HandNet agrees with its
    keypoints (``hybrid.network_agreement``); not when the second opinion disagrees or is
    absent. Only the candidates in doubt are asked."""
    from monohand.hybrid import network_agreement
    from monohand.nets import load_network

    handnet, size = load_network()
    s = _annotated(1)[0]
    image = read_rgb(REALHANDS / s["image"])
    dimmed = _Dimmed(net, 0.87)
    cfg = replace(WindowSearchConfig(), settled=0.0, scales=(0.65, 0.9), turns=(0,))
    asked: list[list[HandDetection]] = []

    def handnet_says(img, dets):
        asked.append(dets)
        return network_agreement(img, dets, handnet, size)

    found = search_windows(image, dimmed, max_hands=1, cfg=cfg, second_opinion=handnet_says)
    assert len(found) == 1 and cfg.confirm < found[0].score < cfg.accept
    truth = np.asarray(s["joints2d"], dtype=float)
    assert np.linalg.norm(found[0].keypoints - truth, axis=1).mean() < 0.2 * np.linalg.norm(
        truth[9] - truth[0])
    assert asked and all(cfg.confirm < d.score < cfg.accept for d in asked[0])
    assert search_windows(image, dimmed, max_hands=1, cfg=cfg) == []
    assert search_windows(image, dimmed, max_hands=1, cfg=cfg,
                          second_opinion=lambda img, dets: np.ones(len(dets))) == []  # fmt: skip


@pytest.mark.skipif(not (REALHANDS / "annotations.json").is_file(), reason="realhands absent")
def test_network_agreement_follows_the_hand_not_the_keypoints():
    """The annotated joints of real photos: the network's joints lie within a fifth of a
    hand size of them; the same keypoints moved by a hand size (the crop follows them), about
    a hand size off, since the network finds the hand where it is."""
    from monohand.hybrid import network_agreement
    from monohand.nets import load_network

    handnet, size = load_network()
    for s in _annotated(2):
        image = read_rgb(REALHANDS / s["image"])
        truth = np.asarray(s["joints2d"], dtype=float)
        hand = np.linalg.norm(truth[9] - truth[0])
        d = HandDetection(truth, np.ones(21), 1.0, s["hand"])
        moved = HandDetection(truth + [0.0, hand], np.ones(21), 1.0, s["hand"])
        near, far = network_agreement(image, [d, moved], handnet, size)
        assert near < 0.2, (s["image"], near)
        assert far > 0.6, (s["image"], far)
    assert network_agreement(image, [], handnet, size).shape == (0,)
