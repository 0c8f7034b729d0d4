"""A skinned hand model in MANO's layout: its data (validated arrays) and its PyTorch layer.

MANO and OpenHand are both instances: a template, a linear shape space, pose correctives,
a sparse joint regressor, a 16-joint tree with skinning weights, five fingertip vertices, a
mean pose and a PCA pose basis. ``SkinnedHandData`` holds and checks those arrays;
``SkinnedHand`` is the thin ``nn.Module`` that runs ``lbs`` on them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import Tensor

from .base import HandModel, HandOutput
from .joints import MANO_JOINT_NAMES, NATIVE_TO_FREIHAND
from .rig import Rig, posed, rig_subset

# The reflection x -> -x that turns a right hand into a left one (DESIGN: left = mirrored right).
MIRROR = np.array([-1.0, 1.0, 1.0])


@dataclass(frozen=True)
class SkinnedHandData:
    """Arrays of a skinned hand model, NumPy, metres. J joints, V vertices.

    Attributes:
        v_template: (V, 3) rest template (flat hand for MANO).
        shapedirs: (V, 3, S) shape basis.
        posedirs: (V, 3, (J - 1) * 9) pose-corrective basis, or None.
        j_regressor: (J, V) dense joint regressor.
        parents: (J,) int, parents[0] == -1.
        weights: (V, J) skinning weights.
        faces: (F, 3) int, counter-clockwise seen from outside.
        tip_vertices: (5,) int, fingertip vertices: thumb, index, middle, ring, little.
        hands_mean: ((J - 1) * 3,) relaxed mean pose, axis-angle.
        hands_components: (C, (J - 1) * 3) PCA pose basis, rows are components.
        side: "right" or "left".
        name: model name used in messages.
        uvs: (T, 2) texture coordinates, or None.
        face_uvs: (F, 3) int indices into ``uvs``, or None.
        joint_names: native joint names.
        source: where the arrays came from (file path), for messages.
    """

    v_template: np.ndarray
    shapedirs: np.ndarray
    posedirs: np.ndarray | None
    j_regressor: np.ndarray
    parents: np.ndarray
    weights: np.ndarray
    faces: np.ndarray
    tip_vertices: np.ndarray
    hands_mean: np.ndarray
    hands_components: np.ndarray
    side: str = "right"
    name: str = "hand"
    uvs: np.ndarray | None = None
    face_uvs: np.ndarray | None = None
    joint_names: tuple[str, ...] = MANO_JOINT_NAMES
    source: str = "<arrays>"

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check shapes and invariants; raise ``ValueError`` naming the source and the field."""
        src = self.source

        def fail(msg: str) -> None:
            raise ValueError(f"{src}: {msg}")

        def shape(name: str, arr: np.ndarray | None, want: tuple) -> None:
            if arr is None:
                fail(f"'{name}' is missing")
            if arr.ndim != len(want) or any(
                w is not None and a != w for a, w in zip(arr.shape, want, strict=True)
            ):
                expected = tuple("*" if w is None else w for w in want)
                fail(f"'{name}' has shape {arr.shape}, expected {expected}")
            if not np.all(np.isfinite(arr)):
                fail(f"'{name}' contains NaN or inf")

        v = self.v_template.shape[0] if self.v_template.ndim == 2 else -1
        j = self.parents.shape[0] if self.parents.ndim == 1 else -1
        shape("v_template", self.v_template, (None, 3))
        shape("parents", self.parents, (None,))
        shape("shapedirs", self.shapedirs, (v, 3, None))
        if self.posedirs is not None:
            shape("posedirs", self.posedirs, (v, 3, (j - 1) * 9))
        shape("j_regressor", self.j_regressor, (j, v))
        shape("weights", self.weights, (v, j))
        shape("faces", self.faces, (None, 3))
        shape("tip_vertices", self.tip_vertices, (5,))
        shape("hands_mean", self.hands_mean, ((j - 1) * 3,))
        shape("hands_components", self.hands_components, (None, (j - 1) * 3))
        if j != len(MANO_JOINT_NAMES):
            fail(f"'parents' has {j} joints: these layers have MANO's {len(MANO_JOINT_NAMES)} "
                 "in MANO's order (joints.MANO_JOINT_NAMES), from which the 21 FreiHAND "
                 "keypoints are read (joints.NATIVE_TO_FREIHAND)")  # fmt: skip
        if (
            self.parents[0] != -1
            or np.any(self.parents[1:] < 0)
            or np.any(self.parents[1:] >= np.arange(1, j))
        ):
            got = self.parents.tolist()
            fail(f"'parents' must start with -1 and list each joint after its parent, got {got}")
        if self.faces.min() < 0 or self.faces.max() >= v:
            fail(f"'faces' index vertices outside [0, {v})")
        edges = np.sort(self.faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), axis=1)
        _, uses = np.unique(edges, axis=0, return_counts=True)
        if (uses > 2).any():  # the renderer's silhouettes need a manifold surface
            fail(f"'faces': {(uses > 2).sum()} edge(s) shared by more than two faces "
                 "(non-manifold)")  # fmt: skip
        extent = float(np.ptp(self.v_template, axis=0).max())
        if not 0.02 < extent < 1.0:
            fail(f"'v_template' spans {extent:.3g}: expected metres (a hand spans about "
                 "0.2)")  # fmt: skip
        if self.tip_vertices.min() < 0 or self.tip_vertices.max() >= v:
            fail(f"'tip_vertices' outside [0, {v})")
        if not np.allclose(self.weights.sum(1), 1.0, atol=1e-4):
            fail("'weights' rows must sum to 1")
        if not np.allclose(self.j_regressor.sum(1), 1.0, atol=1e-4):
            fail("'j_regressor' rows must sum to 1")
        if self.side not in ("right", "left"):
            fail(f"side must be 'right' or 'left', got {self.side!r}")
        if (self.uvs is None) != (self.face_uvs is None):
            fail("'uvs' and 'face_uvs' come together")
        if self.face_uvs is not None:
            shape("face_uvs", self.face_uvs, (self.faces.shape[0], 3))

    @property
    def rest_joints(self) -> np.ndarray:
        """(J, 3) joints of the template."""
        return self.j_regressor @ self.v_template


