"""The interface every hand model implements, and what a forward pass returns."""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import Tensor, nn

from .joints import FREIHAND_JOINT_NAMES


@dataclass
class HandOutput:
    """Result of a hand model's forward pass. Metres, camera/world frame of the inputs.

    Attributes:
        vertices: (B, V, 3) posed surface vertices.
        joints: (B, 21, 3) keypoints in FreiHAND order (see ``monohand.models.joints``).
        joints_native: (B, J, 3) the model's own joints in its own order.
        faces: (F, 3) long triangle indices into ``vertices`` (shared by the batch).
        full_pose: (B, J * 3) axis-angle of every native joint, root first, as actually used
            (PCA expanded, mean pose added).
        betas: (B, S) shape coefficients used.
        global_orient: (B, 3) root rotation, axis-angle.
        hand_pose: (B, P) the hand pose as given (PCA coefficients or axis-angle).
        transl: (B, 3) translation added to every point.
        vertex_colors: (B, V, 3) albedo in [0, 1] where the model has a texture space.
        texture: (B, H, W, 3) albedo map in [0, 1] where the model has one.
    """

    vertices: Tensor
    joints: Tensor
    joints_native: Tensor
    faces: Tensor
    full_pose: Tensor
    betas: Tensor
    global_orient: Tensor
    hand_pose: Tensor
    transl: Tensor
    vertex_colors: Tensor | None = None
    texture: Tensor | None = None

    def __repr__(self) -> str:
        # The fields' shapes, not their values (thousands of numbers in a notebook).
        parts = [f"{f.name}={tuple(v.shape)}" for f in fields(self)
                 for v in (getattr(self, f.name),) if isinstance(v, Tensor)]  # fmt: skip
        t = self.vertices
        return f"{type(self).__name__}({', '.join(parts)}, {t.dtype}, {t.device}; metres)"

    @property
    def evaluation_vertices(self) -> Tensor:
        """(B, V', 3) the mesh FreiHAND's evaluation compares: MANO's 778-vertex topology where
        the model has one beside its own (NIMBLE), else ``vertices``."""
        return self.vertices

    def detach(self) -> HandOutput:
        """A copy with every tensor detached from the graph."""
        return type(self)(
            **{
                f.name: (v.detach() if isinstance(v, Tensor) else v)
                for f in fields(self)
                for v in (getattr(self, f.name),)
            }
        )


