"""Linear blend skinning: the functional core shared by every hand model.

Pure tensor functions, batch first, no Python loop over the batch or the vertices. The
kinematic chain loops over the *depth* of the joint tree (3 levels for MANO), composing all
joints of one level in a single batched matmul. ``lbs`` states the forward pass readably;
``rig.Rig`` + ``rig.posed`` compute the same numbers with a third of the operations, through
the skinning here (``_skin``).

Notation: B batch, V vertices, J joints, S shape components, P = (J - 1) * 9 pose features.
"""

from __future__ import annotations

import functools
import math
import threading

import torch
from torch import Tensor


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


# Row-major R from the features [cos t, a r, b r r^T]: cos t I + a skew(r) + b r r^T.
_FEATURES_TO_R = (
    (1, 0, 0, 0, 1, 0, 0, 0, 1),
    (0, 0, 0, 0, 0, -1, 0, 1, 0),
    (0, 0, 1, 0, 0, 0, -1, 0, 0),
    (0, -1, 0, 1, 0, 0, 0, 0, 0),
    *((0,) * k + (1,) + (0,) * (8 - k) for k in range(9)),
)


@functools.lru_cache(maxsize=16)
@torch.inference_mode(False)  # cached: must serve autograd too, even if first made under it
def _rodrigues_constants(dtype: torch.dtype, device: torch.device) -> tuple[Tensor, ...]:
    def t(x) -> Tensor:
        return torch.tensor(x, dtype=dtype, device=device)

    # t0^2 = eps^4: t0 (1e-14 in float32, 5e-32 in float64) squared and halved stays a
    # normal number, and is far below any angle whose closed forms lose digits.
    floor = torch.finfo(dtype).eps ** 4
    # angles [t, t/2]; [s1, s2] = sin([t, t/2]) / t -> [a, b] = [s1, 2 s2^2] = s (s m1 + m0)
    return t(floor), t((1.0, 0.5)), t((0.0, 2.0)), t((1.0, 0.0)), t(_FEATURES_TO_R)


def batch_rodrigues(rotvec: Tensor) -> Tensor:
    """Axis-angle vectors to rotation matrices, exact and smooth at and near zero angle.

    R = cos(t) I + a K + b r r^T with K = skew(r), t = |r|, a = sin(t)/t, b = (1 - cos t)/t^2
    and cos(t) = 1 - b t^2; b is computed as 2 sin^2(t/2) / t^2 (no cancellation in float32).
    The angle is sqrt(|r|^2 + t0^2) with t0^2 = eps^4, so the closed forms are never 0/0 and
    their gradients stay finite at r = 0 (there dR/dr_k = skew(e_k) exactly); below t0 they
    are already exact to the last bit, and the perturbation is 1e-28 relative at the
    smallest angles that float32 resolves. Written as few whole-tensor operations as
    possible: at the batch sizes of a fit their count, not their arithmetic, is the cost.

    Args:
        rotvec: (..., 3) axis-angle vectors in radians, float32 or float64.
    Returns:
        (..., 3, 3) rotation matrices, same dtype and device.
    """
    floor, halves, m1, m0, to_r = _rodrigues_constants(rotvec.dtype, rotvec.device)
    theta_sq = (rotvec * rotvec).sum(-1, keepdim=True)  # (..., 1)
    theta = (theta_sq + floor).sqrt()
    s = (theta * halves).sin() / theta
    ab = s * torch.addcmul(m0, s, m1)  # (..., 2)
    a, b = ab[..., :1], ab[..., 1:]
    outer = (b * rotvec)[..., :, None] * rotvec[..., None, :]
    feats = torch.cat([1.0 - b * theta_sq, a * rotvec, outer.flatten(-2)], -1)
    return (feats @ to_r).view(*rotvec.shape[:-1], 3, 3)


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


# Samples per block of ``_Skin``: the block's blended transforms (block x 12 x V floats, 2.4 MB
# for MANO) stay in the cache between the product that makes them and the multiply-adds
# that use them, instead of going through memory.
_SKIN_BLOCK = 64

_scratch = threading.local()


def _workspace(name: str, shape: tuple[int, ...], like: Tensor) -> Tensor:
    """A scratch tensor of ``shape`` kept per thread, name, dtype and device between calls.

    Freshly allocated multi-megabyte buffers cost page faults on every call (the allocator
    hands them back to the system), which made skinning at batch 64 2.5x slower than its
    arithmetic. Only for values that never leave the function that asks for them.
    """
    store = getattr(_scratch, "buffers", None)
    if store is None:
        store = _scratch.buffers = {}
    # Per CUDA stream too: kernels of two streams would otherwise share it unordered.
    stream = torch.cuda.current_stream(like.device).cuda_stream if like.is_cuda else 0
    key = (name, like.dtype, like.device, stream)
    n = math.prod(shape)
    buf = store.get(key)
    if buf is None or buf.numel() < n:
        with torch.inference_mode(False):  # usable in and out of inference mode
            buf = store[key] = torch.empty(n, dtype=like.dtype, device=like.device)
    return buf[:n].view(shape)


