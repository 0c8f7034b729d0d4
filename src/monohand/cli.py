"""The ``monohand`` command: one verb per job, each a thin layer over a library function."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from . import usage

app = typer.Typer(
    help="monohand: 3D hand reconstruction from a single RGB image.",
    no_args_is_help=True,
    add_completion=False,
    # Help texts are plain: with rich markup on, "[xyz, ...]" in them would be read as a
    # style tag and vanish from the page.
    rich_markup_mode=None,
    epilog="Examples:  monohand reconstruct photo.jpg --out out/photo  |  monohand "
    "evaluate-real annotations.json --out out/real  |  monohand serve  |  monohand COMMAND "
    "--help",
)


EXTRA_ARGS = {"allow_extra_args": True, "ignore_unknown_options": True}  # key=value overrides
# Each command's help ends with these (plain text: the help has no markup).
EXAMPLES = {
    "demo": "Examples:  " + "  |  ".join([
        "monohand demo --out out/demo",
    ]),
    "convert_model": "Examples:  " + "  |  ".join([
        "monohand convert-model MANO_RIGHT.pkl mano_right.npz",
        "monohand convert-model openhand openhand_mano.pkl",
    ]),
    "evaluate": "Examples:  " + "  |  ".join([
        "monohand evaluate pred.json FREIHAND_DIR --out out/eval",
        "monohand evaluate pred.json FREIHAND_DIR --select 0:100 --out out/eval",
    ]),
    "detect": "Examples:  " + "  |  ".join([
        "monohand detect photos/ --out detections.json",
    ]),
    "synth": "Examples:  " + "  |  ".join([
        "monohand synth out/data/synth --num 2000 --size 224",
        "monohand synth out/data/v2 --style v2 --fill 0.4,0.7",
    ]),
    "import_photos": "Examples:  " + "  |  ".join([
        "monohand import-photos photos/ out/data/photos --licence 'CC0, from ...'",
        "monohand train configs/release.yaml data.photos=out/data/photos",
    ]),
    "reconstruct": "Examples:  " + "  |  ".join([
        "monohand reconstruct photo.jpg --out out/photo",
        "monohand reconstruct photos/ --K 1400,1400,960,540 --formats .glb,.obj --out out/all",
        "monohand reconstruct clip.mp4 --out out/clip",
        "monohand reconstruct photo.jpg --method fit --out out/fit",
    ]),
    "predict": "Examples:  " + "  |  ".join([
        "monohand predict out/train/last.ckpt FREIHAND_DIR --out pred.json",
    ]),
    "evaluate_real": "Examples:  " + "  |  ".join([
        "monohand evaluate-real ../shared/data/realhands/annotations.json --out out/real",
        "... --method network --every 4",
    ]),
    "train": "Examples:  " + "  |  ".join([
        "monohand train configs/release.yaml out_dir=out/release",
        "monohand train configs/smoke.yaml steps=80 --resume",
    ]),
    "ablate": "Examples:  " + "  |  ".join([
        "monohand ablate configs/seed/*.yaml --out out/ablate",
    ]),
    "serve": "Examples:  " + "  |  ".join([
        "monohand serve",
        "monohand serve --port 8080",
    ]),
}


def _version(value: bool) -> None:
    if value:
        from . import __version__

        typer.echo(f"monohand {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print monohand's version and exit."),  # fmt: skip
) -> None:
    """The command's own options (``--version``)."""
# soft_wrap: a message line is never broken (paths stay whole for copying and grep); tables
# still fit the terminal.
console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _say(label: str, text: object) -> None:
    """One message on stderr: ``label`` in its colour ("error" red, the rest yellow), then
    ``text`` as plain text: file names, settings and library messages may hold brackets,
    which rich would otherwise read as styles and drop."""
    style = "red" if label == "error" else "yellow"
    err.print(f"[{style}]{label}:[/{style}] {escape(str(text))}")


@app.command(epilog=EXAMPLES["demo"])
def demo(
    out: Path = typer.Option(Path("out/demo"), "--out", help="Output folder."),
    model: str = typer.Option(
        "openhand", "--model", help="'openhand', 'boxhand', or a MANO .pkl/.npz file."
    ),
    seed: int = typer.Option(0, help="Seed of the random pose."),
) -> None:
    """Pose a hand model and write meshes (.ply), keypoints (.json) and a picture (.png)."""
    from .demo import run_demo
    from .models.assets import AssetError

    usage.out_folder(out)
    if model not in ("openhand", "boxhand"):
        if Path(model).suffix.lower() in (".pkl", ".npz"):
            usage.existing(Path(model), "--model", "file")
        elif not Path(model).is_file():
            raise typer.BadParameter(f"unknown {model!r}: openhand, boxhand, or a MANO "
                                     ".pkl/.npz file", param_hint="--model")  # fmt: skip
    try:
        result = run_demo(out, model, seed)
    except AssetError as e:  # a model file of the wrong kind: the user's input (exit 2)
        _say("error", e)
        raise typer.Exit(2) from e
    for p in [*result.meshes, result.keypoints, result.figure]:
        console.print(f"wrote {p}")


