"""HandNet with a frozen pretrained encoder: the stored-feature path equals the image path,
the feature cache holds what the encoder gives, the camera head's focal-length depth, the
shipped format's round trip, and the configs that cannot work refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from monohand.config import load_config
from monohand.data.freihand import FreiHANDDataset
from monohand.data.synthetic import SynthConfig, generate
from monohand.models.openhand import OpenHand
from monohand.nets.handnet import HandNet, encoder_name, export_network, load_network
from monohand.train import build_feature_cache, train

RELEASE = Path(__file__).resolve().parents[1] / "configs" / "release.yaml"


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("hn") / "data"
    generate(root, SynthConfig(num=6, size=128, seed=5, eval_fraction=0.0, fill=(0.4, 0.7)))
    return root


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return HandNet(OpenHand(), "mediapipe", pretrained=True, freeze_encoder=True,
                   landmark_inputs=True, head_hidden=32, depth_per_focal=1e-3).eval()  # fmt: skip


def test_features_path_equals_image_path(net):
    x = torch.rand(2, 3, 224, 224)
    K = torch.tensor([[300.0, 0, 111.5], [0, 310.0, 111.5], [0, 0, 1]]).expand(2, 3, 3)
    with torch.no_grad():
        p1, o1 = net(x, K)
        p2, o2 = net(None, K, features=net.encode(x), size=(224, 224))
    assert torch.allclose(o1.joints, o2.joints, atol=1e-6)
    assert torch.allclose(p1.transl, p2.transl, atol=1e-7)
    # the landmark inputs are MediaPipe's own heads on the same pooled features
    feats = net.encode(x)
    lm = net.encoder(x)
    assert torch.allclose(feats[:, :1152], lm.features, atol=1e-5)
    assert torch.allclose(feats[:, 1152:1215], 10 * lm.world.flatten(1), atol=1e-5)


def test_the_networks_inputs_are_checked_and_named(net):
    """Each mistake names its input and the fix (they were torch's errors from inside the
    heads or the first convolution)."""
    import re

    x = torch.rand(2, 3, 224, 224)
    K = torch.tensor([[300.0, 0, 111.5], [0, 310.0, 111.5], [0, 0, 1]]).expand(2, 3, 3)
    cases = [
        ((x, K[0]), ValueError, "K: expected shape (B, 3, 3), got (3, 3) (one camera: K[None])"),
        (((x * 255).to(torch.uint8), K), TypeError, "uint8 pixels: x.float() / 255"),
        ((x.permute(0, 2, 3, 1), K), ValueError, "channels last: x.permute(0, 3, 1, 2)"),
        ((x[0], K[:1]), ValueError, "got (3, 224, 224) (one image: x[None])"),
        ((x.numpy(), K), TypeError, "images: expected a torch tensor (B, 3, H, W)"),
        ((x, K[:1]), ValueError, "images and K disagree on the batch size: 2 and 1"),
    ]  # fmt: skip
    for args, kind, words in cases:
        with pytest.raises(kind, match=re.escape(words)):
            net(*args)


def test_depth_follows_the_focal_length(net):
    """With the camera head's output at zero the root sits on the crop's centre ray at
    depth_per_focal * mean focal length."""
    heads = net.heads
    feats = torch.randn(1, heads.camera[0].in_features)
    saved = [p.detach().clone() for p in heads.camera[2].parameters()]
    with torch.no_grad():
        for p in heads.camera[2].parameters():
            p.zero_()
        for f in (200.0, 800.0):
            K = torch.tensor([[[f, 0, 111.5], [0, 1.1 * f, 111.5], [0, 0, 1]]])
            z = heads(feats, K, (224, 224)).transl[0, 2]
            assert torch.isclose(z, torch.tensor(1e-3 * 1.05 * f))
        for p, s in zip(heads.camera[2].parameters(), saved, strict=True):
            p.copy_(s)


def test_feature_cache_holds_the_encoders_features_and_is_reused(net, root, tmp_path):
    from monohand.data.crops import MediaPipeCrop

    ds = FreiHANDDataset(root, augment=MediaPipeCrop(224), seed=3)
    path = tmp_path / "f.pt"
    cache = build_feature_cache(net, ds, 2, path, batch=4, progress=False)
    assert len(cache) == 12
    ds.epoch = 1  # view 1 of item 2 is cache entry 6 + 2
    item = ds[2]
    with torch.no_grad():
        want = net.encode(item["image"][None])[0]
    got = cache[8]
    assert torch.allclose(got["features"], want, atol=2e-3 * want.abs().max())
    assert torch.allclose(got["K"], item["K"]) and torch.allclose(got["joints3d"], item["joints3d"])
    stamp = path.stat().st_mtime_ns
    again = build_feature_cache(net, ds, 2, path, batch=4, progress=False)
    assert path.stat().st_mtime_ns == stamp
    assert torch.equal(again[3]["features"], cache[3]["features"])


def test_release_recipe_trains_exports_and_loads(root, tmp_path):
    cfg = load_config(RELEASE, [f"out_dir={tmp_path / 'run'}", f"data.root={root}", "steps=3",
                                "batch=4", "data.cache_views=1", "model.head_hidden=16",
                                "log_every=1", "ckpt_every=3", "tensorboard=false"])  # fmt: skip
    train(cfg)
    ckpt = tmp_path / "run" / "last.ckpt"
    shipped = export_network(ckpt, tmp_path / "net.pt", {"note": "test"})
    assert shipped.stat().st_size < 0.5 * ckpt.stat().st_size
    a, size = load_network(ckpt)
    b, _ = load_network(shipped)
    assert size == 224 and b.input_crop == "mediapipe" and b.heads.depth_per_focal == 1.04e-3
    x = torch.rand(1, 3, 224, 224)
    K = torch.tensor([[[250.0, 0, 111.5], [0, 250.0, 111.5], [0, 0, 1]]])
    with torch.no_grad():
        ja, jb = a(x, K)[1].joints, b(x, K)[1].joints
    assert (ja - jb).abs().max() < 2e-3  # float16 heads


@pytest.mark.parametrize("weights_file, left_out", [("", True), ("mine.pt", False)])
def test_export_leaves_out_only_an_encoder_the_package_holds(tmp_path, weights_file, left_out):
    """A frozen encoder of the packaged weights is left out (``load_network`` takes it from
    the package); one started from a local file (``model.backbone_weights``) is not the
    package's, so it stays; the hand model's buffers never ship; ``half`` halves floats."""
    net = {"encoder.w": torch.rand(3), "heads.w": torch.rand(2), "hand.v": torch.rand(4),
           "heads.n": torch.tensor([3])}  # fmt: skip
    ckpt = tmp_path / "last.ckpt"
    model = {"freeze_encoder": True, "pretrained": True, "backbone_weights": weights_file}
    torch.save({"config": {"model": model}, "net": net, "step": 7, "opt": {}}, ckpt)
    for half in (True, False):
        got = torch.load(export_network(ckpt, tmp_path / "net.pt", half=half), weights_only=True)
        assert got["encoder"] == ("pretrained" if left_out else "included")
        assert set(got["net"]) == {"heads.w", "heads.n"} | (set() if left_out else {"encoder.w"})
        assert got["net"]["heads.w"].dtype == (torch.float16 if half else torch.float32)
        assert got["net"]["heads.n"].dtype == torch.int64 and got["step"] == 7
        assert torch.allclose(got["net"]["heads.w"].float(), net["heads.w"], atol=1e-3)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["data.cache_views=1"], "freeze_encoder"),
        (["model.backbone=mediapipe", "data.size=96"], "224"),
        (["data.crop=square"], "data.crop"),
        (["model.backbone=vgg16"], "model.backbone"),
    ],
)
def test_configs_that_cannot_work_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        load_config(None, overrides)


def test_cache_refuses_losses_that_need_images():
    for loss in ("photometric", "ssim", "mean_colour"):
        with pytest.raises(ValueError, match="photometric render-and-compare"):
            load_config(RELEASE, [f"loss.{loss}=1.0"])
    assert load_config(RELEASE, ["loss.silhouette=1.0"]).loss.silhouette == 1.0
    with pytest.raises(ValueError, match="render_from"):
        load_config(RELEASE, ["loss.render_from=1.0"])


def test_cached_masks_and_their_camera_match_the_crops(net, root, tmp_path):
    """The stored masks are the crops' masks averaged over 4x4 blocks, their camera projects
    the 3D joints where the crop's 2D labels fall at that size, and the hand's own mesh
    rendered with it covers the stored mask."""
    from monohand.data.crops import MediaPipeCrop
    from monohand.render import Renderer
    from monohand.render.camera import project

    ds = FreiHANDDataset(root, augment=MediaPipeCrop(224), seed=3)
    cache = build_feature_cache(net, ds, 1, tmp_path / "m.pt", batch=4, progress=False,
                                mask_size=56)  # fmt: skip
    faces = OpenHand().faces
    inter = union = 0.0
    for i in range(len(ds)):
        item, got = ds[i], cache[i]
        want = item["mask"].numpy().reshape(56, 4, 56, 4).mean((1, 3))
        assert got["mask"].shape == (56, 56)
        assert abs(got["mask"].numpy() - want).max() < 2e-3  # float16
        uv = project(item["joints3d"][None], got["mask_K"][None])[0]
        assert torch.allclose(uv, (item["joints2d"] + 0.5) / 4 - 0.5, atol=1e-3)
        sil = Renderer((56, 56))(item["vertices"][None], faces, got["mask_K"][None]).silhouette
        a, b = sil[0] > 0.5, got["mask"] > 0.5
        inter, union = inter + (a & b).sum().item(), union + (a | b).sum().item()
    assert inter / union > 0.85
    plain = build_feature_cache(net, ds, 1, tmp_path / "m.pt", batch=4, progress=False)
    assert "mask" not in plain[0]  # made again: the stored one has masks, this asks none


def test_silhouette_on_stored_features_joins_at_render_from(root, tmp_path):
    cfg = load_config(RELEASE, [f"out_dir={tmp_path / 'run'}", f"data.root={root}", "steps=4",
                                "batch=4", "data.cache_views=1", "model.head_hidden=16",
                                "log_every=1", "ckpt_every=4", "tensorboard=false",
                                "loss.silhouette=1.0", "loss.render_from=0.5",
                                "data.cache_mask_size=32"])  # fmt: skip
    train(cfg)
    rows = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    seen = ["silhouette" in json.loads(r) for r in rows]
    assert seen == [False, False, True, True]
    assert all(0 < json.loads(r)["silhouette"] < 1 for r in rows[2:])


def test_encoder_names():
    assert encoder_name(18) == encoder_name("18") == "resnet18"
    assert encoder_name("mediapipe") == "mediapipe"
    with pytest.raises(ValueError):
        encoder_name("resnet101")


def test_feature_cache_resizes_to_the_networks_input_as_training_does(root, tmp_path):
    """Whole images (no crop) are resized, and K and the 2D labels with them, before they are
    encoded: the stored K projects the stored 3D joints onto the stored 2D joints."""
    from monohand.render.camera import project

    torch.manual_seed(0)
    net = HandNet(OpenHand(), "resnet18", freeze_encoder=True, head_hidden=16).eval()
    ds = FreiHANDDataset(root)
    cache = build_feature_cache(net, ds, 1, tmp_path / "c.pt", batch=3, progress=False, size=64)
    assert cache.size == (64, 64)
    item = cache[1]
    assert torch.allclose(item["K"][0, 0], ds[1]["K"][0, 0] * 64 / 128)
    uv = project(item["joints3d"][None], item["K"][None])[0]
    assert torch.allclose(uv, item["joints2d"], atol=1e-3)
    with torch.no_grad():
        small = torch.nn.functional.interpolate(ds[1]["image"][None], size=(64, 64),
                                                mode="bilinear", align_corners=False)
        want = net.encode(small)[0]
    assert torch.allclose(item["features"], want, atol=2e-3 * want.abs().max())


def test_channels_last_network_pickles_and_gives_the_same_output():
    """The channels-last layout (the one loaded networks run in) survives ``copy.deepcopy``
    and ``torch.save`` of the whole module (a ``torch.memory_format`` attribute did not:
    torch's pickler cannot save it), and changes the features by float rounding only."""
    import copy
    import io

    def saved(module):
        buf = io.BytesIO()
        torch.save(module, buf)
        buf.seek(0)
        return torch.load(buf, weights_only=False)  # our own bytes, just written

    torch.manual_seed(0)
    net = HandNet(OpenHand(), "resnet18", head_hidden=16).eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        ref = net.encode(x)
        net.channels_last()
        assert net.memory_format == torch.channels_last
        assert net.encoder.conv1.weight.is_contiguous(memory_format=torch.channels_last)
        for twin in (copy.deepcopy(net), saved(net)):
            assert twin.memory_format == torch.channels_last
            torch.testing.assert_close(twin.encode(x), ref, atol=1e-5, rtol=1e-4)
        net.memory_format = torch.contiguous_format
        assert net.encoder.conv1.weight.is_contiguous()
    with pytest.raises(ValueError, match="memory_format"):
        net.memory_format = torch.preserve_format