class _Skin(torch.autograd.Function):
    """LBS with a hand-written backward, blocked over the batch.

    Vertices run along the last axis: v (B, 3, V); rows (B, 4, 3, J) are the columns of the
    3x4 joint transforms; weights (V, J). With h = [v; 1] and M = rows W^T (B, 4, 3, V), the
    blended transform of every vertex, out (B, 3, V) = sum_k M[:, k] * h_k. Each block of
    samples makes its M by one GEMM and uses it at once; the backward recomputes it rather than
    storing B x 12 x V numbers. Memory traffic, not arithmetic, is the cost here: at batch 1024
    this is 2-3x faster on the CPU than autograd through the whole (B, V, 3, 4) blend. Used by
    ``_skin`` above batch 32 with gradients (once differentiable: no double backward there).
    """

    @staticmethod
    def _blend(rows: Tensor, weights: Tensor, out: Tensor) -> Tensor:
        n, _, _, j = rows.shape
        m = out[:n]
        torch.mm(rows.reshape(n * 12, j), weights.T, out=m.view(n * 12, -1))
        return m

    @staticmethod
    def _blocks(n: int):
        for s in range(0, n, _SKIN_BLOCK):
            yield s, min(s + _SKIN_BLOCK, n)

    @staticmethod
    def blended(v: Tensor, rows: Tensor, weights: Tensor) -> Tensor:
        """The forward computation alone (no graph): (B, 3, V)."""
        b, _, n_v = v.shape
        out = v.new_empty(v.shape)
        work = _workspace("blend", (min(b, _SKIN_BLOCK), 4, 3, n_v), v)
        for s, e in _Skin._blocks(b):
            m = _Skin._blend(rows[s:e], weights, work)
            o, vs = out[s:e], v[s:e]
            torch.addcmul(m[:, 3], m[:, 0], vs[:, 0:1], out=o)
            o.addcmul_(m[:, 1], vs[:, 1:2]).addcmul_(m[:, 2], vs[:, 2:3])
        return out

    @staticmethod
    def forward(ctx, v: Tensor, rows: Tensor, weights: Tensor) -> Tensor:
        ctx.save_for_backward(v, rows, weights)
        return _Skin.blended(v, rows, weights)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g: Tensor) -> tuple[Tensor | None, Tensor | None, None]:
        v, rows, weights = ctx.saved_tensors
        need_v, need_rows = ctx.needs_input_grad[:2]
        b, _, n_v = v.shape
        n_j = rows.shape[3]
        g = g.contiguous()
        blk = min(b, _SKIN_BLOCK)
        work = _workspace("blend", (blk, 4, 3, n_v), g)
        grad_v = grad_rows = None
        if need_v:
            grad_v = torch.empty_like(v, memory_format=torch.contiguous_format)
            prod = _workspace("product", (blk, 3, 3, n_v), g)
        if need_rows:
            grad_rows = torch.empty_like(rows)
        for s, e in _Skin._blocks(b):
            gs = g[s:e]
            if need_v:  # d out_c / d v_k = M[k, c]
                m = _Skin._blend(rows[s:e], weights, work)
                p = torch.mul(m[:, :3], gs[:, None], out=prod[: e - s])
                torch.sum(p, dim=2, out=grad_v[s:e])
            if need_rows:  # d out_c / d rows[k, c, j] = W[:, j] h_k, h = [v; 1]
                h = work[: e - s]
                torch.mul(gs[:, None], v[s:e, :, None], out=h[:, :3])
                h[:, 3].copy_(gs)
                torch.mm(h.view(-1, n_v), weights, out=grad_rows[s:e].view(-1, n_j))
        return grad_v, grad_rows, None


# Up to this batch size skinning is a few autograd operations on the whole blend (B, 4, 3, V),
# which costs less than ``_Skin``'s fixed overhead; above it the blend's memory traffic does.
_SKIN_SMALL_BATCH = 32


def _skin(v: Tensor, rows: Tensor, weights: Tensor) -> Tensor:
    """``_Skin`` (same arguments, same result) by the cheaper route for the batch size."""
    b, _, _, j = rows.shape
    # Autocast leaves out= products uncast: under it, only the plain route below is right.
    autocast = torch.is_autocast_enabled(v.device.type)
    if not autocast and not (torch.is_grad_enabled() and (v.requires_grad or rows.requires_grad)):
        return _Skin.blended(v, rows, weights)
    if not autocast and b > _SKIN_SMALL_BATCH:
        return _Skin.apply(v, rows, weights)
    m = (rows.reshape(b * 12, j) @ weights.T).view(b, 4, 3, weights.shape[0])
    return (m[:, :3] * v[:, :, None]).sum(1) + m[:, 3]


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
    return _skin(v, rows, weights).transpose(1, 2)


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