@app.command("convert-model", epilog=EXAMPLES["convert_model"])
def convert_model(
    src: str = typer.Argument(
        ..., help="MANO_RIGHT.pkl / MANO_LEFT.pkl, 'openhand', or a folder of NIMBLE's files."
    ),
    dst: Path = typer.Argument(
        ...,
        help="Output: .npz (MANO/NIMBLE -> plain arrays), .pt (NIMBLE -> tensors) or .pkl "
        "(OpenHand -> MANO layout).",
    ),
) -> None:
    """Convert model files: a MANO pickle into a plain .npz that loads without pickle or
    chumpy; NIMBLE's three pickles into one .npz; or OpenHand into MANO's .pkl layout (plain
    NumPy) for tools that read MANO files."""
    from .models.assets import AssetError
    from .models.mano import convert_mano, save_mano_layout
    from .models.openhand import OpenHand

    if src.lower() != "openhand":
        usage.existing(Path(src), "'SRC'")
    usage.out_file(dst, "'DST'", (".npz", ".pt", ".pkl"))
    try:
        if Path(src).is_dir() and (Path(src) / "NIMBLE_DICT_9137.pkl").is_file():
            from .models.nimble import save_nimble_npz

            if dst.suffix not in (".npz", ".pt"):
                _say("error", f"{dst}: NIMBLE converts to a .npz or a .pt")
                raise typer.Exit(2)
            save_nimble_npz(src, dst)
        elif src.lower() == "openhand" or src.endswith(".npz") and dst.suffix == ".pkl":
            if dst.suffix != ".pkl":
                _say("error", f"{dst}: OpenHand converts to a MANO-layout .pkl")
                raise typer.Exit(2)
            model = OpenHand() if src.lower() == "openhand" else OpenHand(src)
            save_mano_layout(dst, model.data)
            console.print(f"wrote {dst}: MANO's keys and layout with OpenHand's "
                          f"{model.num_vertices:,} vertices, for tools that read MANO files by "
                          "key; monohand loads OpenHand directly (--model openhand), and its "
                          "MANO loader wants MANO's own sizes")  # fmt: skip
            return
        else:
            if Path(src).is_dir():
                from .models.nimble import FILES

                _say("error", f"{src}: a folder without NIMBLE's files ({', '.join(FILES)}); "
                     "a MANO model is converted from its .pkl file")  # fmt: skip
                raise typer.Exit(2)
            if dst.suffix != ".npz":
                _say("error", f"{dst}: a MANO pickle converts to a .npz")
                raise typer.Exit(2)
            convert_mano(src, dst)
    except AssetError as e:  # a file of the wrong kind or damaged: as reconstruct says it
        _say("error", e)
        raise typer.Exit(2) from e
    console.print(f"wrote {dst}")


@app.command(epilog=EXAMPLES["evaluate"])
def evaluate(
    pred: Path = typer.Argument(..., help="pred.json: [xyz_list (N,21,3), verts_list (N,V,3)]."),
    gt: Path = typer.Argument(
        ...,
        help="FreiHAND folder ({split}_xyz.json, _verts.json) or a real-photo annotations.json.",
    ),
    out: Path = typer.Option(..., "--out", help="Output folder."),
    split: str | None = typer.Option(None, help="FreiHAND split: evaluation (the default) or "
                                     "training; a FreiHAND folder's only."),
    select: str = typer.Option("", help="Sample range START:STOP of the ground truth."),
) -> None:
    """Evaluate predictions exactly as FreiHAND's official script does (aligned, unaligned,
    root-relative): writes metrics.json, per_sample.csv, pck.png and prints the table."""
    import numpy as np

    from .evaluate.io import EvalInputError, load_ground_truth, load_prediction
    from .evaluate.metrics import evaluate_arrays
    from .evaluate.report import print_table, write_report

    usage.out_folder(out)
    if split is not None:
        usage.one_of(split, ("evaluation", "training"), "--split")
    usage.existing(pred, "'PRED'", "file")
    usage.existing(gt, "'GT'")
    if split is not None and not gt.is_dir():
        raise typer.BadParameter(f"{gt} is an annotations file, which has no splits; --split "
                                 "chooses within a FreiHAND folder", param_hint="--split")
    split = split or "evaluation"
    try:
        parts = select.split(":") if select else []
        if select and len(parts) != 2:
            raise ValueError(select)
        rng = slice(*(int(x) if x else None for x in parts)) if select else None
    except ValueError as e:
        _say("error", f"--select must look like START:STOP, got {select!r}")
        raise typer.Exit(2) from e
    if rng is not None and None not in (rng.start, rng.stop) and rng.stop <= rng.start:
        _say("error", f"--select {select}: selects no sample (STOP must exceed START)")
        raise typer.Exit(2)
    try:
        xyz_gt, verts_gt = load_ground_truth(gt, split, rng)
        xyz_pred, verts_pred = load_prediction(pred)
        if len(xyz_pred) != len(xyz_gt):
            raise EvalInputError(
                f"{pred}: {len(xyz_pred)} predictions for {len(xyz_gt)} samples in {gt}"
            )
        depth = float(np.median(np.abs(xyz_pred[..., 2]))) if len(xyz_pred) else 0.0
        if depth > 20 * max(float(np.median(np.abs(xyz_gt[..., 2]))), 1e-3):
            _say("note", f"{pred}: its joints lie {depth:.3g} from the camera (median), the "
                 "ground truth's far nearer: FreiHAND's files are in metres; millimetres or "
                 "centimetres?")  # fmt: skip
        if verts_pred is not None and verts_gt is None:
            console.print(f"[yellow]note:[/yellow] {escape(str(gt))} has no vertices: mesh "
                          "metrics absent")  # fmt: skip
            verts_pred = None
        if verts_pred is not None and verts_pred.shape[1] != verts_gt.shape[1]:
            raise EvalInputError(f"{pred}: meshes of {verts_pred.shape[1]:,} vertices, {gt}'s of "
                                 f"{verts_gt.shape[1]:,}: the same hand model's topology is "
                                 "needed (MANO 778, OpenHand 1,528)")  # fmt: skip
        result = evaluate_arrays(xyz_pred, xyz_gt, verts_pred,
                                 verts_gt if verts_pred is not None else None)  # fmt: skip
    except (EvalInputError, ValueError) as e:
        _say("error", e)
        raise typer.Exit(1) from e
    paths = write_report(result, out)
    print_table(result, console)
    for p in paths.values():
        console.print(f"wrote {p}")


