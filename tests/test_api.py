"""The public API: what ``import monohand`` offers, lazily, and the README's Python example."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_names_load_lazily_and_resolve():
    """``import monohand`` imports no torch (the command's --help stays fast); each exported
    name resolves to the class or function it names."""
    code = ("import sys, monohand; assert 'torch' not in sys.modules, 'torch imported'; "
            "assert callable(monohand.native_log.enable); "  # as the README calls it
            "print(monohand.__version__, sorted(n for n in monohand.__all__))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split()[0][0].isdigit()
    import monohand
    from monohand.models.openhand import OpenHand
    from monohand.models.registry import create
    from monohand.render.renderer import Renderer

    assert monohand.OpenHand is OpenHand and monohand.create is create
    assert monohand.Renderer is Renderer
    from monohand.models import MANO  # a regular package now
    from monohand.models import create as create2

    assert create2 is create and MANO.__name__ == "MANO"
    with pytest.raises(AttributeError):
        monohand.nothing_here  # noqa: B018
    with pytest.raises(AttributeError):
        monohand._private  # noqa: B018
    for odd in ("data.detection", ".x", "nothing.sub", "schemas"):  # no module names
        assert not hasattr(monohand, odd), odd
    with pytest.raises(ValueError, match="fit, network or hybrid.*got 'auto'"):
        monohand.hand_notes([], "auto")  # (a config's method before a Reconstructor resolves it)
    det = monohand.HandDetection(np.column_stack([np.arange(21.0), np.arange(21.0) + 5]),
                                 np.full(21, 0.5), 0.9, "left")  # fmt: skip
    assert repr(det) == ("HandDetection(side='left', score=0.90, keypoints in x 0-20, y 5-25 "
                         "px, confidence 0.50-0.50, world=None)")


def test_every_module_is_reachable_and_type_checkers_see_the_exports():
    """``monohand.<module>.<name>`` works for any module without importing it first, as the
    README writes them (``monohand.reconstruct.reconstruct_image``, ``monohand.viz``), and
    ``dir`` lists them; the names type checkers see (the ``TYPE_CHECKING`` block) are the
    lazy exports, each from the module it loads from at run time."""
    import ast
    import re

    code = ("import monohand; "
            "print(monohand.reconstruct.reconstruct_image.__name__, "
            "monohand.viz.overlay_image.__name__, monohand.record.hand_record.__name__, "
            "'reconstruct' in dir(monohand), 'outputs' in dir(monohand))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()  # fmt: skip
    assert out == ["reconstruct_image", "overlay_image", "hand_record", "True", "True"]
    import monohand

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for module in sorted(set(re.findall(r"\bmonohand\.([a-z_]+)\.[a-z_]+\(", readme))):
        assert hasattr(monohand, module), module
    tree = ast.parse(Path(monohand.__file__).read_text())
    block = next(n for n in tree.body if isinstance(n, ast.If)
                 and getattr(n.test, "id", "") == "TYPE_CHECKING")  # fmt: skip
    seen = {a.name: "." + (n.module or "") for n in block.body if n.module
            for a in n.names}  # fmt: skip
    assert seen == monohand._EXPORTS


def test_create_names_and_refuses():
    import monohand

    left = monohand.create("boxhand", side="left")
    right = monohand.create("boxhand")
    assert left.num_pose_params == right.num_pose_params
    with pytest.raises(ValueError, match="unknown model 'foo'"):
        monohand.create("foo")  # named before any path is asked for
    with pytest.raises(ValueError, match="cannot ship: give path= .ReconstructConfig.s model_path"):
        monohand.create("mano")
    with pytest.raises(ValueError, match="side"):
        monohand.create("openhand", side="middle")
    # a smplx user's words are mapped, not a TypeError naming a class's __init__
    with pytest.raises(TypeError, match="smplx's model_path is path here; smplx's is_rhand is"):
        monohand.create("mano", model_path="MANO_RIGHT.pkl", is_rhand=True)


def test_inputs_of_another_precision_or_kind_are_named():
    """A float64 pose on a float32 layer: one message naming the input and both types (it
    was torch's 'mat1 and mat2 must have the same dtype'); a float64 translation is added as
    a sum would be; under autocast the products cast themselves."""
    import numpy as np
    import torch

    import monohand

    hand = monohand.create("openhand")
    with pytest.raises(TypeError, match="hand_pose is torch.float64 but the layer is torch.fl"):
        hand(hand_pose=torch.zeros(2, 45, dtype=torch.float64))
    with pytest.raises(TypeError, match="betas is torch.float16"):
        hand.keypoints(betas=torch.zeros(1, 10, dtype=torch.float16))
    assert hand(transl=torch.zeros(2, 3, dtype=torch.float64)).vertices.dtype == torch.float64
    # arrays, lists and scalars: named, with the conversion (they were torch's own errors)
    for value, kind, words in ((np.zeros((2, 45), np.float32), TypeError, "got a ndarray"),
                               ([[0.0] * 45], TypeError, "got a list (torch.as_tensor"),
                               (torch.tensor(0.0), ValueError, "a batch axis, got a scalar")
                               ):  # fmt: skip
        with pytest.raises(kind, match=re.escape("openhand: hand_pose must ")):
            hand(hand_pose=value)
        with pytest.raises(kind, match=re.escape(words)):
            hand.keypoints(hand_pose=value)
    with torch.autocast("cpu", torch.bfloat16):
        assert hand(hand_pose=torch.zeros(2, 45, dtype=torch.bfloat16)).vertices.shape[0] == 2


def test_readme_python_example_runs():
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Python\n"):]
    block = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert "import monohand" in block
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    res = subprocess.run([sys.executable, "-c", block], cwd=ROOT, capture_output=True,
                         text=True, env=env, timeout=300)  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    assert "right" in res.stdout or "left" in res.stdout
    line = next(x for x in res.stdout.splitlines() if x.startswith("HandReconstruction("))
    assert len(line) < 200 and " vertices, textured=" in line, line  # a line, not the arrays
