"""The training loop: data, network, optimiser, logging and checkpoints around the
objective (``objective.py``), as the algorithm reads."""

from __future__ import annotations

import contextlib
import json
import shutil
from dataclasses import asdict
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from ..atomic import atomic_write
from ..config import TrainConfig
from ..data.freihand import DETECTIONS_FILE, PHOTO_SET_FILE, DatasetError, FreiHANDDataset
from ..jsonfile import read_json
from ..models.base import has_texture_space
from ..models.registry import load_models
from ..nets.handnet import encoder_name, export_network, network_from_config
from .features import build_feature_cache, cache_key
from .inputs import Concat, Repeat, Subset, batch_to_size, label_source
from .interrupt import StopRequest, TrainingInterrupted
from .objective import compute_losses
from .previews import preview_images
from .processes import Processes
from .schedule import frozen_prefixes, learning_rate, stage_of, stage_terms

# What a finished run writes beside last.ckpt: the network alone (``export_network``).
NETWORK_FILE = "network.pt"


class SetupError(ValueError):
    """A training run that cannot start as configured: a setting, a file it names, a
    checkpoint, too few images. The message names the setting; raised before the first step
    (``monohand train`` and ``ablate``: exit 2)."""


def check_setup(cfg: TrainConfig, eval_fraction: float = 0.0) -> None:
    """What the settings refute, before any data is generated or network built
    (``SetupError``): the hand model's name and whether its files are given (not whether
    they load: ``train`` loads them next), the encoder weights asked for (and their file),
    the network's input size, the loss weights, a labels file that is not there, a
    ``data.photos`` that is no photo set, an ``out_dir`` inside ``data.root``, what the set
    must hold (``_check_the_set``: an evaluation split for ``val_every``, masks for
    ``loss.silhouette``, where ``data.root`` exists), and the synthetic set's settings where
    no ``data.root`` is given (``eval_fraction`` of it held out, as ``monohand ablate``
    does: at least one image for each split and a batch to train on)."""
    from ..models.registry import MODELS

    m = cfg.model
    if cfg.steps < 1:  # (load_config checks it; a TrainConfig made in Python is not)
        raise SetupError(f"steps={cfg.steps}: at least 1")
    if m.name not in MODELS:
        raise SetupError(f"model.name={m.name!r}: unknown, one of {', '.join(MODELS)}")
    if m.name in ("mano", "nimble") and not m.path:
        files = ("MANO_RIGHT.pkl or its converted .npz" if m.name == "mano" else
                 "the folder of NIMBLE's files, or its converted .npz")  # fmt: skip
        raise SetupError(f"model.name={m.name}: its files cannot ship with monohand; give "
                         f"model.path=PATH ({files})")  # fmt: skip
    photos = Path(cfg.data.photos) if cfg.data.photos else None
    if photos is not None and not photos.exists():
        raise SetupError(f"data.photos={photos}: no such folder (make one with monohand "
                         "import-photos)")  # fmt: skip
    if photos is not None and photos.is_file():
        raise SetupError(f"data.photos={photos}: a file; give the photo set's folder")
    if photos is not None and photos.is_dir() and not (photos / PHOTO_SET_FILE).is_file():
        raise SetupError(f"data.photos={photos}: not a photo set (no {PHOTO_SET_FILE}; "
                         "make one with monohand import-photos)")  # fmt: skip
    labels = cfg.data.labels
    if cfg.data.dataset == "ho3d" and labels != "gt" and not Path(labels).is_file():
        raise SetupError(f"data.labels={labels}: no such file (HO-3D: gt, or a detections file "
                         f"over its frames, e.g. from monohand detect)")  # fmt: skip
    if cfg.data.dataset != "ho3d" and labels not in ("gt", "mediapipe") and not Path(
            labels).is_file():  # fmt: skip
        raise SetupError(f"data.labels={labels}: no such file (gt, mediapipe or a detections "
                         "file)")  # fmt: skip
    if m.pretrained and not m.backbone_weights and encoder_name(m.backbone).startswith("resnet"):
        raise SetupError(f"model.pretrained: no ResNet weights ship with monohand; give "
                         f"torchvision's {encoder_name(m.backbone)} state dict as "
                         "model.backbone_weights=PATH, or an EfficientNet-Lite backbone "
                         "(whose ImageNet weights ship)")  # fmt: skip
    if m.backbone_weights and not Path(m.backbone_weights).is_file():
        raise SetupError(f"model.backbone_weights={m.backbone_weights}: no such file")
    if cfg.data.root and Path(cfg.out_dir).resolve().is_relative_to(
            Path(cfg.data.root).resolve()):  # fmt: skip
        raise SetupError(f"out_dir={cfg.out_dir}: inside data.root={cfg.data.root}: a run's "
                         "checkpoint and logs would mix with the dataset's files; give another "
                         "out_dir=")  # fmt: skip
    _check_the_set(cfg, eval_fraction)
    if cfg.data.size < 32:
        raise SetupError(f"data.size={cfg.data.size}: the network's input must be at least 32 "
                         "pixels")  # fmt: skip
    if cfg.loss.joints_3d_frame not in ("root", "camera"):  # (as load_config's check)
        raise SetupError(f"loss.joints_3d_frame={cfg.loss.joints_3d_frame!r}: 'root' or "
                         f"'camera'")  # fmt: skip
    if not 0 <= cfg.loss.render_from < 1:  # (load_config checks it; Python's configs too)
        raise SetupError(f"loss.render_from={cfg.loss.render_from}: a share of the steps, in "
                         f"[0, 1)")  # fmt: skip
    if not cfg.loss.keypoints_sigma > 0:  # (0 makes the robust 2D term 0 everywhere)
        raise SetupError(f"loss.keypoints_sigma={cfg.loss.keypoints_sigma}: the 2D term's "
                         f"robustness scale, hand sizes, must be above 0")  # fmt: skip
    if bad := [f"loss.{k}={v}" for k, v in asdict(cfg.loss).items()
               if isinstance(v, float) and v < 0 and k != "render_from"]:  # fmt: skip
        raise SetupError(f"{', '.join(bad)}: loss weights are 0 (off) or positive")
    if cfg.data.root:
        return
    synth = synthetic_config(cfg, eval_fraction)
    try:
        synth.check()
    except ValueError as e:
        raise SetupError(f"data.synth_*: {e}") from e
    held = synth.num_evaluation if eval_fraction else 0
    if eval_fraction and held < 1:
        least = next(n for n in range(2, 10**6) if round(n * eval_fraction) >= 1)
        raise SetupError(f"data.synth_num={synth.num}: {eval_fraction:.0%} of it is held out "
                         f"for evaluation, none at this size; give data.synth_num={least} or "
                         "more")  # fmt: skip
    if (n := synth.num - held) < cfg.batch:
        raise SetupError(f"data.synth_num={synth.num}: {n} training images, fewer than one "
                         f"batch (batch={cfg.batch}); give more images or a smaller batch")


