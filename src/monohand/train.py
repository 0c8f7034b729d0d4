"""Training an image -> hand-model network (S2HAND's pipeline, the first slice).

``train(cfg)`` trains the ResNet encoder and S2HAND's heads on a FreiHAND-layout folder (a
synthetic one is generated when none is given) with the configured losses from ``losses.py``,
writing ``metrics.jsonl`` (one JSON object per logged step), TensorBoard scalars and preview
grids (``tb/``) and ``last.ckpt`` (atomic, loaded with
``weights_only=True``; ``resume`` continues a killed run). A non-finite loss stops training
with the name of the loss.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from . import losses as L
from .atomic import atomic_write
from .config import TrainConfig
from .data.freihand import FreiHANDDataset
from .models.base import HandModel
from .models.registry import load_models
from .nets.handnet import HandNet, network_from_config
from .render.camera import project, resize_K


class _Subset(Dataset):
    """The first ``n`` items of a dataset that draws per epoch (``epoch`` is passed on)."""

    def __init__(self, ds, n: int) -> None:
        self.ds, self.n = ds, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < self.n:
            raise IndexError(i)
        return self.ds[i]

    @property
    def epoch(self) -> int:
        return self.ds.epoch

    @epoch.setter
    def epoch(self, value: int) -> None:
        self.ds.epoch = value


def learning_rate(cfg: TrainConfig, step: int) -> float:
    """The learning rate of step ``step`` (0-based): a function of the step alone, so a
    resumed run follows the same schedule without saving any scheduler state."""
    if cfg.lr_schedule == "constant":
        return cfg.lr
    t = min(step / max(cfg.steps - 1, 1), 1.0)
    lo = cfg.lr_final_fraction
    return cfg.lr * (lo + (1 - lo) * 0.5 * (1 + math.cos(math.pi * t)))


def _seed(seed: int) -> None:
    # Only torch draws random numbers here (initialisation); data order has its own generator.
    torch.manual_seed(seed)


def _batch_to_size(batch: dict, size: int) -> dict:
    """Resize images to the network's input size and scale K and 2D labels to match."""
    img = batch["image"]
    h, w = img.shape[-2:]
    if (h, w) == (size, size):
        return batch
    out = dict(batch)
    out["image"] = F.interpolate(img, size=(size, size), mode="bilinear", align_corners=False)
    out["K"] = resize_K(batch["K"], size / w, size / h)
    for k in ("keypoints", "joints2d"):
        out[k] = (batch[k] + 0.5) * torch.tensor([size / w, size / h]) - 0.5
    if "mask" in batch:
        m = F.interpolate(batch["mask"][:, None], size=(size, size), mode="area")
        out["mask"] = m[:, 0]
    return out