@app.command(epilog=EXAMPLES["detect"])
def detect(
    inputs: list[Path] = typer.Argument(..., help="Images, folders, or a FreiHAND-layout "
                                        "dataset (its training/rgb images; DATA/evaluation/rgb "
                                        "for the other split)."),  # fmt: skip
    out: Path = typer.Option(..., "--out", help="Detections file (S2HAND/OpenPose JSON)."),
    max_hands: int = typer.Option(1, min=1, help="Hands kept per image (the most confident "
                                  "first; at least 1)."),
    tta: bool = typer.Option(True, help="Per-joint confidence from test-time augmentation."),
) -> None:
    """2D hand keypoints with per-joint confidences (MediaPipe, offline), written as S2HAND's
    detection file [xy (N,21,2), values (N,21,1), filenames (N,1)]. No hand: zeros."""
    from rich.progress import Progress

    from .data.images import ImageError, collect_images
    from .data.keypoints import detect_files, save_detections

    usage.out_file(out, "--out", (".json",))
    try:
        files = collect_images(inputs)
    except ImageError as e:
        _say("error", e)
        raise typer.Exit(2) from e
    if not files:
        _say("error", "no images found")
        raise typer.Exit(2)
    with Progress(console=err) as bar:
        task = bar.add_task("detecting", total=len(files))
        xy, conf, names, failed, missed = detect_files(
            files, max_hands, tta, lambda k: bar.update(task, completed=k)
        )
    for message in failed:
        _say("skipped", message)
    if not names:
        _say("error", "no image could be read")
        raise typer.Exit(1)
    save_detections(out, xy, conf, names)
    read = len(files) - len(failed)
    console.print(f"wrote {out}: {read - missed} of {len(files)} image(s) with a hand, "
                  f"{missed} without" + (f", {len(failed)} unreadable" if failed else ""))


@app.command(epilog=EXAMPLES["synth"])
def synth(
    out_dir: Path = typer.Argument(..., help="Output folder (FreiHAND layout)."),
    num: int = typer.Option(100, "--num", help="Number of samples (training + evaluation)."),
    model: str = typer.Option("openhand", help="Hand model (needs a texture space: openhand)."),
    size: int = typer.Option(224, help="Image size, pixels."),
    seed: int = typer.Option(0, help="Random seed: the same seed gives the same data."),
    workers: int = typer.Option(1, help="Worker processes."),
    eval_fraction: float = typer.Option(0.1, help="Share of samples in the evaluation split."),
    orientation: str = typer.Option("frontal", help="frontal (FreiHAND-like views) | uniform."),
    max_spin_deg: float = typer.Option(
        180.0, help="Frontal views: in-plane angle within +- this of upright, degrees."
    ),
    fill: str = typer.Option("0.55,0.9", help="The hand's extent over the image size: LO,HI."),
    style: str = typer.Option(
        "v1", help="v1 (Lambert, cut wrist) | v2 (forearm, lights, camera effects) | "
        "v3 (v2 + held objects and shadows)."
    ),
    overwrite: bool = typer.Option(False, help="Replace OUT_DIR if it exists."),
) -> None:
    """Generate a synthetic dataset in FreiHAND's layout (rgb, mask, K, xyz, verts, mano, scale)."""
    from rich.progress import Progress

    from .data.synthetic import SynthConfig, generate

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
    except ValueError as e:
        _say("error", e)
        raise typer.Exit(2) from e
    try:
        with Progress(console=err) as progress:
            task = progress.add_task("rendering", total=num)
            summary = generate(out_dir, cfg, lambda n: progress.advance(task, n), overwrite)
    except (FileExistsError, ValueError) as e:
        _say("error", e)
        raise typer.Exit(1) from e
    console.print(
        f"wrote {summary.out_dir}: {summary.training} training, {summary.evaluation} evaluation"
    )
    if summary.evaluation == 0 and eval_fraction > 0:
        _say("note", f"no evaluation sample ({eval_fraction:g} of {num}): 'monohand evaluate' "
             "and 'ablate' need some; make more samples")  # fmt: skip


@app.command("import-photos", epilog=EXAMPLES["import_photos"])
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
    from rich.progress import Progress

    from .data.photos import check_out_dir, import_photos, list_photos

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
        _say("error", e)
        raise typer.Exit(2) from e
    try:
        with Progress(console=err) as progress:
            task = progress.add_task("MediaPipe labels", total=None)
            def advance(k: int, n: int) -> None:
                progress.update(task, completed=k, total=n)

            res = import_photos(sources, out_dir, licence, overwrite, tta, advance)
    except (FileNotFoundError, FileExistsError, ValueError) as e:
        _say("error", e)
        raise typer.Exit(1) from e
    for message in res.unreadable:
        _say("skipped", message)
    if res.no_hand:
        shown = ", ".join(res.no_hand[:5]) + (f" and {len(res.no_hand) - 5} more"
                                              if len(res.no_hand) > 5 else "")  # fmt: skip
        _say("no hand", shown)
    console.print(f"wrote {res.root}: {res.kept} of {res.seen} photos with a hand found"
                  + (f", {len(res.unreadable)} unreadable" if res.unreadable else "")
                  + f" (each left-out file named in {res.root / 'photo_set.json'})"
                  * bool(res.unreadable or res.no_hand))  # fmt: skip


