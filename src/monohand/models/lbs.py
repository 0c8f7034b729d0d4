"""Linear blend skinning: the functional core shared by every hand model.

Pure tensor functions, batch first, no Python loop over the batch or the vertices. The
kinematic chain loops over the *depth* of the joint tree (3 levels for MANO), composing all
joints of one level in a single batched matmul.

Notation: B batch, V vertices, J joints, S shape components, P = (J - 1) * 9 pose features.
"""

from __future__ import annotations

import torch
from torch import Tensor

# Below this squared angle Rodrigues' coefficients come from their Taylor series; the first
# dropped term is theta^6 / 5040 < 2e-16, so the switch is invisible in float64.
_SMALL_ANGLE_SQ = 1e-4


def skew(v: Tensor) -> Tensor:
    """Cross-product matrices.

    Args:
        v: (..., 3) vectors.
    Returns:
        (..., 3, 3) matrices K with K @ x == cross(v, x).
    """
    x, y, z = v.unbind(-1)
    o = torch.zeros_like(x)
    return torch.stack([o, -z, y, z, o, -x, -y, x, o], dim=-1).reshape(*v.shape[:-1], 3, 3)


def batch_rodrigues(rotvec: Tensor) -> Tensor:
    """Axis-angle vectors to rotation matrices, exact and smooth at and near zero angle.

    R = I + a K + b K^2 with K = skew(r), a = sin(t)/t, b = (1 - cos t)/t^2, t = |r|. The
    coefficients use 2 sin^2(t/2) instead of 1 - cos(t) (no cancellation in float32) and their
    Taylor series near t = 0, where the closed forms are 0/0; the square root is never taken of
    zero, so gradients stay finite.

    Args:
        rotvec: (..., 3) axis-angle vectors in radians.
    Returns:
        (..., 3, 3) rotation matrices, same dtype and device.
    """
    theta_sq = (rotvec * rotvec).sum(-1)
    small = theta_sq < _SMALL_ANGLE_SQ
    theta = torch.sqrt(torch.where(small, torch.ones_like(theta_sq), theta_sq))
    half_sin = torch.sin(0.5 * theta)
    a = torch.where(small, 1.0 - theta_sq / 6.0 + theta_sq**2 / 120.0, torch.sin(theta) / theta)
    b = torch.where(
        small,
        0.5 - theta_sq / 24.0 + theta_sq**2 / 720.0,
        2.0 * half_sin**2 / theta_sq.clamp_min(_SMALL_ANGLE_SQ),
    )
    k = skew(rotvec)
    eye = torch.eye(3, dtype=rotvec.dtype, device=rotvec.device)
    return eye + a[..., None, None] * k + b[..., None, None] * (k @ k)


def blend_shapes(betas: Tensor, shapedirs: Tensor) -> Tensor:
    """Vertex offsets of the shape space.

    Args:
        betas: (B, S) shape coefficients.
        shapedirs: (V, 3, S) shape basis, metres per unit coefficient.
    Returns:
        (B, V, 3) offsets in metres.
    """
    return torch.einsum("bs,vcs->bvc", betas, shapedirs)


def pose_features(rot_mats: Tensor) -> Tensor:
    """MANO/SMPL pose-corrective features: R - I of every non-root joint (MANO's ``lrotmin``).

    Args:
        rot_mats: (B, J, 3, 3) local joint rotations, root first.
    Returns:
        (B, (J - 1) * 9) features, row-major per joint.
    """
    eye = torch.eye(3, dtype=rot_mats.dtype, device=rot_mats.device)
    return (rot_mats[:, 1:] - eye).flatten(1)


def vertices2joints(j_regressor: Tensor, vertices: Tensor) -> Tensor:
    """Joint locations as fixed linear combinations of vertices.

    Args:
        j_regressor: (J, V) regression weights (rows usually sum to 1).
        vertices: (B, V, 3).
    Returns:
        (B, J, 3).
    """
    return torch.einsum("jv,bvc->bjc", j_regressor, vertices)


def tree_levels(parents: Tensor) -> list[Tensor]:
    """Group joints by their depth in the kinematic tree.

    Args:
        parents: (J,) long, parents[0] == -1 and parents[j] < j for every other joint.
    Returns:
        One (n_d,) long tensor per depth d >= 1 with the joints of that depth; the root is
        depth 0 and is not listed.
    """
    p = parents.tolist()
    depth = [0] * len(p)
    for j in range(1, len(p)):
        depth[j] = depth[p[j]] + 1
    return [
        torch.tensor([j for j in range(len(p)) if depth[j] == d], dtype=torch.long)
        for d in range(1, max(depth, default=0) + 1)
    ]


def batch_rigid_transform(
    rot_mats: Tensor, joints: Tensor, parents: Tensor, levels: list[Tensor] | None = None
) -> tuple[Tensor, Tensor]:
    """Forward kinematics of a joint tree.

    Args:
        rot_mats: (B, J, 3, 3) local rotations of the joints.
        joints: (B, J, 3) rest-pose joint locations.
        parents: (J,) long parent indices, parents[0] == -1, parents[j] < j.
        levels: ``tree_levels(parents)``, passed in to avoid recomputing it.
    Returns:
        posed_joints: (B, J, 3) joint locations after posing.
        rel_transforms: (B, J, 4, 4) transforms that map a rest-pose point skinned to joint j to
            its posed location (world transform with the rest joint location removed).
    """
    if levels is None:
        levels = tree_levels(parents)
    rel_joints = joints.clone()
    rel_joints[:, 1:] = joints[:, 1:] - joints[:, parents[1:]]
    b, j = joints.shape[:2]
    local = torch.zeros(b, j, 4, 4, dtype=joints.dtype, device=joints.device)
    local[..., :3, :3] = rot_mats
    local[..., :3, 3] = rel_joints
    local[..., 3, 3] = 1.0

    world = local.clone()
    for idx in levels:
        idx = idx.to(joints.device)
        world[:, idx] = world[:, parents[idx]] @ local[:, idx]

    posed_joints = world[..., :3, 3]
    # Remove the rest location: T_rel = T_world @ [I, -j_rest; 0, 1].
    rel = world.clone()
    rel[..., :3, 3] = posed_joints - (world[..., :3, :3] @ joints[..., None])[..., 0]
    return posed_joints, rel


