"""Reading images and collecting inputs, with clear errors for bad files."""

from __future__ import annotations

import contextlib
import functools
import glob
import re
import struct
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".webp", ".tif", ".tiff",
                  ".avif")  # fmt: skip
# Refuse decompression bombs, not photos: 100-megapixel cameras exist (and whatever
# limit Pillow's own warning names, this one is the one that holds).
MAX_PIXELS = 200_000_000
_ORIENTATION = 0x0112  # the EXIF tag


class ImageError(ValueError):
    """An input image is unreadable; the message names the file."""


def check_rgb(image, what: str = "image") -> np.ndarray:
    """``image`` if it is what the detector and the fit take, a NumPy RGB uint8 array
    (H, W, 3); otherwise a ``TypeError`` / ``ValueError`` saying what it is and how to get
    one (``read_rgb`` for a file)."""
    fix = "read a file with monohand.data.images.read_rgb(path)"
    if isinstance(image, (str, Path)):
        raise TypeError(f"{what}: got a path ({image}); {fix}")
    if not isinstance(image, np.ndarray):
        kind = type(image).__name__
        hint = "(a torch tensor: .numpy(), (H, W, 3) uint8)" if hasattr(image, "numpy") else ""
        raise TypeError(f"{what}: expected a NumPy RGB uint8 array (H, W, 3), got a {kind} "
                        f"{hint}; one image per call; {fix}")  # fmt: skip
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"{what}: expected an RGB uint8 array (H, W, 3), got {image.dtype} "
                         f"{image.shape}; {fix}, which converts greyscale, RGBA and 16-bit, or "
                         "scale floats in [0, 1] by 255 and cast to uint8")  # fmt: skip
    if 0 in image.shape:  # (a crop outside the photo) MediaPipe's graph fails on it for good
        raise ValueError(f"{what}: an empty image ({image.shape[1]}x{image.shape[0]} pixels)")
    return image


def read_rgb(path: str | Path) -> np.ndarray:
    """Any image file -> RGB uint8 (H, W, 3), upright: greyscale, palette and 16-bit are
    converted, a transparent image is laid over white, and an EXIF orientation (a phone
    photo stored sideways) is applied, so the pixels, and every K and output made from their
    size, are the photo as it is shown."""
    path = Path(path)
    if path.is_dir():
        raise ImageError(f"{path}: a folder, not an image file "
                         "(monohand.data.images.collect_images lists a folder's images)")
    if not path.is_file():
        raise ImageError(f"{path}: no such file")
    return decode_rgb(path, str(path))