def _method_options(method: str, checkpoint: Path | None, fit_steps: int | None) -> None:
    """Options the (resolved) method would ignore are usage errors, not silently dropped."""
    if checkpoint is not None and method == "fit":
        _say("error", "--checkpoint: the fit uses no network (--method hybrid or network)")
        raise typer.Exit(2)
    if fit_steps is not None and method == "network":
        _say("error", "--fit-steps: the network method does not fit (--method hybrid or fit)")
        raise typer.Exit(2)


def _fit_config(steps: int | None, method: str = "hybrid"):
    """The fit's settings of ``method`` (the hybrid has its own), with ``--fit-steps``."""
    from .fit import FitConfig
    from .reconstruct import hybrid_fit_config

    cfg = hybrid_fit_config() if method == "hybrid" else FitConfig()
    if steps is not None and method == "network":
        _say("note", "--fit-steps is ignored by --method network (no fit)")
    elif steps is not None:
        if steps <= cfg.iters_3d:
            first = f" (its first {cfg.iters_3d} match 3D landmarks)" if cfg.iters_3d else ""
            raise typer.BadParameter(
                f"{steps}: the {method} fit needs at least {cfg.iters_3d + 1} steps{first}; "
                f"its default is {cfg.iters}",
                param_hint="--fit-steps",
            )
        cfg.iters = steps
    return cfg


@app.command(epilog=EXAMPLES["reconstruct"])
def reconstruct(
    inputs: list[Path] = typer.Argument(..., help="Images, folders, or videos (frames in order)."),
    out: Path = typer.Option(Path("out/reconstruct"), "--out", help="Output folder."),
    method: str = typer.Option("auto", help="hybrid (the network's hands, then fitted) | fit "
                               "(optimisation only) | network (the network alone; the shipped one "
                               "or --checkpoint) | auto (hybrid for OpenHand or with --checkpoint, "
                               "else fit)."),
    checkpoint: Path | None = typer.Option(
        None, help="Network checkpoint (methods network and hybrid; default: the shipped one)."),
    K: str | None = typer.Option(None, "--K", help="fx,fy,cx,cy (pixels; commas or spaces) "
                                 "or a JSON file with K."),
    model: str = typer.Option("openhand", help="Hand model: openhand, mano or nimble."),
    model_path: Path | None = typer.Option(None, help="MANO file/folder or NIMBLE folder/.npz."),
    formats: str = typer.Option(".glb", help="Mesh formats, comma-separated: any of .glb "
                                "(textured), .gltf, .obj, .ply, .off, .stl."),
    max_hands: int = typer.Option(4, min=1, help="Hands per image (at least 1)."),
    search_windows: bool = typer.Option(
        True, "--search-windows/--no-search-windows", help="Where MediaPipe finds no hand, look "
        "again with its landmark network over windows of the photo (seconds per such photo)."),
    sequence: bool = typer.Option(
        False, "--sequence", help="Treat the images (e.g. a folder of frames) as one video."
    ),
    fps: float = typer.Option(30.0, help="Frame rate of --sequence frames (videos carry theirs)."),
    smooth: bool = typer.Option(True, "--smooth/--no-smooth", help="Video: One-Euro smoothing."),
    warm_start: bool = typer.Option(
        True, "--warm-start/--no-warm-start", help="Video: a tracked hand's frame continues its "
        "track (hybrid: its own network start, the track's shape, texture and light kept; fit: "
        "from the previous frame's fit) instead of a cold start."),
    fit_steps: int | None = typer.Option(
        None, help="Optimiser steps per hand: more is slower (default: 40 for hybrid, 80 "
        "for fit, whose first 40 match 3D landmarks; network: no fit)."
    ),
) -> None:
    """Reconstruct 3D hands from photos: <stem>_<i>.glb (textured), <stem>.json (joints, vertices,
    K, parameters, confidences, fit loss) and <stem>_overlay.png for every input. A video (or
    --sequence) gives per-frame <stem>_<k>.json and .glb files, <stem>_overlay.mp4 and
    <stem>_tracks.json, with hands tracked, shape shared, fits warm-started and pose smoothed."""
    from rich.progress import track

    from .data.images import ImageError, collect_images, read_rgb, sequence_frames
    from .data.intrinsics import parse_K
    from .export import MESH_SUFFIXES, normalise_formats, output_stems
    from .models.registry import MODELS
    from .reconstruct import (
        METHODS,
        ReconstructConfig,
        Reconstructor,
        reconstruct_photo,
        resolve_method,
    )
    from .video.frames import is_video

    # Usage errors are answered before any model is loaded or any photo is read.
    usage.out_folder(out)
    mesh_formats = normalise_formats(formats.split(","))
    bad = [f for f in mesh_formats if f not in MESH_SUFFIXES]
    if bad or not mesh_formats:
        raise typer.BadParameter(f"{', '.join(bad) or formats!r} not supported: any of "
                                 f"{', '.join(MESH_SUFFIXES)}", param_hint="--formats")  # fmt: skip
    if model not in MODELS:
        raise typer.BadParameter(f"unknown model {model!r}: one of {', '.join(MODELS)}",
                                 param_hint="--model")  # fmt: skip
    if model in ("mano", "nimble") and model_path is None:
        raise typer.BadParameter(f"{model} needs --model-path (its files cannot ship)",
                                 param_hint="--model")  # fmt: skip
    usage.one_of(method, ("auto", *METHODS), "--method")
    if not fps > 0:  # NaN too
        raise typer.BadParameter(f"{fps:g}: frames per second must be above 0",
                                 param_hint="--fps")  # fmt: skip
    if checkpoint is not None:
        usage.existing(checkpoint, "--checkpoint", "file")
    if model_path is not None:
        usage.existing(model_path, "--model-path")
    method = resolve_method(ReconstructConfig(model=model, method=method,
                                              checkpoint=str(checkpoint) if checkpoint else None))
    _method_options(method, checkpoint, fit_steps)
    try:
        K_user = parse_K(K) if K else None
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--K") from e
    try:
        # a missing video is named by ``collect_images``, as a missing photo, before any work
        videos = [p for p in inputs if is_video(p) and p.exists()]
        rest = [p for p in inputs if p not in videos]
        images = sequence_frames(rest) if sequence else collect_images(rest)
    except (ValueError, ImageError, OSError) as e:
        _say("error", e)
        raise typer.Exit(2) from e
    if not images and not videos:
        deeper = sequence and any(Path(p).is_dir() and collect_images([p]) for p in inputs)
        _say("error", f"no image or video found in {', '.join(map(str, inputs))}" + (
            " (--sequence reads a folder's own frames, not its subfolders': give the "
            "subfolder)" if deeper else ""))  # fmt: skip
        raise typer.Exit(2)
    try:
        rec = Reconstructor(
            ReconstructConfig(
                model=model,
                method=method,
                checkpoint=str(checkpoint) if checkpoint else None,
                max_hands=max_hands,
                search_windows=search_windows,
                model_path=str(model_path) if model_path else None,
                **{"hybrid_fit" if method == "hybrid" else "fit": _fit_config(fit_steps, method)},
            )
        )
    except (ValueError, OSError) as e:
        _say("error", e)
        raise typer.Exit(2) from e
    from collections import Counter

    # per input: "done", "no hand" or "skipped" ("unreadable" too, when it could not be read)
    outcomes: Counter[str] = Counter()
    hands = 0
    with rec:
        if sequence and images:
            videos.append(images)  # one sequence of frames
            images = []
        stems = output_stems(images)
        for p in track(images, description="reconstructing", console=err):
            try:
                image = read_rgb(p)
                _warn_if_K_outside(K_user, image.shape[:2], p)
                res = reconstruct_photo(rec, image, out, stems[p], str(p), K_user, p,
                                        mesh_formats)  # fmt: skip
                if not res.hands:
                    gone = (f" (an earlier run's {len(res.removed)} file(s) of {stems[p]}.* "
                            "removed)" if res.removed else "")  # fmt: skip
                    _say("no hand found", f"{p}{gone}")
                    outcomes["no hand"] += 1
                    continue
                outcomes["done"] += 1
                hands += len(res.hands)
                console.print(f"{p}: {len(res.hands)} hand(s) by {method}, "
                              f"{_K_words(res.K_source)} -> {out}/{stems[p]}.*")
            except (ImageError, ValueError) as e:
                _say("skipped", e)
                outcomes["skipped"] += 1
                outcomes["unreadable"] += isinstance(e, ImageError)
        for v in videos:
            outcome = _reconstruct_video(rec, v, out, K_user, fps, smooth, warm_start,
                                         mesh_formats)  # fmt: skip
            outcomes[outcome] += 1
            outcomes["unreadable"] += outcome == "skipped"  # a video is skipped unread
    done = outcomes["done"]
    if len(images) + len(videos) > 1 or not done:
        parts = [f"{done} of {len(images) + len(videos)} input(s) reconstructed"
                 + (f" ({hands} hand(s) in photos)" if images else "")]
        if outcomes["no hand"]:
            parts.append(f"no hand found in {outcomes['no hand']}")
        if outcomes["skipped"]:
            parts.append(f"{outcomes['skipped']} skipped")
        (console if done else err).print("; ".join(parts) + (f"; files in {out}" if done else ""))
    if done == 0:
        unread = outcomes["unreadable"] == len(images) + len(videos)
        why = "no input could be read" if unread else "no hand could be reconstructed"
        _say("error", why)
        raise typer.Exit(1)