def compute_losses(
    cfg: TrainConfig, batch: dict, params, out, hand: HandModel | None = None
) -> dict[str, Tensor]:
    """Every active loss, averaged over the batch (scalars). ``hand``: the model (for the
    photometric term's albedo)."""
    lc = cfg.loss
    uv = project(out.joints, batch["K"])
    ones = torch.ones_like(batch["confidence"])
    # "Without confidence" still leaves out what the detector did not find (all 0).
    found = (batch["confidence"].amax(1, keepdim=True) > 0).to(ones.dtype).expand_as(ones)
    target = batch["joints2d"] if lc.keypoints_target == "gt" else batch["keypoints"]
    if lc.keypoints_target == "gt":
        conf = ones
    else:
        conf = batch["confidence"] if lc.use_confidence else found
    size = (target[:, 9] - target[:, 0]).norm(dim=-1).clamp_min(4.0)
    jw = torch.tensor(L.S2HAND_JOINT_WEIGHTS, dtype=uv.dtype, device=uv.device)
    wconf = conf * jw if lc.joint_weights else conf
    if lc.keypoints_form == "s2hand":
        k2d = L.s2hand_keypoints(uv, target, wconf)
    else:
        k2d = L.keypoints_2d(uv, target, wconf, size, lc.keypoints_sigma)
    terms = {"keypoints_2d": lc.keypoints_2d * k2d.mean()}
    if lc.bone:
        bone_target = batch["joints2d"] if lc.bone_target == "gt" else batch["keypoints"]
        if lc.bone_confidence:
            bc = batch["confidence"]
        else:  # unweighted, but never towards missed detections
            bc = found if lc.bone_target == "labels" else None
        terms["bone"] = lc.bone * L.bone_orientation_2d(uv, bone_target, bc).mean()
    if lc.joints_3d:
        terms["joints_3d"] = lc.joints_3d * L.joints_3d(out.joints, batch["joints3d"]).mean()
    if lc.joints_3d_norm:
        terms["joints_3d_norm"] = (
            lc.joints_3d_norm * L.joints_3d_norm(out.joints, batch["joints3d"]).mean()
        )
    if lc.shape_prior:
        terms["shape_prior"] = lc.shape_prior * L.shape_prior(params.betas).mean()
    if lc.pose_prior:
        terms["pose_prior"] = lc.pose_prior * (params.hand_pose**2).sum(1).mean()
    if lc.pose_limits and hand is not None and hasattr(hand, "pose_space"):
        angles = hand.pose_space.from_axis_angle(params.hand_pose)
        terms["pose_limits"] = lc.pose_limits * L.pose_limits(angles, hand.pose_space).mean()
    if lc.collision:
        terms["collision"] = lc.collision * L.finger_collision(out.joints).mean()
    if lc.silhouette or lc.photometric or lc.mean_colour or lc.ssim:
        terms.update(render_losses(cfg, batch, params, out, hand))
    if params.keypoints2d is not None and (lc.integral or lc.consistency):
        branch = params.keypoints2d
        if lc.integral:
            terms["integral"] = (
                lc.integral * L.integral_keypoints(branch, target, conf, size).mean()
            )
        if lc.consistency:
            terms["consistency"] = lc.consistency * L.consistency_2d_3d(uv, branch, size).mean()
    if lc.scale_2d:
        terms["scale_2d"] = lc.scale_2d * L.projected_scale(uv, target, conf).mean()
    if lc.scale_prior:
        terms["scale_prior"] = lc.scale_prior * L.scale_prior(out.joints).mean()
    if lc.laplacian and hand is not None:
        ref = _reference_mesh(hand)
        terms["laplacian"] = lc.laplacian * L.laplacian(out.vertices, out.faces, ref).mean()
    return terms


def _reference_mesh(hand: HandModel) -> Tensor:
    """The model's mesh at zero parameters (cached): the Laplacian's reference surface."""
    ref = getattr(hand, "_laplacian_reference", None)
    if ref is None:
        with torch.no_grad():
            ref = hand().vertices[0]
        hand._laplacian_reference = ref
    return ref


def render_losses(cfg: TrainConfig, batch: dict, params, out, hand: HandModel | None):
    """Silhouette and photometric terms (render-and-compare at the input size)."""
    from .models.base import has_texture_space
    from .render import Renderer

    lc = cfg.loss
    h, w = batch["image"].shape[-2:]
    textured = hand is not None and has_texture_space(hand)
    kw = {}
    if textured:
        tex_map, vertex_albedo = hand.albedo(params.texture)
        if lc.photometric or lc.ssim:
            kw = dict(texture=tex_map, uvs=hand.uvs, face_uvs=hand.face_uvs, light=params.light)
    r = Renderer((h, w))(out.vertices, out.faces, batch["K"], **kw)
    terms = {}
    if lc.silhouette:
        if "mask" not in batch:
            raise ValueError("loss.silhouette needs masks ({split}/mask/ in the dataset)")
        terms["silhouette"] = lc.silhouette * L.silhouette(r.silhouette, batch["mask"]).mean()
    image = batch["image"].permute(0, 2, 3, 1)
    if textured and lc.photometric:
        terms["photometric"] = lc.photometric * L.photometric(r.rgb, image, r.mask.float()).mean()
        terms["texture_prior"] = lc.texture_prior * L.texture_regulariser(params.texture).mean()
    if textured and lc.ssim:
        m = r.mask.float()[..., None]
        terms["ssim"] = lc.ssim * (1 - L.ssim(r.rgb * m, image * m)).mean()
    if textured and lc.mean_colour:
        mask = batch["mask"] if "mask" in batch else r.mask.float()
        terms["mean_colour"] = lc.mean_colour * L.mean_colour(vertex_albedo, image, mask).mean()
    return terms


# What a feature cache keeps of each item: the heads' input and the labels the losses read.
CACHED = ("K", "joints3d", "joints2d", "keypoints", "confidence")


class FeatureCache(Dataset):
    """Items of stored encoder features: ``features`` (F,) plus ``CACHED`` labels, for
    training the heads of a frozen encoder without running it (``data.cache_views``)."""

    def __init__(self, tensors: dict[str, Tensor], size: tuple[int, int]) -> None:
        self.tensors, self.size = tensors, size

    def __len__(self) -> int:
        return len(self.tensors["features"])

    def __getitem__(self, i: int) -> dict:
        return {k: v[i].float() for k, v in self.tensors.items()}