def _check_the_set(cfg: TrainConfig, eval_fraction: float) -> None:
    """What the training set must hold for the settings, where that is known before any
    data is made or labelled: an evaluation split for ``val_every`` (a set generated into
    out_dir has one only as ``monohand ablate`` makes it, ``eval_fraction``), masks for
    ``loss.silhouette`` (a generated set has them). A ``data.root`` still to be made (by
    ``ablate``) is checked when training starts."""
    root = Path(cfg.data.root) if cfg.data.root else None
    if cfg.val_every:
        if cfg.data.dataset == "ho3d":
            raise SetupError(f"val_every={cfg.val_every}: HO-3D's evaluation labels are on its "
                             "server; the check needs a set with them")  # fmt: skip
        if root is None and not eval_fraction:
            raise SetupError(f"val_every={cfg.val_every}: the set generated into out_dir has "
                             "no evaluation split; give data.root= a set with one (monohand "
                             "synth --eval-fraction), or run the configs with monohand "
                             "ablate, whose set has one")  # fmt: skip
        if root is not None and root.is_dir() and not _has_samples(root, "evaluation"):
            raise SetupError(f"val_every={cfg.val_every}: {root} has no evaluation split with "
                             "3D labels to check the network on (monohand synth "
                             "--eval-fraction)")  # fmt: skip
    masks = root is not None and (root / "training" / "mask").is_dir()
    if cfg.loss.silhouette and root is not None and root.is_dir() and not masks and (
            cfg.data.dataset != "ho3d"):  # fmt: skip
        raise SetupError(f"loss.silhouette={cfg.loss.silhouette}: {root / 'training' / 'mask'}"
                         " does not exist: the silhouette term needs each image's hand mask "
                         "(monohand synth writes them)")  # fmt: skip