def _warn_if_K_outside(K_user, size: tuple[int, int], name) -> None:
    """Warn (stderr) when the --K given puts its principal point outside an image of (H, W)."""
    from .data.intrinsics import principal_point_outside

    if K_user is not None and (warn := principal_point_outside(K_user, size)):
        _say("warning", f"{name}: {warn}")


def _K_words(source: str) -> str:
    """Where a photo's K came from, as the command says it."""
    from .data.intrinsics import DEFAULT_FOV_DEG

    return {"given": "K from --K", "exif": "K from the photo's EXIF focal length",
            "default": f"K from a {DEFAULT_FOV_DEG:g}-degree horizontal field of view "
                       "(no EXIF; --K sets it)"}.get(source, f"K from {source}")  # fmt: skip


def _reconstruct_video(rec, source, out: Path, K_user, fps: float, smooth: bool,
                       warm_start: bool, mesh_formats) -> str:  # fmt: skip
    """A video file, or a list of frame files (--sequence): "done", "no hand" (its files
    written, no frame with a hand) or "skipped" (unreadable)."""
    from itertools import chain

    from rich.progress import Progress

    from .data.images import ImageError, read_rgb
    from .data.intrinsics import camera_for_image
    from .video.frames import ReadableFrames, read_frames, video_fps
    from .video.sequence import SequenceConfig, SequenceReconstructor, write_sequence

    files = isinstance(source, list)
    stem = source[0].parent.name if files else source.stem
    name = (f"{source[0].parent}/ ({len(source)} frame{'s' * (len(source) != 1)})" if files
            else str(source))
    try:
        if files:
            frames, total, first_path = (read_rgb(p) for p in source), len(source), source[0]
        else:
            fps, frames, total, first_path = video_fps(source), read_frames(source), None, None
        first = next(frames)
        # A later frame that cannot be read (a truncated video) ends the sequence there:
        # the frames before it are finished and said so, not thrown away.
        rest = ReadableFrames(chain([first], frames))
        _warn_if_K_outside(K_user, first.shape[:2], name)
        K, k_source = camera_for_image(first_path, first.shape[:2], K_user)
        cfg = SequenceConfig(warm_start=warm_start)
        cfg.smoothing.enabled = smooth
        seq = SequenceReconstructor(rec, cfg, fps)
        with Progress(console=err) as bar:
            task = bar.add_task(f"{stem}", total=total)

            def advance(k: int) -> None:
                bar.update(task, completed=k + 1)

            summary = write_sequence(seq, rest, K, out, stem, fps, mesh_formats,
                                     progress=advance, k_source=k_source,
                                     source=str(source[0].parent if files else source),
                                     frame_names=[str(p) for p in source] if files else None
                                     )  # fmt: skip
    except (ImageError, ValueError, StopIteration) as e:
        why = str(e) or "no frames"
        named = why.startswith(str(source[0] if files else source))  # the reader named it
        _say("skipped", why if named else f"{name}: {why}")
        return "skipped"
    if rest.stopped:
        last = f" ({stem}_00000 to {stem}_{summary.frames - 1:05d})" if summary.frames else ""
        _say("warning", f"{name}: stopped ({rest.stopped}); the {summary.frames} frame(s) "
             f"before it were reconstructed{last}")  # fmt: skip
    console.print(
        f"{name}: {summary.frames_with_hands}/{summary.frames} frames with hands by "
        f"{rec.cfg.method}, {summary.frames / summary.seconds:.2f} frames/s, "
        f"{_K_words(k_source)} -> {out}/{stem}_overlay.mp4"
    )
    return "done" if summary.frames_with_hands > 0 else "no hand"