def decode_rgb(source, name: str, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """An image file or file-like object -> RGB uint8 (H, W, 3), as ``read_rgb``; errors are
    ``ImageError``s naming ``name``. Images over ``max_pixels`` are refused unread."""
    try:
        with open_image(source, max_pixels) as im:
            if im.width * im.height > max_pixels:
                raise ImageError(
                    f"{name}: {im.width}x{im.height} is too large (at most {max_pixels:,} pixels)"
                )
            if im.getexif().get(_ORIENTATION) in range(2, 9):  # 1 (or junk): as stored
                im = ImageOps.exif_transpose(im)
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(im, dtype=np.float64)
                arr = (255 * arr / max(arr.max(), 1)).astype(np.uint8)
                return np.repeat(arr[..., None], 3, axis=2)
            if im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info:
                # As a viewer shows it: over white, not the colours stored under alpha 0
                # (often black, or what the cut-out removed).
                rgba = im.convert("RGBA")
                white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                return np.array(Image.alpha_composite(white, rgba).convert("RGB"))
            return np.array(im.convert("RGB"))  # (a copy: writable, as callers expect)
    except UnidentifiedImageError as e:  # its message only repeats the source
        raise ImageError(f"{name}: not a readable image (unknown format)") from e
    except (OSError, Image.DecompressionBombError, SyntaxError, ValueError, EOFError,
            struct.error, MemoryError) as e:  # fmt: skip
        # (PIL's decoders raise any of these on damaged files, e.g. "Truncated IHDR chunk")
        if isinstance(e, ImageError):
            raise
        raise ImageError(f"{name}: not a readable image ({e})") from e


_LIMIT_LOCK = threading.RLock()


@contextlib.contextmanager
def open_image(source, max_pixels: int = MAX_PIXELS) -> Iterator[Image.Image]:
    """``with Image.open(source)``, with Pillow's own decompression-bomb limit raised to
    ``max_pixels`` and its warning silenced for the whole block (Pillow checks again while
    decoding some formats, TIFF's), so that monohand's limit is the one that holds
    (``decode_rgb`` says it in its own words). One such block at a time per process."""
    # Pillow warns past Image.MAX_IMAGE_PIXELS and refuses past twice that
    with _LIMIT_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        saved = Image.MAX_IMAGE_PIXELS
        if saved is not None:
            Image.MAX_IMAGE_PIXELS = max(saved, max_pixels)
        try:
            with Image.open(source) as im:
                yield im
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def frame_count(path: str | Path) -> int:
    """How many frames an image file holds (an animated GIF, PNG or WebP, a multi-page TIFF:
    more than one, of which ``read_rgb`` reads the first); 1 where it cannot tell."""
    try:
        with open_image(path) as im:
            return int(getattr(im, "n_frames", 1) or 1)
    except Exception:  # noqa: BLE001 - read_rgb has said what is wrong with the file
        return 1


def natural_key(path: Path) -> tuple[list, str]:
    """A sort key that orders numbers within names by value: frame_2 before frame_10 (then
    by the name itself, so that f1 and f01 keep one order whatever the file system's)."""
    parts = re.split(r"([0-9]+)", str(path))  # (ASCII digits only: int() reads them all)
    return [int(t) if k % 2 else t.lower() for k, t in enumerate(parts)], str(path)


# <name>_overlay.<suffix> -> the file beside it that marks it as written by monohand
_OUTPUT_MARKS = {".png": ".json", ".mp4": "_tracks.json"}


@functools.cache
def _format_mark() -> re.Pattern:
    """What marks monohand's own files (``record.FORMAT``, ``record.TRACKS_FORMAT``): their
    format among the first bytes (any key order, a BOM, compact or spaced JSON)."""
    from ..record import FORMAT, TRACKS_FORMAT  # (record loads torch: only when asked)

    names = "|".join(re.escape(f) for f in (FORMAT, TRACKS_FORMAT)).encode()
    return re.compile(rb'"format"\s*:\s*"(' + names + rb')"')


def earlier_output(path: Path) -> bool:
    """Whether a file found in a folder is an overlay that ``monohand reconstruct`` wrote:
    ``<stem>_overlay.png`` beside its record ``<stem>.json``, or ``<stem>_overlay.mp4``
    beside its ``<stem>_tracks.json``. A run over a folder that holds an earlier run's output
    (its own ``--out``, or a sibling's) must not take those pictures for photos, nor offer
    those videos as inputs."""
    name = path.name
    mark = _OUTPUT_MARKS.get(path.suffix.lower())
    if mark is None or not name[: -len(path.suffix)].lower().endswith("_overlay"):
        return False
    record = path.with_name(name[: -len("_overlay") - len(path.suffix)] + mark)
    return monohand_file(record, tracks=mark != ".json")


def monohand_file(record: Path, tracks: bool = False) -> bool:
    """Whether ``record`` is a JSON file that monohand wrote: its ``format`` (``record``'s)
    among its first bytes, or (``tracks``) a video's tracks from before they carried one
    (2026-12-06), which begin with their frame count. Only the head is read."""
    if not record.is_file():  # (and never a pipe, whose reading would block)
        return False
    try:
        with open(record, "rb") as f:
            head = f.read(2048)
    except OSError:
        return False
    return (_format_mark().search(head) is not None
            or (tracks and head.startswith(b'{"frames"')))  # fmt: skip


def hidden(path: Path, root: Path) -> bool:
    """Whether ``path`` found under the folder ``root`` is hidden there: it, or a folder
    between them, is named with a leading dot (a viewer's ``.thumbnails/``, macOS's
    ``._IMG_0001.jpg`` resource files)."""
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def expand_patterns(inputs: list[str | Path]) -> list[Path]:
    """``inputs`` with each one that names no file or folder but holds a glob pattern
    (``*``, ``?``, ``[``; ``**`` for any depth), as a shell that does not expand them
    (Windows', a quoted one in a script) passes it, replaced by its matches in natural order;
    ``ImageError`` for a pattern that matches nothing. The rest as given."""
    out: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.exists() or not glob.has_magic(str(item)):
            out.append(p)
            continue
        matches = sorted((Path(m) for m in glob.glob(str(item), recursive=True)), key=natural_key)
        if not matches:
            raise ImageError(f"{item}: no file or folder matches this pattern")
        out += matches
    return out


def sequence_frames(inputs: list[str | Path]) -> list[Path]:
    """The frames of ``--sequence``: each folder's own image files (not its subfolders', which
    would be another sequence) in natural order (frame_2 before frame_10); files given one
    by one in that order too (a shell's ``frames/*.png`` lists frame_10 before frame_2); a
    folder's hidden files and overlays of an earlier run left out (``hidden``,
    ``earlier_output``)."""
    if inputs and all(Path(i).is_file() for i in inputs):
        inputs = sorted(inputs, key=lambda i: natural_key(Path(i)))
    out: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            out += sorted((f for f in p.iterdir()
                           if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
                           and not hidden(f, p) and not earlier_output(f)),
                          key=natural_key)  # fmt: skip
        elif p.is_file():
            out.append(p)
        else:
            raise ImageError(f"{p}: no such file or folder")
    return list(dict.fromkeys(out))  # a frame named twice (a folder and its file) read once


def collect_images(inputs: list[str | Path]) -> list[Path]:
    """Image files among ``inputs`` (files, or folders searched recursively), sorted per folder,
    each once; a folder's hidden files and folders (``hidden``) and overlays of an earlier
    run (``earlier_output``) left out (a file named itself is kept).

    A FreiHAND-layout folder yields its ``training/rgb`` (or ``evaluation/rgb``) images.
    """
    out: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            for sub in ("training/rgb", "evaluation/rgb"):
                if (p / sub).is_dir():
                    p = p / sub
                    break
            out += sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES
                          and f.is_file() and not hidden(f, p)
                          and not earlier_output(f))  # fmt: skip
        elif p.is_file():
            out.append(p)
        else:
            raise ImageError(f"{p}: no such file or folder")
    # a file named twice (a folder and a file in it, or two spellings) is read once
    seen: set[Path] = set()
    return [f for f in out if not (f.absolute() in seen or seen.add(f.absolute()))]
