"""``monohand ablate``: train a grid of configs on one dataset and print the seed's tables.

Every config (``configs/seed/*.yaml``) is trained into ``OUT/<name>/`` on a shared
FreiHAND-layout set (generated once in ``OUT/data`` with an evaluation split, by the first
config's ``data.synth_*`` settings, when no ``data.root`` is given), run on the evaluation
split (``predict.predict_split``) and scored by FreiHAND's protocol (``evaluate.metrics``).
The seed's tables come out as rich tables and as ``OUT/tables.md``; ``OUT/results.json``
keeps every number. A config already trained to its steps (its ``last.ckpt``) is not trained
again, so an interrupted ablation resumes.
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .atomic import atomic_write
from .config import TrainConfig, load_config
from .evaluate.io import load_ground_truth
from .evaluate.metrics import EvalResult, evaluate_arrays
from .models.registry import load_models
from .predict import hand_arrays, predict_split
from .train import (
    SetupError,
    check_setup,
    checkpoint_info,
    config_changes,
    synthetic_config,
    train,
    training_hand,
)


@dataclass
class AblationRow:
    name: str
    config: str
    result: EvalResult
    images_per_s: float | None  # training throughput (None if unknown)
    reference: bool = False  # the mean-pose row: no camera, so no unaligned figures
    step: int | None = None  # the step its checkpoint is at (the row's network)
    # each time the run was trained on past an earlier ``steps`` (its learning rate then
    # followed two schedules: not what a fresh run of these steps gives), as its checkpoint
    # records it: {"at_step", "from_steps", "to_steps"}
    extended: list[dict] = field(default_factory=list)


def left_out(path: str | Path, overrides: list[str] | None = None) -> str | None:
    """Why ``ablate`` cannot run a config as given, or None: HO-3D's (its evaluation labels
    are on HO-3D's Codalab server; ``monohand train`` trains it), or a licensed hand model
    whose files are not given (``model.path``)."""
    from .config import raw_config

    node = raw_config(path, [o for o in overrides or [] if "=" in o])
    data, model = node.get("data") or {}, node.get("model") or {}
    if data.get("dataset") == "ho3d":
        return ("HO-3D: its evaluation labels are on its Codalab server; `monohand train` "
                "trains it")  # fmt: skip
    if model.get("name") in ("mano", "nimble") and not model.get("path"):
        return (f"{model.get('name')} needs its files (model.path=, in the config: an "
                "override would reach every config)")  # fmt: skip
    return None


def runnable(configs: list[Path], overrides: list[str]) -> tuple[list[Path], list[str]]:
    """The configs ``ablate`` can run, and "CONFIG: why" for each it cannot (``left_out``); a
    config that fails to read counts as runnable: ``load_config`` names its problem later."""
    from omegaconf.errors import OmegaConfBaseException

    kept, reasons = [], []
    for c in configs:
        try:
            why = left_out(c, overrides)
        except (FileNotFoundError, ValueError, OmegaConfBaseException):
            why = None
        if why:
            reasons.append(f"{c}: {why}")
        else:
            kept.append(c)
    return kept, reasons


def tabulated(out: str | Path) -> list[str]:
    """The experiment rows of an earlier run's ``OUT/results.json`` ([] when none, or not a
    results file)."""
    try:
        rows = json.loads((Path(out) / "results.json").read_text())
    except (OSError, ValueError):
        return []
    if not isinstance(rows, list):
        return []
    return [r["name"] for r in rows if isinstance(r, dict) and isinstance(r.get("name"), str)
            and not r.get("reference")]  # fmt: skip


# The share of a generated set held out for evaluation.
EVAL_FRACTION = 0.05


def _prepare_data(cfg: TrainConfig, out: Path, progress=None) -> Path:
    if cfg.data.root:
        return Path(cfg.data.root)
    from .data.synthetic import ensure_synthetic

    root = out / "data"
    ensure_synthetic(root, synthetic_config(cfg, eval_fraction=EVAL_FRACTION), "evaluation",
                     progress=progress)  # fmt: skip
    return root


def mean_pose_reference(cfg: TrainConfig, xyz_gt, verts_gt) -> AblationRow:
    """The row a network must beat: the model's mean hand (zero parameters) for every image,
    scored aligned (Procrustes). A network whose aligned error is above it has learnt
    articulations worse than none."""
    import numpy as np

    hand = load_models(cfg.model.name, cfg.model.path or None)["right"]
    with torch.no_grad():
        joints, mesh = hand_arrays(hand())
    xyz, verts = np.repeat(joints, len(xyz_gt), 0), np.repeat(mesh, len(xyz_gt), 0)
    same = verts_gt is not None and verts.shape[1:] == verts_gt.shape[1:]
    with warnings.catch_warnings():  # (at the origin, knowingly: its aligned row is the one)
        warnings.filterwarnings("ignore", message="xyz_pred: ", category=UserWarning)
        result = evaluate_arrays(xyz, xyz_gt, verts if same else None, verts_gt if same else None)
    return AblationRow("mean pose (reference)", "", result, None, reference=True)


def run_ablation(
    configs: list[str | Path],
    out: str | Path,
    overrides: list[str] | None = None,
    say=None,
    progress=None,
    data_progress=None,
) -> list[AblationRow]:
    """Train, predict and evaluate each config (see the module doc). A config whose folder
    under ``out`` already holds a checkpoint of its settings is reused (trained on if it has
    fewer steps); one of other settings is an error, not silently reused.

    Args:
        say: ``say(message)`` for what is reused or resumed, or None.
        progress: ``progress(name, steps)`` -> a per-step callback for the training, or None.
        data_progress: ``data_progress(total)`` -> ``generate``'s progress callback, when the
            synthetic set is generated first, or None.
    """
    out = Path(out)
    overrides = list(overrides or [])
    names = [Path(c).stem for c in configs]
    if twice := sorted({n for n in names if names.count(n) > 1}):
        raise SetupError(f"configs named alike: {', '.join(twice)} (each trains into "
                         f"{out}/<name>: rename one, or list it once)")  # fmt: skip
    # Every config is read and checked before the first trains: a mistake in the last costs
    # no training.
    first = load_config(configs[0], overrides)
    check_setup(first, eval_fraction=0 if first.data.root else EVAL_FRACTION)
    root = Path(first.data.root) if first.data.root else out / "data"
    cfgs = [load_config(path, [*overrides, f"out_dir={out / name}", f"data.root={root}"])
            for path, name in zip(configs, names, strict=True)]  # fmt: skip
    # the shared set's training images, known before it is made (None: a set of one's own)
    synth = None if first.data.root else synthetic_config(first, EVAL_FRACTION)
    steps = []  # each config's earlier run: the step its checkpoint is at (0: none)
    models: dict[tuple, object] = {}  # (name, path) -> its right hand, loaded once
    for cfg, name in zip(cfgs, names, strict=True):
        check_setup(cfg)
        key = (cfg.model.name, cfg.model.path or None)
        try:
            models[key] = training_hand(cfg, models.get(key))
        except SetupError as e:
            raise SetupError(f"{name}: {e}") from e
        if synth is not None and (n := synth.num - synth.num_evaluation) < cfg.batch:
            raise SetupError(f"{cfg.out_dir}: batch={cfg.batch}, more than the shared set's "
                             f"{n} training images (data.synth_num={synth.num})")  # fmt: skip
        ckpt = out / name / "last.ckpt"
        step, saved = 0, {}
        if ckpt.is_file():
            step, saved = checkpoint_info(ckpt)
            if changes := config_changes(saved, cfg):
                raise SetupError(f"{ckpt}: an earlier run of other settings: "
                                 f"{'; '.join(changes)}; remove {ckpt.parent} or give another "
                                 "--out")  # fmt: skip
        steps.append(step)
    root = _prepare_data(first, out, data_progress)
    xyz_gt, verts_gt = load_ground_truth(root, "evaluation")
    rows = []
    for path, name, cfg, step in zip(configs, names, cfgs, steps, strict=True):
        ckpt = out / name / "last.ckpt"
        done = step >= cfg.steps
        if say is not None and ckpt.is_file():
            past = (f", past steps={cfg.steps}: its row is of step {step} (remove "
                    f"{ckpt.parent} to train {cfg.steps})" if step > cfg.steps else "")  # fmt: skip
            say(f"{name}: reusing {ckpt} (step {step}{past})" if done else
                f"{name}: resuming {ckpt} at step {step} of {cfg.steps}")  # fmt: skip
        speed_file = out / name / "throughput.json"
        if not done:
            resumed = ckpt.is_file()
            # (step, time) at each logged step: the labelling and caching before the first
            # step (charged to whichever row needs them first) are not the row's speed
            logged: list[tuple[int, float]] = []
            train(cfg, resume=resumed,
                  progress=None if progress is None else progress(name, cfg.steps),
                  on_log=lambda m, logged=logged: logged.append((m["step"],
                                                                 time.perf_counter())))
            if not resumed and len(logged) > 1:  # a resumed run's time covers part of the steps
                (s0, t0), (s1, t1) = logged[0], logged[-1]
                speed = {"train_images_per_s": (s1 - s0) * cfg.batch / (t1 - t0)}
                atomic_write(speed_file, lambda t, s=speed: t.write_text(json.dumps(s)))
        speed = None
        if speed_file.is_file():
            speed = json.loads(speed_file.read_text())["train_images_per_s"]
        xyz, verts = predict_split(ckpt, root, "evaluation", model_path=cfg.model.path or None)
        same_mesh = verts_gt is not None and verts.shape[1:] == verts_gt.shape[1:]
        result = evaluate_arrays(xyz, xyz_gt, verts if same_mesh else None,
                                 verts_gt if same_mesh else None)  # fmt: skip
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
        rows.append(AblationRow(name, str(path), result, speed, step=int(state["step"]),
                                extended=list(state.get("extended", []))))  # fmt: skip
    rows.append(mean_pose_reference(first, xyz_gt, verts_gt))
    write_tables(rows, out)
    return rows


def _cm(mm: float | None) -> str:
    return "–" if mm is None else f"{mm / 10:.2f}"


def _f(x: float | None, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def table_rows(rows: list[AblationRow]) -> tuple[list[list[str]], list[list[str]]]:
    """The seed's aligned table (AUC_J, MPJPE cm, AUC_V, MPVPE cm, F5, F15) and unaligned one
    (MPJPE, MPVPE cm), one row per experiment."""
    aligned, unaligned = [], []
    for r in rows:
        a, u = r.result.aligned, r.result.unaligned
        aligned.append([r.name, _f(a.auc_j), _cm(a.mpjpe_mm), _f(a.auc_v), _cm(a.mpvpe_mm),
                        _f(a.f5, 2), _f(a.f15, 2)])  # fmt: skip
        if r.reference:
            unaligned.append([r.name, "–", "–"])
        else:
            unaligned.append([r.name, _cm(u.mpjpe_mm), _cm(u.mpvpe_mm)])
    return aligned, unaligned


ALIGNED = ["experiment", "AUC_J ↑", "MPJPE ↓ (cm)", "AUC_V ↑", "MPVPE ↓ (cm)", "F5 ↑", "F15 ↑"]
UNALIGNED = ["experiment", "MPJPE ↓ (cm)", "MPVPE ↓ (cm)"]


def write_tables(rows: list[AblationRow], out: Path) -> None:
    aligned, unaligned = table_rows(rows)

    def md(header, body):
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        return "\n".join(lines + ["| " + " | ".join(b) + " |" for b in body])

    text = (f"## Aligned (Procrustes)\n\n{md(ALIGNED, aligned)}\n\n"
            f"## Unaligned (camera frame)\n\n{md(UNALIGNED, unaligned)}\n")  # fmt: skip
    text += provenance(rows)
    atomic_write(out / "tables.md", lambda t: t.write_text(text))
    results = [
        {
            "name": r.name,
            "config": r.config,
            "train_images_per_s": r.images_per_s,
            "reference": r.reference,
            "step": r.step,
            "extended": r.extended,
            **r.result.to_json(),
        }  # fmt: skip
        for r in rows
    ]
    atomic_write(out / "results.json", lambda t: t.write_text(json.dumps(results, indent=2)))
    plot_pck(rows, out / "pck.png")


def provenance(rows: list[AblationRow]) -> str:
    """tables.md's last lines: the step each row's network is at, and the rows whose runs
    were trained on past an earlier ``steps`` (``ablate`` resumes a shorter run rather than
    start again; such a row is not what a fresh run of its steps gives, since the learning
    rate's schedule stretched half-way)."""
    lines = ["", "Each row's network: " + ", ".join(
        f"{r.name} step {r.step}" for r in rows if not r.reference and r.step is not None)
             + "."]  # fmt: skip
    for r in rows:
        for e in r.extended:
            lines.append(f"- {r.name}: trained to step {e['at_step']} for steps="
                         f"{e['from_steps']}, then on to steps={e['to_steps']} (its learning "
                         "rate followed both schedules: a fresh run differs; remove its folder "
                         "to train it afresh)")  # fmt: skip
    return "\n".join(lines) + "\n"


def plot_pck(rows: list[AblationRow], path: Path) -> Path:
    """``pck.png``: 3D joint PCK curves of every experiment, aligned (left) and unaligned
    (right), so the tables' orderings can be seen across thresholds."""
    from .plotting import pyplot

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), dpi=110)
    for ax, variant in ((axes[0], "aligned"), (axes[1], "unaligned")):
        for k, r in enumerate(rows):
            curve = r.result.curves.get(f"joints_{variant}")
            if curve is None or (r.reference and variant == "unaligned"):
                continue
            style = {"color": "black", "ls": ":"} if r.reference else {
                "color": plt.cm.tab10(k % 10), "ls": "-" if k < 10 else "--"}  # fmt: skip
            ax.plot(r.result.thresholds * 1000, curve, label=r.name, **style)
        ax.set(xlabel="threshold (mm)", ylabel="3D PCK", xlim=(0, 50), ylim=(0, 1),
               title=f"joints, {variant}")  # fmt: skip
        ax.grid(alpha=0.3)
    axes[0].legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
    finally:
        plt.close(fig)


def print_tables(rows: list[AblationRow], console) -> None:
    from rich.table import Table

    aligned, unaligned = table_rows(rows)
    for title, header, body in (("aligned", ALIGNED, aligned), ("unaligned", UNALIGNED, unaligned)):
        t = Table(title=f"monohand ablate: {title}")
        for h in header:
            t.add_column(h, justify="left" if h == "experiment" else "right")
        for b in body:
            t.add_row(*b)
        console.print(t)