def build_feature_cache(net: HandNet, ds, views: int, path: Path, batch: int = 32,
                        workers: int = 0, progress: bool = True, size: int | None = None
                        ) -> FeatureCache:  # fmt: skip
    """Encode every item of ``ds`` ``views`` times (view v draws its crop jitter as epoch v)
    and store features (float16) and labels in ``path`` (atomic; reused when it was made
    from as many items and views). ``size``: the network's input size, to which images (and
    K and 2D labels) are resized first, as training without a cache does."""
    if path.is_file():
        state = torch.load(path, map_location="cpu", weights_only=True)
        if state["items"] == len(ds) and state["views"] == views:
            return FeatureCache(state["tensors"], tuple(state["size"]))
    from rich.progress import Progress

    parts: dict[str, list[Tensor]] = {k: [] for k in ("features", *CACHED)}
    net.eval()
    layout = net.memory_format
    net.channels_last()  # the frozen encoder only runs forward here
    with Progress(disable=not progress) as bar:
        task = bar.add_task("encoding training crops", total=views * len(ds))
        for v in range(views):
            ds.epoch = v
            for b in DataLoader(ds, batch_size=batch, num_workers=workers):
                if size is not None:
                    b = _batch_to_size(b, size)
                with torch.no_grad():
                    parts["features"].append(net.encode(b["image"]).half())
                for k in CACHED:
                    parts[k].append(b[k].float())
                bar.advance(task, len(b["image"]))
    net.encoder.to(memory_format=layout)
    net.memory_format = layout
    tensors = {k: torch.cat(v) for k, v in parts.items()}
    hw = tuple(b["image"].shape[-2:])
    state = {"items": len(ds), "views": views, "size": list(hw), "tensors": tensors}
    atomic_write(path, lambda t: torch.save(state, t))
    return FeatureCache(tensors, hw)


def _cache_key(cfg: TrainConfig, root: Path) -> str:
    """A short hash of everything the stored features depend on, so that runs sharing a
    ``data.cache_dir`` share a cache only when it holds their features."""
    import hashlib

    d, m = cfg.data, cfg.model
    what = [str(root.resolve()), d.labels, d.crop, d.size, d.augment, d.subset, d.cache_views,
            cfg.seed, m.backbone, m.backbone_weights, m.pretrained, m.landmark_inputs]  # fmt: skip
    return hashlib.sha1(json.dumps(what).encode()).hexdigest()[:12]


def _labels(labels: str, root: Path) -> str:
    """The dataset's label source: "mediapipe" becomes its cached detections file (made on
    first use: MediaPipe with per-joint confidences over the training images)."""
    if labels != "mediapipe":
        return labels
    path = root / "detections_mediapipe.json"
    if not path.is_file():
        from rich.progress import Progress

        from .data.freihand import read_freihand
        from .data.keypoints import detect_files, save_detections

        index = read_freihand(root, "training")
        files = [index.image_path(i) for i in range(index.num_images)]
        with Progress() as bar:
            task = bar.add_task("MediaPipe labels", total=len(files))
            xy, conf, names, _, _ = detect_files(
                files, progress=lambda k: bar.update(task, completed=k)
            )
        save_detections(path, xy, conf, names)
    return str(path)


def preview_images(batch: dict, out, faces: Tensor, n: int = 4) -> Tensor:
    """(n, 3, H, W) in [0, 1]: each input with the predicted mesh rendered over it, the label
    keypoints (white) and the predicted skeleton (colours) - for TensorBoard."""
    import numpy as np
    from PIL import Image, ImageDraw

    from .render import Renderer
    from .viz import draw_skeleton

    img = batch["image"][:n].detach().cpu()
    K = batch["K"][:n].detach().cpu().float()
    h, w = img.shape[-2:]
    with torch.no_grad():
        verts = out.vertices[:n].detach().cpu().float()
        r = Renderer((h, w))(verts, faces.cpu(), K)
        uv = project(out.joints[:n].detach().cpu().float(), K).numpy()
    a = 0.6 * r.silhouette[..., None]
    blend = ((1 - a) * img.permute(0, 2, 3, 1) + a * r.rgb).clamp(0, 1).numpy()
    pics = []
    for k in range(len(blend)):
        pic = Image.fromarray((blend[k] * 255).astype(np.uint8))
        draw = ImageDraw.Draw(pic)
        for x, y in batch["keypoints"][k].detach().cpu().numpy():
            draw.ellipse([x - 1.5, y - 1.5, x + 1.5, y + 1.5], outline=(255, 255, 255))
        draw_skeleton(draw, uv[k], width=1)
        pics.append(torch.from_numpy(np.array(pic)).permute(2, 0, 1).float() / 255)
    return torch.stack(pics)


