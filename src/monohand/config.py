"""Typed training configuration (OmegaConf structured configs + YAML + command-line overrides)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException


@dataclass
class DataConfig:
    dataset: str = "freihand"  # freihand (FreiHAND layout, also synthetic) | ho3d
    root: str = ""  # the dataset's folder; empty (freihand): generate a synthetic set
    synth_num: int = 64  # samples to generate when ``root`` is empty
    synth_orientation: str = "frontal"  # of generated hands: frontal (FreiHAND-like) | uniform
    synth_spin_deg: float = 180.0  # frontal hands' in-plane angle: within +- this of upright
    size: int = 128  # network input size (images are resized)
    # 2D labels: "gt" (projected ground truth), "mediapipe" (the detector run once over the
    # training images, cached as root/detections_mediapipe.json) or a detections file
    # (S2HAND/OpenPose JSON)
    labels: str = "gt"
    augment: bool = False  # data.augment: rotation, scale, shift, colour (FreiHAND layouts)
    # How the network's input is cut from each image: "none" (the whole image, resized) or
    # "mediapipe" (MediaPipe's ROI around the projected ground truth, jittered: the crop that
    # reconstruction makes from detected keypoints; data.size is then the crop's size)
    crop: str = "none"
    # With a frozen encoder: encode each training image this many times (each a differently
    # jittered crop) once, before training, and train the heads on the stored features
    # (out_dir/features.pt). 0: encode every batch.
    cache_views: int = 0
    cache_dir: str = ""  # where the feature cache lives (default out_dir); runs share it
    # With loss.silhouette, the cache also keeps each crop's mask at this size (area-averaged)
    # and the silhouette is rendered at it: render-and-compare without storing the images.
    cache_mask_size: int = 64
    subset: int = 0  # train on the first N images only (0: all), for same-size comparisons
    # Real photos without 3D labels, trained on beside the set above (S2HAND's
    # self-supervision): a photo set made by ``monohand import-photos`` (its MediaPipe
    # labels with their confidences, no 3D terms), repeated ``photos_repeat`` times an epoch.
    photos: str = ""
    photos_repeat: int = 1
    synth_size: int = 224  # generated images' size (pixels)
    synth_fill: list[float] = field(default_factory=lambda: [0.55, 0.9])  # hand / image size
    # "v1": the first generator (Lambert light, a cut wrist); "v2": forearms, speculars,
    # several lights, camera noise, blur and JPEG artefacts, more backgrounds; "v3": v2 with
    # objects held in the hand and shadows on the background (data.synthetic)
    synth_style: str = "v1"


@dataclass
class ModelConfig:
    name: str = "openhand"  # openhand | mano | nimble
    path: str = ""  # MANO / NIMBLE files
    # Encoder (nets.handnet.ENCODERS): resnet18/34/50 (or their depth, as older configs),
    # efficientnet_lite0/1/2 (ImageNet weights from their packages), mediapipe (MediaPipe's
    # hand-landmark network, shipped)
    backbone: str = "resnet18"
    backbone_weights: str = ""  # a local encoder state dict
    pretrained: bool = False  # the packaged/shipped encoder weights (EfficientNet, MediaPipe)
    freeze_encoder: bool = False  # the encoder's weights kept as loaded (heads train alone)
    landmark_inputs: bool = False  # mediapipe: its own 3D/2D landmarks join the heads' input
    head_hidden: int = 256  # width of the parameter heads' hidden layers
    # 0, or the camera head's depth per pixel of focal length (metres; nets.heads.HandHeads):
    # for crops that frame the hand alike at any distance (data.crop=mediapipe)
    depth_per_focal: float = 0.0
    keypoint_branch: bool = False  # S2HAND's 2D heatmap branch (integral + consistency losses)
    # Global rotation regressed as S2HAND does ("axis_angle") or as "6d" (two columns of the
    # matrix, continuous: Zhou et al. 2019). On CPU budgets (400-1,000 steps from scratch)
    # the two measured alike (docs/RESULTS.md, the training benchmark).
    rotation: str = "axis_angle"


@dataclass
class LossConfig:
    """The training losses' weights (a float weight of 0 switches its term off) and the
    settings of their terms (``keypoints_sigma``, ``keypoints_target``/``form``,
    ``joint_weights``, ``use_confidence``, ``bone_target``/``confidence``, ``render_from``).
    Supervision modes of the seed's tables: detector 2D (+/- confidence), GT 2D, GT 2D + 3D,
    GT 2D + 3D norm; bone orientation."""

    keypoints_2d: float = 1.0
    keypoints_sigma: float = 1.0  # robustness scale, hand sizes (fitting uses 0.1)
    keypoints_target: str = "labels"  # labels (data.labels) | gt (projected ground truth)
    # "robust": Geman-McClure in hand sizes (resolution-free); "s2hand": S2HAND's pixel loss
    keypoints_form: str = "robust"
    # S2HAND's per-joint weights: wrist x2, fingertips x1.5 (in the "s2hand" form they
    # multiply the confidence before S2HAND's square, so x4 and x2.25 there, as in S2HAND)
    joint_weights: bool = True
    use_confidence: bool = True
    bone: float = 0.0
    # Bone orientation: against "gt" 2D = weakly supervised (WS), against the detector's
    # "labels" = self-supervised (SS); confidence = the labels' per-joint confidence.
    bone_target: str = "labels"
    bone_confidence: bool = False
    # Against 3D labels (the items that have them): "joints_3d", m^2, wrist-relative (as
    # S2HAND's "joint_3d_norm") or in the camera frame (as S2HAND's "joint_3d"; the hand's
    # place too) by joints_3d_frame "root" | "camera"; "joints_3d_norm" also scale-free,
    # squared hand lengths.
    joints_3d: float = 0.0
    joints_3d_frame: str = "root"
    joints_3d_norm: float = 0.0
    pose_prior: float = 1e-3  # squared norm of the hand pose (losses.pose_l2_prior)
    shape_prior: float = 1e-3
    collision: float = 0.0
    # Render-and-compare (S2HAND): the rendered silhouette against the dataset's masks, and
    # the textured, lit rendering against the photo inside the rendered hand.
    silhouette: float = 0.0
    photometric: float = 0.0
    # The fraction of the steps after which the render-and-compare terms join: S2HAND switches
    # them on once the geometry has converged on the keypoints.
    render_from: float = 0.0
    # 1 - SSIM of the rendering against the photo, both with everything outside the rendered
    # hand black (whole images: the background counts too, as identical)
    ssim: float = 0.0
    pose_limits: float = 0.0  # anatomical limits (models with a pose space: OpenHand)
    texture_prior: float = 1e-3
    mean_colour: float = 0.0
    # The 2D branch (model.keypoint_branch): its keypoints against the labels, and the 3D
    # joints' projections against its keypoints.
    integral: float = 0.0
    consistency: float = 0.0  # mean distance in hand sizes
    scale_prior: float = 0.0  # losses.scale_prior: wrist-to-knuckle length against 8.3 cm
    scale_2d: float = 0.0  # projected size against the labels' (see losses.projected_scale)
    laplacian: float = 0.0  # mesh smoothness against the model's rest mesh (losses.laplacian)


@dataclass
class TrainConfig:
    out_dir: str = "out/train"
    steps: int = 40  # optimiser steps (not epochs)
    batch: int = 8  # images per step, per process under torchrun
    lr: float = 1e-3
    # "cosine": from lr down to lr_final_fraction * lr over the steps; "constant": lr.
    lr_schedule: str = "cosine"
    lr_final_fraction: float = 0.05
    seed: int = 0  # initialisation, data order and augmentation (a run repeats exactly)
    log_every: int = 5
    ckpt_every: int = 20
    # A held-out check every this many steps (and at the last; 0: never): the network, as
    # trained so far, on the first val_max images of the set's evaluation split, scored by
    # FreiHAND's protocol (val_pa_mpjpe_mm, val_mpjpe_mm, val_auc_j in metrics.jsonl and
    # TensorBoard's val/): the training loss alone does not say whether it generalises.
    val_every: int = 0
    val_max: int = 256
    workers: int = 0  # data loader processes (0: in the training process)
    # scalars at log steps, image grids at checkpoints (out_dir/tb; no grids from stored
    # features, data.cache_views, which hold no images)
    tensorboard: bool = True
    amp: bool = True  # bfloat16 autocast of encoder + heads on GPUs (no effect on CPUs)
    # "end_to_end", or "stagewise" as S2HAND on HO-3D: the 2D branch first (encoder + branch,
    # integral loss), then the mesh (heads only, every other loss), then everything together;
    # stage_fractions split the steps (shares of their sum).
    schedule: str = "end_to_end"
    stage_fractions: list[float] = field(default_factory=lambda: [0.3, 0.3, 0.4])
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)


def _load_yaml(p: Path, seen: tuple[Path, ...] = ()):
    """A YAML config and, first, the one its ``extends:`` names (relative to it)."""
    if p.is_dir():
        raise FileNotFoundError(f"{p}: a folder, not a config file (configs/*.yaml)")
    if not p.is_file():
        hint = (" (the first argument is a YAML config, key=value overrides follow it)"
                if "=" in p.name else "")  # fmt: skip
        raise FileNotFoundError(f"{p}: no such config file{hint}")
    if p.resolve() in seen:
        raise ValueError(f"{p}: 'extends' loops back to itself")
    try:
        node = OmegaConf.load(p)
    except UnicodeDecodeError as e:
        raise ValueError(f"{p}: not a text (YAML) file ({e.reason} at byte {e.start})") from e
    except yaml.YAMLError as e:
        raise ValueError(f"{p}: not valid YAML ({e})") from e
    if not isinstance(node, DictConfig):
        raise ValueError(f"{p}: a config must be a mapping of keys, got a list")
    base = node.pop("extends", None)
    if base is None:
        return node
    parent = p.parent / str(base)
    if not parent.is_file() and not parent.is_dir():
        raise FileNotFoundError(f"{p}: extends: {base}: no such config file ({parent}; a "
                                "path relative to the file that names it)")  # fmt: skip
    return OmegaConf.merge(_load_yaml(parent, (*seen, p.resolve())), node)


def raw_config(path: str | Path, overrides: list[str] | None = None) -> DictConfig:
    """A YAML config's chain (``extends:``) and ``key=value`` overrides merged, as written:
    neither defaults nor checks (to ask what a config is about before ``load_config``)."""
    node = _load_yaml(Path(path))
    return OmegaConf.merge(node, OmegaConf.from_dotlist(list(overrides or [])))


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> TrainConfig:
    """Defaults, then a YAML file (and the files its ``extends:`` chain names, base first),
    then ``key=value`` overrides (dotted keys), type-checked. A bad value's ``ValueError``
    names the file it came from (or the overrides)."""
    bare = [o for o in overrides or [] if "=" not in o]
    if bare:
        # "--steps 50", as other tools take settings: say the form this one takes
        words = list(overrides or [])
        meant = [f"{w[2:]}={words[k + 1]}" for k, w in enumerate(words[:-1])
                 if w.startswith("--") and "=" not in w and "=" not in words[k + 1]
                 and not words[k + 1].startswith("--")]  # fmt: skip
        hint = f" (did you mean {' '.join(meant)}?)" if meant else ""
        raise ValueError(f"{', '.join(map(repr, bare))}: an override is key=value{hint}")
    # (OmegaConf reads "key=" as None, and says "Incompatible value 'None'" of the type)
    if empty := [o for o in overrides or [] if o.endswith("=")]:
        raise ValueError(f"{', '.join(map(repr, empty))}: an empty value (key=VALUE; a "
                         "string setting off: key='')")  # fmt: skip
    try:
        try:
            return _load_config(path, overrides)
        except OmegaConfBaseException as e:  # one line: the key and what is wrong with it
            line, key = str(e).splitlines()[0], getattr(e, "full_key", None)
            named = f"{key}: {line}" if key and str(key) not in line else line
            raise ValueError(named) from e
    except ValueError as e:
        if path and str(path) in str(e):
            raise
        where = str(path) if path else "the overrides"
        if path and overrides and _loads(path):  # the file alone is fine: an override is not
            where = f"the overrides of {path}"
        raise ValueError(f"{where}: {e}") from e


def _loads(path: str | Path) -> bool:
    try:
        _load_config(path, None)
    except (ValueError, OmegaConfBaseException):
        return False
    return True


def _load_config(path: str | Path | None, overrides: list[str] | None) -> TrainConfig:
    cfg = OmegaConf.structured(TrainConfig)
    if path:
        cfg = OmegaConf.merge(cfg, _load_yaml(Path(path)))
    if overrides:
        cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(list(overrides)))
    out = OmegaConf.to_object(cfg)
    if out.steps < 1 or out.batch < 1:
        raise ValueError(f"steps and batch must be at least 1, got {out.steps}, {out.batch}")
    if out.val_every < 0 or out.val_max < 1:
        raise ValueError(f"val_every must be >= 0 (0: off) and val_max >= 1, got "
                         f"{out.val_every}, {out.val_max}")  # fmt: skip
    if not out.lr > 0:
        raise ValueError(f"lr must be positive, got {out.lr}")
    for key, value in (("loss.keypoints_target", out.loss.keypoints_target),
                       ("loss.bone_target", out.loss.bone_target)):  # fmt: skip
        if value not in ("labels", "gt"):
            raise ValueError(f"{key} must be 'labels' or 'gt', got {value!r}")
    if out.loss.joints_3d_frame not in ("root", "camera"):
        raise ValueError(f"loss.joints_3d_frame must be 'root' or 'camera', got "
                         f"{out.loss.joints_3d_frame!r}")  # fmt: skip
    if out.loss.keypoints_form not in ("robust", "s2hand"):
        raise ValueError(f"loss.keypoints_form must be 'robust' or 's2hand', got "
                         f"{out.loss.keypoints_form!r}")  # fmt: skip
    if out.data.dataset not in ("freihand", "ho3d"):
        raise ValueError(f"data.dataset must be 'freihand' or 'ho3d', got {out.data.dataset!r}")
    if out.data.dataset == "ho3d" and (not out.data.root or out.data.labels == "mediapipe"):
        raise ValueError("data.dataset=ho3d needs data.root (HO-3D's folder) and gt labels or "
                         "a detections file")  # fmt: skip
    from .nets.handnet import encoder_name
    from .nets.heads import ROTATIONS

    out.model.backbone = encoder_name(out.model.backbone)
    if out.data.crop not in ("none", "mediapipe"):
        raise ValueError(f"data.crop must be 'none' or 'mediapipe', got {out.data.crop!r}")
    from .data.synthetic import STYLES

    if out.data.synth_style not in STYLES:
        raise ValueError(f"data.synth_style must be one of {', '.join(STYLES)}, "
                         f"got {out.data.synth_style!r}")  # fmt: skip
    if out.model.backbone == "mediapipe" and out.data.size != 224:
        raise ValueError("model.backbone=mediapipe takes 224x224 crops: set data.size=224")
    if out.data.cache_views < 0:
        raise ValueError(f"data.cache_views must be >= 0, got {out.data.cache_views}")
    if out.data.cache_views and not out.model.freeze_encoder:
        raise ValueError("data.cache_views stores encoder features: it needs "
                         "model.freeze_encoder=true")  # fmt: skip
    images = (out.loss.photometric, out.loss.ssim, out.loss.mean_colour)
    if out.data.cache_views and (any(images) or out.model.keypoint_branch):
        raise ValueError("data.cache_views trains on stored features, without images: the "
                         "photometric render-and-compare losses and the 2D branch need "
                         "data.cache_views=0 (the silhouette works from stored masks)")
    if out.data.photos:
        if out.data.dataset != "freihand":
            raise ValueError("data.photos trains beside a FreiHAND-layout set (data.dataset)")
        if out.data.crop != "mediapipe":
            raise ValueError("data.photos: photos of any size are cropped around their hand; "
                             "set data.crop=mediapipe")  # fmt: skip
        if out.loss.silhouette:
            raise ValueError("data.photos: the photos have no masks; train them without "
                             "loss.silhouette")  # fmt: skip
        if out.data.photos_repeat < 1:
            raise ValueError(f"data.photos_repeat must be >= 1, got {out.data.photos_repeat}")
    if out.data.cache_mask_size < 8:
        raise ValueError(f"data.cache_mask_size must be >= 8, got {out.data.cache_mask_size}")
    if not 0 <= out.loss.render_from < 1:
        raise ValueError(f"loss.render_from must be in [0, 1), got {out.loss.render_from}")

    if out.model.rotation not in ROTATIONS:
        raise ValueError(f"model.rotation must be one of {ROTATIONS}, got {out.model.rotation!r}")
    if out.data.synth_orientation not in ("frontal", "uniform"):
        raise ValueError(f"data.synth_orientation must be 'frontal' or 'uniform', got "
                         f"{out.data.synth_orientation!r}")  # fmt: skip
    if out.data.augment and out.data.dataset != "freihand":
        raise ValueError("data.augment applies to FreiHAND layouts (data.dataset=freihand)")
    if out.lr_schedule not in ("cosine", "constant"):
        raise ValueError(f"lr_schedule must be 'cosine' or 'constant', got {out.lr_schedule!r}")
    if out.schedule not in ("end_to_end", "stagewise"):
        raise ValueError(f"schedule must be 'end_to_end' or 'stagewise', got {out.schedule!r}")
    needs_branch = out.schedule == "stagewise" or out.loss.integral or out.loss.consistency
    if needs_branch and not out.model.keypoint_branch:
        raise ValueError("stagewise training and the integral/consistency losses need "
                         "model.keypoint_branch=true")  # fmt: skip
    if out.schedule == "stagewise" and (len(out.stage_fractions) != 3
                                        or min(out.stage_fractions) < 0):  # fmt: skip
        raise ValueError("stage_fractions must be three non-negative numbers")
    return out


T = TypeVar("T")


def with_overrides(cfg: T, items: list[str], what: str = "--set") -> T:
    """A copy of the dataclass ``cfg`` with ``NAME=VALUE`` settings applied (the benchmarks'
    ``--set``), each value converted to its field's type by OmegaConf; an unknown name or a
    value of the wrong type is a ``ValueError`` naming ``what`` and the setting."""
    try:
        merged = OmegaConf.merge(OmegaConf.structured(cfg), OmegaConf.from_dotlist(list(items)))
    except OmegaConfBaseException as e:
        raise ValueError(f"{what} {' '.join(items)}: {str(e).splitlines()[0]}") from e
    return OmegaConf.to_object(merged)
