"""The PyTorch port of MediaPipe's hand-landmark network against the LiteRT interpreter running
the original .tflite on real crops (all four outputs), and monohand's LiteRT runner
(``nets.mediapipe_litert``) against the port; TF "SAME" padding against hand-worked cases;
the converter against the shipped weights; and bad weight and bundle files."""

from __future__ import annotations

import importlib.util
import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from monohand.data.crops import hand_crop
from monohand.nets.mediapipe_hand import (
    MediaPipeHandNet,
    SameConv2d,
    mediapipe_hand_net,
    same_pad,
    weights_path,
)
from monohand.nets.mediapipe_litert import LiteRTHandNet

ROOT = Path(__file__).resolve().parents[1]
TASK = ROOT / "src/monohand/data/assets/hand_landmarker.task"
MEMBER = "hand_landmarks_detector.tflite"
EXAMPLE = ROOT / "examples" / "hand.jpg"
REALHANDS = ROOT.parent / "shared" / "data" / "realhands"
# annotations.json samples: a Ge et al. left hand, an InterHand2.6M right hand, a FreiHAND one
REAL_SAMPLES = (0, 152, 161)
# Interpreter output name -> the port's field (MediaPipe's hand_landmark graph's order).
OUTPUTS = {"Identity": "screen", "Identity_1": "presence", "Identity_2": "handedness",
           "Identity_3": "world"}  # fmt: skip


def _example_crops() -> list[np.ndarray]:
    """examples/hand.jpg, the upright hand boxed by hand (x 255-500, y 80-410 of 640x480),
    as is and mirrored."""
    img = np.asarray(Image.open(EXAMPLE).convert("RGB"))
    roi = (np.array([375.0, 245.0]), 380.0, np.eye(2))
    return [hand_crop(img, np.eye(3), None, roi=roi, mirror=m).image for m in (False, True)]


def _real_crops() -> list[np.ndarray]:
    """MediaPipe's crops of a few annotated real photos (left hands mirrored)."""
    samples = json.loads((REALHANDS / "annotations.json").read_text())["samples"]
    out = []
    for i in REAL_SAMPLES:
        s = samples[i]
        img = np.asarray(Image.open(REALHANDS / s["image"]).convert("RGB"))
        kp = np.asarray(s["joints2d"], dtype=np.float64)
        out.append(hand_crop(img, np.eye(3), kp, mirror=s["hand"] == "left").image)
    return out


@pytest.fixture(scope="module")
def interpreter(tmp_path_factory):
    from ai_edge_litert import interpreter as litert
    path = tmp_path_factory.mktemp("tflite") / MEMBER
    with zipfile.ZipFile(TASK) as z:
        path.write_bytes(z.read(MEMBER))
    it = litert.Interpreter(model_path=str(path), num_threads=1)
    it.allocate_tensors()
    return it


def _run_litert(it, x: np.ndarray) -> dict[str, np.ndarray]:
    """(N, 224, 224, 3) float32 -> the port's field name -> (N, ...) outputs, one crop a call."""
    inp = it.get_input_details()[0]
    assert tuple(inp["shape"]) == (1, 224, 224, 3) and inp["dtype"] == np.float32
    by_name = {d["name"]: d["index"] for d in it.get_output_details()}
    assert set(by_name) == set(OUTPUTS)
    res: dict[str, list[np.ndarray]] = {v: [] for v in OUTPUTS.values()}
    for k in range(len(x)):
        it.set_tensor(inp["index"], x[k : k + 1])
        it.invoke()
        for name, field in OUTPUTS.items():
            res[field].append(it.get_tensor(by_name[name]).copy())
    return {k: np.concatenate(v) for k, v in res.items()}