@app.command(epilog=EXAMPLES["predict"])
def predict(
    checkpoint: Path = typer.Argument(..., help="A checkpoint of monohand train (last.ckpt)."),
    data: Path = typer.Argument(..., help="A FreiHAND-layout folder (or HO-3D's, --format ho3d)."),
    out: Path = typer.Option(Path("pred.json"), "--out", help="The pred.json to write."),
    split: str = typer.Option("evaluation", help="evaluation or training (HO-3D: or train)."),
    fmt: str = typer.Option("freihand", "--format", help="freihand | ho3d (Codalab's formats)."),
    batch: int = typer.Option(32, min=1, help="Images per forward pass."),
    model_path: Path | None = typer.Option(None, help="MANO/NIMBLE files, if not where trained."),
    crop_keypoints: str = typer.Option(
        "gt", help="Networks on MediaPipe crops: 'gt' (place each crop from the projected "
        "ground truth) or a detections file (monohand detect) for a detector's crops."),
) -> None:
    """Run a trained network on a FreiHAND-layout split: pred.json in FreiHAND's submission
    format ([xyz (N,21,3), verts (N,V,3)], metres), for monohand evaluate or Codalab. With
    --format ho3d: HO-3D's split in its Codalab format (OpenGL camera, its joint order)."""
    from rich.progress import Progress

    from .data.freihand import SPLITS, DatasetError
    from .data.ho3d import SPLITS as HO3D_SPLITS
    from .data.images import ImageError
    from .evaluate.io import save_prediction
    from .predict import predict_ho3d, predict_split

    usage.one_of(fmt, ("freihand", "ho3d"), "--format")
    usage.one_of(split, HO3D_SPLITS if fmt == "ho3d" else SPLITS, "--split")
    usage.existing(checkpoint, "'CHECKPOINT'", "file")
    usage.existing(data, "'DATA'", "folder")
    from .data.freihand import PHOTO_SET_FILE

    if (data / PHOTO_SET_FILE).is_file():  # photos of many sizes, and no 3D to score
        raise typer.BadParameter(f"{data} is a photo set (no 3D labels, photos of many sizes): "
                                 "reconstruct its photos with 'monohand reconstruct "
                                 "--method network'", param_hint="'DATA'")  # fmt: skip
    usage.out_file(out, "--out", (".json",))
    if crop_keypoints != "gt":
        usage.existing(Path(crop_keypoints), "--crop-keypoints", "file")

    try:
        with Progress(console=err) as bar:
            task = bar.add_task("predicting", total=None)

            def advance(n: int) -> None:
                bar.update(task, completed=n)

            mp = str(model_path) if model_path else None
            if fmt == "ho3d":
                xyz, verts = predict_ho3d(checkpoint, data, split, batch, mp, advance)
            else:
                xyz, verts = predict_split(checkpoint, data, split, batch, mp, advance,
                                           crop_keypoints)  # fmt: skip
    except (DatasetError, ImageError, ValueError, OSError) as e:
        _say("error", e)
        raise typer.Exit(2) from e
    save_prediction(out, xyz, verts)
    console.print(f"{len(xyz)} predictions -> {out}")
    if fmt == "ho3d":
        console.print(f"for HO-3D's Codalab server: zip -j pred.zip {out}")


