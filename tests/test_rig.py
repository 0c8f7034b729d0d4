"""The fast forward pass (``Rig`` + ``posed``) against the readable ``lbs`` it rearranges."""

from __future__ import annotations

import pytest
import torch

import monohand.models.lbs as L
import monohand.models.rig as R
from conftest import make_mano_arrays
from monohand.models.lbs import lbs
from monohand.models.mano import mano_data_from_arrays
from monohand.models.rig import LevelOrder, Rig, posed
from monohand.models.skinned import SkinnedHand


def _model_tensors(parents, n_v=60, n_s=4, posedirs=True, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    n_j = len(parents)
    w = torch.rand(n_v, n_j, generator=g, dtype=dtype) ** 4
    jr = torch.rand(n_j, n_v, generator=g, dtype=dtype)
    return dict(
        v_template=torch.randn(n_v, 3, generator=g, dtype=dtype) * 0.05,
        shapedirs=torch.randn(n_v, 3, n_s, generator=g, dtype=dtype) * 0.01,
        posedirs=torch.randn((n_j - 1) * 9, n_v * 3, generator=g, dtype=dtype) * 0.01
        if posedirs else None,
        j_regressor=jr / jr.sum(1, keepdim=True),
        parents=torch.tensor(parents),
        weights=w / w.sum(1, keepdim=True),
    )  # fmt: skip


MANO_TREE = [-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14]
# Branching at several depths, parents out of level order: the general gather path.
ODD_TREE = [-1, 0, 1, 0, 3, 1, 2, 4, 4, 5]


def test_level_order():
    t = LevelOrder.of(MANO_TREE)
    assert t.order == (0, 1, 4, 7, 10, 13, 2, 5, 8, 11, 14, 3, 6, 9, 12, 15)
    assert t.spans == ((0, 1), (1, 6), (6, 11), (11, 16))
    assert t.parent_pos == ((0, 0, 0, 0, 0), None, None)
    t = LevelOrder.of(ODD_TREE)
    assert t.order == (0, 1, 3, 2, 4, 5, 6, 7, 8, 9)
    assert t.parent_pos == ((0, 0), (0, 1, 0), (0, 1, 1, 2))


@pytest.mark.parametrize("parents", [MANO_TREE, ODD_TREE])
@pytest.mark.parametrize("posedirs", [True, False])
# batch-first below R._WIDE_BATCH (1, 5), component-major from it (32; 33: _Skin; 130: 3 blocks)
@pytest.mark.parametrize("batch", [1, 5, 32, 33, 130])
def test_posed_equals_lbs_with_gradients(parents, posedirs, batch):
    m = _model_tensors(parents, posedirs=posedirs)
    g = torch.Generator().manual_seed(batch)
    betas = torch.randn(batch, 4, generator=g, dtype=torch.float64).requires_grad_()
    pose = torch.randn(batch, 3 * len(parents), generator=g, dtype=torch.float64).requires_grad_()
    v0, j0, _ = lbs(betas, pose, m["v_template"], m["shapedirs"], m["posedirs"],
                    m["j_regressor"], m["parents"], m["weights"])  # fmt: skip
    v1, j1 = posed(Rig.build(**m), betas, pose)
    assert (v1 - v0).abs().max() < 1e-14 and (j1 - j0).abs().max() < 1e-14
    # Every output touched with its own weight: the gradients of the two must agree too.
    wv = torch.randn(v0.shape, generator=g, dtype=torch.float64)
    wj = torch.randn(j0.shape, generator=g, dtype=torch.float64)
    grads0 = torch.autograd.grad((v0 * wv).sum() + (j0 * wj).sum(), (betas, pose))
    grads1 = torch.autograd.grad((v1 * wv).sum() + (j1 * wj).sum(), (betas, pose))
    for a, b in zip(grads0, grads1, strict=True):
        assert (a - b).abs().max() < 1e-11


def test_component_major_rodrigues_and_chain_equal_the_batch_first_ones():
    g = torch.Generator().manual_seed(0)
    b = 7
    for parents in (MANO_TREE, ODD_TREE):
        tree = LevelOrder.of(parents)
        j = len(parents)
        rotvec = torch.randn(b, j, 3, generator=g, dtype=torch.float64)
        rotvec[0, 0] = 0.0  # the zero angle too
        rot = L.batch_rodrigues(rotvec)  # (B, J, 3, 3)
        cols = R.rodrigues_columns(rotvec.permute(2, 1, 0).reshape(3, -1))  # (9, J * B)
        assert torch.equal(cols.view(3, 3, j, b).permute(3, 2, 0, 1), rot)
        local = torch.cat([rot, torch.randn(b, j, 3, 1, generator=g, dtype=torch.float64)], -1)
        bottom = torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=torch.float64).expand(b, j, 1, 4)
        want = R.chain_frames(torch.cat([local, bottom], -2), tree)  # (B, J, 3, 4)
        got = R.chain_frames_columns(local.permute(2, 3, 1, 0), tree)  # (3, 4, J, B)
        assert (got.permute(3, 2, 0, 1) - want).abs().max() < 1e-14


