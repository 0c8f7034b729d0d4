"""The hand layer's fast forward pass: a model's arrays rearranged once (``Rig``) and posed
by ``posed``, the same numbers as ``lbs.lbs`` with about a third of its tensor operations.

``lbs.lbs`` is the readable statement of the model; what moves to construction here: joints
regressed from the template and the shape basis (they are linear in the betas), the local
joint offsets (also linear), pose correctives' "- I" (a constant), vertices stored
component-major (the layout skinning wants), and the joints listed depth by depth, so that
every level of the kinematic tree is one matmul on a contiguous slice, without scatter. A
small batch (a fit runs batch 1-4 for tens of steps per photo) pays for the number of
operations; from ``_WIDE_BATCH`` samples on, the per-joint work runs component-major (the
batch on the contiguous axis; see the section at the end).

Notation: B batch, V vertices, J joints, S shape components.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from .lbs import _rodrigues_constants, _skin, batch_rodrigues, tree_levels
from .packed import PackedMatrix


@dataclass(frozen=True)
class LevelOrder:
    """A joint tree listed depth by depth (the root first), for slicing instead of indexing.

    Attributes:
        order: (J,) native joint index of each level-order position.
        spans: [start, stop) of each depth in level order, depth 0 (the root) first.
        parent_pos: for every depth >= 1, the positions of the joints' parents within the
            previous depth's span; None where that is (0, 1, ..., n - 1) itself.
    """

    order: tuple[int, ...]
    spans: tuple[tuple[int, int], ...]
    parent_pos: tuple[tuple[int, ...] | None, ...]

    @staticmethod
    def of(parents: Sequence[int]) -> LevelOrder:
        """The level order of a tree with ``parents[0] == -1`` and ``parents[j] < j``."""
        levels = [[0]] + [lv.tolist() for lv in tree_levels(torch.as_tensor(list(parents)))]
        order = tuple(j for lv in levels for j in lv)
        spans, start = [], 0
        for lv in levels:
            spans.append((start, start + len(lv)))
            start += len(lv)
        parent_pos = []
        for prev, lv in zip(levels, levels[1:], strict=False):
            pos = tuple(prev.index(parents[j]) for j in lv)
            parent_pos.append(None if pos == tuple(range(len(prev))) else pos)
        return LevelOrder(order, tuple(spans), tuple(parent_pos))


def chain_frames(local: Tensor, tree: LevelOrder) -> Tensor:
    """World frames of a joint tree from its local frames, one matmul per depth.

    Args:
        local: (B, J, 4, 4) local frames [R | t; 0 0 0 1] in ``tree``'s level order.
        tree: the level order.
    Returns:
        (B, J, 3, 4) world frames [R | t] in level order.
    """
    s, e = tree.spans[0]
    prev = local[:, s:e, :3]
    frames = [prev]
    for (s, e), pos in zip(tree.spans[1:], tree.parent_pos, strict=True):
        if pos is None:
            parent = prev
        elif len(set(pos)) == 1:  # one parent for the whole level: broadcast, no copy
            parent = prev[:, pos[0] : pos[0] + 1]
        else:
            parent = prev[:, list(pos)]
        prev = parent @ local[:, s:e]
        frames.append(prev)
    return torch.cat(frames, 1)


@dataclass(frozen=True)
class Rig:
    """A skinned model's arrays rearranged for ``posed``. J joints, V vertices, S shapes.

    Attributes:
        tree: the joints' level order.
        order: (J,) long, ``tree.order`` as a tensor; None when it is the identity.
        inverse: (J,) long, native joint -> level-order position; None with ``order``.
        constant: (3V + 6J,) the linear part at zero betas: vertices (component-major, pose
            correctives' constant included), rest joints (J, 3) and local joint offsets (J, 3),
            both in level order.
        basis: (S [+ (J - 1) * 9], 3V + 6J) the same per unit of each shape coefficient,
            then (``pose_correctives``) per unit of each rotation entry of the non-root
            joints in level order (zero on the joint columns): shape and pose correctives
            in one GEMM.
        pose_correctives: whether ``basis`` holds the pose correctives' rows.
        weights: (V, J) skinning weights, columns in level order.
        bottom: (1, 1, 1, 4) the constant last row [0, 0, 0, 1] of a frame.
        linear: ``coeffs -> constant + coeffs @ basis`` as one product with the matrix
            packed once (``packed.PackedMatrix``), made from those two.
    """

    tree: LevelOrder
    order: Tensor | None
    inverse: Tensor | None
    constant: Tensor
    basis: Tensor
    pose_correctives: bool
    weights: Tensor
    bottom: Tensor
    linear: PackedMatrix = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Derived, so that ``dataclasses.replace`` and direct construction stay consistent.
        object.__setattr__(self, "linear", PackedMatrix(self.basis.T, self.constant))

    @staticmethod
    @torch.no_grad()
    @torch.inference_mode(False)  # a cached rig must serve autograd, even if made under it
    def build(
        v_template: Tensor,
        shapedirs: Tensor,
        posedirs: Tensor | None,
        j_regressor: Tensor,
        parents: Tensor,
        weights: Tensor,
    ) -> Rig:
        """Arguments as ``lbs`` takes them; computed in float64, stored in their dtype."""
        dtype, device = v_template.dtype, v_template.device
        tree = LevelOrder.of(parents.tolist())
        n_v, n_j = v_template.shape[0], len(tree.order)
        order = torch.tensor(tree.order, device=device)
        f64 = {"dtype": torch.float64, "device": device}
        # Template and basis as one (1 + S, V, 3) stack: every derived part is linear in it.
        stack = torch.cat([v_template[None], shapedirs.permute(2, 0, 1)]).to(**f64)
        rest = j_regressor.to(**f64)[order] @ stack  # (1 + S, J, 3), level order
        parent = torch.tensor([-1] + [tree.order.index(parents[j].item()) for j in tree.order[1:]])
        local = rest.clone()
        local[:, 1:] -= rest[:, parent[1:]]
        lin = torch.cat([stack.transpose(1, 2).flatten(1), rest.flatten(1), local.flatten(1)], 1)
        basis = lin[1:]
        if posedirs is not None:
            # Rows: joint j's 9 entries, native order -> level order; columns: v*3+c -> c*V+v.
            rows = torch.cat([torch.arange(9) + 9 * (j - 1) for j in tree.order[1:]])
            pd = posedirs.to(**f64)[rows.to(device)].view(-1, n_v, 3).transpose(1, 2)
            pd = pd.flatten(1)
            eye = torch.eye(3, **f64).flatten().repeat(n_j - 1)
            lin[0, : 3 * n_v] -= eye @ pd  # features are R - I: move "- I" into the constant
            basis = torch.cat([basis, torch.nn.functional.pad(pd, (0, 6 * n_j))])
        identity = tree.order == tuple(range(n_j))
        return Rig(
            tree=tree,
            order=None if identity else order,
            inverse=None if identity else torch.argsort(order),
            constant=lin[0].to(dtype),
            basis=basis.to(dtype),
            pose_correctives=posedirs is not None,
            weights=weights[:, order].contiguous(),
            bottom=torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=dtype, device=device).view(1, 1, 1, 4),
        )


def rig_subset(rig: Rig, vertex_ids: Sequence[int]) -> Rig:
    """The same rig posing only the vertices ``vertex_ids`` (its joints unchanged): what a
    fit that compares joints and fingertips needs at every step, without the mesh."""
    n_v = rig.weights.shape[0]
    ids = torch.as_tensor(list(vertex_ids), dtype=torch.long, device=rig.weights.device)
    cols_v = (torch.arange(3, device=ids.device)[:, None] * n_v + ids).flatten()
    cols = torch.cat([cols_v, torch.arange(3 * n_v, rig.constant.shape[0], device=ids.device)])
    return Rig(
        tree=rig.tree,
        order=rig.order,
        inverse=rig.inverse,
        constant=rig.constant[cols],
        basis=rig.basis[:, cols],
        pose_correctives=rig.pose_correctives,
        weights=rig.weights[ids],
        bottom=rig.bottom,
    )


def posed(
    rig: Rig, betas: Tensor, full_pose: Tensor, transl: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """``lbs`` on a ``Rig``: the same vertices and joints.

    Args:
        rig: the model, from ``Rig.build``.
        betas: (B, S) shape coefficients.
        full_pose: (B, J * 3) axis-angle of every joint in native order, root first.
        transl: (B, 3) metres added to every vertex and joint, or None.
    Returns:
        vertices: (B, V, 3), a transposed view of a (B, 3, V) tensor (see ``skin_vertices``).
        joints: (B, J, 3) posed joints, native order.
    """
    b = betas.shape[0]
    # (under autocast the chain's elementwise products would round each term to 16 bits,
    # where a matmul accumulates in float32)
    if b >= _WIDE_BATCH and not torch.is_autocast_enabled(betas.device.type):
        return _posed_wide(rig, betas, full_pose, transl)
    n_j, n_v = len(rig.tree.order), rig.weights.shape[0]
    pose = full_pose.view(b, n_j, 3)
    if rig.order is not None:
        pose = pose[:, rig.order]
    rot = batch_rodrigues(pose)  # (B, J, 3, 3), level order
    coeffs = torch.cat([betas, rot[:, 1:].flatten(1)], 1) if rig.pose_correctives else betas
    lin = rig.linear(coeffs)
    # split, not slices: its backward is one cat, theirs one zero-filled copy each
    v, rest, offsets = lin.split([3 * n_v, 3 * n_j, 3 * n_j], 1)
    rest, offsets = rest.view(b, n_j, 3, 1), offsets.view(b, n_j, 3, 1)
    local = torch.cat([torch.cat([rot, offsets], -1), rig.bottom.expand(b, n_j, 1, 4)], -2)
    world = chain_frames(local, rig.tree)  # (B, J, 3, 4)
    rot_w, joints = world[..., :3], world[..., 3]
    # Frames relative to the rest pose: a rest point x goes to R_w (x - rest) + t_w.
    shift = joints - (rot_w @ rest)[..., 0]
    rows = torch.cat([rot_w.permute(0, 3, 2, 1), shift.transpose(1, 2)[:, None]], 1)
    return _placed(rig, _skin(v.view(b, 3, n_v), rows, rig.weights), joints, transl)


def _placed(rig: Rig, verts: Tensor, joints: Tensor, transl: Tensor | None
            ) -> tuple[Tensor, Tensor]:  # fmt: skip
    """Both routes' end: skinned vertices (B, 3, V) and level-order joints (B, J, 3) moved by
    ``transl`` and returned as ``posed`` documents them."""
    if transl is not None:
        # In place where the type stays (the skinned vertices are a fresh tensor); otherwise
        # promoted as an ordinary sum would be (float64 translations, autocast's bfloat16).
        t = transl[:, :, None]
        same = torch.result_type(verts, t) == verts.dtype
        verts = verts.add_(t) if same else verts + t
        joints = joints + transl[:, None]
    if rig.inverse is not None:
        joints = joints[:, rig.inverse]
    return verts.transpose(1, 2), joints


# --- The same, the batch along the contiguous axis -------------------------------------------
#
# From ``_WIDE_BATCH`` samples on, ``posed`` keeps every per-joint quantity component-major
# (a rotation as (3, 3, J, B), a joint as (3, J, B)): Rodrigues becomes one pass of
# elementwise operations over J x B angles and one GEMM, and each depth of the kinematic
# chain a broadcast product over the batch, where the batch-first layout runs thousands of
# 3 x 4 matrix products one by one (batch 64: 6-9 % of the layer, forward and backward).
# Below it the number of operations is what costs, and the batch-first layout needs fewer
# (at batch 8 it is 4-7 % faster; at 16-24 the two are about even).
_WIDE_BATCH = 32


def rodrigues_columns(rotvec: Tensor) -> Tensor:
    """``batch_rodrigues`` on component-major vectors (the same formulas and numbers).

    Args:
        rotvec: (3, N) axis-angle vectors as columns, radians.
    Returns:
        (9, N) the rotation matrices' entries, row-major, as columns.
    """
    floor, halves, m1, m0, to_r = _rodrigues_constants(rotvec.dtype, rotvec.device)
    theta_sq = (rotvec * rotvec).sum(0, keepdim=True)  # (1, N)
    theta = (theta_sq + floor).sqrt()
    s = (halves[:, None] * theta).sin() / theta  # (2, N)
    ab = s * torch.addcmul(m0[:, None], s, m1[:, None])
    a, b = ab[:1], ab[1:]
    outer = (b * rotvec)[:, None] * rotvec[None]  # (3, 3, N)
    feats = torch.cat([1.0 - b * theta_sq, a * rotvec, outer.flatten(0, 1)], 0)  # (13, N)
    return to_r.T @ feats


def chain_frames_columns(local: Tensor, tree: LevelOrder) -> Tensor:
    """``chain_frames`` on component-major frames.

    Args:
        local: (3, 4, J, B) local frames [R | t] (the last row [0 0 0 1] implied), joints in
            ``tree``'s level order.
        tree: the joints' level order (``LevelOrder``).
    Returns:
        (3, 4, J, B) world frames [R | t].
    """
    s, e = tree.spans[0]
    prev = local[:, :, s:e]
    frames = [prev]
    for (s, e), pos in zip(tree.spans[1:], tree.parent_pos, strict=True):
        if pos is None:
            parent = prev
        elif len(set(pos)) == 1:  # one parent for the whole level: broadcast, no copy
            parent = prev[:, :, pos[0] : pos[0] + 1]
        else:
            parent = prev[:, :, list(pos)]
        # [R_p | t_p] [R | t; 0 1] = [R_p R | R_p t + t_p]
        prev = (parent[:, :3, None] * local[None, :, :, s:e]).sum(1)
        prev[:, 3].add_(parent[:, 3])  # (not +=: its write-back is one more operation)
        frames.append(prev)
    return torch.cat(frames, 2)


def _posed_wide(
    rig: Rig, betas: Tensor, full_pose: Tensor, transl: Tensor | None
) -> tuple[Tensor, Tensor]:
    """``posed`` (same arguments and results) with the per-joint work component-major."""
    b = betas.shape[0]
    n_j, n_v = len(rig.tree.order), rig.weights.shape[0]
    pose = full_pose.view(b, n_j, 3).permute(2, 1, 0)  # (3, J, B), a view
    # index_select writes a contiguous result (indexing would keep the view's strides)
    pose = pose.reshape(3, -1) if rig.order is None else pose.index_select(1, rig.order)
    rot = rodrigues_columns(pose.view(3, -1)).view(3, 3, n_j, b)
    if rig.pose_correctives:  # (B, (J - 1) * 9), as the basis's rows
        coeffs = torch.cat([betas, rot.permute(3, 2, 0, 1)[:, 1:].reshape(b, -1)], 1)
    else:
        coeffs = betas
    lin = rig.linear(coeffs)
    v, rest, offsets = lin.split([3 * n_v, 3 * n_j, 3 * n_j], 1)
    rest = rest.view(b, n_j, 3).permute(2, 1, 0)  # (3, J, B)
    offsets = offsets.view(b, n_j, 3).permute(2, 1, 0)
    world = chain_frames_columns(torch.cat([rot, offsets[:, None]], 1), rig.tree)
    rot_w, joints = world[:, :3], world[:, 3]  # (3, 3, J, B), (3, J, B)
    # Frames relative to the rest pose, as in ``posed``; rows (B, 4, 3, J) for ``_skin``.
    shift = joints - (rot_w * rest[None]).sum(1)
    rows = torch.cat([rot_w, shift[:, None]], 1).permute(3, 1, 0, 2).contiguous()
    verts = _skin(v.view(b, 3, n_v), rows, rig.weights)
    # (B, J, 3) laid out as the batch-first route's
    return _placed(rig, verts, joints.permute(2, 1, 0).contiguous(), transl)