STAGES = ("keypoints", "mesh", "joint")


def stage_of(cfg: TrainConfig, step: int) -> str:
    """The training stage at ``step`` (0-based): "joint" throughout end-to-end training."""
    if cfg.schedule != "stagewise":
        return "joint"
    total = sum(cfg.stage_fractions) or 1.0
    edge = 0.0
    for name, frac in zip(STAGES, cfg.stage_fractions, strict=True):
        edge += frac / total * cfg.steps
        if step < edge:
            return name
    return STAGES[-1]


def stage_terms(stage: str, terms: dict[str, Tensor]) -> tuple[dict, dict]:
    """(active, inactive) loss terms of a stage: the 2D branch's stage trains the integral
    loss alone, the mesh stage everything else, the joint stage all."""
    if stage == "keypoints":
        active = {k: v for k, v in terms.items() if k == "integral"}
    elif stage == "mesh":
        active = {k: v for k, v in terms.items() if k != "integral"}
    else:
        active = dict(terms)
    return active, {k: v for k, v in terms.items() if k not in active}


def frozen_prefixes(stage: str) -> tuple[str, ...]:
    """Parameter-name prefixes held fixed in a stage."""
    return {"keypoints": ("heads.",), "mesh": ("encoder.", "keypoints.")}.get(stage, ())


def _state(step: int, net: nn.Module, opt: torch.optim.Optimizer, cfg: TrainConfig) -> dict:
    return {
        "step": step,
        "net": net.state_dict(),
        "opt": opt.state_dict(),
        "config": asdict(cfg),
        "torch_rng": torch.get_rng_state(),
    }


class _Dist:
    """torchrun's process group when launched by it (WORLD_SIZE > 1), else a single process.
    NCCL on GPUs, gloo on CPUs: the same code trains on a laptop and on a GPU node."""

    def __init__(self) -> None:
        import os

        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
        cuda = torch.cuda.is_available()
        self.device = torch.device(f"cuda:{local}" if cuda else "cpu")
        if cuda:
            torch.cuda.set_device(self.device)
        if self.world > 1 and not torch.distributed.is_initialized():
            torch.distributed.init_process_group("nccl" if cuda else "gloo")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()

    def mean(self, values: dict[str, float]) -> dict[str, float]:
        """The mean of each value over the processes (for logging)."""
        if self.world == 1:
            return values
        t = torch.tensor(list(values.values()), dtype=torch.float64, device=self.device)
        torch.distributed.all_reduce(t)
        return dict(zip(values, (t / self.world).tolist(), strict=True))


def cut_metrics(path: Path, step: int) -> int:
    """Drop the lines of ``metrics.jsonl`` logged after ``step`` (a run killed after its last
    checkpoint logged steps that its resumption logs again); returns the lines kept."""
    if not path.is_file():
        return 0
    kept = [line for line in path.read_text().splitlines()
            if line.strip() and json.loads(line).get("step", 0) <= step]  # fmt: skip
    atomic_write(path, lambda t: t.write_text("".join(f"{line}\n" for line in kept)))
    return len(kept)


def checkpoint_step(path: str | Path) -> int:
    """The step a ``last.ckpt`` was saved at."""
    return int(torch.load(path, map_location="cpu", weights_only=True)["step"])


