"""OpenHand: monohand's openly licensed parametric hand, the default model.

Built by ``tools/build_openhand.py`` from the CC0 Godot XR hand into
``models/assets/openhand_right.npz`` (see ``assets/OPENHAND_LICENSE.md``). It has MANO's
layout and frame: a flat-hand template, 16 joints in MANO's tree placed by a sparse regressor,
21 FreiHAND-order keypoints, 10 shape components, a relaxed mean pose, a PCA pose basis, and
anatomical joint limits; plus what MANO lacks: UVs and a linear skin-albedo texture space.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .assets import AssetError, load_npz
from .base import HandOutput
from .pose_space import PoseSpace
from .skinned import SkinnedHand, SkinnedHandData, mirror_data

_REQUIRED = (
    "v_template", "faces", "weights", "j_regressor", "parents", "shapedirs", "tip_vertices",
    "hands_mean", "hands_components", "pose_frames", "pose_limits", "pose_relaxed_angles",
    "uvs", "face_uvs", "texture_mean", "texture_basis",
)  # fmt: skip


def default_model_path() -> Path:
    """The shipped ``openhand_right.npz``."""
    return Path(str(resources.files("monohand.models") / "assets" / "openhand_right.npz"))


def load_openhand_arrays(path: str | Path | None = None) -> dict[str, np.ndarray]:
    """The arrays of an OpenHand file, checked for completeness."""
    path = Path(path) if path is not None else default_model_path()
    arrays = load_npz(path)
    missing = [k for k in _REQUIRED if k not in arrays]
    if missing:
        raise AssetError(f"{path}: not an OpenHand model file, missing keys {missing}")
    return arrays


def openhand_data(arrays: dict[str, np.ndarray], source: str) -> SkinnedHandData:
    """Wrap OpenHand arrays as ``SkinnedHandData`` (right hand)."""
    try:
        return SkinnedHandData(
            v_template=arrays["v_template"], shapedirs=arrays["shapedirs"], posedirs=None,
            j_regressor=arrays["j_regressor"], parents=arrays["parents"],
            weights=arrays["weights"], faces=arrays["faces"], tip_vertices=arrays["tip_vertices"],
            hands_mean=arrays["hands_mean"], hands_components=arrays["hands_components"],
            side="right", name="openhand", uvs=arrays["uvs"], face_uvs=arrays["face_uvs"],
            source=source,
        )  # fmt: skip
    except ValueError as e:
        raise AssetError(str(e)) from e


def _bilinear(img: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Sample (..., H, W, C) maps at (N, 2) UVs (v up, row 0 at v = 1) -> (..., N, C)."""
    h, w = img.shape[-3:-1]
    x = np.clip(uv[:, 0] * w - 0.5, 0, w - 1)
    y = np.clip((1 - uv[:, 1]) * h - 0.5, 0, h - 1)
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    top = img[..., y0, x0, :] * (1 - fx) + img[..., y0, x1, :] * fx
    bot = img[..., y1, x0, :] * (1 - fx) + img[..., y1, x1, :] * fx
    return top * (1 - fy) + bot * fy


