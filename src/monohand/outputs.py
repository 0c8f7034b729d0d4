"""A photo's results in an output folder: which files they are (``output_files``), writing
them (``write_outputs``: a mesh file per hand, the JSON record, the overlay), the folder's
names for several photos (``output_stems``), and whose a file is.

The output folder is the user's too. A photo's files are replaced only when its record
``<stem>.json`` says monohand wrote them, for this photo (the record lists its files and the
photo's SHA-256, and is written before them); anything else in the way stops that photo's
writing with an ``OutputClash`` before a file is touched: a file of the same name that
monohand did not write, or the results of another photo of the same name (cameras reuse
IMG_0001; ``same_photo``), unless ``overwrite`` allows the latter.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .atomic import atomic_write
from .export import MESH_SUFFIXES, HandRig, normalise_formats, write_hand_mesh
from .record import FORMAT, record_header

if TYPE_CHECKING:
    from .record import HandReconstruction


def output_files(out_dir: str | Path, stem: str, hands: int,
                 mesh_formats: tuple[str, ...] = (".glb",), overlay: bool = True) -> set[Path]:
    """The files ``write_outputs`` writes for ``hands`` hands of ``stem``: the meshes
    ``<stem>_<i>.<format>``, ``<stem>.json`` and (``overlay``) ``<stem>_overlay.png``."""
    out = Path(out_dir)
    formats = normalise_formats(mesh_formats)
    return ({out / f"{stem}_{i}{fmt}" for i in range(hands) for fmt in formats}
            | {out / f"{stem}.json"} | ({out / f"{stem}_overlay.png"} if overlay else set()))


class OutputClash(ValueError):
    """A photo's outputs would replace files that are not monohand's results of that photo
    (see the module doc); nothing was written or removed."""


def image_digest(data: bytes | np.ndarray) -> str:
    """The SHA-256 (hex) of a photo's file bytes, or of an image array's pixels: what a
    record remembers of its photo."""
    raw = data if isinstance(data, bytes) else memoryview(np.ascontiguousarray(data)).cast("B")
    return hashlib.sha256(raw).hexdigest()


def earlier_record(out_dir: str | Path, stem: str) -> dict | None:
    """The record ``out_dir/<stem>.json`` that monohand wrote, or None when there is no such
    file; ``OutputClash`` when a file of that name is not one (not JSON, or without
    monohand's ``format``)."""
    path = Path(out_dir) / f"{stem}.json"
    if not path.is_file():
        if path.exists() or path.is_symlink():
            raise OutputClash(f"{path}: in the way, and not a monohand record (not replaced; "
                              "move it or give another --out)")  # fmt: skip
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        record = None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise OutputClash(f"{path}: exists and is not a monohand record (not replaced; move "
                          "it or give another --out)")  # fmt: skip
    return record


def owned_outputs(out_dir: str | Path, stem: str, record: dict | None = None) -> list[Path]:
    """The files of ``stem`` in ``out_dir`` that monohand wrote: those its record
    ``<stem>.json`` lists, and the record; for records from before 2026-12-06 (no list),
    the names it wrote for as many hands as it holds (meshes ``<stem>_<i>.<mesh suffix>``,
    ``<stem>_overlay.png``). No record: none (files of those names are someone else's).
    ``record``: ``earlier_record``'s answer where the caller has read it (else read here,
    with its ``OutputClash``)."""
    out = Path(out_dir)
    if record is None:
        record = earlier_record(out, stem)
    if record is None:
        return []
    found = [out / f"{stem}.json"]
    if isinstance(record.get("files"), list):
        found += [out / Path(str(f)).name for f in record["files"]]
    else:
        hands = len(record["hands"]) if isinstance(record.get("hands"), list) else 0
        found.append(out / f"{stem}_overlay.png")
        for p in out.glob(f"{glob_escape(stem)}_*"):
            index = p.name[len(stem) + 1 : len(p.name) - len(p.suffix)]
            if p.suffix.lower() in MESH_SUFFIXES and index.isdigit() and int(index) < hands:
                found.append(p)
    return sorted({p for p in found if p.is_file()})


def _among(path: Path, paths: set[Path]) -> bool:
    """Whether ``path`` is one of ``paths``, as the file system tells names apart (a
    case-insensitive one takes Hand_0.glb for hand_0.glb)."""
    if path in paths:
        return True
    return path.exists() and any(p.exists() and os.path.samefile(path, p) for p in paths)


def same_photo(record: dict, image: str, digest: str | None) -> bool:
    """Whether the earlier ``record`` holds the hands of the photo named ``image`` (as given)
    with the ``image_digest`` ``digest``: the same file contents, or the same file (its path
    resolved here; a photo edited in place stays itself). Records of older versions, and
    video frames, carry no digest: by the path alone."""
    old_digest, old_image = record.get("image_sha256"), str(record.get("image", ""))
    if old_digest and digest and old_digest == digest:
        return True
    if not image or not old_image:
        return not (old_digest and digest)  # nothing to tell them apart by
    if old_image == image:
        return True
    try:
        return Path(old_image).resolve() == Path(image).resolve()
    except (OSError, RuntimeError):
        return False


def check_outputs(out_dir: str | Path, stem: str, writes: set[Path] | frozenset,
                  image: str = "", digest: str | None = None, overwrite: bool = False
                  ) -> list[Path]:  # fmt: skip
    """Before writing ``writes`` for the photo ``image`` (its name as given; ``digest``: its
    ``image_digest``) as ``stem``: ``OutputClash`` when one of them exists and monohand did
    not write it, or when ``<stem>.json`` holds another photo's hands (``same_photo``) and
    not ``overwrite``. Returns the files of ``stem`` that monohand wrote and this run does
    not (``stale_outputs``)."""
    out = Path(out_dir)
    record = earlier_record(out, stem)
    if record is not None and not overwrite and not same_photo(record, image, digest):
        old = str(record.get("image", "")) or "unnamed"
        raise OutputClash(f"{out / (stem + '.json')} holds the hands of another photo of "
                          f"that name ({old}): not replaced; give another --out, or "
                          "--overwrite to replace it")  # fmt: skip
    owned = set(owned_outputs(out, stem, record))
    theirs = sorted(p for p in writes if (p.exists() or p.is_symlink()) and not _among(p, owned))
    if theirs:
        raise OutputClash(f"{theirs[0]}: exists and monohand did not write it (not replaced; "
                          "move it or give another --out)")  # fmt: skip
    keep = {Path(k) for k in writes}
    return sorted(p for p in owned if not _among(p, keep))


def stale_outputs(out_dir: str | Path, stem: str, keep: set[Path] | frozenset = frozenset()
                  ) -> list[Path]:  # fmt: skip
    """Files of ``stem`` in ``out_dir`` that monohand wrote (``owned_outputs``) other than
    ``keep``: what a previous run wrote and this one does not."""
    keep = {Path(k) for k in keep}
    return [p for p in owned_outputs(out_dir, stem) if not _among(p, keep)]


def output_stems(paths: list[Path]) -> dict[Path, str]:
    """The output name of each input, unique within the run (ignoring case, as some file
    systems do): its stem; where two inputs share it (hand.jpg and hand.png), the file name
    with dots as underscores (hand_jpg, hand_png); where those are shared too (a/hand.jpg
    and b/hand.jpg: folders searched recursively), the file name after as many of its
    folders as it takes (a_hand_jpg, b_hand_jpg); where even that cannot tell them apart
    (a_b/x.jpg and a/b/x.jpg), a number after the name (a_b_x_jpg, a_b_x_jpg_2). One file
    given twice (in any spelling) keeps one name."""
    paths = [Path(p) for p in paths]
    files = list(dict.fromkeys(p.absolute() for p in paths))

    def name(p: Path, level: int) -> str:
        if level == 0:
            return p.stem
        return "_".join(_folders_and_name(p)[-level:]).replace(".", "_")

    level = dict.fromkeys(files, 0)
    while True:
        groups: dict[str, list[Path]] = {}
        for f in files:
            groups.setdefault(name(f, level[f]).casefold(), []).append(f)
        clashing = [f for g in groups.values() if len(g) > 1 for f in g
                    if level[f] < len(_folders_and_name(f))]  # fmt: skip
        if not clashing:
            break
        for f in clashing:
            level[f] += 1
    names, taken = {}, set()
    for f in files:
        n, k = name(f, level[f]), 1
        while (n if k == 1 else f"{n}_{k}").casefold() in taken:
            k += 1
        names[f] = n if k == 1 else f"{n}_{k}"
        taken.add(names[f].casefold())
    return {p: names[p.absolute()] for p in paths}


def _folders_and_name(p: Path) -> tuple[str, ...]:
    """The folders from the root down to ``p`` (absolute), then its name."""
    return p.relative_to(p.anchor).parts


def glob_escape(name: str) -> str:
    """``name`` with glob's special characters ([, ], *, ?) taken literally."""
    return "".join(f"[{c}]" if c in "[]*?" else c for c in name)


def write_outputs(
    out_dir: str | Path,
    stem: str,
    image: np.ndarray,
    K: np.ndarray,
    hands: list[HandReconstruction],
    k_source: str,
    image_path: str = "",
    mesh_formats: tuple[str, ...] = (".glb",),
    model_name: str = "openhand",
    overlay: bool = True,
    method: str | None = None,
    network: str | None = None,
    digest: str | None = None,
    overwrite: bool = False,
    model_path: str | None = None,
    rigs: list[HandRig | None] | None = None,
    removed: list[Path] | None = None,
    keypoints_file: str | None = None,
) -> list[Path]:
    """Write the meshes, ``<stem>.json`` and (``overlay``) ``<stem>_overlay.png``; returns
    the paths. Each hand's mesh files as ``export.write_hand_mesh`` writes them (glTF
    textured, y up; the others in the photo's camera frame, as the JSON's vertices).
    Recorded in the JSON: ``method`` (how the hands were made: fit, network, hybrid),
    ``network`` (which network: "shipped" or a checkpoint's path), ``digest`` (the photo's
    ``image_digest``), ``model_path`` (the model's file where one was given: the parameters
    pose that file's layer), ``keypoints_file`` (the file the hands' keypoints were read
    from, as given: ``reconstruct --keypoints``; None: monohand's detector) and the files
    written. ``rigs`` (per hand, ``export.HandRig`` or None): .glb files carry the hand's
    skeleton (``write_hand_mesh``). What a previous run of ``stem`` wrote and this one does
    not (the meshes of a hand it no longer finds, another format) is removed first, so the
    folder holds one run's files; ``OutputClash``, before anything is written, where a file
    is in the way that is not monohand's results of this photo (``check_outputs``;
    ``overwrite``: another photo's results of the same name may go). ``removed``: a list to
    which the removed files are added."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    formats = normalise_formats(mesh_formats)
    writes = output_files(out, stem, len(hands), formats, overlay)
    for old in check_outputs(out, stem, writes, image_path, digest, overwrite):
        old.unlink()
        if removed is not None:
            removed.append(old)
    record = {
        **record_header(),
        "image": image_path,
        **({} if digest is None else {"image_sha256": digest}),
        "files": sorted(p.name for p in writes if p.name != f"{stem}.json"),
        "K": K.tolist(),
        "K_source": k_source,
        **({} if method is None else {"method": method}),
        **({} if network is None else {"network": network}),
        **({} if model_path is None else {"model_path": str(model_path)}),
        **({} if keypoints_file is None else {"keypoints_file": str(keypoints_file)}),
        "hands": [
            {
                "side": hd.side,
                "model": model_name,
                "joints3d": hd.joints3d.tolist(),
                "joints2d": hd.joints2d.tolist(),
                "keypoints2d_detected": hd.detection.keypoints.tolist(),
                "confidence": hd.detection.confidence.tolist(),
                "detection_score": hd.detection.score,
                "vertices": hd.vertices.tolist(),
                "parameters": hd.parameters,
                "fit": hd.fit,
                **({} if hd.track is None else {"track": hd.track}),
            }
            for hd in hands
        ],
    }
    # The record first: it lists the files that follow, so that a run stopped half-way
    # (Ctrl-C) leaves files that the next run knows as monohand's.
    written = atomic_write(out / f"{stem}.json", lambda t: t.write_text(json.dumps(record)))
    paths = [write_hand_mesh(out / f"{stem}_{i}{fmt}", hd, rigs[i] if rigs else None)
             for i, hd in enumerate(hands) for fmt in formats]
    paths.append(written)
    if overlay:
        from .viz import overlay_image

        sheet = overlay_image(image, K, hands)
        paths.append(atomic_write(out / f"{stem}_overlay.png", lambda t: sheet.save(t, "PNG")))
    return paths
