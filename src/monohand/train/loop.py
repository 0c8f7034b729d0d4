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
from ..data.freihand import DETECTIONS_FILE, DatasetError, FreiHANDDataset
from ..jsonfile import read_json
from ..nets.handnet import export_network, network_from_config
from .checkpoints import checkpoint_state, config_changes, cut_metrics
from .features import build_feature_cache, cache_key
from .inputs import Concat, Repeat, Subset, batch_to_size, label_source
from .interrupt import StopRequest, TrainingInterrupted
from .objective import compute_losses
from .previews import preview_images
from .processes import Processes
from .schedule import frozen_prefixes, learning_rate, stage_of, stage_terms
from .setup import SetupError, check_setup, synthetic_config, training_hand

# What a finished run writes beside last.ckpt: the network alone (``export_network``).
NETWORK_FILE = "network.pt"


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
                    state = checkpoint_state(step, net, opt, cfg, extended)
                    atomic_write(ckpt, lambda t, s=state: torch.save(s, t))
                    if writer is not None and "image" in batch:
                        writer.add_images("preview", preview_images(batch, hand_out, hand.faces),
                                          step)  # fmt: skip
                        writer.flush()
                if progress and dist.main:
                    progress(step)
                if stop.requested and step < cfg.steps:
                    if dist.main and step % cfg.ckpt_every != 0:  # (else saved above)
                        state = checkpoint_state(step, net, opt, cfg, extended)
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