class OpenHand(SkinnedHand):
    """The OpenHand layer: same call and output as ``MANO``, plus a texture space.

    Args:
        path: an OpenHand ``.npz``; default: the shipped model.
        side: "right", or "left" (the mirror image).
        use_pca, num_pca_comps, flat_hand_mean, num_betas, dtype: see ``SkinnedHand``
            (``num_betas``: at most the file's shape components, all for None).

    ``forward(..., texture=(B, T))`` also returns ``vertex_colors`` (B, V, 3) and the albedo map
    ``texture`` (B, 256, 256, 3), sRGB in [0, 1]; coefficients ~ N(0, 1) give plausible skin.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        side: str = "right",
        use_pca: bool = False,
        num_pca_comps: int = 45,
        flat_hand_mean: bool = True,
        num_betas: int | None = 10,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        if side not in ("right", "left"):
            raise ValueError(f"side must be 'right' or 'left', got {side!r}")
        path = Path(path) if path is not None else default_model_path()
        arrays = load_openhand_arrays(path)
        data = openhand_data(arrays, str(path))
        if side == "left":
            data = mirror_data(data)
        if num_betas is not None:  # another build may have fewer: all of them, then
            num_betas = min(num_betas, data.shapedirs.shape[2])
        super().__init__(
            data,
            use_pca=use_pca,
            num_pca_comps=num_pca_comps,
            flat_hand_mean=flat_hand_mean,
            num_betas=num_betas,
            dtype=dtype,
        )
        frames = arrays["pose_frames"]
        if side == "left":
            # Left frames S F (S = diag(-1, 1, 1)): then F_L R(angles) F_L^T = S R_right S, so the
            # same anatomical angles give the mirrored pose (det F_L = -1 is fine here).
            frames = np.array([-1.0, 1.0, 1.0])[None, :, None] * frames
        self.pose_space = PoseSpace(frames, arrays["pose_limits"], arrays["pose_relaxed_angles"])
        self.source_path = path
        # Standard deviation of each PCA pose coefficient (for the pose prior).
        self.pose_pca_std = arrays.get("hands_pca_std", np.ones(len(data.hands_components)))
        self.num_texture_params = arrays["texture_basis"].shape[0]
        self.register_buffer("texture_mean", torch.as_tensor(arrays["texture_mean"], dtype=dtype))
        self.register_buffer("texture_basis", torch.as_tensor(arrays["texture_basis"], dtype=dtype))
        # Per-vertex albedo: the maps sampled at each vertex's (first) UV.
        uv_of_vertex = np.zeros(data.v_template.shape[0], dtype=np.int64)
        uv_of_vertex[data.faces.ravel()] = data.face_uvs.ravel()
        uv = data.uvs[uv_of_vertex]
        self.register_buffer(
            "vertex_color_mean", torch.as_tensor(_bilinear(arrays["texture_mean"], uv), dtype=dtype)
        )
        self.register_buffer(
            "vertex_color_basis",
            torch.as_tensor(_bilinear(arrays["texture_basis"], uv), dtype=dtype),
        )

    def albedo(self, texture: Tensor) -> tuple[Tensor, Tensor]:
        """Texture coefficients (B, T) -> (albedo map (B, H, W, 3), vertex colours (B, V, 3))."""
        if texture.ndim != 2 or texture.shape[1] != self.num_texture_params:
            raise ValueError(
                f"{self.name}: texture must have shape (B, {self.num_texture_params}), "
                f"got {tuple(texture.shape)}"
            )
        tex = self.texture_mean + torch.einsum("bt,thwc->bhwc", texture, self.texture_basis)
        vc = self.vertex_color_mean + torch.einsum("bt,tvc->bvc", texture, self.vertex_color_basis)
        return tex.clamp(0, 1), vc.clamp(0, 1)

    def forward(
        self,
        global_orient: Tensor | None = None,
        hand_pose: Tensor | None = None,
        betas: Tensor | None = None,
        transl: Tensor | None = None,
        texture: Tensor | None = None,
    ) -> HandOutput:
        """See ``SkinnedHand.forward``; ``texture`` (B, T) adds the albedo outputs (one of
        batch 1 shared by the batch, and a batch of textures for one pose, alike)."""
        if texture is not None:
            b = self._batch_size(global_orient=global_orient, hand_pose=hand_pose,
                                 betas=betas, transl=transl, texture=texture)  # fmt: skip
            texture = self._param(texture, b, self.num_texture_params, "texture")
            if b > 1 and all(t is None or len(t) == 1
                             for t in (global_orient, hand_pose, betas, transl)):  # fmt: skip
                # (one pose for many skins: the pose's batch made the textures')
                global_orient = (
                    torch.zeros(b, 3, dtype=texture.dtype, device=texture.device)
                    if global_orient is None else global_orient.expand(b, -1))  # fmt: skip
        out = super().forward(global_orient, hand_pose, betas, transl)
        if texture is not None:
            out.texture, out.vertex_colors = self.albedo(texture)
        return out