@pytest.mark.parametrize("batch", [1, 40, 70])
def test_float32_rig_matches_float64_lbs_to_a_micrometre(batch):
    hand = SkinnedHand(mano_data_from_arrays(make_mano_arrays(1), "<generated>"))
    ref = SkinnedHand(mano_data_from_arrays(make_mano_arrays(1), "<generated>"),
                      dtype=torch.float64)  # fmt: skip
    g = torch.Generator().manual_seed(batch)
    x = dict(global_orient=torch.randn(batch, 3, generator=g),
             hand_pose=torch.randn(batch, 45, generator=g) * 0.7,
             betas=torch.randn(batch, 10, generator=g),
             transl=torch.randn(batch, 3, generator=g) * 0.3)  # fmt: skip
    full = torch.cat([x["global_orient"], x["hand_pose"]], 1).double()
    v0, _, _ = lbs(x["betas"].double(), full, ref.v_template, ref.shapedirs, ref.posedirs,
                   ref.j_regressor, ref.parents, ref.weights)  # fmt: skip
    out = hand(**x)
    assert (out.vertices.double() - (v0 + x["transl"].double()[:, None])).abs().max() < 1e-6


def test_skin_backward_equals_autograd_of_the_blend():
    g = torch.Generator().manual_seed(0)
    b, n_v, n_j = 150, 50, 7
    v = torch.randn(b, 3, n_v, generator=g, dtype=torch.float64, requires_grad=True)
    rows = torch.randn(b, 4, 3, n_j, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.rand(n_v, n_j, generator=g, dtype=torch.float64)
    h = torch.cat([v, torch.ones(b, 1, n_v, dtype=torch.float64)], 1)
    blend = torch.einsum("bkcj,vj->bkcv", rows, w)
    want = (blend * h[:, :, None]).sum(1)
    got = L._Skin.apply(v, rows, w)
    assert (got - want).abs().max() < 1e-13
    up = torch.randn(want.shape, generator=g, dtype=torch.float64)
    for a, b_ in zip(torch.autograd.grad((want * up).sum(), (v, rows)),
                     torch.autograd.grad((got * up).sum(), (v, rows)), strict=True):  # fmt: skip
        assert (a - b_).abs().max() < 1e-12
    with torch.no_grad():  # the graph-free route gives the same numbers
        assert (L._skin(v, rows, w) - want).abs().max() < 1e-13


def test_layer_follows_its_buffers():
    arrays = make_mano_arrays(0)
    hand = SkinnedHand(mano_data_from_arrays(arrays, "<generated>"))
    x = dict(hand_pose=torch.full((2, 45), 0.2), betas=torch.ones(2, 10))
    before = hand(**x).vertices
    with torch.no_grad():
        hand.v_template.add_(torch.tensor([0.01, 0.0, 0.0]))  # in place
    moved = hand(**x).vertices
    # A template shift is a rigid translation only at the rest pose; here it is compared to
    # a fresh layer built with the shifted template.
    arrays2 = dict(arrays, v_template=arrays["v_template"] + [0.01, 0.0, 0.0])
    fresh = SkinnedHand(mano_data_from_arrays(arrays2, "<generated>"))(**x).vertices
    assert (moved - fresh).abs().max() < 1e-6 and (moved - before).abs().max() > 1e-3

    other = SkinnedHand(mano_data_from_arrays(make_mano_arrays(5), "<generated>"))
    hand.load_state_dict(other.state_dict())  # replaced buffers
    assert (hand(**x).vertices - other(**x).vertices).abs().max() < 1e-7
    hand64 = hand.double()  # cast
    out = hand64(**{k: v.double() for k, v in x.items()})
    assert out.vertices.dtype == torch.float64
    assert (out.vertices - other.double()(**{k: v.double() for k, v in x.items()}).vertices
            ).abs().max() < 1e-12  # fmt: skip


@pytest.mark.parametrize("side", ["right", "left"])
def test_keypoints_alone_equal_the_forward_pass(side):
    from monohand.models.openhand import OpenHand

    hand = OpenHand(side=side, dtype=torch.float64)
    g = torch.Generator().manual_seed(3)
    x = dict(global_orient=torch.randn(4, 3, generator=g, dtype=torch.float64),
             hand_pose=torch.randn(4, 45, generator=g, dtype=torch.float64) * 0.6,
             betas=torch.randn(4, 10, generator=g, dtype=torch.float64),
             transl=torch.randn(4, 3, generator=g, dtype=torch.float64))  # fmt: skip
    x = {k: v.requires_grad_() for k, v in x.items()}
    want, got = hand(**x).joints, hand.keypoints(**x)
    assert (got - want).abs().max() < 1e-14
    w = torch.randn(want.shape, generator=g, dtype=torch.float64)
    grads_want = torch.autograd.grad((want * w).sum(), list(x.values()))
    grads_got = torch.autograd.grad((got * w).sum(), list(x.values()))
    for a, b in zip(grads_want, grads_got, strict=True):
        assert (a - b).abs().max() < 1e-12


def test_layer_in_and_after_inference_mode_and_under_autocast():
    from monohand.models.openhand import OpenHand

    with torch.inference_mode():  # a layer made and run there (inference tensors)
        made = OpenHand()
        assert made(hand_pose=torch.zeros(1, 45)).vertices.shape == (1, 1528, 3)
    hand = OpenHand()
    with torch.inference_mode():  # caches and scratch filled there ...
        hand(hand_pose=torch.zeros(2, 45))
        hand(hand_pose=torch.zeros(40, 45))
        hand.pose_space.to_axis_angle(torch.zeros(1, 15, 3))
    angles = torch.zeros(40, 15, 3, requires_grad=True)  # ... must serve autograd later
    hand(hand_pose=hand.pose_space.to_axis_angle(angles)).vertices.sum().backward()
    assert torch.isfinite(angles.grad).all()
    want = hand(hand_pose=torch.full((70, 45), 0.1)).vertices
    with torch.autocast("cpu", torch.bfloat16):  # out= products must not meet autocast
        got = hand(hand_pose=torch.full((70, 45), 0.1)).vertices
    assert (got.float() - want).abs().max() < 2e-3  # bfloat16 rounding
    with torch.autocast("cpu", torch.bfloat16):  # a float32 translation promotes the vertices
        out = hand(hand_pose=torch.full((70, 45), 0.1), transl=torch.full((70, 3), 0.5))
    assert out.vertices.dtype == out.joints.dtype == torch.float32
    assert (out.vertices - 0.5 - want).abs().max() < 2e-3


def test_layer_sees_data_swaps_and_fingertip_edits():
    from monohand.models.openhand import OpenHand

    hand = OpenHand()
    before = hand().vertices
    hand.v_template.data = hand.v_template.data + 0.01  # same tensor, same version
    assert (hand().vertices - before).abs().max() > 1e-3
    with torch.no_grad():
        hand.tip_vertices[0] = hand.tip_vertices[1]
    assert (hand.keypoints() - hand().joints).abs().max() < 1e-6


def test_outputs_without_a_graph_survive_the_next_call():
    """Large batches without a graph blend the joint transforms in a scratch buffer: it
    must never reach an output (a second call would overwrite the first one's hand)."""
    hand = SkinnedHand(mano_data_from_arrays(make_mano_arrays(2), "<generated>"))
    g = torch.Generator().manual_seed(0)

    def inputs():
        return dict(hand_pose=torch.randn(130, 45, generator=g) * 0.6,
                    betas=torch.randn(130, 10, generator=g),
                    transl=torch.randn(130, 3, generator=g))  # fmt: skip

    x1, x2 = inputs(), inputs()
    want = hand(**x1)  # with a graph: no scratch
    L._scratch.buffers = {}
    with torch.no_grad():
        first = hand(**x1)
        hand(**x2)
    assert any(key[0] == "blend" for key in L._scratch.buffers)  # the scratch route was taken
    for name in ("vertices", "joints", "joints_native"):
        assert torch.equal(getattr(first, name), getattr(want, name).detach()), name


@pytest.mark.parametrize("batch", [5, 40, 130])  # the small route, _Skin in one block, in three
def test_layer_with_translation_and_gradients_equals_lbs(batch):
    """The translation is added in place to the skinned vertices on every skinning route; the
    layer's outputs and gradients (translation included) equal the readable ``lbs`` + offset."""
    hand = SkinnedHand(mano_data_from_arrays(make_mano_arrays(1), "<generated>"),
                       dtype=torch.float64)  # fmt: skip
    g = torch.Generator().manual_seed(batch)
    x = dict(global_orient=torch.randn(batch, 3, generator=g, dtype=torch.float64),
             hand_pose=torch.randn(batch, 45, generator=g, dtype=torch.float64) * 0.6,
             betas=torch.randn(batch, 10, generator=g, dtype=torch.float64),
             transl=torch.randn(batch, 3, generator=g, dtype=torch.float64))  # fmt: skip
    x = {k: v.requires_grad_() for k, v in x.items()}
    out = hand(**x)
    full = torch.cat([x["global_orient"], x["hand_pose"]], 1)
    v0, j0, _ = lbs(x["betas"], full, hand.v_template, hand.shapedirs, hand.posedirs,
                    hand.j_regressor, hand.parents, hand.weights)  # fmt: skip
    v0, j0 = v0 + x["transl"][:, None], j0 + x["transl"][:, None]
    # A translation of another type promotes the vertices as it does the joints.
    hand32 = SkinnedHand(mano_data_from_arrays(make_mano_arrays(1), "<generated>"))
    mixed = hand32(hand_pose=x["hand_pose"].float().detach(), transl=x["transl"].detach())
    assert mixed.vertices.dtype == mixed.joints.dtype == torch.float64
    kp = torch.cat([j0, v0[:, hand.tip_vertices]], 1)[:, hand.native_to_freihand]
    assert (out.vertices - v0).abs().max() < 1e-14 and (out.joints - kp).abs().max() < 1e-14
    wv = torch.randn(v0.shape, generator=g, dtype=torch.float64)
    wk = torch.randn(kp.shape, generator=g, dtype=torch.float64)
    got = torch.autograd.grad((out.vertices * wv).sum() + (out.joints * wk).sum(), list(x.values()))
    want = torch.autograd.grad((v0 * wv).sum() + (kp * wk).sum(), list(x.values()))
    for a, b in zip(got, want, strict=True):
        assert (a - b).abs().max() < 1e-11


def test_a_batch_of_no_hands():
    """Batch 0 gives empty outputs of the right shapes, with and without a graph."""
    hand = SkinnedHand(mano_data_from_arrays(make_mano_arrays(0), "<generated>"))
    pose = torch.zeros(0, 45, requires_grad=True)
    out = hand(hand_pose=pose, transl=torch.zeros(0, 3))
    assert out.vertices.shape == (0, 778, 3) and out.joints.shape == (0, 21, 3)
    out.vertices.sum().backward()
    assert pose.grad.shape == (0, 45)
    with torch.no_grad():
        assert hand(hand_pose=torch.zeros(0, 45)).vertices.shape == (0, 778, 3)
    assert hand.keypoints(hand_pose=torch.zeros(0, 45)).shape == (0, 21, 3)


def test_a_rig_changed_by_replace_or_made_directly_poses_by_its_fields():
    """``Rig.linear`` is derived from ``basis`` and ``constant``: a copy with other values, or
    a rig made field by field, must pose by those values."""
    from dataclasses import fields, replace

    rig = Rig.build(**_model_tensors(MANO_TREE, dtype=torch.float32))
    pose = torch.randn(40, 48, generator=torch.Generator().manual_seed(0)) * 0.3
    betas = torch.zeros(40, 4)
    v0, _ = posed(rig, betas, pose)
    moved = replace(rig, constant=rig.constant + 0.01)  # every vertex and joint 1 cm along +x..
    v1, _ = posed(moved, betas, pose)
    assert (v1 - v0).abs().max() > 5e-3
    again = Rig(**{f.name: getattr(rig, f.name) for f in fields(Rig) if f.init})
    assert torch.equal(posed(again, betas, pose)[0], v0)


@pytest.mark.parametrize("batch", [5, 32, 64])  # both routes
def test_layer_outputs_are_laid_out_alike_on_both_routes(batch):
    hand = SkinnedHand(mano_data_from_arrays(make_mano_arrays(0), "<generated>"))
    out = hand(hand_pose=torch.zeros(batch, 45))
    assert out.joints.is_contiguous() and out.joints_native.is_contiguous()
    assert out.vertices.transpose(1, 2).is_contiguous()  # the documented (B, 3, V) layout
    assert out.joints_native.view(batch, -1).shape == (batch, 48)


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")  # torch.func's import
def test_layer_under_torch_func():
    """Jacobians by torch.func on the batch-first route (up to 31 samples), as before the
    packed product: it steps aside under the transforms."""
    hand = SkinnedHand(mano_data_from_arrays(make_mano_arrays(0), "<generated>"))
    pose = torch.randn(16, 45, generator=torch.Generator().manual_seed(1)) * 0.4
    jac = torch.func.jacrev(lambda p: hand(hand_pose=p).joints)(pose)  # (16, 21, 3, 16, 45)
    p = pose.clone().requires_grad_()
    hand(hand_pose=p).joints[2, 7, 1].backward()
    assert torch.allclose(jac[2, 7, 1], p.grad, atol=1e-6)
