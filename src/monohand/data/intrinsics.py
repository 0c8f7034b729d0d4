"""Where a photo's camera comes from: the user (``--K``), the photo's EXIF 35 mm-equivalent
focal length, or a default field of view (``render.camera.default_K``, a phone's 55 degrees).
K is 3x3 in pixels of the image, principal point at the centre unless given."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np

from .images import open_image


def exif_focal_px(path: str | Path, width: int, height: int) -> float | None:
    """Focal length in pixels from EXIF's 35 mm-equivalent focal length, if present."""
    return _focal_and_size(path, width, height)[0]


def _focal_and_size(path: str | Path, width: int, height: int
                    ) -> tuple[float | None, tuple[int, int] | None, bool]:  # fmt: skip
    """``exif_focal_px`` for an image shown ``width`` x ``height``, the file's upright size
    (W, H) (None where it cannot be read), and whether its EXIF orientation (5-8) turns its
    stored pixels a quarter to make them upright."""
    try:
        with open_image(path) as im:
            exif = im.getexif()
            turned = exif.get(0x0112) in (5, 6, 7, 8)
            size = im.size[::-1] if turned else im.size
            f35 = exif.get_ifd(0x8769).get(41989) or exif.get(41989)
    except Exception:  # noqa: BLE001 - any EXIF trouble means: no focal length
        return None, None, False
    if not f35:
        return None, size, turned
    return float(f35) * math.hypot(width, height) / math.hypot(36.0, 24.0), size, turned


def camera_for_image(
    path: str | Path | None,
    size: tuple[int, int],
    K: np.ndarray | None = None,
    fov_deg: float | None = None,
) -> tuple[np.ndarray, str]:
    """K (3, 3) for an image of (H, W) (an image's whole ``shape`` is taken too) and where it
    came from: 'given' (``K``, checked by ``as_intrinsics``), 'exif' (the file ``path``'s
    35 mm-equivalent focal length) or 'default' (``fov_deg`` horizontal, by default
    ``render.camera.DEFAULT_FOV_DEG``), the principal point at the image's centre. A
    ``CameraWarning`` where ``size`` is the file's upright size turned (W, H), as PIL's
    ``Image.size`` gives it: the principal point would be transposed (an image the caller
    turned a quarter itself is the one case where that is meant)."""
    h, w = size[:2]
    if K is not None:
        return as_intrinsics(K), "given"
    f, stored, turned = _focal_and_size(path, w, h) if path is not None else (None, None, False)
    if stored is not None and w != h and stored == (h, w):
        also = (" or the shape of its pixels as stored, before its EXIF orientation turns "
                "them upright (monohand.read_rgb does; K then suits the array as given)"
                if turned else "")  # fmt: skip
        warnings.warn(f"{path}: size {tuple(size[:2])} is the {h}x{w} photo's (W, H){also}; "
                      "camera_for_image takes (H, W), as image.shape[:2] gives them: the "
                      "principal point comes out transposed", CameraWarning, stacklevel=2)
    source = "exif"
    if f is None:  # render.camera.default_K's K, in float64
        if fov_deg is None:
            # imported here: the camera module brings torch, which the command line's
            # --help and its argument checks should not wait for
            from ..render.camera import DEFAULT_FOV_DEG as fov_deg
        f, source = 0.5 * w / math.tan(math.radians(fov_deg) / 2), "default"
    return np.array([[f, 0, (w - 1) / 2], [0, f, (h - 1) / 2], [0, 0, 1.0]]), source