def mirror_axis_angle(aa: np.ndarray | Tensor) -> np.ndarray | Tensor:
    """Axis-angle of the mirrored rotation S R S, S = diag(-1, 1, 1): (x, y, z) -> (x, -y, -z).

    Args:
        aa: (..., 3k) concatenated axis-angle vectors (or matrix rows of them).
    """
    sign = np.tile(np.array([1.0, -1.0, -1.0]), aa.shape[-1] // 3)
    if isinstance(aa, Tensor):
        return aa * torch.as_tensor(sign, dtype=aa.dtype, device=aa.device)
    return aa * sign


def mirror_data(data: SkinnedHandData) -> SkinnedHandData:
    """The model of the other hand: every vertex mirrored x -> -x, parameters mirrored to match.

    For any parameters, ``SkinnedHand(mirror_data(d))(p)`` equals the output of
    ``SkinnedHand(d)`` at the mirrored parameters, with every point mirrored.
    """
    s = MIRROR
    posedirs = None
    if data.posedirs is not None:
        # Pose features are (R - I) per joint; mirroring R to S R S scales entry (i, j) by s_i s_j.
        feat_sign = np.tile(np.outer(s, s).ravel(), data.posedirs.shape[-1] // 9)
        posedirs = data.posedirs * s[None, :, None] * feat_sign[None, None, :]
    flip = [0, 2, 1]
    return replace(
        data,
        v_template=data.v_template * s,
        shapedirs=data.shapedirs * s[None, :, None],
        posedirs=posedirs,
        faces=data.faces[:, flip],
        face_uvs=None if data.face_uvs is None else data.face_uvs[:, flip],
        hands_mean=mirror_axis_angle(data.hands_mean),
        hands_components=mirror_axis_angle(data.hands_components),
        side="left" if data.side == "right" else "right",
    )


def handedness(data: SkinnedHandData) -> str:
    """Which hand a model in MANO's frame is, from its template joints.

    MANO's frame puts the palm normal along y: (middle MCP - wrist) x (index MCP - little MCP)
    points to +y for a right hand and to -y for its mirror image.
    """
    j = data.rest_joints
    names = list(data.joint_names)
    w, m = j[names.index("wrist")], j[names.index("middle_mcp")]
    i, l = j[names.index("index_mcp")], j[names.index("little_mcp")]
    return "right" if np.cross(m - w, i - l)[1] > 0 else "left"


class SkinnedHand(HandModel):
    """PyTorch layer over ``SkinnedHandData`` with the smplx-style call.

    Args:
        data: the model's arrays.
        use_pca: ``hand_pose`` holds PCA coefficients instead of 45 axis-angle numbers.
        num_pca_comps: number of PCA components used when ``use_pca``.
        flat_hand_mean: if True, ``hand_pose = 0`` is the flat template hand; if False, the
            relaxed ``hands_mean`` is added to the hand pose (MANO's original behaviour).
        num_betas: number of shape components used.
        dtype: float32 or float64.
    """

    def __init__(
        self,
        data: SkinnedHandData,
        use_pca: bool = False,
        num_pca_comps: int = 45,
        flat_hand_mean: bool = True,
        num_betas: int | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        num_betas = data.shapedirs.shape[2] if num_betas is None else num_betas
        n_hand = data.hands_mean.shape[0]
        if not 1 <= num_betas <= data.shapedirs.shape[2]:
            raise ValueError(f"{data.source}: num_betas must be in [1, {data.shapedirs.shape[2]}]")
        if use_pca and not 1 <= num_pca_comps <= data.hands_components.shape[0]:
            raise ValueError(
                f"{data.source}: num_pca_comps must be in [1, {data.hands_components.shape[0]}]"
            )
        self.data = data
        self.name = data.name
        self.side = data.side
        self.use_pca = use_pca
        self.flat_hand_mean = flat_hand_mean
        self.num_pca_comps = num_pca_comps if use_pca else 0
        self.num_pose_params = num_pca_comps if use_pca else n_hand
        self.num_shape_params = num_betas
        self.joint_names = data.joint_names

        def buf(name: str, arr: np.ndarray, dt: torch.dtype = dtype) -> None:
            self.register_buffer(name, torch.as_tensor(np.ascontiguousarray(arr), dtype=dt))

        buf("v_template", data.v_template)
        buf("shapedirs", data.shapedirs[:, :, :num_betas])
        v = data.v_template.shape[0]
        if data.posedirs is not None:
            # (V, 3, P) -> (P, V * 3) so the correctives are one matmul.
            buf("posedirs", data.posedirs.reshape(v * 3, -1).T)
        else:
            self.register_buffer("posedirs", None)
        buf("j_regressor", data.j_regressor)
        buf("weights", data.weights)
        buf("faces", data.faces, torch.long)
        buf("parents", data.parents, torch.long)
        buf("tip_vertices", data.tip_vertices, torch.long)
        buf("native_to_freihand", np.asarray(NATIVE_TO_FREIHAND), torch.long)
        mean = np.zeros_like(data.hands_mean) if flat_hand_mean else data.hands_mean
        buf("hand_mean", mean)
        buf("hands_components", data.hands_components[: max(num_pca_comps, 1)])
        if data.uvs is not None:
            buf("uvs", data.uvs)
            buf("face_uvs", data.face_uvs, torch.long)
        else:
            self.register_buffer("uvs", None)
            self.register_buffer("face_uvs", None)
        # (sources, their state, the rig, its fingertips' subset), see ``rig``
        self._rig: tuple[tuple[Tensor, ...], tuple, Rig, Rig] | None = None

    def __getstate__(self) -> dict:
        # The rig is a cache of the buffers: copies and pickles make their own when used
        # (a pickle then holds no oneDNN-packed tensor and names no class of the cache).
        state = super().__getstate__()
        state["_rig"] = None
        return state

    def rig(self, tips: bool = False) -> Rig:
        """The buffers rearranged for the forward pass (``rig.Rig``; ``tips``: its subset
        posing only the fingertip vertices, for ``keypoints``), rebuilt whenever one of the
        buffers (or ``tip_vertices``) was replaced (``to``, ``load_state_dict``, assignment,
        ``.data``) or changed in place."""
        sources = (self.v_template, self.shapedirs, self.posedirs, self.j_regressor,
                   self.parents, self.weights, self.tip_vertices)  # fmt: skip
        # Version counters see in-place edits, data pointers ``.data`` swaps; inference
        # tensors have no version counter (they cannot be edited outside inference mode).
        state = tuple(
            None if t is None else (t.data_ptr(), -1 if t.is_inference() else t._version)
            for t in sources
        )
        cached = getattr(self, "_rig", None)  # None too for a layer unpickled from before
        if (
            cached is None
            or cached[1] != state
            or any(a is not b for a, b in zip(cached[0], sources, strict=True))
        ):
            # The cache holds the sources themselves, so an identity test cannot be fooled
            # by a new tensor reusing a freed one's id or memory.
            rig = Rig.build(*sources[:-1])
            cached = self._rig = (sources, state, rig, rig_subset(rig, self.tip_vertices.tolist()))
        return cached[3] if tips else cached[2]

    def _inputs(self, global_orient, hand_pose, betas, transl) -> tuple[Tensor, ...]:
        """``forward``'s inputs checked (missing ones zeros of the batch size), and the
        full pose (B, J * 3): (global_orient, hand_pose, betas, transl, full_pose)."""
        b = self._batch_size(global_orient=global_orient, hand_pose=hand_pose, betas=betas,
                             transl=transl)  # fmt: skip
        global_orient = self._param(global_orient, b, 3, "global_orient")
        hand_pose = self._param(hand_pose, b, self.num_pose_params, "hand_pose")
        betas = self._param(betas, b, self.num_shape_params, "betas")
        transl = self._param(transl, b, 3, "transl")
        full_pose = torch.cat([global_orient, self.expand_hand_pose(hand_pose)], dim=1)
        return global_orient, hand_pose, betas, transl, full_pose

    def joint_transforms(
        self,
        global_orient: Tensor | None = None,
        hand_pose: Tensor | None = None,
        betas: Tensor | None = None,
        transl: Tensor | None = None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """The skinning behind ``forward``: (world (B, J, 4, 4): each native joint's world
        transform at this pose, its frame's rotation and its posed location, ``transl``
        included; rest_joints (B, J, 3) and rest_vertices (B, V, 3): the shape unposed),
        metres. Linear blend skinning of the rest vertices by ``world`` (each joint's rest
        location removed) is ``forward``'s vertices, plus pose correctives where
        ``posedirs`` is not None: a rigged mesh's bind pose and joints (``export``'s skinned
        glTF)."""
        from .lbs import batch_rigid_transform, batch_rodrigues

        *_, betas, transl, full_pose = self._inputs(global_orient, hand_pose, betas, transl)
        shaped = self.v_template + torch.einsum("bs,vcs->bvc", betas, self.shapedirs)
        rest = torch.einsum("jv,bvc->bjc", self.j_regressor, shaped)
        rot = batch_rodrigues(full_pose.view(len(full_pose), -1, 3))
        posed_joints, rel = batch_rigid_transform(rot, rest, self.parents)
        world = rel.clone()
        world[..., :3, 3] = posed_joints + transl[:, None]
        return world, rest, shaped

    def keypoints(
        self,
        global_orient: Tensor | None = None,
        hand_pose: Tensor | None = None,
        betas: Tensor | None = None,
        transl: Tensor | None = None,
    ) -> Tensor:
        """(B, 21, 3) ``forward``'s keypoints, posing the joints and the five fingertip
        vertices only (the same numbers; see ``HandModel.keypoints``)."""
        *_, betas, transl, full_pose = self._inputs(global_orient, hand_pose, betas, transl)
        tips, joints = posed(self.rig(tips=True), betas, full_pose)
        points = torch.cat([joints, tips], dim=1) + transl[:, None]
        return points[:, self.native_to_freihand]

    def _dtype(self) -> torch.dtype:
        return self.v_template.dtype

    @property
    def num_vertices(self) -> int:
        return self.v_template.shape[0]

    def expand_hand_pose(self, hand_pose: Tensor) -> Tensor:
        """Hand pose as given (PCA or axis-angle) to the 45 axis-angle numbers used by LBS.

        Args:
            hand_pose: (B, num_pose_params).
        Returns:
            (B, (J - 1) * 3), ``hands_mean`` included unless ``flat_hand_mean``.
        """
        full = hand_pose @ self.hands_components if self.use_pca else hand_pose
        return full if self.flat_hand_mean else full + self.hand_mean

    def forward(
        self,
        global_orient: Tensor | None = None,
        hand_pose: Tensor | None = None,
        betas: Tensor | None = None,
        transl: Tensor | None = None,
        texture: Tensor | None = None,
    ) -> HandOutput:
        """Pose and shape the hand.

        Args:
            global_orient: (B, 3) root rotation about the wrist joint, axis-angle.
            hand_pose: (B, num_pose_params) PCA coefficients or axis-angle of 15 joints.
            betas: (B, num_shape_params) shape coefficients.
            transl: (B, 3) translation in metres.
            texture: unused here (no texture space); accepted for the common interface.
        Missing arguments are zeros of the common batch size.
        Returns:
            ``HandOutput`` with vertices (B, V, 3), joints (B, 21, 3) in FreiHAND order,
            joints_native (B, 16, 3), metres.
        """
        if texture is not None:
            raise ValueError(f"{self.name}: this model has no texture space")
        global_orient, hand_pose, betas, transl, full_pose = self._inputs(
            global_orient, hand_pose, betas, transl
        )
        verts, joints = posed(self.rig(), betas, full_pose, transl)
        keypoints = torch.cat([joints, verts[:, self.tip_vertices]], dim=1)[
            :, self.native_to_freihand
        ]
        return HandOutput(
            vertices=verts,
            joints=keypoints,
            joints_native=joints,
            faces=self.faces,
            full_pose=full_pose,
            betas=betas,
            global_orient=global_orient,
            hand_pose=hand_pose,
            transl=transl,
        )
