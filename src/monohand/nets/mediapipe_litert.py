"""MediaPipe's hand-landmark network as shipped, run by LiteRT: the window search's scorer.

The same ``hand_landmarks_detector.tflite`` that ``nets.mediapipe_hand`` ports to PyTorch,
read from the bundle that monohand ships and run by LiteRT's XNNPACK kernels, which are made
for this kind of network (depthwise convolutions, small crops): about three times faster
than the port on a CPU, one crop at a time (2.8 against 8.9 ms per 224 x 224 crop on two
cores, 2026-12-06; batches gain nothing there). Its outputs agree with the port's within
1e-3 (``tests/test_mediapipe_port.py`` holds the port to the interpreter, and this runner to
the port). Inference only, on the CPU: no gradients and no features, so the network method
and the hybrid keep the port.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..data.mediapipe_hands import default_model_path
from ..native_log import quiet_native
from .mediapipe_hand import INPUT_SIZE, HandLandmarks

MEMBER = "hand_landmarks_detector.tflite"
# The interpreter's output names, in MediaPipe's hand_landmark graph, -> HandLandmarks' fields.
OUTPUTS = {"Identity": "screen", "Identity_1": "presence", "Identity_2": "handedness",
           "Identity_3": "world"}  # fmt: skip


class LiteRTHandNet:
    """Call with (B, 3, 224, 224) RGB in [0, 1] (as ``MediaPipeHandNet``) -> ``HandLandmarks``
    (float32, on the CPU; ``features`` empty, (B, 0)).

    Args:
        bundle: a MediaPipe hand_landmarker ``.task`` file; default: the shipped one.
        threads: the interpreter's threads; default: PyTorch's intra-op count.
    """

    input_size = INPUT_SIZE

    def __init__(self, bundle: str | Path | None = None, threads: int | None = None) -> None:
        from ai_edge_litert.interpreter import Interpreter

        path = Path(bundle) if bundle is not None else default_model_path()
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file (a MediaPipe hand model bundle)")
        try:
            with zipfile.ZipFile(path) as z:
                model = z.read(MEMBER)
            with quiet_native():  # LiteRT's "INFO: Created ... XNNPACK delegate" lines
                it = Interpreter(model_content=model,
                                 num_threads=threads or torch.get_num_threads())  # fmt: skip
                it.allocate_tensors()
        except (zipfile.BadZipFile, zlib.error, OSError, KeyError, ValueError, RuntimeError) as e:
            raise ValueError(f"{path}: not a MediaPipe hand landmarker bundle with "
                             f"{MEMBER} ({e})") from e  # fmt: skip
        inp = it.get_input_details()[0]
        outs = {d["name"]: d["index"] for d in it.get_output_details()}
        if tuple(inp["shape"]) != (1, INPUT_SIZE, INPUT_SIZE, 3) or set(outs) != set(OUTPUTS):
            raise ValueError(f"{path}: {MEMBER} takes {inp['shape'].tolist()} and gives "
                             f"{sorted(outs)}; expected (1, {INPUT_SIZE}, {INPUT_SIZE}, 3) "
                             f"and {sorted(OUTPUTS)}")  # fmt: skip
        self._it, self._input = it, inp["index"]
        self._outputs = {field: outs[name] for name, field in OUTPUTS.items()}

    def __call__(self, x: Tensor) -> HandLandmarks:
        if x.dim() != 4 or tuple(x.shape[1:]) != (3, INPUT_SIZE, INPUT_SIZE):
            raise ValueError(f"expected (B, 3, {INPUT_SIZE}, {INPUT_SIZE}) crops, got "
                             f"{tuple(x.shape)}")  # fmt: skip
        if not x.is_floating_point():
            raise ValueError(f"expected RGB in [0, 1] as floats, got {x.dtype}")
        nhwc = np.ascontiguousarray(x.detach().cpu().float().permute(0, 2, 3, 1).numpy())
        got: dict[str, list[np.ndarray]] = {f: [] for f in self._outputs}
        for crop in nhwc:
            self._it.set_tensor(self._input, crop[None])
            self._it.invoke()
            for field, index in self._outputs.items():
                got[field].append(self._it.get_tensor(index).reshape(-1))
        b = len(nhwc)
        out = {f: torch.from_numpy(np.stack(v)) if v else torch.zeros(0, 63 if f in (
            "screen", "world") else 1) for f, v in got.items()}  # fmt: skip
        return HandLandmarks(
            features=torch.zeros(b, 0),
            screen=out["screen"].view(b, 21, 3),
            world=out["world"].view(b, 21, 3),
            presence=out["presence"].view(b),
            handedness=out["handedness"].view(b),
        )
