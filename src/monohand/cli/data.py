"""The data verbs: ``detect`` (2D keypoints of photos), ``synth`` (a rendered set in
FreiHAND's layout) and ``import-photos`` (real photos without 3D labels as a training set)."""

from __future__ import annotations

from pathlib import Path

import typer

from . import usage
from .common import app, console, err, examples, say


@app.command(epilog=examples("monohand detect photos/ --out detections.json"))
def detect(
    inputs: list[Path] = typer.Argument(..., help="Images, folders, or a FreiHAND-layout "
                                        "dataset (its training/rgb images; DATA/evaluation/rgb "
                                        "for the other split)."),  # fmt: skip
    out: Path = typer.Option(..., "--out", help="Detections file: S2HAND's JSON "
                             "(training labels; not OpenPose's per-image files that "
                             "reconstruct --keypoints reads)."),
    max_hands: int = typer.Option(1, min=1, help="Hands kept per image (the best scored "
                                  "first: the surest of their side; at least 1)."),
    tta: bool = typer.Option(True, help="Per-joint confidence from test-time augmentation."),
) -> None:
    """2D hand keypoints with per-joint confidences (MediaPipe, offline), written as S2HAND's
    detection file [xy (N,21,2), values (N,21,1), filenames (N,1)]. No hand: zeros."""
    from ..data.detection_file import save_detections
    from ..data.images import ImageError, collect_images, expand_patterns
    from ..data.mediapipe_hands import detect_files
    from ..progress import Reporter

    usage.out_file(out, "--out", (".json",))
    try:
        files = collect_images(expand_patterns(inputs))
    except ImageError as e:
        say("error", e)
        raise typer.Exit(2) from e
    if not files:
        say("error", "no images found")
        raise typer.Exit(2)
    with Reporter("detecting", len(files), err) as bar:
        xy, conf, names, failed, missed = detect_files(files, max_hands, tta, bar.update)
    for message in failed:
        say("skipped", message)
    if not names:
        say("error", "no image could be read")
        raise typer.Exit(1)
    save_detections(out, xy, conf, names)
    read = len(files) - len(failed)
    console.print(f"wrote {out}: {read - missed} of {len(files)} image(s) with a hand, "
                  f"{missed} without" + (f", {len(failed)} unreadable" if failed else ""))


@app.command(epilog=examples(
    "monohand synth out/data/synth --num 2000 --size 224",
    "monohand synth out/data/v2 --style v2 --fill 0.4,0.7",
))
def synth(
    out_dir: Path = typer.Argument(..., help="Output folder (FreiHAND layout)."),
    num: int = typer.Option(100, "--num", help="Number of samples (training + evaluation)."),
    model: str = typer.Option("openhand", help="Hand model (needs a texture space: openhand)."),
    size: int = typer.Option(224, help="Image size, pixels."),
    seed: int = typer.Option(0, help="Random seed: the same seed gives the same data."),
    workers: int = typer.Option(1, help="Worker processes."),
    eval_fraction: float = typer.Option(0.1, help="Share of samples in the evaluation split, "
                                        "0-1 (the rest: training; 1: evaluation only)."),
    orientation: str = typer.Option("frontal", help="frontal (FreiHAND-like views) | uniform."),
    max_spin_deg: float = typer.Option(
        180.0, help="Frontal views: in-plane angle within +- this of upright, degrees."
    ),
    fill: str = typer.Option("0.55,0.9", help="The hand's extent over the image size: LO,HI."),
    style: str = typer.Option(
        "v1", help="v1 (Lambert, cut wrist) | v2 (forearm, lights, camera effects) | "
        "v3 (v2 + held objects and shadows)."
    ),
    overwrite: bool = typer.Option(False, help="Replace OUT_DIR if it exists and is a set "
                                   "this command made (or empty)."),
) -> None:
    """Generate a synthetic dataset in FreiHAND's layout (rgb, mask, K, xyz, verts, mano, scale)."""
    import re

    from ..data.synthetic import SynthConfig, check_synth_out, generate
    from ..progress import Reporter

    try:
        lo, hi = (float(x) for x in fill.split(","))
    except ValueError as e:
        raise typer.BadParameter(f"expected two numbers LO,HI, got {fill!r}",
                                 param_hint="--fill") from e  # fmt: skip
    if not 0 < lo <= hi:
        raise typer.BadParameter(f"expected 0 < LO <= HI, got {fill!r}", param_hint="--fill")
    cfg = SynthConfig(num=num, size=size, seed=seed, model=model, workers=workers,
                      eval_fraction=eval_fraction, orientation=orientation,
                      max_spin_deg=max_spin_deg, fill=(lo, hi), style=style)  # fmt: skip
    usage.out_folder(out_dir, "'OUT_DIR'")
    if out_dir.exists() and not overwrite:
        raise typer.BadParameter(f"{out_dir} exists: pass --overwrite to replace it",
                                 param_hint="'OUT_DIR'")  # fmt: skip
    try:
        cfg.check()
        check_synth_out(out_dir, overwrite)
    except ValueError as e:  # the settings' names as the options'
        say("error", re.sub(r"\b(eval_fraction|max_spin_deg|workers|size|num|fill|style|"
                            r"orientation)\b", lambda m: "--" + m[1].replace("_", "-"), str(e)))
        raise typer.Exit(2) from e
    except FileExistsError as e:
        say("error", e)
        raise typer.Exit(2) from e
    try:
        with Reporter("rendering", num, err) as bar:
            summary = generate(out_dir, cfg, bar.add, overwrite)
    except (FileExistsError, ValueError) as e:
        say("error", e)
        raise typer.Exit(1) from e
    console.print(
        f"wrote {summary.out_dir}: {summary.training} training, {summary.evaluation} evaluation"
    )
    if summary.evaluation == 0 and eval_fraction > 0:
        say("note", f"no evaluation sample ({eval_fraction:g} of {num}): 'monohand evaluate' "
             "and 'ablate' need some; make more samples")  # fmt: skip