def _has_samples(root: Path, split: str) -> bool:
    """Whether ``root`` holds a ``split`` with 3D labels and at least one sample."""
    try:
        return len(read_json(root / f"{split}_K.json")) > 0 and (
            root / f"{split}_xyz.json").is_file()  # fmt: skip
    except (OSError, ValueError, TypeError):
        return False


def held_out(net: nn.Module, cfg: TrainConfig, root: Path) -> dict[str, float]:
    """The network as trained so far on the first ``cfg.val_max`` images of ``root``'s
    evaluation split, scored by FreiHAND's protocol: ``val_pa_mpjpe_mm`` (aligned),
    ``val_mpjpe_mm`` (unaligned), ``val_auc_j`` (aligned, 0-50 mm). Run in eval mode without
    gradients or random draws, so training goes on exactly as without it."""
    import warnings

    from ..evaluate.metrics import evaluate_arrays
    from ..predict import predict_with

    was = net.training
    net.eval()
    try:
        xyz, _ = predict_with(net, cfg.data.size, root, "evaluation", batch=cfg.batch,
                              limit=cfg.val_max)  # fmt: skip
    finally:
        net.train(was)
    truth = np.asarray(read_json(root / "evaluation_xyz.json", DatasetError))[: len(xyz)]
    with warnings.catch_warnings():  # (a young network's hands may lie anywhere)
        warnings.simplefilter("ignore", UserWarning)
        r = evaluate_arrays(xyz, truth)
    return {"val_pa_mpjpe_mm": r.aligned.mpjpe_mm, "val_mpjpe_mm": r.unaligned.mpjpe_mm,
            "val_auc_j": r.aligned.auc_j}  # fmt: skip


def _seed(seed: int) -> None:
    # Only torch draws random numbers here (initialisation); data order has its own generator.
    torch.manual_seed(seed)


def _state(step: int, net: nn.Module, opt: torch.optim.Optimizer, cfg: TrainConfig,
           extended: list[dict]) -> dict:  # fmt: skip
    return {
        "step": step,
        "net": net.state_dict(),
        "opt": opt.state_dict(),
        "config": asdict(cfg),
        "torch_rng": torch.get_rng_state(),
        # each resumption with more steps than the run was trained for: its learning rate
        # followed both schedules, so it is not what a fresh run of its steps gives
        "extended": extended,
    }


def cut_metrics(path: Path, step: int) -> int:
    """Drop the lines of ``metrics.jsonl`` logged after ``step`` (a run killed after its last
    checkpoint logged steps that its resumption logs again); returns the lines kept."""
    if not path.is_file():
        return 0
    kept = [line for line in path.read_text().splitlines()
            if line.strip() and json.loads(line).get("step", 0) <= step]  # fmt: skip
    atomic_write(path, lambda t: t.write_text("".join(f"{line}\n" for line in kept)))
    return len(kept)


# What a resumed run may change: where it writes, how it logs, where its data now lies, and
# how long it runs (more steps stretch the cosine schedule from the step resumed at on).
RESUMABLE = frozenset({"out_dir", "steps", "log_every", "ckpt_every", "workers", "tensorboard",
                       "data.root", "data.cache_dir", "val_every", "val_max"})  # fmt: skip


def _flat(tree: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in tree.items():
        out |= _flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v}
    return out


def training_hand(cfg: TrainConfig, hand=None):
    """The run's hand model (its right hand), loaded (``SetupError`` naming the model and
    its files where they do not load) unless given, with ``check_model_terms`` passed."""
    if hand is None:
        try:
            hand = load_models(cfg.model.name, cfg.model.path or None)["right"]
        except ValueError as e:
            raise SetupError(f"model.name={cfg.model.name}, model.path="
                             f"{cfg.model.path or ''}: {e}") from e  # fmt: skip
    check_model_terms(cfg, hand)
    return hand


