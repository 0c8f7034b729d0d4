"""The ``monohand`` command: one verb per job, each a thin layer over a library function."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

app = typer.Typer(
    help="monohand: 3D hand reconstruction from a single RGB image.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()
err = Console(stderr=True)


@app.command()
def demo(
    out: Path = typer.Option(Path("out/demo"), "--out", help="Output folder."),
    model: Path | None = typer.Option(
        None, "--model", help="MANO .pkl/.npz (default: the built-in box hand)."
    ),
    seed: int = typer.Option(0, help="Seed of the random pose."),
) -> None:
    """Pose a hand model and write meshes (.ply), keypoints (.json) and a picture (.png)."""
    from .demo import run_demo
    from .models.assets import AssetError

    try:
        result = run_demo(out, model, seed)
    except AssetError as e:
        err.print(f"[red]error:[/red] {e}")
        raise typer.Exit(1) from e
    for p in [*result.meshes, result.keypoints, result.figure]:
        console.print(f"wrote {p}")


@app.command("convert-model")
def convert_model(
    src: Path = typer.Argument(..., help="MANO_RIGHT.pkl or MANO_LEFT.pkl."),
    dst: Path = typer.Argument(..., help="Output .npz (loads without pickle)."),
) -> None:
    """Convert a MANO pickle into a plain .npz that loads without pickle or chumpy."""
    from .models.assets import AssetError
    from .models.mano import convert_mano

    if dst.suffix != ".npz":
        err.print(f"[red]error:[/red] {dst}: the output must end in .npz")
        raise typer.Exit(2)
    try:
        convert_mano(src, dst)
    except AssetError as e:
        err.print(f"[red]error:[/red] {e}")
        raise typer.Exit(1) from e
    console.print(f"wrote {dst}")


def main() -> None:
    app()