@app.command("import-photos", epilog=examples(
    "monohand import-photos photos/ out/data/photos --licence 'CC0, from ...'",
    "monohand train configs/release.yaml data.photos=out/data/photos",
))
def import_photos_cmd(
    sources: list[Path] = typer.Argument(..., help="Photos, or folders searched recursively."),
    out_dir: Path = typer.Argument(..., help="The photo set to write (FreiHAND layout, no 3D)."),
    licence: str = typer.Option(..., help="Where the photos come from and their licence "
                                "(recorded in the set; required: a set must say what it may "
                                "be used for)."),
    tta: bool = typer.Option(True, help="MediaPipe's augmented copies (per-joint confidences)."),
    overwrite: bool = typer.Option(False, help="Replace OUT_DIR if it exists."),
) -> None:
    """Real photos without 3D labels as a training set: MediaPipe labels each (one hand), the
    photos with a hand found are written with their cameras (EXIF, else the default field of
    view); train on them beside synthetic data with data.photos=OUT_DIR."""
    from ..data.photos import check_out_dir, import_photos, list_photos
    from ..progress import Reporter

    usage.out_folder(out_dir, "'OUT_DIR'")
    if out_dir.exists() and not overwrite:
        raise typer.BadParameter(f"{out_dir} exists: pass --overwrite to replace it",
                                 param_hint="'OUT_DIR'")  # fmt: skip
    if not licence.strip():
        raise typer.BadParameter("give where the photos come from and their licence",
                                 param_hint="--licence")  # fmt: skip
    try:  # before any work: the sources, and an output folder that may be replaced
        check_out_dir(sources, out_dir, overwrite)
        list_photos(sources, exclude=out_dir)
    except (FileNotFoundError, FileExistsError, ValueError) as e:
        say("error", e)
        raise typer.Exit(2) from e
    try:
        with Reporter("MediaPipe labels", None, err) as bar:
            res = import_photos(sources, out_dir, licence, overwrite, tta, bar.update)
    except (FileNotFoundError, FileExistsError, ValueError) as e:
        say("error", e)
        raise typer.Exit(1) from e
    for message in res.unreadable:
        say("skipped", message)
    if res.no_hand:
        shown = ", ".join(res.no_hand[:5]) + (f" and {len(res.no_hand) - 5} more"
                                              if len(res.no_hand) > 5 else "")  # fmt: skip
        say("no hand", shown)
    console.print(f"wrote {res.root}: {res.kept} of {res.seen} photos with a hand found"
                  + (f", {len(res.unreadable)} unreadable" if res.unreadable else "")
                  + f" (each left-out file named in {res.root / 'photo_set.json'})"
                  * bool(res.unreadable or res.no_hand))  # fmt: skip