def train(cfg: TrainConfig, resume: bool = False, progress=None) -> dict:
    """Train; returns the last logged metrics. See the module doc.

    Under ``torchrun --nproc_per_node N`` every process trains on its shard of each epoch
    (``cfg.batch`` per process) with DistributedDataParallel; process 0 writes the logs and
    checkpoints. On a GPU the encoder and heads run in bfloat16 autocast (``cfg.amp``).
    """
    dist = _Dist()
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _seed(cfg.seed)
    root = Path(cfg.data.root) if cfg.data.root else out / "data"
    if not cfg.data.root:
        from .data.synthetic import SynthConfig, ensure_synthetic

        synth = SynthConfig(num=cfg.data.synth_num, seed=cfg.seed, eval_fraction=0.0,
                            orientation=cfg.data.synth_orientation,
                            max_spin_deg=cfg.data.synth_spin_deg, size=cfg.data.synth_size,
                            fill=tuple(cfg.data.synth_fill),
                            style=cfg.data.synth_style)  # fmt: skip
        ensure_synthetic(root, synth, "training", write=dist.main)
    dist.barrier()
    if cfg.data.dataset == "ho3d":
        from .data.ho3d import HO3DDataset

        ds = HO3DDataset(root, "train", cfg.data.size, cfg.data.labels)
    else:
        if dist.main:  # MediaPipe labels are made once, by one process
            _labels(cfg.data.labels, root)
        dist.barrier()
        augment = None
        if cfg.data.crop == "mediapipe":
            from .data.augment import AugmentConfig
            from .data.crops import MediaPipeCrop

            augment = MediaPipeCrop(cfg.data.size, colour=AugmentConfig() if cfg.data.augment
                                    else None)  # fmt: skip
        elif cfg.data.augment:
            from .data.augment import Augment

            augment = Augment()
        ds = FreiHANDDataset(
            root, labels=_labels(cfg.data.labels, root), augment=augment, seed=cfg.seed
        )
        if cfg.data.subset:
            if cfg.data.subset > len(ds):
                raise ValueError(f"data.subset={cfg.data.subset}: {root} has {len(ds)} images")
            ds = _Subset(ds, cfg.data.subset)
    hand = load_models(cfg.model.name, cfg.model.path or None)["right"]
    # One mapping from config to network, the one checkpoints are loaded with.
    net = network_from_config(asdict(cfg.model), hand, pretrained=cfg.model.pretrained,
                              data_cfg=asdict(cfg.data), weights=cfg.model.backbone_weights)
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
        path = Path(cfg.data.cache_dir or out) / f"features-{_cache_key(cfg, root)}.pt"
        ds = build_feature_cache(net, ds, cfg.data.cache_views, path, workers=cfg.workers,
                                 progress=progress is not None, size=cfg.data.size)  # fmt: skip
    opt = torch.optim.Adam(
        [p for n, p in net.named_parameters() if not n.startswith("hand.") and p.requires_grad],
        lr=cfg.lr,
    )
    step = 0
    ckpt = out / "last.ckpt"
    if resume and not ckpt.is_file():
        raise FileNotFoundError(f"{ckpt}: no checkpoint to resume from (train without "
                                "--resume to start afresh)")  # fmt: skip
    if resume:
        state = torch.load(ckpt, map_location=dist.device, weights_only=True)
        net.load_state_dict(state["net"])
        opt.load_state_dict(state["opt"])
        step = state["step"]
        torch.set_rng_state(state["torch_rng"].cpu())
    gen = torch.Generator().manual_seed(cfg.seed)
    metrics_path = out / "metrics.jsonl"
    if dist.main and not resume and metrics_path.exists():
        metrics_path.unlink()
    if dist.main and resume:
        cut_metrics(metrics_path, step)
    last: dict = {}
    writer = None
    if cfg.tensorboard and dist.main:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(out / "tb"), purge_step=step + 1 if resume else None)
    net.train()
    per_epoch = max(len(ds) // (cfg.batch * dist.world), 1)
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
                batch = _batch_to_size(batch, cfg.data.size)
            batch = {k: v.to(dist.device) if torch.is_tensor(v) else v for k, v in batch.items()}
            stage = stage_of(cfg, step)
            params, hand_out = model(batch.get("image"), batch["K"], batch.get("features"),
                                     getattr(ds, "size", None))  # fmt: skip
            terms = compute_losses(cfg, batch, params, hand_out, hand)
            for name, v in terms.items():
                if not torch.isfinite(v):
                    raise FloatingPointError(f"step {step}: loss '{name}' is {v.item()}; stopping")
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
            if step % cfg.log_every == 0 or step == cfg.steps:
                values = dist.mean({"loss": loss.item(), **{k: v.item() for k, v in terms.items()}})
                last = {"step": step, **values, "lr": learning_rate(cfg, step - 1)}
                if cfg.schedule == "stagewise":
                    last["stage"] = stage
                if dist.world > 1:
                    last["processes"] = dist.world
                if dist.main:
                    with metrics_path.open("a") as f:
                        f.write(json.dumps(last) + "\n")
                if writer is not None:
                    for k, v in values.items():
                        writer.add_scalar(f"loss/{k}", v, step)
            if dist.main and (step % cfg.ckpt_every == 0 or step == cfg.steps):
                state = _state(step, net, opt, cfg)
                atomic_write(ckpt, lambda t, s=state: torch.save(s, t))
                if writer is not None and "image" in batch:
                    writer.add_images("preview", preview_images(batch, hand_out, hand.faces), step)
                    writer.flush()
            if progress and dist.main:
                progress(step)
            if step >= cfg.steps:
                break
    if writer is not None:
        writer.close()
    dist.barrier()
    return last
