"""Training an image -> hand-model network (S2HAND's pipeline).

``train(cfg)`` trains the encoder and S2HAND's heads on a FreiHAND-layout folder (a synthetic
one is generated when none is given) with the configured losses, writing ``metrics.jsonl``
(one JSON object per logged step), TensorBoard scalars and preview grids (``tb/``) and
``last.ckpt`` (atomic, loaded with ``weights_only=True``; ``resume`` continues a killed run)
and ``config.yaml`` (the run's settings, resolved); a finished run also ``network.pt``
(``NETWORK_FILE``: the network alone, without the optimiser's state).
A non-finite loss stops training with the name of the loss.

The rooms: ``loop`` (the algorithm: data, network, optimiser, logs, checkpoints, the
held-out check), ``setup`` (what the settings refute before anything is made:
``SetupError``), ``checkpoints`` (what ``last.ckpt`` holds, and whether a config may
continue it), ``interrupt`` (Ctrl-C at a step's end, its checkpoint saved), ``objective``
(the losses of a batch), ``schedule`` (learning rate, stages), ``inputs`` (subsets, label
sources, batches at the network's size), ``features`` (stored encoder features for a frozen
encoder), ``previews`` (TensorBoard pictures), ``processes`` (torchrun's process group or
one process).
"""

from .checkpoints import checkpoint_info, checkpoint_step, config_changes, cut_metrics
from .features import CACHED, FeatureCache, build_feature_cache
from .loop import NETWORK_FILE, train
from .objective import compute_losses, render_losses
from .previews import preview_images
from .schedule import STAGES, frozen_prefixes, learning_rate, stage_of, stage_terms
from .setup import SetupError, check_model_terms, check_setup, synthetic_config, training_hand

__all__ = [
    "CACHED", "FeatureCache", "NETWORK_FILE", "STAGES", "SetupError", "build_feature_cache",
    "check_model_terms", "check_setup", "checkpoint_info", "checkpoint_step", "config_changes",
    "compute_losses", "cut_metrics", "frozen_prefixes", "learning_rate", "preview_images",
    "render_losses", "stage_of", "stage_terms", "synthetic_config", "train", "training_hand",
]  # fmt: skip
