"""Port MediaPipe's hand-landmark network to PyTorch: write its weights as a state dict.

Reads ``hand_landmarks_detector.tflite`` from the shipped ``hand_landmarker.task`` bundle with
the ``tflite`` flatbuffer package (a build-time tool; ``pip install tflite``), checks that its
graph is the architecture of ``monohand.nets.mediapipe_hand`` op by op (kernel, stride, SAME
padding, ReLU6 where the module has it, residual adds), and writes the float16 weights in
PyTorch's layout to ``src/monohand/nets/assets/mediapipe_hand_landmarks.pt``:

    python tools/convert_mediapipe_landmarks.py [--task BUNDLE] [--out FILE]

TFLite layouts: convolutions OHWI -> PyTorch OIHW; depthwise 1HWC -> C1HW; fully connected
(out, in) as is. The weights are float16 in the file already (DEQUANTIZE ops feed them to the
float graph), so storing float16 loses nothing.
"""

from __future__ import annotations

import argparse
import sys
import zipfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from monohand.atomic import atomic_write  # noqa: E402
from monohand.nets.mediapipe_hand import MediaPipeHandNet, SameConv2d  # noqa: E402

TASK = ROOT / "src/monohand/data/assets/hand_landmarker.task"
OUT = ROOT / "src/monohand/nets/assets/mediapipe_hand_landmarks.pt"
MEMBER = "hand_landmarks_detector.tflite"
# The graph's outputs in order (MediaPipe's hand_landmark graph splits them the same way).
HEADS = ("screen", "presence", "handedness", "world")
_DTYPES = {0: np.float32, 1: np.float16}  # TensorType FLOAT32 = 0, FLOAT16 = 1
_SAME, _NONE, _RELU6 = 0, 0, 3  # Padding.SAME; ActivationFunctionType NONE, RELU6


def _graph(buf: bytes):
    import tflite

    model = tflite.Model.GetRootAsModel(buf, 0)
    if model.SubgraphsLength() != 1:
        raise ValueError(f"expected one subgraph, got {model.SubgraphsLength()}")
    names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}

    def opname(op) -> str:
        c = model.OperatorCodes(op.OpcodeIndex())
        return names[max(c.BuiltinCode(), c.DeprecatedBuiltinCode())]

    return tflite, model, model.Subgraphs(0), opname


def convert(buf: bytes) -> dict[str, torch.Tensor]:
    """The state dict (float16) of ``MediaPipeHandNet`` from the .tflite file's bytes."""
    tflite, model, g, opname = _graph(buf)
    ops = [g.Operators(i) for i in range(g.OperatorsLength())]
    dequant = {int(op.OutputsAsNumpy()[0]): int(op.InputsAsNumpy()[0])
               for op in ops if opname(op) == "DEQUANTIZE"}  # fmt: skip

    def const(t: int) -> np.ndarray:
        t = dequant.get(t, t)
        tensor = g.Tensors(t)
        dtype = _DTYPES.get(tensor.Type())
        if dtype is None:
            raise ValueError(f"tensor {tensor.Name()}: unsupported type {tensor.Type()}")
        data = model.Buffers(tensor.Buffer()).DataAsNumpy()
        return np.frombuffer(data.tobytes(), dtype=dtype).reshape(tensor.ShapeAsNumpy())

    net = MediaPipeHandNet()
    convs = [(n, m) for n, m in net.named_modules() if isinstance(m, SameConv2d)]
    graph_convs = [op for op in ops if opname(op) in ("CONV_2D", "DEPTHWISE_CONV_2D")]
    if len(convs) != len(graph_convs):
        raise ValueError(f"graph has {len(graph_convs)} convolutions, the port {len(convs)}")
    state: dict[str, torch.Tensor] = {}
    relu6 = {n for n, _ in convs if not n.endswith("project")}
    for (name, conv), op in zip(convs, graph_convs, strict=True):
        inputs = op.InputsAsNumpy()
        w, b = const(int(inputs[1])), const(int(inputs[2]))
        raw = op.BuiltinOptions()
        depthwise = opname(op) == "DEPTHWISE_CONV_2D"
        opt = tflite.DepthwiseConv2DOptions() if depthwise else tflite.Conv2DOptions()
        opt.Init(raw.Bytes, raw.Pos)
        if depthwise:
            w = w.transpose(3, 0, 1, 2)  # (1, H, W, C) -> (C, 1, H, W)
        else:
            w = w.transpose(0, 3, 1, 2)  # (O, H, W, I) -> (O, I, H, W)
        act = _RELU6 if name in relu6 else _NONE
        checks = {
            "weight shape": (tuple(w.shape), tuple(conv.weight.shape)),
            "stride": (opt.StrideH(), conv.stride[0]),
            "padding": (opt.Padding(), _SAME),
            "activation": (opt.FusedActivationFunction(), act),
            "depthwise": (depthwise, conv.groups > 1),
        }
        for what, (got, want) in checks.items():
            if got != want:
                raise ValueError(f"{name}: graph's {what} is {got}, the port's {want}")
        state[f"{name}.weight"] = torch.from_numpy(w.astype(np.float16).copy())
        state[f"{name}.bias"] = torch.from_numpy(b.astype(np.float16).copy())
    adds = sum(opname(op) == "ADD" for op in ops)
    residuals = sum(getattr(m, "residual", False) and m.project is not None
                    for m in net.blocks)  # fmt: skip
    if adds != residuals:
        raise ValueError(f"graph has {adds} residual adds, the port {residuals}")
    # The heads: the fully connected op feeding each graph output (directly or via LOGISTIC).
    producer = {int(t): op for op in ops for t in op.OutputsAsNumpy()}
    for head, t in zip(HEADS, g.OutputsAsNumpy(), strict=True):
        op = producer[int(t)]
        if opname(op) == "LOGISTIC":
            op = producer[int(op.InputsAsNumpy()[0])]
        if opname(op) != "FULLY_CONNECTED":
            raise ValueError(f"output {head}: expected a fully connected layer, got {opname(op)}")
        w, b = const(int(op.InputsAsNumpy()[1])), const(int(op.InputsAsNumpy()[2]))
        if w.shape != tuple(getattr(net, head).weight.shape):
            raise ValueError(f"output {head}: weight {w.shape}, the port's "
                             f"{tuple(getattr(net, head).weight.shape)}")  # fmt: skip
        state[f"{head}.weight"] = torch.from_numpy(w.astype(np.float16).copy())
        state[f"{head}.bias"] = torch.from_numpy(b.astype(np.float16).copy())
    missing = set(net.state_dict()) - set(state)
    if missing:
        raise ValueError(f"no weights found for {sorted(missing)}")
    return state


def read_member(task: Path, member: str = MEMBER) -> bytes:
    with zipfile.ZipFile(task) as z:
        return z.read(member)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", type=Path, default=TASK)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    state = convert(read_member(args.task))
    atomic_write(args.out, lambda t: torch.save(state, t))
    n = sum(v.numel() for v in state.values())
    print(f"wrote {args.out}: {len(state)} tensors, {n / 1e6:.2f} M parameters, "
          f"{args.out.stat().st_size / 1e6:.1f} MB")  # fmt: skip


if __name__ == "__main__":
    main()
