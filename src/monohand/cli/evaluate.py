"""The scoring verbs: ``evaluate`` (FreiHAND's protocol on a pred.json), ``predict`` (a
checkpoint's pred.json) and ``evaluate-real`` (reconstruct and score a real-photo set)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from . import usage
from .common import (
    app,
    console,
    err,
    examples,
    fit_config,
    method_options,
    model_options,
    say,
)


@app.command(epilog=examples(
    "monohand evaluate pred.json FREIHAND_DIR --out out/eval",
    "monohand evaluate pred.json FREIHAND_DIR --select 0:100 --out out/eval",
))
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
    any_units: bool = typer.Option(False, "--any-units", help="Score predictions whose hands "
                                   "are 20 times the ground truth's size or more (refused: "
                                   "millimetres or centimetres?)."),
) -> None:
    """Evaluate predictions exactly as FreiHAND's official script does (aligned, unaligned,
    root-relative): writes metrics.json, per_sample.csv, pck.png and prints the table."""
    import warnings

    from ..evaluate.io import EvalInputError, count_samples, load_ground_truth, load_prediction
    from ..evaluate.metrics import evaluate_arrays, units_doubt
    from ..evaluate.report import print_table, write_report

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
        say("error", f"--select must look like START:STOP, got {select!r}")
        raise typer.Exit(2) from e
    if rng is not None and None not in (rng.start, rng.stop) and rng.stop <= rng.start:
        say("error", f"--select {select}: selects no sample (STOP must exceed START)")
        raise typer.Exit(2)
    try:
        xyz_gt, verts_gt = load_ground_truth(gt, split, None)
        if rng is not None:
            # a range past either end would be cut short silently, as Python's slices are
            total = len(xyz_gt)
            bounds = [b for b in (rng.start, rng.stop) if b is not None]
            if (any(not -total <= b <= total for b in bounds)
                    or not len(range(*rng.indices(total)))):  # fmt: skip
                say("error", f"--select {select}: the ground truth has {total} samples (0:{total} "
                             "is all of them; negative bounds count from the end)")  # fmt: skip
                raise typer.Exit(2)
            ids = range(total)[rng]
            xyz_gt = xyz_gt[rng]
            verts_gt = None if verts_gt is None else verts_gt[rng]
        xyz_pred, verts_pred = load_prediction(pred)
        if len(xyz_pred) != len(xyz_gt):
            hint = ""
            if gt.is_dir() and rng is None:  # the other split's count, where it matches
                other = "training" if split == "evaluation" else "evaluation"
                if count_samples(gt, other) == len(xyz_pred):  # (its joints file only)
                    hint = f" (its {other} split has {len(xyz_pred)}: --split {other})"
            chosen = f" (--select {select})" if rng is not None else ""
            raise EvalInputError(f"{pred}: {len(xyz_pred)} predictions for {len(xyz_gt)} "
                                 f"samples{chosen} in {gt}'s {split} split{hint}" if gt.is_dir()
                                 else f"{pred}: {len(xyz_pred)} predictions for {len(xyz_gt)} "
                                 f"samples{chosen} in {gt}")  # fmt: skip
        # Alignment hides a scale and a frame: the aligned row would look right, the rest
        # absurd. Another unit is refused; joints behind the camera are said (root-relative
        # joints are a fair submission for the aligned row, which FreiHAND ranks by).
        doubt = units_doubt(xyz_pred, xyz_gt) if len(xyz_pred) else None
        if doubt is not None:
            kind, text = doubt
            why = f"{pred}: {text}; FreiHAND's files are in metres, in the camera's frame"
            if not any_units and kind == "units":
                say("error", f"{why}; --any-units scores it anyway")
                raise typer.Exit(2)
            say("note", why + ("" if kind == "units" else "; only the aligned row means "
                               "anything then"))  # fmt: skip
        if verts_pred is not None and verts_gt is None:
            console.print(f"[yellow]note:[/yellow] {escape(str(gt))} has no vertices: mesh "
                          "metrics absent")  # fmt: skip
            verts_pred = None
        if verts_pred is not None and verts_pred.shape[1] != verts_gt.shape[1]:
            raise EvalInputError(f"{pred}: meshes of {verts_pred.shape[1]:,} vertices, {gt}'s of "
                                 f"{verts_gt.shape[1]:,}: the same hand model's topology is "
                                 "needed (MANO 778, OpenHand 1,528)")  # fmt: skip
        with warnings.catch_warnings():  # (its own warning of it, where the note says it)
            if doubt is not None:
                warnings.filterwarnings("ignore", message="xyz_pred: ")
            result = evaluate_arrays(xyz_pred, xyz_gt, verts_pred,
                                     verts_gt if verts_pred is not None else None)  # fmt: skip
    except (EvalInputError, ValueError) as e:
        say("error", e)
        raise typer.Exit(1) from e
    from .. import __version__

    inputs = {"predictions": str(pred), "ground_truth": str(gt),
              **({"split": split} if gt.is_dir() else {}),
              **({"select": select} if select else {}), "monohand_version": __version__}
    paths = write_report(result, out, sample_ids=list(ids) if rng is not None else None,
                         inputs=inputs)  # fmt: skip
    print_table(result, console)
    for p in paths.values():
        console.print(f"wrote {p}")


@app.command(epilog=examples(
    "monohand predict out/train/last.ckpt FREIHAND_DIR --out pred.json",
    "monohand predict shipped FREIHAND_DIR --out pred.json",
))
def predict(
    checkpoint: Path = typer.Argument(..., help="A checkpoint of monohand train (last.ckpt), or "
                                      "'shipped': the network that ships with monohand."),
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
    from ..data.freihand import SPLITS, DatasetError
    from ..data.ho3d import SPLITS as HO3D_SPLITS
    from ..data.images import ImageError
    from ..evaluate.io import save_prediction
    from ..predict import predict_ho3d, predict_split
    from ..progress import Reporter

    usage.one_of(fmt, ("freihand", "ho3d"), "--format")
    usage.one_of(split, HO3D_SPLITS if fmt == "ho3d" else SPLITS, "--split")
    if str(checkpoint) == "shipped" and not checkpoint.exists():
        from ..nets.handnet import shipped_network_path

        checkpoint = shipped_network_path()
    usage.existing(checkpoint, "'CHECKPOINT'", "checkpoint")
    usage.existing(data, "'DATA'", "folder")
    from ..data.freihand import PHOTO_SET_FILE

    if (data / PHOTO_SET_FILE).is_file():  # photos of many sizes, and no 3D to score
        raise typer.BadParameter(f"{data} is a photo set (no 3D labels, photos of many sizes): "
                                 "reconstruct its photos with 'monohand reconstruct "
                                 "--method network'", param_hint="'DATA'")  # fmt: skip
    usage.out_file(out, "--out", (".json",))
    if crop_keypoints != "gt":
        usage.existing(Path(crop_keypoints), "--crop-keypoints", "file")

    notes: list[str] = []
    try:
        with Reporter("predicting", None, err) as bar:
            advance = bar.update
            mp = str(model_path) if model_path else None
            if fmt == "ho3d":
                xyz, verts = predict_ho3d(checkpoint, data, split, batch, mp, advance)
            else:
                xyz, verts = predict_split(checkpoint, data, split, batch, mp, advance,
                                           crop_keypoints, notes.append)  # fmt: skip
    except (DatasetError, ImageError, ValueError, OSError) as e:
        say("error", e)
        raise typer.Exit(2) from e
    save_prediction(out, xyz, verts)
    console.print(f"{len(xyz)} predictions -> {out}")
    for text in notes:
        say("note", text.replace("crop_keypoints 'gt'", "--crop-keypoints gt"))
    if fmt == "ho3d":
        console.print(f"for HO-3D's Codalab server: zip -j pred.zip {out}")


@app.command("evaluate-real", epilog=examples(
    "monohand evaluate-real ../shared/data/realhands/annotations.json --out out/real",
    "... --method network --every 4",
))
def evaluate_real(
    annotations: Path = typer.Argument(..., help="A real-photo annotations.json."),
    out: Path = typer.Option(..., "--out", help="Output folder."),
    method: str = typer.Option("auto", help="auto | hybrid | fit | network (as reconstruct's)."),
    checkpoint: Path | None = typer.Option(
        None, help="Network checkpoint (methods network and hybrid; default: the shipped one)."),
    every: int = typer.Option(1, min=1, help="Use every n-th annotated image."),
    fit_steps: int | None = typer.Option(
        None, help="Optimiser steps per hand before the silhouette stage's 10: more is slower "
        "(default: 30 for hybrid, 80 for fit, whose first 40 match 3D landmarks; network: "
        "no fit)."
    ),
    model: str = typer.Option("openhand", help="Hand model, as reconstruct's: openhand, mano "
                              "or nimble (right hands only)."),
    model_path: Path | None = typer.Option(None, help="MANO file/folder, NIMBLE folder/.npz, "
                                           "as reconstruct's."),
) -> None:
    """Reconstruct every 3D-annotated image of a real-photo set with its K and score the
    joints: metrics.json, per-image CSV, predictions.json, a PCK figure against the detector's
    3D, overlays of the best and worst cases (the annotated joints as green crosses)."""
    from ..data.realhands import load_realhands
    from ..evaluate.real import run_real_benchmark
    from ..reconstruct import METHODS, ReconstructConfig, resolve_method

    # Usage errors before any model loads: the method, the output folder, the file itself.
    usage.one_of(method, ("auto", *METHODS), "--method")
    model = model_options(model, model_path)
    usage.out_folder(out)
    if checkpoint is not None:
        usage.existing(checkpoint, "--checkpoint", "checkpoint")
    try:
        samples = load_realhands(annotations, require_3d=True)
        if not samples:
            raise ValueError(f"{annotations}: no sample with 3D joints to score")
        missing = [s.image for s in samples[::every] if not s.image.is_file()]
        if missing:
            raise ValueError(f"{annotations}: {len(missing)} image(s) not found, e.g. "
                             f"{missing[0]}")  # fmt: skip
    except (FileNotFoundError, ValueError) as e:
        say("error", e)
        raise typer.Exit(2) from e

    chosen = {"model": model, "model_path": str(model_path) if model_path else None,
              "checkpoint": str(checkpoint) if checkpoint else None}  # fmt: skip
    method = resolve_method(ReconstructConfig(method=method, **chosen))
    method_options(method, checkpoint, fit_steps)
    fit = {"hybrid_fit" if method == "hybrid" else "fit": fit_config(fit_steps, method)}
    cfg = ReconstructConfig(method=method, **chosen, **fit)
    try:
        metrics = run_real_benchmark(annotations, out, every=every, console=err, config=cfg)
    except (FileNotFoundError, ValueError, OSError) as e:
        say("error", e)
        raise typer.Exit(1) from e
    console.print_json(data=metrics)