@app.command("evaluate-real", epilog=EXAMPLES["evaluate_real"])
def evaluate_real(
    annotations: Path = typer.Argument(..., help="A real-photo annotations.json."),
    out: Path = typer.Option(..., "--out", help="Output folder."),
    method: str = typer.Option("auto", help="auto | hybrid | fit | network (as reconstruct's)."),
    checkpoint: Path | None = typer.Option(
        None, help="Network checkpoint (methods network and hybrid; default: the shipped one)."),
    every: int = typer.Option(1, min=1, help="Use every n-th annotated image."),
    fit_steps: int | None = typer.Option(
        None, help="Optimiser steps per hand: more is slower (default: 40 for hybrid, 80 "
        "for fit, whose first 40 match 3D landmarks; network: no fit)."
    ),
) -> None:
    """Reconstruct every 3D-annotated image of a real-photo set with its K and score the
    joints: metrics.json, per-image CSV, overlays of the worst cases."""
    from .data.realhands import load_realhands
    from .evaluate.real import run_real_benchmark
    from .reconstruct import METHODS, ReconstructConfig, resolve_method

    # Usage errors before any model loads: the method, the output folder, the file itself.
    usage.one_of(method, ("auto", *METHODS), "--method")
    usage.out_folder(out)
    if checkpoint is not None:
        usage.existing(checkpoint, "--checkpoint", "file")
    try:
        samples = load_realhands(annotations, require_3d=True)
        if not samples:
            raise ValueError(f"{annotations}: no sample with 3D joints to score")
        missing = [s.image for s in samples[::every] if not s.image.is_file()]
        if missing:
            raise ValueError(f"{annotations}: {len(missing)} image(s) not found, e.g. "
                             f"{missing[0]}")  # fmt: skip
    except (FileNotFoundError, ValueError) as e:
        _say("error", e)
        raise typer.Exit(2) from e

    method = resolve_method(ReconstructConfig(method=method,
                                              checkpoint=str(checkpoint) if checkpoint else None))
    _method_options(method, checkpoint, fit_steps)
    fit = {"hybrid_fit" if method == "hybrid" else "fit": _fit_config(fit_steps, method)}
    cfg = ReconstructConfig(method=method, checkpoint=str(checkpoint) if checkpoint else None,
                            **fit)  # fmt: skip
    try:
        metrics = run_real_benchmark(annotations, out, every=every, console=err, config=cfg)
    except (FileNotFoundError, ValueError) as e:
        _say("error", e)
        raise typer.Exit(1) from e
    console.print_json(data=metrics)


