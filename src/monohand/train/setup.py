"""Whether a training run can start as configured, decided before any data is made or
network built: ``check_setup`` (the settings, the files they name, the set's splits and
masks), ``training_hand`` and ``check_model_terms`` (the terms the hand model can give), and
``synthetic_config`` (the set generated where no ``data.root`` is given). Each refusal is a
``SetupError`` naming the setting (``monohand train`` and ``ablate``: exit 2)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from ..config import TrainConfig
from ..data.freihand import PHOTO_SET_FILE
from ..jsonfile import read_json
from ..models.base import has_texture_space
from ..models.registry import load_models
from ..nets.handnet import encoder_name


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