class HandModel(nn.Module):
    """Base class of the parametric hand layers (OpenHand, MANO, NIMBLE, and one's own).

    Subclasses set the metadata below and implement ``forward`` with the smplx-style keyword
    arguments ``global_orient (B,3), hand_pose (B,P), betas (B,S), transl (B,3),
    texture (B,T) | None`` (accepted, and ignored without a texture space; an input of
    batch 1 is shared by the batch, e.g. one subject's shape for many poses: ``_batch_size``,
    ``_param``) and return a ``HandOutput``. What the fit, the renderer and the exporters
    rely on:

    - metres, the camera's frame of the inputs; ``joints`` the 21 keypoints in FreiHAND's
      order (``models.joints.FREIHAND_JOINT_NAMES``: the detector's), whatever the model's
      own rig (``joints_native``);
    - ``faces`` (F, 3) with outward normals on a manifold surface (no edge of more than two
      faces: the silhouettes' coverage needs it); ``side`` "right" or "left" as the geometry
      is (a left hand is the mirror image);
    - optional, each making the fit better where present: ``pose_space`` (anatomical
      angles with limits, as OpenHand's), ``data`` (MANO's pose PCA, as ``SkinnedHand``'s),
      ``uvs``/``face_uvs`` with ``albedo`` (a texture space: ``has_texture_space``), and a
      faster ``keypoints``. Without ``pose_space`` and ``data`` the fit moves ``hand_pose``
      from zero with a squared-norm prior (``fit.PoseParams``).
    """

    name: str = "hand"
    side: str = "right"
    num_pose_params: int
    num_shape_params: int
    num_texture_params: int = 0
    # The model's own rig joints (``HandOutput.joints_native``'s order), not ``joints``':
    # those are ``keypoint_names`` (FreiHAND's 21) for every model.
    joint_names: tuple[str, ...]
    parents: Tensor
    faces: Tensor
    uvs: Tensor | None  # (T, 2) texture coordinates, v up, or None
    face_uvs: Tensor | None  # (F, 3) long indices into uvs, or None

    @property
    def num_vertices(self) -> int:
        raise NotImplementedError

    @property
    def keypoint_names(self) -> tuple[str, ...]:
        """The names of ``HandOutput.joints`` (B, 21, 3) and of ``keypoints``: FreiHAND's
        21 (``models.joints.FREIHAND_JOINT_NAMES``), whatever the model's own rig."""
        return FREIHAND_JOINT_NAMES

    def keypoints(
        self,
        global_orient: Tensor | None = None,
        hand_pose: Tensor | None = None,
        betas: Tensor | None = None,
        transl: Tensor | None = None,
    ) -> Tensor:
        """(B, 21, 3) the keypoints of ``forward`` (FreiHAND order, metres) alone. Models
        that can pose their joints without the whole mesh override this (a fit needs only
        these at every step)."""
        return self(global_orient=global_orient, hand_pose=hand_pose, betas=betas,
                    transl=transl).joints  # fmt: skip

    def _batch_size(self, **inputs: Tensor | None) -> int:
        """The batch size the given ``inputs`` (name -> tensor or None) agree on, inputs of
        batch 1 aside (``_param`` repeats them: one subject's shape for many poses, as
        smplx does); 1 if none is given. A ``TypeError`` names an input that is no tensor
        (an array, a list)."""
        for name, t in inputs.items():
            if t is not None and not isinstance(t, Tensor):
                raise TypeError(f"{self.name}: {name} must be a torch tensor, got a "
                                f"{type(t).__name__} (torch.as_tensor(x, dtype=torch.float32) "
                                "converts one)")  # fmt: skip
            if t is not None and t.ndim == 0:
                raise ValueError(f"{self.name}: {name} must have a batch axis, got a scalar")
        sizes = {t.shape[0] for t in inputs.values() if t is not None}
        if len(sizes - {1}) > 1 or (0 in sizes and len(sizes) > 1):  # (1 shares, 0 not)
            given = ", ".join(f"{n} {t.shape[0]}" for n, t in inputs.items() if t is not None)
            raise ValueError(f"{self.name}: inputs disagree on the batch size ({given}): "
                             f"each must have the batch's size or 1")  # fmt: skip
        return next(iter(sizes - {1}), 1)

    def _param(self, value: Tensor | None, batch: int, dim: int, what: str) -> Tensor:
        """Validate one input (one of batch 1 repeated to ``batch``, as a view: its
        gradient is the sum over the batch), or make zeros of the right batch size, dtype
        and device."""
        if value is None:
            return torch.zeros(batch, dim, dtype=self._dtype(), device=self.faces.device)
        if value.ndim != 2 or value.shape[1] != dim:
            raise ValueError(
                f"{self.name}: {what} must have shape (B, {dim}), got {tuple(value.shape)}"
            )
        if not torch.is_floating_point(value):
            raise TypeError(
                f"{self.name}: {what} must be a floating-point tensor, got {value.dtype}"
            )
        # The layer's products need its own precision (autocast casts them itself); a
        # translation of more precision is added as an ordinary sum would (promoted).
        dtype = self._dtype()
        if (value.dtype != dtype and what != "transl"
                and not torch.is_autocast_enabled(value.device.type)):  # fmt: skip
            raise TypeError(f"{self.name}: {what} is {value.dtype} but the layer is {dtype}: "
                            f"pass {dtype} inputs, or convert the layer "
                            f"(.to({value.dtype}))")  # fmt: skip
        return value.expand(batch, -1) if len(value) == 1 and batch > 1 else value

    def _dtype(self) -> torch.dtype:
        """The layer's floating-point type (asked once per input and call: models with a
        template buffer answer from it rather than by this walk over every buffer)."""
        for b in self.buffers():
            if torch.is_floating_point(b):
                return b.dtype
        return torch.get_default_dtype()


def has_texture_space(model) -> bool:
    """Whether ``model`` decodes texture coefficients to an albedo map on its UV layout
    (``albedo(texture)``): OpenHand always, NIMBLE when its UV file was given."""
    return hasattr(model, "albedo") and getattr(model, "uvs", None) is not None