@app.command(context_settings=EXTRA_ARGS, epilog=EXAMPLES["train"])
def train(
    ctx: typer.Context,
    config: Path = typer.Argument(
        ..., help="YAML config (see configs/); key=value overrides follow."
    ),
    resume: bool = typer.Option(
        False, help="Continue from the out_dir's last.ckpt (which must exist; the same settings "
        "but steps and where it logs)."
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Start afresh in an out_dir that holds a run (its "
        "checkpoint, metrics and TensorBoard logs are replaced)."
    ),
) -> None:
    """Train the image -> hand-model network; writes metrics.jsonl and last.ckpt into the
    config's out_dir (set it with out_dir=PATH)."""
    from omegaconf.errors import OmegaConfBaseException
    from rich.progress import Progress

    from .config import load_config
    from .data.freihand import DatasetError
    from .train import SetupError, check_setup, checkpoint_info, config_changes
    from .train import train as run_training

    if resume and overwrite:
        _say("error", "--resume continues the out_dir's run, --overwrite replaces it: give one")
        raise typer.Exit(2)
    try:
        cfg = load_config(config, ctx.args)
        check_setup(cfg)
    except (FileNotFoundError, ValueError, OmegaConfBaseException) as e:
        _say("error", e)
        raise typer.Exit(2) from e
    usage.out_folder(Path(cfg.out_dir), "out_dir")
    # (data.photos is check_setup's: missing, a file, or no photo set)
    if cfg.data.root and not Path(cfg.data.root).is_dir():
        hint = ("HO-3D's own folder" if cfg.data.dataset == "ho3d" else
                "make one with monohand synth FOLDER (the config may say how), or leave "
                "data.root out to train on a set generated into out_dir")  # fmt: skip
        _say("error", f"data.root={cfg.data.root}: no such folder ({hint})")
        raise typer.Exit(2)
    ckpt = Path(cfg.out_dir) / "last.ckpt"
    if resume and not ckpt.is_file():
        _say("error", f"--resume: {ckpt}: no checkpoint to resume from (train without --resume "
             "to start afresh)")  # fmt: skip
        raise typer.Exit(2)
    try:  # (a run to be overwritten is not read: it may be the broken file being replaced)
        step, saved = checkpoint_info(ckpt) if ckpt.is_file() and not overwrite else (0, {})
    except SetupError as e:
        _say("error", f"{e}: --overwrite starts afresh, or give another out_dir=")
        raise typer.Exit(2) from e
    if resume:
        if changes := config_changes(saved, cfg):
            _say("error", f"--resume: {ckpt} was trained with other settings: "
                 f"{'; '.join(changes)}")  # fmt: skip
            raise typer.Exit(2)
        if step >= cfg.steps:
            _say("error" if step > cfg.steps else "done",
                 f"--resume: {ckpt} is at step {step}, steps={cfg.steps}: nothing to train "
                 "(raise steps= to train further)")  # fmt: skip
            raise typer.Exit(2 if step > cfg.steps else 0)
        console.print(f"resuming from {ckpt} at step {step} of {cfg.steps}; the logs are cut back "
                      "to it")  # fmt: skip
    elif ckpt.is_file() and not overwrite:
        _say("error", f"out_dir {cfg.out_dir} holds a run ({ckpt}, step "
             f"{step}): --resume continues it, --overwrite starts afresh, or "
             "give another out_dir=")  # fmt: skip
        raise typer.Exit(2)
    try:
        with Progress(console=err) as progress:
            task = progress.add_task("training", total=cfg.steps)
            last = run_training(cfg, resume, lambda s: progress.update(task, completed=s),
                                _generation_bar(progress))  # fmt: skip
    except FloatingPointError as e:
        _say("error", e)
        raise typer.Exit(1) from e
    except (DatasetError, SetupError) as e:  # the data (a cached set of other settings, a
        _say("error", e)  # broken file, too few images) or a file a setting names
        raise typer.Exit(2) from e
    loss = f", loss {last['loss']:.4g}" if isinstance(last.get("loss"), float) else ""
    console.print(f"done: step {last.get('step', cfg.steps)}{loss} -> {cfg.out_dir}/last.ckpt "
                  "(every logged step in metrics.jsonl)")  # fmt: skip


@app.command(context_settings=EXTRA_ARGS, epilog=EXAMPLES["ablate"])
def ablate(
    ctx: typer.Context,
    configs: list[Path] = typer.Argument(..., help="YAML configs (e.g. configs/seed/*.yaml)."),
    out: Path = typer.Option(Path("out/ablate"), "--out", help="Output folder."),
) -> None:
    """Train each config on one dataset, evaluate on its evaluation split (FreiHAND's
    protocol) and print the seed's aligned and unaligned tables (also OUT/tables.md,
    OUT/results.json). key=value arguments override every config."""
    from omegaconf.errors import OmegaConfBaseException

    from .ablate import print_tables, run_ablation, runnable, tabulated

    words = [str(c) for c in configs] + list(ctx.args)
    overrides = [w for w in words if "=" in w]
    configs = [Path(w) for w in words if "=" not in w]
    usage.out_folder(out)
    earlier = tabulated(out)
    # Configs ablate cannot run are left out of a list (a glob such as configs/seed/*.yaml),
    # said; with none left, or one such config alone, it is an error before any work.
    kept, reasons = runnable(configs, overrides)
    if not kept:
        _say("error", "; ".join(reasons) + " (nothing ablate can run)")
        raise typer.Exit(2)
    for r in reasons:
        _say("note", f"left out: {r}")
    configs = kept
    from rich.progress import Progress

    try:
        with Progress(console=err) as bar:

            def tracker(name: str, total: int):
                task = bar.add_task(f"training {name}", total=total)
                return lambda s: bar.update(task, completed=s)

            # reads every config before any work
            rows = run_ablation(configs, out, overrides, say=lambda m: err.print(escape(m)),
                                progress=tracker, data_progress=_generation_bar(bar))  # fmt: skip
    except (FileNotFoundError, ValueError, OmegaConfBaseException) as e:
        _say("error", e)
        raise typer.Exit(2) from e
    except FloatingPointError as e:
        _say("error", e)
        raise typer.Exit(1) from e
    print_tables(rows, console)
    console.print(f"tables -> {out / 'tables.md'}")
    # A run over some of the configs tabulates those alone: say which earlier rows went.
    gone = sorted(set(earlier) - {r.name for r in rows})
    if gone:
        _say("note", f"{out / 'results.json'} held {', '.join(gone)} too; the tables are this "
             "run's configs (their folders stay: list every config to tabulate them "
             "together, finished runs are reused)")  # fmt: skip


def _generation_bar(bar):
    """``data_progress`` for train and ablate: a task on ``bar`` while the synthetic set that
    they train on is generated."""

    def start(total: int):
        task = bar.add_task("generating the synthetic set", total=total)
        return lambda n: bar.advance(task, n)

    return start


@app.command(epilog=EXAMPLES["serve"])
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on (the default: this computer "
                             "only; 0.0.0.0: every network)."),
    port: int = typer.Option(7860, min=1, max=65535, help="Port."),
    model_path: Path | None = typer.Option(None, help="MANO or NIMBLE files: offers those models."),
    checkpoint: Path | None = typer.Option(None, help="A training checkpoint: offers 'network'."),
    example: Path | None = typer.Option(None, help="Image behind 'Try the example'."),
    max_upload_mb: float = typer.Option(20.0, min=0.01, help="Largest upload accepted, MB."),
) -> None:
    """A local web page: drop a photo, turn the 3D hand around, download .glb and .json."""
    import uvicorn

    from .serve.app import ServeConfig, create_app, default_example

    for path, option, kind in ((model_path, "--model-path", "file or folder"),
                               (checkpoint, "--checkpoint", "file"),
                               (example, "--example", "file")):  # fmt: skip
        if path is not None:
            usage.existing(path, option, kind)
    cfg = ServeConfig(
        model_path=str(model_path) if model_path else None,
        checkpoint=str(checkpoint) if checkpoint else None,
        example=str(example) if example else default_example(),
        max_upload_mb=max_upload_mb,
    )
    import socket

    try:  # bound here, so that a busy port is said before "serving" is
        sock = socket.create_server((host, port))
    except OSError as e:
        raise typer.BadParameter(f"cannot listen on {host}:{port} ({e.strerror or e})",
                                 param_hint="--host/--port") from None  # fmt: skip
    with sock:
        console.print(f"monohand serving on http://{host}:{port}/  (Ctrl-C stops)")
        uvicorn.run(create_app(cfg), fd=sock.fileno(), log_level="warning")


def user_errors() -> tuple[type[BaseException], ...]:
    """The library's errors about a user's files and values: their messages name the file or
    the value, so the command line shows them as one line, not a traceback."""
    from .data.freihand import DatasetError
    from .data.images import ImageError
    from .evaluate.io import EvalInputError
    from .models.assets import AssetError

    return (ImageError, EvalInputError, AssetError, DatasetError, FileNotFoundError,
            IsADirectoryError, NotADirectoryError, PermissionError)  # fmt: skip


def main() -> None:
    """The ``monohand`` command: every verb's library errors about user input reach the user
    as ``error: <message>`` with exit code 1 (commands catch what they expect themselves;
    this is the one place that catches what a new command forgets); other exceptions are
    bugs, and keep their tracebacks."""
    from . import native_log

    native_log.enable()
    try:
        app()
    except Exception as e:
        if not isinstance(e, user_errors()):
            raise
        _say("error", e)
        raise SystemExit(1) from None
