"""The hand models' verbs: ``demo`` (pose a model, write its meshes) and ``convert-model``
(MANO, NIMBLE and OpenHand files between formats)."""

from __future__ import annotations

from pathlib import Path

import typer

from . import usage
from .common import app, console, examples, say


@app.command(epilog=examples("monohand demo --out out/demo"))
def demo(
    out: Path = typer.Option(Path("out/demo"), "--out", help="Output folder."),
    model: str = typer.Option(
        "openhand", "--model", help="'openhand', 'boxhand', or a MANO .pkl/.npz file or "
        "the folder of MANO's files."
    ),
    seed: int = typer.Option(0, help="Seed of the random pose."),
) -> None:
    """Pose a hand model and write meshes (.ply), keypoints (.json) and a picture (.png)."""
    from ..demo import run_demo
    from ..models.assets import AssetError

    usage.out_folder(out)
    if model not in ("openhand", "boxhand"):
        if Path(model).suffix.lower() in (".pkl", ".npz"):
            usage.existing(Path(model), "--model", "file")
        elif not Path(model).exists():
            raise typer.BadParameter(f"unknown {model!r}: openhand, boxhand, or a MANO "
                                     ".pkl/.npz file or folder", param_hint="--model")  # fmt: skip
    try:
        result = run_demo(out, model, seed)
    except AssetError as e:  # a model file of the wrong kind: the user's input (exit 2)
        say("error", e)
        raise typer.Exit(2) from e
    for p in [*result.meshes, result.keypoints, result.figure]:
        console.print(f"wrote {p}")


@app.command("convert-model", epilog=examples(
    "monohand convert-model MANO_RIGHT.pkl mano_right.npz",
    "monohand convert-model openhand openhand_mano.pkl",
))
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
    from ..models.assets import AssetError
    from ..models.mano import convert_mano, save_mano_layout
    from ..models.openhand import OpenHand

    if src.lower() != "openhand":
        usage.existing(Path(src), "'SRC'")
    usage.out_file(dst, "'DST'", (".npz", ".pt", ".pkl"))
    try:
        if Path(src).is_dir() and (Path(src) / "NIMBLE_DICT_9137.pkl").is_file():
            from ..models.nimble import save_nimble_npz

            if dst.suffix not in (".npz", ".pt"):
                say("error", f"{dst}: NIMBLE converts to a .npz or a .pt")
                raise typer.Exit(2)
            save_nimble_npz(src, dst)
        elif src.lower() == "openhand" or src.endswith(".npz") and dst.suffix == ".pkl":
            if dst.suffix != ".pkl":
                say("error", f"{dst}: OpenHand converts to a MANO-layout .pkl")
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
                from ..models.nimble import FILES

                say("error", f"{src}: a folder without NIMBLE's files ({', '.join(FILES)}); "
                     "a MANO model is converted from its .pkl file")  # fmt: skip
                raise typer.Exit(2)
            if Path(src).suffix.lower() in (".npz", ".pt"):  # converted already
                say("error", f"{src}: already a converted model file (convert-model reads "
                             f"MANO's .pkl, NIMBLE's folder, openhand, or an OpenHand .npz "
                             f"into a MANO-layout .pkl): use it as it is, e.g. --model-path "
                             f"{src}")  # fmt: skip
                raise typer.Exit(2)
            if dst.suffix != ".npz":
                say("error", f"{dst}: a MANO pickle converts to a .npz")
                raise typer.Exit(2)
            convert_mano(src, dst)
    except AssetError as e:  # a file of the wrong kind or damaged: as reconstruct says it
        say("error", e)
        raise typer.Exit(2) from e
    console.print(f"wrote {dst}")