def test_port_matches_the_litert_interpreter_on_real_crops(interpreter):
    """The same float32 [0, 1] RGB crops through both: screen and world landmarks within 1e-3
    of their range over the crops, presence and handedness within 1e-3."""
    crops = _example_crops()
    if (REALHANDS / "annotations.json").is_file():
        crops += _real_crops()
    x = np.stack(crops).astype(np.float32) / 255.0
    assert x.shape[1:] == (224, 224, 3)
    ref = _run_litert(interpreter, x)
    net = mediapipe_hand_net()
    with torch.no_grad():
        out = net(torch.from_numpy(x).permute(0, 3, 1, 2).contiguous())
    n = len(x)
    got = {
        "screen": out.screen.numpy().reshape(n, 63),
        "world": out.world.numpy().reshape(n, 63),
        "presence": out.presence.numpy().reshape(n, 1),
        "handedness": out.handedness.numpy().reshape(n, 1),
    }
    for field in ("screen", "world"):
        span = np.ptp(ref[field])
        assert span > 0
        err = np.abs(got[field] - ref[field]).max()
        assert err <= 1e-3 * span, (field, err, span)
    for field in ("presence", "handedness"):
        err = np.abs(got[field] - ref[field]).max()
        assert err <= 1e-3, (field, err)
    assert ref["presence"].min() > 0.5  # the crops are hands: the comparison is in range
    assert out.features.shape == (n, 1152)


def test_litert_runner_matches_the_port_on_real_crops():
    """``LiteRTHandNet`` (the window search's scorer) against the PyTorch port on the same
    crops, a batch of them and the crops turned a quarter (the search's turns; presences
    below 0.5 there too): the port's tolerances; features empty."""
    crops = _example_crops()
    if (REALHANDS / "annotations.json").is_file():
        crops += _real_crops()
    crops += [np.ascontiguousarray(np.rot90(c)) for c in crops]
    x = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 255.0  # channels-last
    with torch.no_grad():
        ref = mediapipe_hand_net()(x)
    got = LiteRTHandNet(threads=1)(x)
    for field in ("screen", "world"):
        r, g = getattr(ref, field), getattr(got, field)
        assert g.shape == r.shape == (len(x), 21, 3) and g.dtype == torch.float32
        assert (g - r).abs().max() <= 1e-3 * (r.max() - r.min()), field
    for field in ("presence", "handedness"):
        r, g = getattr(ref, field), getattr(got, field)
        assert g.shape == r.shape == (len(x),)
        assert (g - r).abs().max() <= 1e-3, field
    assert ref.presence.max() > 0.9 and ref.presence.min() < 0.5  # both kinds of crop
    assert got.features.shape == (len(x), 0)
    empty = LiteRTHandNet()(x[:0])
    assert empty.screen.shape == (0, 21, 3) and empty.presence.shape == (0,)
    with pytest.raises(ValueError, match="224"):
        LiteRTHandNet()(x[:, :, :200])
    with pytest.raises(ValueError, match="floats"):
        LiteRTHandNet()((x * 255).to(torch.uint8))


def test_litert_runner_names_a_bad_bundle(tmp_path):
    """Garbage, a zip without the landmark network and a missing path name the file."""
    garbage = tmp_path / "garbage.task"
    garbage.write_bytes(np.random.default_rng(0).bytes(4096))
    other = tmp_path / "other.task"
    with zipfile.ZipFile(other, "w") as z:
        z.writestr("hand_detector.tflite", b"not this one")
    for path in (garbage, other):
        with pytest.raises(ValueError, match=re.escape(str(path))):
            LiteRTHandNet(path)
    with pytest.raises(FileNotFoundError, match="nothere"):
        LiteRTHandNet(tmp_path / "nothere.task")
    with pytest.raises(FileNotFoundError, match="no such file"):
        LiteRTHandNet(tmp_path)  # a folder


