"""The training verbs: ``train`` (one config) and ``ablate`` (a grid of configs, trained and
scored as the seed's tables)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from . import usage
from .common import EXTRA_ARGS, app, console, err, examples, say


@app.command(context_settings=EXTRA_ARGS, epilog=examples(
    "monohand train configs/release.yaml out_dir=out/release",
    "monohand train configs/smoke.yaml steps=80 --resume",
))
def train(
    ctx: typer.Context,
    config: Path = typer.Argument(
        ..., help="YAML config (see configs/); key=value overrides follow."
    ),
    resume: bool = typer.Option(
        False, help="Continue from the out_dir's last.ckpt (which must exist; the same settings "
        "but steps, logging, workers, the held-out check and the data's folder)."
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Start afresh in an out_dir that holds a run (its "
        "checkpoint, metrics and TensorBoard logs are replaced)."
    ),
) -> None:
    """Train the image -> hand-model network; writes metrics.jsonl and last.ckpt into the
    config's out_dir (set it with out_dir=PATH), and network.pt (the network alone) when it
    finishes."""
    import shlex

    from omegaconf.errors import OmegaConfBaseException
    from rich.progress import MofNCompleteColumn, Progress, TimeRemainingColumn

    from ..config import load_config
    from ..data.freihand import DatasetError
    from ..train import NETWORK_FILE, SetupError, check_setup, checkpoint_info, config_changes
    from ..train import train as run_training
    from ..train.interrupt import TrainingInterrupted

    if resume and overwrite:
        say("error", "--resume continues the out_dir's run, --overwrite replaces it: give one")
        raise typer.Exit(2)
    try:
        cfg = load_config(config, ctx.args)
        check_setup(cfg)
    except (FileNotFoundError, ValueError, OmegaConfBaseException) as e:
        say("error", e)
        raise typer.Exit(2) from e
    usage.out_folder(Path(cfg.out_dir), "out_dir")
    # (data.photos is check_setup's: missing, a file, or no photo set)
    if cfg.data.root and not Path(cfg.data.root).is_dir():
        hint = ("HO-3D's own folder" if cfg.data.dataset == "ho3d" else
                "make one with monohand synth FOLDER (the config may say how), or leave "
                "data.root out to train on a set generated into out_dir")  # fmt: skip
        say("error", f"data.root={cfg.data.root}: no such folder ({hint})")
        raise typer.Exit(2)
    ckpt = Path(cfg.out_dir) / "last.ckpt"
    if resume and not ckpt.is_file():
        say("error", f"--resume: {ckpt}: no checkpoint to resume from (train without --resume "
             "to start afresh)")  # fmt: skip
        raise typer.Exit(2)
    try:  # (a run to be overwritten is not read: it may be the broken file being replaced)
        step, saved = checkpoint_info(ckpt) if ckpt.is_file() and not overwrite else (0, {})
    except SetupError as e:
        say("error", f"{e}: --overwrite starts afresh, or give another out_dir=")
        raise typer.Exit(2) from e
    if resume:
        if changes := config_changes(saved, cfg):
            say("error", f"--resume: {ckpt} was trained with other settings: "
                 f"{'; '.join(changes)}")  # fmt: skip
            raise typer.Exit(2)
        if step >= cfg.steps:
            alone = Path(cfg.out_dir) / NETWORK_FILE
            if step == cfg.steps and not alone.is_file():  # (a run from before network.pt,
                from ..nets.handnet import export_network  # or killed before it was written)

                export_network(ckpt, alone, half=False)
                console.print(f"wrote {alone} (the finished network alone)")
            say("error" if step > cfg.steps else "done",
                 f"--resume: {ckpt} is at step {step}, steps={cfg.steps}: nothing to train "
                 "(raise steps= to train further)")  # fmt: skip
            raise typer.Exit(2 if step > cfg.steps else 0)
        console.print(f"resuming from {ckpt} at step {step} of {cfg.steps}; the logs are cut back "
                      "to it")  # fmt: skip
    elif ckpt.is_file() and not overwrite:
        say("error", f"out_dir {cfg.out_dir} holds a run ({ckpt}, step "
             f"{step}): --resume continues it, --overwrite starts afresh, or "
             "give another out_dir=")  # fmt: skip
        raise typer.Exit(2)
    try:
        with Progress(*Progress.get_default_columns()[:-1], MofNCompleteColumn(),
                      TimeRemainingColumn(), console=err) as progress:  # fmt: skip
            task = None  # added at the first step: after a generated set's own bar

            def advance(step: int) -> None:
                nonlocal task
                if task is None:
                    task = progress.add_task("training", total=cfg.steps)
                progress.update(task, completed=step)

            last = run_training(cfg, resume, advance, _generation_bar(progress),
                                _log_line(progress.console, cfg.steps))  # fmt: skip
    except FloatingPointError as e:
        say("error", e)
        raise typer.Exit(1) from e
    except (DatasetError, SetupError) as e:  # the data (a cached set of other settings, a
        say("error", e)  # broken file, too few images) or a file a setting names
        raise typer.Exit(2) from e
    except TrainingInterrupted as e:
        again = shlex.join(["monohand", "train", str(config), *ctx.args, "--resume"])
        say("interrupted", f"at step {e.step} of {cfg.steps}, saved in {e.checkpoint}: "
                           f"'{again}' continues from it")  # fmt: skip
        raise typer.Exit(130) from None
    loss = f", loss {last['loss']:.4g}" if isinstance(last.get("loss"), float) else ""
    console.print(f"done: step {last.get('step', cfg.steps)}{loss} -> {cfg.out_dir}/last.ckpt "
                  f"(to resume), {cfg.out_dir}/{NETWORK_FILE} (the network alone: to run with "
                  "--checkpoint and to share); every logged step in metrics.jsonl")  # fmt: skip


@app.command(context_settings=EXTRA_ARGS, epilog=examples(
    "monohand ablate configs/seed/*.yaml --out out/ablate",
))
def ablate(
    ctx: typer.Context,
    configs: list[Path] = typer.Argument(..., help="YAML configs (e.g. configs/seed/*.yaml)."),
    out: Path = typer.Option(Path("out/ablate"), "--out", help="Output folder."),
) -> None:
    """Train each config on one dataset, evaluate on its evaluation split (FreiHAND's
    protocol) and print the seed's aligned and unaligned tables (also OUT/tables.md,
    OUT/results.json). key=value arguments override every config."""
    from omegaconf.errors import OmegaConfBaseException

    from ..ablate import print_tables, run_ablation, runnable, tabulated
    from ..train.interrupt import TrainingInterrupted

    words = [str(c) for c in configs] + list(ctx.args)
    overrides = [w for w in words if "=" in w]
    configs = [Path(w) for w in words if "=" not in w]
    usage.out_folder(out)
    earlier = tabulated(out)
    # Configs ablate cannot run are left out of a list (a glob such as configs/seed/*.yaml),
    # said; with none left, or one such config alone, it is an error before any work.
    kept, reasons = runnable(configs, overrides)
    if not kept:
        say("error", "; ".join(reasons) + " (nothing ablate can run)")
        raise typer.Exit(2)
    for r in reasons:
        say("note", f"left out: {r}")
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
        say("error", e)
        raise typer.Exit(2) from e
    except FloatingPointError as e:
        say("error", e)
        raise typer.Exit(1) from e
    except TrainingInterrupted as e:
        say("interrupted", f"at step {e.step}, saved in {e.checkpoint}: the same command "
                           "continues it (finished runs are reused, this one resumed)")
        raise typer.Exit(130) from None
    print_tables(rows, console)
    console.print(f"tables -> {out / 'tables.md'}")
    # A run over some of the configs tabulates those alone: say which earlier rows went.
    gone = sorted(set(earlier) - {r.name for r in rows})
    if gone:
        say("note", f"{out / 'results.json'} held {', '.join(gone)} too; the tables are this "
             "run's configs (their folders stay: list every config to tabulate them "
             "together, finished runs are reused)")  # fmt: skip


def _log_line(out, steps: int):
    """``on_log`` for train: each logged step as one line on ``out`` (above the bar in a
    terminal; a log file of a redirected run gets them as they come): the step, the loss and
    its terms, the learning rate."""

    def say_step(m: dict) -> None:
        terms = [f"{k} {v:.3g}" for k, v in m.items()
                 if k not in ("step", "loss", "lr", "stage", "processes")
                 and not k.startswith("val_") and isinstance(v, float)]  # fmt: skip
        stage = f" ({m['stage']})" if "stage" in m else ""  # the stage-wise schedule's
        held = (f"; held out: PA-MPJPE {m['val_pa_mpjpe_mm']:.2f} mm, MPJPE "
                f"{m['val_mpjpe_mm']:.2f} mm, AUC_J {m['val_auc_j']:.3f}"
                if "val_pa_mpjpe_mm" in m else "")  # fmt: skip
        out.print(f"step {m['step']}/{steps}{stage}: loss {m['loss']:.4g}"
                  + (f" ({', '.join(terms)})" if terms else "") + f", lr {m['lr']:.3g}{held}",
                  highlight=False, soft_wrap=True)  # fmt: skip

    return say_step


def _generation_bar(bar):
    """``data_progress`` for train and ablate: a task on ``bar`` while the synthetic set that
    they train on is generated."""

    def start(total: int):
        task = bar.add_task("generating the synthetic set", total=total)
        return lambda n: bar.advance(task, n)

    return start