def check_model_terms(cfg: TrainConfig, hand) -> None:
    """Loss terms the hand model cannot give, refused (``SetupError``) rather than left out
    of the total while their weights say they count: the appearance terms need a texture
    space (OpenHand; NIMBLE with its UV file), the anatomical limits a pose space
    (OpenHand)."""
    lc = cfg.loss
    textured = [k for k in ("photometric", "ssim", "mean_colour") if getattr(lc, k) > 0]
    if textured and not has_texture_space(hand):
        raise SetupError(f"loss.{', loss.'.join(textured)}: the {cfg.model.name} model has no "
                         f"texture space to render the photo with (OpenHand has; NIMBLE with "
                         f"its NIMBLE_TEX_FUV.pkl): set them to 0")  # fmt: skip
    if lc.pose_limits > 0 and not hasattr(hand, "pose_space"):
        raise SetupError(f"loss.pose_limits: the {cfg.model.name} model has no anatomical "
                         f"joint limits (OpenHand has): set it to 0")  # fmt: skip


def config_changes(saved: dict, cfg: TrainConfig) -> list[str]:
    """The settings in which ``cfg`` differs from a checkpoint's ``saved`` config, as
    "name=saved (now: new)", other than those a resumed run may change (``RESUMABLE``);
    [] when it may continue that checkpoint."""
    a, b = _flat(saved), _flat(asdict(cfg))
    # a setting added after the run was saved is the run's at its default (what it trained)
    default = _flat(asdict(TrainConfig()))
    a.update({k: default[k] for k in b.keys() - a.keys() if k in default})
    out = [f"{k}={a.get(k)!r} (now {b.get(k)!r})" for k in sorted(a.keys() | b.keys())
           if k not in RESUMABLE and a.get(k) != b.get(k)]  # fmt: skip
    renders = any(getattr(cfg.loss, k) > 0 for k in ("silhouette", "photometric", "ssim",
                                                       "mean_colour"))  # fmt: skip
    moved = [w for w, on in (("the stagewise schedule's stages", cfg.schedule == "stagewise"),
                             ("loss.render_from's start", cfg.loss.render_from > 0 and renders))
             if on]  # fmt: skip
    # (fewer steps than trained: nothing trains, the run is reused as it is)
    if (a.get("steps") or 0) < (b.get("steps") or 0) and moved:
        # (they are shares of steps: a resumed run would go back a stage, or drop the
        # render terms again, where only the learning rate was meant to stretch)
        out.append(f"steps={a.get('steps')!r} (now {b.get('steps')!r}): "
                   f"{' and '.join(moved)} are shares of steps and would move")  # fmt: skip
    return out