@pytest.mark.parametrize(
    "size, kernel, stride, before, after, out",
    [
        (224, 3, 2, 0, 1, 112),  # the stem: the extra row goes at the end
        (7, 5, 2, 2, 2, 4),
        (8, 5, 2, 1, 2, 4),
        (6, 5, 2, 1, 2, 3),
        (14, 5, 2, 1, 2, 7),
        (9, 3, 2, 1, 1, 5),
        (10, 3, 3, 1, 1, 4),
        (8, 1, 2, 0, 0, 4),  # negative total clamps to no padding
        (7, 1, 2, 0, 0, 4),
    ],
)
def test_same_pad_is_tensorflows_same(size, kernel, stride, before, after, out):
    """Hand-worked TF SAME cases: output ceil(n / s), total (out - 1) s + k - n, the odd one
    after; the same on rows and columns, the input untouched in between."""
    x = torch.rand(1, 2, size, size) + 0.5
    p = same_pad(x, kernel, stride)
    n = size + before + after
    assert p.shape == (1, 2, n, n)
    for lines in (p[0, 0].abs().sum(1) > 0, p[0, 0].abs().sum(0) > 0):  # rows, columns
        assert not lines[:before].any() and not lines[n - after :].any()
    assert torch.equal(p[:, :, before : before + size, before : before + size], x)
    y = F.conv2d(p, torch.ones(2, 1, kernel, kernel), stride=stride, groups=2)
    assert y.shape[-2:] == (out, out) and out == -(-size // stride)


def test_same_conv_matches_an_explicitly_padded_convolution():
    """SameConv2d at stride 2 and 1 equals F.conv2d on the input zero-padded by the
    hand-worked SAME amounts (stride 2, 5x5 on 12x11: rows 1 / 2, columns 2 / 2)."""
    torch.manual_seed(0)
    x = torch.randn(2, 4, 12, 11)
    conv = SameConv2d(4, 4, 5, 2, groups=4)
    ref = F.conv2d(F.pad(x, (2, 2, 1, 2)), conv.weight, conv.bias, stride=2, groups=4)
    assert torch.allclose(conv(x), ref, atol=1e-6) and ref.shape[-2:] == (6, 6)
    conv1 = SameConv2d(4, 3, 3, 1)
    ref1 = F.conv2d(F.pad(x, (1, 1, 1, 1)), conv1.weight, conv1.bias)
    assert torch.allclose(conv1(x), ref1, atol=1e-6) and ref1.shape[-2:] == (12, 11)


def test_converter_reproduces_the_shipped_weights():
    """tools/convert_mediapipe_landmarks.py on the shipped bundle writes exactly the shipped
    float16 state dict, and that loads strictly into the port."""
    pytest.importorskip("tflite")
    path = ROOT / "tools" / "convert_mediapipe_landmarks.py"
    spec = importlib.util.spec_from_file_location("convert_mediapipe_landmarks", path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    state = tool.convert(tool.read_member(TASK))
    shipped = torch.load(weights_path(), map_location="cpu", weights_only=True)
    assert set(state) == set(shipped) == set(MediaPipeHandNet().state_dict())
    for k, v in shipped.items():
        assert v.dtype == state[k].dtype == torch.float16, k
        assert torch.equal(v, state[k]), k
    MediaPipeHandNet().load_state_dict({k: v.float() for k, v in state.items()}, strict=True)


def test_bad_weight_files_name_the_file(tmp_path):
    """Garbage, a truncated copy and a state dict missing a tensor give ValueError naming the
    file; a missing path FileNotFoundError."""
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(np.random.default_rng(0).bytes(4096))
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(weights_path().read_bytes()[:100_000])
    partial = tmp_path / "partial.pt"
    state = torch.load(weights_path(), map_location="cpu", weights_only=True)
    state.pop("world.bias")
    torch.save(state, partial)
    for path in (garbage, truncated, partial):
        with pytest.raises(ValueError, match=str(path)):
            mediapipe_hand_net(path)
    with pytest.raises(FileNotFoundError, match="nothere"):
        mediapipe_hand_net(tmp_path / "nothere.pt")