class _Skin(torch.autograd.Function):
    """LBS with a hand-written backward that allocates only what it must.

    Vertices run along the last axis: v (B, 3, V); rows (B, 4, 3, J) are the columns of the
    3x4 joint transforms; weights (V, J). Out (B, 3, V) = sum_k M_k * h_k with M_k = rows[:, k] W^T
    (B, 3, V) and h = [v; 1]. Building the M_k one at a time, each by a single GEMM, instead
    of the whole (B, 3, 4, V) blend (or letting autograd zero-fill slices of it) is 3x faster
    on the CPU at batch 1024: memory traffic, not arithmetic, is the cost here.
    """

    @staticmethod
    def _m(rows: Tensor, weights: Tensor, k: int) -> Tensor:
        b, _, _, j = rows.shape
        return (rows[:, k].reshape(b * 3, j) @ weights.T).view(b, 3, -1)

    @staticmethod
    def forward(ctx, v: Tensor, rows: Tensor, weights: Tensor) -> Tensor:
        out = _Skin._m(rows, weights, 3)
        for k in range(3):
            out.addcmul_(_Skin._m(rows, weights, k), v[:, k : k + 1])
        ctx.save_for_backward(v, rows, weights)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g: Tensor) -> tuple[Tensor | None, Tensor | None, None]:
        v, rows, weights = ctx.saved_tensors
        b = g.shape[0]
        grad_v = grad_rows = None
        if ctx.needs_input_grad[0]:
            grad_v = torch.empty_like(v)
            for k in range(3):
                m_k = _Skin._m(rows, weights, k)
                torch.mul(m_k[:, 0], g[:, 0], out=grad_v[:, k])
                grad_v[:, k].addcmul_(m_k[:, 1], g[:, 1]).addcmul_(m_k[:, 2], g[:, 2])
        if ctx.needs_input_grad[1]:
            grad_rows = torch.empty_like(rows)
            for k in range(4):
                gk = g if k == 3 else g * v[:, k : k + 1]
                grad_rows[:, k] = (gk.reshape(b * 3, -1) @ weights).view(b, 3, -1)
        return grad_v, grad_rows, None


def skin_vertices(vertices: Tensor, weights: Tensor, transforms: Tensor) -> Tensor:
    """Linear blend skinning of rest-pose vertices.

    Args:
        vertices: (B, V, 3) rest-pose vertices (shape and pose correctives applied).
        weights: (V, J) skinning weights, rows summing to 1.
        transforms: (B, J, 4, 4) relative joint transforms from ``batch_rigid_transform``.
    Returns:
        (B, V, 3) posed vertices, a transposed view of a (B, 3, V) tensor: vertices run along
        the contiguous axis, which keeps the multiply-adds vectorised.
    """
    # The constant last row of the transforms carries no information: blend the 3x4 part.
    rows = transforms[:, :, :3, :].permute(0, 3, 2, 1).contiguous()  # (B, 4, 3, J)
    v = vertices.transpose(1, 2).contiguous()
    return _Skin.apply(v, rows, weights).transpose(1, 2)


def lbs(
    betas: Tensor,
    full_pose: Tensor,
    v_template: Tensor,
    shapedirs: Tensor,
    posedirs: Tensor | None,
    j_regressor: Tensor,
    parents: Tensor,
    weights: Tensor,
    levels: list[Tensor] | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """The MANO/SMPL forward pass: shape, pose correctives, joints, kinematic chain, skinning.

    Args:
        betas: (B, S) shape coefficients.
        full_pose: (B, J * 3) axis-angle of every joint, root first (radians).
        v_template: (V, 3) rest template, metres.
        shapedirs: (V, 3, S) shape basis.
        posedirs: (P, V * 3) pose-corrective basis acting on ``pose_features``, or None.
        j_regressor: (J, V) joint regressor.
        parents: (J,) long parent indices.
        weights: (V, J) skinning weights.
        levels: ``tree_levels(parents)``, optional.
    Returns:
        vertices: (B, V, 3) posed vertices (see ``skin_vertices`` for the memory layout).
        joints: (B, J, 3) posed joints.
        rot_mats: (B, J, 3, 3) local joint rotations.
    """
    b = betas.shape[0]
    n_v = v_template.shape[0]
    basis = shapedirs.reshape(n_v * 3, -1).T  # (S, V * 3)
    v_posed = torch.addmm(v_template.reshape(1, -1), betas, basis)
    # Joints are linear in the shape: regress the template and the basis once, not B meshes.
    j_template = j_regressor @ v_template
    j_basis = torch.einsum("jv,vcs->sjc", j_regressor, shapedirs).flatten(1)
    rest_joints = torch.addmm(j_template.reshape(1, -1), betas, j_basis).view(b, -1, 3)
    rot_mats = batch_rodrigues(full_pose.reshape(b, -1, 3))
    if posedirs is not None:
        v_posed = torch.addmm(v_posed, pose_features(rot_mats), posedirs)
    joints, rel = batch_rigid_transform(rot_mats, rest_joints, parents, levels)
    return skin_vertices(v_posed.view(b, n_v, 3), weights, rel), joints, rot_mats
