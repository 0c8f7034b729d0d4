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


def skin_vertices(vertices: Tensor, weights: Tensor, transforms: Tensor) -> Tensor:
    """Linear blend skinning of rest-pose vertices.

    Args:
        vertices: (B, V, 3) rest-pose vertices (shape and pose correctives applied).
        weights: (V, J) skinning weights, rows summing to 1.
        transforms: (B, J, 4, 4) relative joint transforms from ``batch_rigid_transform``.
    Returns:
        (B, V, 3) posed vertices.
    """
    b, j = transforms.shape[:2]
    # Blend the 3x4 part only: (B, V, 12); the constant last row carries no information.
    blended = torch.einsum("vj,bjk->bvk", weights, transforms[:, :, :3, :].reshape(b, j, 12))
    blended = blended.view(b, -1, 3, 4)
    return (blended[..., :3] @ vertices[..., None])[..., 0] + blended[..., 3]


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
        vertices: (B, V, 3) posed vertices.
        joints: (B, J, 3) posed joints.
        rot_mats: (B, J, 3, 3) local joint rotations.
    """
    b = betas.shape[0]
    v_shaped = v_template + blend_shapes(betas, shapedirs)
    rest_joints = vertices2joints(j_regressor, v_shaped)
    rot_mats = batch_rodrigues(full_pose.reshape(b, -1, 3))
    v_posed = v_shaped
    if posedirs is not None:
        v_posed = v_shaped + (pose_features(rot_mats) @ posedirs).view(b, -1, 3)
    joints, rel = batch_rigid_transform(rot_mats, rest_joints, parents, levels)
    return skin_vertices(v_posed, weights, rel), joints, rot_mats
