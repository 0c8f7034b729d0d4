"""Photos stored sideways (EXIF orientation, as phones store most photos) come out upright:
the pixels, the camera made from their size, and the reconstruction's outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from monohand.cli import app
from monohand.data.images import decode_rgb, read_rgb
from monohand.data.intrinsics import camera_for_image

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "hand.jpg"

# EXIF orientation -> how the stored pixels turn into the upright picture (the EXIF spec)
UPRIGHT = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: np.transpose(a, (1, 0, 2)),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: np.transpose(a[::-1, ::-1], (1, 0, 2)),
    8: lambda a: np.rot90(a, 1),
}


def _tagged(path: Path, stored: np.ndarray, orientation: int, **extra) -> Path:
    exif = Image.Exif()
    exif[0x0112] = orientation
    for tag, value in extra.items():
        exif[int(tag)] = value
    Image.fromarray(stored).save(path, exif=exif)
    return path


@pytest.mark.parametrize("orientation", [1, 2, 3, 4, 5, 6, 7, 8])
def test_every_orientation_is_read_upright(tmp_path, orientation):
    stored = np.random.default_rng(orientation).integers(0, 255, (5, 8, 3), dtype=np.uint8)
    path = _tagged(tmp_path / "x.png", stored, orientation)
    np.testing.assert_array_equal(read_rgb(path), UPRIGHT[orientation](stored))
    with path.open("rb") as f:  # uploads take the same path
        np.testing.assert_array_equal(decode_rgb(f, "x.png"), UPRIGHT[orientation](stored))


def test_a_junk_orientation_is_ignored(tmp_path):
    stored = np.zeros((5, 8, 3), np.uint8)
    assert read_rgb(_tagged(tmp_path / "x.png", stored, 0)).shape == (5, 8, 3)
    assert read_rgb(_tagged(tmp_path / "y.png", stored, 99)).shape == (5, 8, 3)


def test_a_sideways_phone_photo_gives_the_upright_camera_and_hand(tmp_path):
    """The example stored turned a quarter to the left with orientation 6 (show it turned
    right): K from the upright size (the EXIF focal length alike), the overlay upright, and the
    hand where the untouched example puts it."""
    upright = np.asarray(Image.open(EXAMPLE).convert("RGB"))
    stored = np.ascontiguousarray(np.rot90(upright, 1))
    side = _tagged(tmp_path / "phone.png", stored, 6)
    h, w = upright.shape[:2]
    K, source = camera_for_image(side, read_rgb(side).shape[:2])
    assert source == "default"
    assert np.isclose(K[0, 2], (w - 1) / 2) and np.isclose(K[1, 2], (h - 1) / 2)
    out = tmp_path / "out"
    for p in (EXAMPLE, side):
        res = CliRunner().invoke(app, ["reconstruct", str(p), "--method", "network", "--out",
                                       str(out)])  # fmt: skip
        assert res.exit_code == 0, res.output
    a = json.loads((out / "hand.json").read_text())["hands"][0]
    b = json.loads((out / "phone.json").read_text())["hands"][0]
    assert np.abs(np.array(a["joints3d"]) - np.array(b["joints3d"])).max() < 0.01
    assert Image.open(out / "phone_overlay.png").size == Image.open(out / "hand_overlay.png").size