def as_intrinsics(K, what: str = "K") -> np.ndarray:
    """A camera matrix given as a (3, 3) array, nested list or tensor -> float64 (3, 3);
    a ``ValueError`` naming ``what`` unless it is finite with positive focal lengths and
    [0, 0, 1] as its last row."""
    if K is None:
        raise ValueError(f"{what}: a (3, 3) camera matrix is needed; "
                         "monohand.data.intrinsics.camera_for_image(path, image.shape[:2]) "
                         "gives a photo's (EXIF or a default field of view)")  # fmt: skip
    if hasattr(K, "detach"):  # a torch tensor
        K = K.detach().cpu().numpy()
    try:
        K = np.asarray(K, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{what}: not a (3, 3) camera matrix of numbers ({e})") from e
    if K.shape != (3, 3):
        raise ValueError(f"{what}: expected a (3, 3) camera matrix, got shape {K.shape}")
    if not np.all(np.isfinite(K)):
        raise ValueError(f"{what}: NaN or infinity is not a camera")
    if K[0, 0] <= 0 or K[1, 1] <= 0:
        raise ValueError(f"{what}: not a valid camera matrix (the focal lengths fx, fy must be "
                         f"positive, got {K[0, 0]:g}, {K[1, 1]:g})")  # fmt: skip
    if not np.allclose(K[2], [0, 0, 1]):
        raise ValueError(f"{what}: expected [[fx, 0, cx], [0, fy, cy], [0, 0, 1]], got last row "
                         f"{K[2].tolist()}")  # fmt: skip
    return K


def parse_K(text: str) -> np.ndarray:
    """``fx,fy,cx,cy`` (pixels; commas or spaces between them) or a JSON file holding
    ``{"K": [[...]]}`` or a 3x3 list; a ``ValueError`` that says what is wrong otherwise."""
    p = Path(text)
    if p.suffix.lower() == ".json" or p.is_file():
        if not p.is_file():
            raise ValueError(f"{text}: no such file (a JSON file with K, or fx,fy,cx,cy)")
        try:
            data = json.loads(p.read_text())
            K = np.asarray(data["K"] if isinstance(data, dict) else data, dtype=np.float64)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"{text}: not a JSON file ({e})") from e
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f'{text}: expected {{"K": 3x3 numbers}} or a 3x3 list') from e
    else:
        # commas or spaces between the numbers ("800,800,424,282" or "800 800 424 282")
        parts = [x.strip() for x in text.split(",")] if "," in text else text.split()
        expected = "expected fx,fy,cx,cy (4 numbers, pixels) or a JSON file with K"
        if len(parts) != 4 or not all(parts):
            got = "an empty value" if not all(parts) else f"{len(parts)} value(s)"
            raise ValueError(f"{text!r}: {expected}, got {got}")
        try:
            fx, fy, cx, cy = (float(x) for x in parts)
        except ValueError as e:
            raise ValueError(f"{text!r}: {expected}; these are not all numbers") from e
        if not np.all(np.isfinite([fx, fy, cx, cy])):
            raise ValueError(f"{text!r}: {expected}; NaN or infinity is not a camera")
        K = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1.0]])
    return as_intrinsics(K, text)


# Wider than a phone's ultra-wide camera (~120 degrees): a pinhole K this wide is almost always
# one meant for a smaller image (a K of a 640-pixel image on a 6,400-pixel one gives 158).
MAX_PLAUSIBLE_FOV_DEG = 140.0
# Narrower than any lens a hand is photographed with (a hand fills half a degree's view
# from 20 m): a focal length in the wrong unit, or a K of a much larger image. A crop's K
# is narrow too (a 128-pixel crop of a 4,000-pixel photo: ~2 degrees), so the bar is low.
MIN_PLAUSIBLE_FOV_DEG = 0.5


class CameraWarning(UserWarning):
    """A K too wide or too narrow for its image (``implausible_field_of_view``), warned by
    ``Reconstructor.reconstruct``; the command line says it itself, once per photo or video.
    Also ``camera_for_image``'s, for a size given as the file's (W, H)."""


def implausible_field_of_view(K: np.ndarray, size: tuple[int, int]) -> str | None:
    """Why ``K`` (3, 3) looks meant for another image than one of ``size`` (H, W) pixels: a
    horizontal field of view over ``MAX_PLAUSIBLE_FOV_DEG`` (a smaller image's K) or under
    ``MIN_PLAUSIBLE_FOV_DEG``; None otherwise. Depth is read through K (a hand's distance
    scales with the focal length), so such a K puts every hand far too near or too far. (A
    crop's K is narrow, but not that narrow: crops pass.)"""
    fov = math.degrees(2 * math.atan(0.5 * size[1] / float(K[0, 0])))
    if fov < MIN_PLAUSIBLE_FOV_DEG:
        return (f"K's focal length ({float(K[0, 0]):g} px) gives the {size[1]}x{size[0]} image "
                f"a {fov:.2g}-degree horizontal field of view, narrower than any lens a hand "
                "is photographed with: a focal length in another unit than pixels, or a K "
                "meant for a much larger image?")  # fmt: skip
    if fov <= MAX_PLAUSIBLE_FOV_DEG:
        return None
    return (f"K's focal length ({float(K[0, 0]):g} px) gives the {size[1]}x{size[0]} image a "
            f"{fov:.0f}-degree horizontal field of view, wider than a phone's ultra-wide camera: "
            "a K meant for a smaller image, or a fisheye lens (which a pinhole K cannot "
            "describe)?")


def camera_doubt(K: np.ndarray, size: tuple[int, int]) -> str | None:
    """What the command says of the K it uses for an image of ``size`` (H, W), given, from
    EXIF or the default: its principal point outside the image (``principal_point_outside``;
    a crop's K may do that, so this is a warning, and the library does not give it) or a
    field of view too wide or too narrow (``implausible_field_of_view``); None when
    neither."""
    return principal_point_outside(K, size) or implausible_field_of_view(K, size)


def principal_point_outside(K: np.ndarray, size: tuple[int, int]) -> str | None:
    """A warning when K's principal point (cx, cy) lies outside an image of (H, W) pixels
    (almost always a K meant for another image size), else None."""
    h, w = size
    cx, cy = float(K[0, 2]), float(K[1, 2])
    if -0.5 <= cx <= w - 0.5 and -0.5 <= cy <= h - 0.5:
        return None
    return (f"K's principal point ({cx:g}, {cy:g}) lies outside the {w}x{h} image: was K "
            "given for another image size?")