def checkpoint_info(path: str | Path) -> tuple[int, dict]:
    """The step a ``last.ckpt`` was saved at and the config (as a dict) it was trained with;
    ``SetupError`` naming the file where it is not one (truncated, foreign)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        return int(state["step"]), state.get("config", {})
    except Exception as e:  # noqa: BLE001 - torch.load fails in many ways on a broken file
        raise SetupError(f"{path}: not a readable monohand training checkpoint "
                         f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
                         ) from e  # fmt: skip


def checkpoint_step(path: str | Path) -> int:
    """The step a ``last.ckpt`` was saved at."""
    return checkpoint_info(path)[0]


def synthetic_config(cfg: TrainConfig, eval_fraction: float = 0.0):
    """The ``data.synthetic.SynthConfig`` of the set a config trains on when it names no
    ``data.root``: its ``data.synth_*`` settings and seed; ``eval_fraction`` of it held out
    (``monohand ablate`` evaluates every config on that share of one set)."""
    from ..data.synthetic import SynthConfig

    d = cfg.data
    return SynthConfig(num=d.synth_num, seed=cfg.seed, eval_fraction=eval_fraction,
                       orientation=d.synth_orientation, max_spin_deg=d.synth_spin_deg,
                       size=d.synth_size, fill=tuple(d.synth_fill),
                       style=d.synth_style)  # fmt: skip


def train(cfg: TrainConfig, resume: bool = False, progress=None, data_progress=None,
          on_log=None) -> dict:  # fmt: skip
    """Train; returns the last logged metrics. See the module doc.

    ``progress(step)`` after each step; ``on_log(metrics)`` with each line written to
    metrics.jsonl (``step``, ``loss``, its terms, ``lr``); ``data_progress(total) ->
    callable(n_done)`` when a synthetic set is generated first (minutes for tens of
    thousands of images).

    Under ``torchrun --nproc_per_node N`` every process trains on its shard of each epoch
    (``cfg.batch`` per process) with DistributedDataParallel; process 0 writes the logs and
    checkpoints. On a GPU the encoder and heads run in bfloat16 autocast (``cfg.amp``).

    Ctrl-C (one process) finishes the step under way, saves its checkpoint and raises
    ``TrainingInterrupted`` (``train.interrupt``); a second Ctrl-C stops at once.
    """
    dist = Processes()
    out = Path(cfg.out_dir)
    ckpt = out / "last.ckpt"
    # A resumption's checkpoint is checked before any data or network is prepared.
    if resume and not ckpt.is_file():
        raise FileNotFoundError(f"{ckpt}: no checkpoint to resume from (train without "
                                "--resume to start afresh)")  # fmt: skip
    if resume:
        saved = torch.load(ckpt, map_location=dist.device, weights_only=True)
        if changes := config_changes(saved.get("config", {}), cfg):
            raise ValueError(f"{ckpt}: trained with other settings: {'; '.join(changes)}; resume "
                             "with the same ones, or train afresh in another out_dir")  # fmt: skip
        if saved["step"] >= cfg.steps:  # before any log is cut back or opened
            raise ValueError(f"{ckpt}: at step {saved['step']}, steps={cfg.steps}: nothing to "
                             "train (raise steps= to train further)")  # fmt: skip
    check_setup(cfg)
    # The hand model (and its files) before any data is generated: minutes for a big set.
    hand = training_hand(cfg)
    out.mkdir(parents=True, exist_ok=True)
    if dist.main:  # every setting, as resolved: what this run is, readable without torch
        import yaml

        text = yaml.safe_dump(asdict(cfg), sort_keys=False)
        atomic_write(out / "config.yaml", lambda t: t.write_text(text))
    _seed(cfg.seed)
    root = Path(cfg.data.root) if cfg.data.root else out / "data"
    if not cfg.data.root:
        from ..data.synthetic import ensure_synthetic

        ensure_synthetic(root, synthetic_config(cfg), "training", write=dist.main,
                         progress=data_progress)  # fmt: skip
    dist.barrier()
    if cfg.data.dataset == "ho3d":
        from ..data.ho3d import HO3DDataset

        ds = HO3DDataset(root, "train", cfg.data.size, cfg.data.labels)
    else:
        if dist.main:  # MediaPipe labels are made once, by one process
            label_source(cfg.data.labels, root)
        dist.barrier()
        augment = None
        if cfg.data.crop == "mediapipe":
            from ..data.augment import AugmentConfig
            from ..data.crops import MediaPipeCrop

            augment = MediaPipeCrop(cfg.data.size, colour=AugmentConfig() if cfg.data.augment
                                    else None)  # fmt: skip
        elif cfg.data.augment:
            from ..data.augment import Augment

            augment = Augment()
        labels = label_source(cfg.data.labels, root)
        try:
            ds = FreiHANDDataset(root, labels=labels, augment=augment, seed=cfg.seed)
        except (ValueError, FileNotFoundError) as e:
            if isinstance(e, DatasetError) or labels == "gt":
                raise
            raise SetupError(f"data.labels={cfg.data.labels}: {e}") from e
        if cfg.data.subset:
            if cfg.data.subset > len(ds):
                raise SetupError(f"data.subset={cfg.data.subset}: {root} has {len(ds)} images")
            ds = Subset(ds, cfg.data.subset)
        if cfg.data.photos:  # real photos, the detector's labels only (no 3D terms)
            from ..data.photos import read_photo_set

            photos = Path(cfg.data.photos)
            read_photo_set(photos)  # refuses a folder that is not one
            real = FreiHANDDataset(photos, labels=photos / DETECTIONS_FILE,
                                   augment=augment, seed=cfg.seed)  # fmt: skip
            ds = Concat([ds, Repeat(real, cfg.data.photos_repeat)])
    if len(ds) < cfg.batch * dist.world:  # (every epoch would drop its only, partial batch)
        raise SetupError(f"{root}: {len(ds)} training images, fewer than one batch "
                         f"(batch={cfg.batch}" + (f" x {dist.world} processes" if dist.world > 1
                         else "") + "); give more images or a smaller batch=")  # fmt: skip
    # One mapping from config to network, the one checkpoints are loaded with.
    build = partial(network_from_config, asdict(cfg.model), hand, pretrained=cfg.model.pretrained,
                    data_cfg=asdict(cfg.data))  # fmt: skip
    try:
        net = build(weights=cfg.model.backbone_weights)
    except (ValueError, RuntimeError, KeyError) as e:
        if not cfg.model.backbone_weights:
            raise
        build(weights="")  # the weights are to blame only where the network builds without
        raise SetupError(f"model.backbone_weights={cfg.model.backbone_weights}: {e}") from e
    for prm in net.hand.parameters():  # the hand model is fixed
        prm.requires_grad_(False)
    net.to(dist.device)
    net.amp = cfg.amp and dist.device.type == "cuda"
    model = net
    if dist.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        model = DistributedDataParallel(net)
    if cfg.data.cache_views:
        if dist.world > 1:
            raise ValueError("data.cache_views trains in one process (the heads are small)")
        path = Path(cfg.data.cache_dir or out) / f"features-{cache_key(cfg, root)}.pt"
        mask_size = cfg.data.cache_mask_size if cfg.loss.silhouette else 0
        ds = build_feature_cache(net, ds, cfg.data.cache_views, path, workers=cfg.workers,
                                 progress=progress is not None, size=cfg.data.size,
                                 mask_size=mask_size)  # fmt: skip
    opt = torch.optim.Adam(
        [p for n, p in net.named_parameters() if not n.startswith("hand.") and p.requires_grad],
        lr=cfg.lr,
    )
    step, extended = 0, []
    if resume:
        net.load_state_dict(saved["net"])
        opt.load_state_dict(saved["opt"])
        step = saved["step"]
        torch.set_rng_state(saved["torch_rng"].cpu())
        extended = list(saved.get("extended", []))
        if saved["config"].get("steps") != cfg.steps:
            extended.append({"at_step": step, "from_steps": saved["config"].get("steps"),
                             "to_steps": cfg.steps})  # fmt: skip
    gen = torch.Generator().manual_seed(cfg.seed)
    metrics_path = out / "metrics.jsonl"
    if dist.main and not resume and metrics_path.exists():
        metrics_path.unlink()
    if dist.main and not resume and (out / "tb").is_dir():
        shutil.rmtree(out / "tb")  # a fresh run's curves, not mixed with an earlier run's
    if dist.main and resume:
        cut_metrics(metrics_path, step)
    if dist.main:  # the finished network of an earlier run (or of this one, shorter): stale
        (out / NETWORK_FILE).unlink(missing_ok=True)
    last: dict = {}
    writer = None
    if cfg.tensorboard and dist.main:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(out / "tb"), purge_step=step + 1 if resume else None)
    net.train()
    per_epoch = max(len(ds) // (cfg.batch * dist.world), 1)
    # Ctrl-C: the step under way is finished and saved (one process; under torchrun, which
    # stops every process, as before).
    stop_request = StopRequest() if dist.world == 1 else contextlib.nullcontext(StopRequest())
    with stop_request as stop:
        while step < cfg.steps:
            # The epoch's order depends on the seed and the epoch only, so a resumed run sees the
            # same batches as an uninterrupted one.
            epoch = step // per_epoch
            ds.epoch = epoch  # the augmentation's draws (a fresh loader each epoch sees it)
            if dist.world > 1:
                from torch.utils.data.distributed import DistributedSampler

                sampler = DistributedSampler(ds, dist.world, dist.rank, shuffle=True, seed=cfg.seed,
                                             drop_last=True)  # fmt: skip
                sampler.set_epoch(epoch)
                order = {"sampler": sampler}
            else:
                gen.manual_seed(cfg.seed + epoch)
                order = {"shuffle": True, "generator": gen}
            loader = DataLoader(
                ds, batch_size=cfg.batch, drop_last=True, num_workers=cfg.workers, **order
            )
            skip = step % per_epoch
            for i, batch in enumerate(loader):
                if i < skip:
                    continue
                if "image" in batch:
                    batch = batch_to_size(batch, cfg.data.size)
                batch = {k: v.to(dist.device) if torch.is_tensor(v) else v
                         for k, v in batch.items()}  # fmt: skip
                stage = stage_of(cfg, step)
                params, hand_out = model(batch.get("image"), batch["K"], batch.get("features"),
                                         getattr(ds, "size", None))  # fmt: skip
                render = step >= cfg.loss.render_from * cfg.steps
                terms = compute_losses(cfg, batch, params, hand_out, hand, render=render)
                for name, v in terms.items():
                    if not torch.isfinite(v):
                        raise FloatingPointError(f"step {step}: loss '{name}' is {v.item()}; "
                                                 "stopping")  # fmt: skip
                terms, idle = stage_terms(stage, terms)
                loss = sum(terms.values()) + 0.0 * sum(idle.values())
                # Outputs that no loss of this config uses (texture, light, the 2D branch) still
                # join the gradient, at zero: DDP's all-reduce expects one for every parameter.
                unused = (params.texture, params.light, params.keypoints2d)
                loss = loss + 0.0 * sum(x.sum() for x in unused if x is not None)
                opt.zero_grad()
                loss.backward()
                frozen = frozen_prefixes(stage)
                for n, prm in net.named_parameters():
                    if frozen and n.startswith(frozen):
                        prm.grad = None  # Adam skips it: no momentum step either
                for group in opt.param_groups:
                    group["lr"] = learning_rate(cfg, step)
                opt.step()
                step += 1
                val_now = cfg.val_every and (step % cfg.val_every == 0 or step == cfg.steps)
                if step % cfg.log_every == 0 or step == cfg.steps or val_now:
                    values = dist.mean({"loss": loss.item(),
                                        **{k: v.item() for k, v in terms.items()}})  # fmt: skip
                    last = {"step": step, **values, "lr": learning_rate(cfg, step - 1)}
                    if cfg.schedule == "stagewise":
                        last["stage"] = stage
                    if dist.world > 1:
                        last["processes"] = dist.world
                    if val_now and dist.main:
                        held = held_out(net, cfg, root)
                        last.update(held)
                        if writer is not None:
                            for k, v in held.items():
                                writer.add_scalar(f"val/{k.removeprefix('val_')}", v, step)
                    if dist.main:
                        with metrics_path.open("a") as f:
                            f.write(json.dumps(last) + "\n")
                        if on_log:
                            on_log(last)
                    if writer is not None:
                        for k, v in values.items():
                            writer.add_scalar(f"loss/{k}", v, step)
                        writer.add_scalar("lr", last["lr"], step)
                if dist.main and (step % cfg.ckpt_every == 0 or step == cfg.steps):
                    state = _state(step, net, opt, cfg, extended)
                    atomic_write(ckpt, lambda t, s=state: torch.save(s, t))
                    if writer is not None and "image" in batch:
                        writer.add_images("preview", preview_images(batch, hand_out, hand.faces),
                                          step)  # fmt: skip
                        writer.flush()
                if progress and dist.main:
                    progress(step)
                if stop.requested and step < cfg.steps:
                    if dist.main and step % cfg.ckpt_every != 0:  # (else saved above)
                        state = _state(step, net, opt, cfg, extended)
                        atomic_write(ckpt, lambda t, s=state: torch.save(s, t))
                    if writer is not None:
                        writer.close()
                    raise TrainingInterrupted(step, str(ckpt) if dist.main else None)
                if step >= cfg.steps:
                    break
    if writer is not None:
        writer.close()
    if dist.main:
        # The finished network alone, to run and to share: no optimiser state (two thirds of
        # last.ckpt under Adam), no hand model buffers; float32, so it predicts exactly as
        # last.ckpt does.
        export_network(ckpt, out / NETWORK_FILE, half=False)
    dist.barrier()
    return last
