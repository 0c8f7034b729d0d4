"""Training an image -> hand-model network (S2HAND's pipeline, the first slice).

``train(cfg)`` trains the ResNet encoder and S2HAND's heads on a FreiHAND-layout folder (a
synthetic one is generated when none is given) with the configured losses from ``losses.py``,
writing ``metrics.jsonl`` (one JSON object per logged step) and ``last.ckpt`` (atomic, loaded with
``weights_only=True``; ``resume`` continues a killed run). A non-finite loss stops training
with the name of the loss.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader

from . import losses as L
from .atomic import atomic_write
from .config import TrainConfig
from .data.freihand import FreiHANDDataset
from .models.base import HandModel
from .models.registry import load_models
from .nets import HandHeads, resnet
from .nets.backbone import normalise
from .render.camera import project, resize_K


class HandNet(nn.Module):
    """Encoder + heads + a hand model: images (B, 3, H, W) and K (B, 3, 3) -> hand output."""

    def __init__(self, hand: HandModel, depth: int = 18, weights: str = "") -> None:
        super().__init__()
        self.encoder = resnet(depth, weights or None)
        self.heads = HandHeads(
            self.encoder.out_channels,
            hand.num_pose_params,
            hand.num_shape_params,
            hand.num_texture_params,
        )
        self.hand = hand

    def forward(self, images: Tensor, K: Tensor):
        feats = self.encoder(normalise(images))
        p = self.heads(feats, K, tuple(images.shape[-2:]))
        out = self.hand(
            global_orient=p.global_orient, hand_pose=p.hand_pose, betas=p.betas, transl=p.transl
        )
        return p, out


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
    return out


def compute_losses(cfg: TrainConfig, batch: dict, params, out) -> dict[str, Tensor]:
    """Every active loss, averaged over the batch (scalars)."""
    lc = cfg.loss
    uv = project(out.joints, batch["K"])
    conf = batch["confidence"] if lc.use_confidence else torch.ones_like(batch["confidence"])
    size = (batch["keypoints"][:, 9] - batch["keypoints"][:, 0]).norm(dim=-1).clamp_min(4.0)
    terms = {
        "keypoints_2d": lc.keypoints_2d
        * L.keypoints_2d(uv, batch["keypoints"], conf, size, lc.keypoints_sigma).mean()
    }
    if lc.bone:
        bc = conf if lc.bone_confidence else None
        terms["bone"] = lc.bone * L.bone_orientation_2d(uv, batch["keypoints"], bc).mean()
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
    if lc.collision:
        terms["collision"] = lc.collision * L.finger_collision(out.joints).mean()
    return terms


def _state(step: int, net: nn.Module, opt: torch.optim.Optimizer, cfg: TrainConfig) -> dict:
    return {
        "step": step,
        "net": net.state_dict(),
        "opt": opt.state_dict(),
        "config": asdict(cfg),
        "torch_rng": torch.get_rng_state(),
    }


def train(cfg: TrainConfig, resume: bool = False, progress=None) -> dict:
    """Train; returns the last logged metrics. See the module doc."""
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _seed(cfg.seed)
    root = Path(cfg.data.root) if cfg.data.root else out / "data"
    if not cfg.data.root and not (root / "training_K.json").is_file():
        from .data.synthetic import SynthConfig, generate

        generate(
            root,
            SynthConfig(num=cfg.data.synth_num, seed=cfg.seed, eval_fraction=0.0),
            overwrite=True,
        )
    ds = FreiHANDDataset(root, labels=cfg.data.labels)
    hand = load_models(cfg.model.name, cfg.model.path or None)["right"]
    net = HandNet(hand, cfg.model.backbone, cfg.model.backbone_weights)
    opt = torch.optim.Adam(
        [p for n, p in net.named_parameters() if not n.startswith("hand.")], lr=cfg.lr
    )
    step = 0
    ckpt = out / "last.ckpt"
    if resume and ckpt.is_file():
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
        net.load_state_dict(state["net"])
        opt.load_state_dict(state["opt"])
        step = state["step"]
        torch.set_rng_state(state["torch_rng"])
    gen = torch.Generator().manual_seed(cfg.seed)
    metrics_path = out / "metrics.jsonl"
    if not resume and metrics_path.exists():
        metrics_path.unlink()
    last: dict = {}
    net.train()
    while step < cfg.steps:
        # The epoch's order depends on the seed and the epoch only, so a resumed run sees the
        # same batches as an uninterrupted one.
        epoch = step // max(len(ds) // cfg.batch, 1)
        gen.manual_seed(cfg.seed + epoch)
        loader = DataLoader(
            ds,
            batch_size=cfg.batch,
            shuffle=True,
            generator=gen,
            drop_last=True,
            num_workers=cfg.workers,
        )
        skip = step % max(len(ds) // cfg.batch, 1)
        for i, batch in enumerate(loader):
            if i < skip:
                continue
            batch = _batch_to_size(batch, cfg.data.size)
            params, hand_out = net(batch["image"], batch["K"])
            terms = compute_losses(cfg, batch, params, hand_out)
            for name, v in terms.items():
                if not torch.isfinite(v):
                    raise FloatingPointError(f"step {step}: loss '{name}' is {v.item()}; stopping")
            loss = sum(terms.values())
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if step % cfg.log_every == 0 or step == cfg.steps:
                last = {
                    "step": step,
                    "loss": loss.item(),
                    **{k: v.item() for k, v in terms.items()},
                }
                with metrics_path.open("a") as f:
                    f.write(json.dumps(last) + "\n")
            if step % cfg.ckpt_every == 0 or step == cfg.steps:
                state = _state(step, net, opt, cfg)
                atomic_write(ckpt, lambda t, s=state: torch.save(s, t))
            if progress:
                progress(step)
            if step >= cfg.steps:
                break
    return last
