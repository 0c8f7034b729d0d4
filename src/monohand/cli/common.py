"""What every verb of the ``monohand`` command shares: the typer app, the consoles and the
one-line messages, the examples under each verb's help, and the reconstruction methods'
option checks."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

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

# soft_wrap: a message line is never broken (paths stay whole for copying and grep); tables
# still fit the terminal.
# No emoji codes: a message quoting "--select 0:100:" printed a 💯 (":100:").
console = Console(soft_wrap=True, emoji=False)
err = Console(stderr=True, soft_wrap=True, emoji=False)


def examples(*commands: str) -> str:
    """A verb's help ends with these (plain text: the help has no markup)."""
    return "Examples:  " + "  |  ".join(commands)


def say(label: str, text: object) -> None:
    """One message on stderr: ``label`` in its colour ("error" red, the rest yellow), then
    ``text`` as plain text: file names, settings and library messages may hold brackets,
    which rich would otherwise read as styles and drop."""
    style = "red" if label == "error" else "yellow"
    err.print(f"[{style}]{label}:[/{style}] {escape(str(text))}")


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(f"monohand {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print monohand's version and exit."),  # fmt: skip
) -> None:
    """The command's own options (``--version``)."""


def model_options(model: str, model_path: Path | None) -> str:
    """The hand model's name (any case) checked with its file: MANO and NIMBLE need one,
    the box hand reads none; returns the name as the library spells it."""
    from ..models.registry import MODELS

    name = model.lower()
    if name not in MODELS:
        raise typer.BadParameter(f"unknown model {model!r}: one of {', '.join(MODELS)}",
                                 param_hint="--model")  # fmt: skip
    if name in ("mano", "nimble") and model_path is None:
        raise typer.BadParameter(f"{name} needs --model-path (its files cannot ship)",
                                 param_hint="--model")  # fmt: skip
    if name == "boxhand" and model_path is not None:
        raise typer.BadParameter("boxhand is made in code and reads no file",
                                 param_hint="--model-path")  # fmt: skip
    if model_path is not None:
        from . import usage

        usage.existing(model_path, "--model-path")
    return name


def method_options(method: str, checkpoint: Path | None, fit_steps: int | None) -> None:
    """Options the (resolved) method would ignore are usage errors, not silently dropped."""
    if checkpoint is not None and method == "fit":
        say("error", "--checkpoint: the fit uses no network (--method hybrid or network)")
        raise typer.Exit(2)
    if fit_steps is not None and method == "network":
        say("error", "--fit-steps: the network method does not fit (--method hybrid or fit)")
        raise typer.Exit(2)


def fit_config(steps: int | None, method: str = "hybrid"):
    """The fit's settings of ``method`` (the hybrid has its own), with ``--fit-steps``."""
    from ..fit import FitConfig
    from ..methods import hybrid_fit_config

    cfg = hybrid_fit_config() if method == "hybrid" else FitConfig()
    if steps is not None and method == "network":
        say("note", "--fit-steps is ignored by --method network (no fit)")
    elif steps is not None:
        if steps <= cfg.iters_3d:
            first = f" (its first {cfg.iters_3d} match 3D landmarks)" if cfg.iters_3d else ""
            need = cfg.iters_3d + 1
            whose = "the fit" if method == "fit" else f"the {method} method's fit"
            raise typer.BadParameter(
                f"{steps}: {whose} needs at least {need} step{'s' * (need > 1)}{first}; "
                f"its default is {cfg.iters}",
                param_hint="--fit-steps",
            )
        cfg.iters = steps
    return cfg
