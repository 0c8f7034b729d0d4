"""Synthetic data, style "v3": the held object's mesh (closed, outward) and placement in
closed form, the palm's side from the model's own flexion, the drop shadow's offset and depth,
and v3 against v2 of the same seed: the same labels, the same bytes where v3 drew nothing,
and a hand mask that an object can only shrink."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from monohand.data.synth_style import (
    _OBJECTS,
    drop_shadow,
    object_faces,
    object_vertices,
    palmar_side,
    v3_params,
)
from monohand.data.synthetic import SynthConfig, generate
from monohand.models.openhand import OpenHand

RINGS, SEGMENTS = 13, 20  # odd rings and segments % 4 == 0: the grid holds the extremes


def _palm_joints() -> torch.Tensor:
    """A flat hand in the image plane: wrist at (0, 0, 0.5), fingers up the image (-y), the
    index knuckle at -x, so cross(index MCP - wrist, little MCP - wrist) points away from the
    camera (+z)."""
    j = torch.zeros(1, 21, 3, dtype=torch.float64)
    j[0, :, 2] = 0.5
    j[0, 9] = torch.tensor([0.0, -0.08, 0.5])
    j[0, 5] = torch.tensor([-0.04, -0.075, 0.5])
    j[0, 13] = torch.tensor([0.02, -0.07, 0.5])
    j[0, 17] = torch.tensor([0.04, -0.06, 0.5])
    return j


def _object(kind: str, half, exponents, spin=0.0, lift=0.01) -> dict:
    return {"kind": kind, "half": half, "exponents": exponents, "spin": spin, "lift": lift,
            "colour": np.ones(3)}  # fmt: skip


def test_object_faces_close_the_grid_outwards():
    """Every edge of a non-degenerate face is shared by exactly two faces (closed), each
    traversed once each way (one orientation), and every face's normal points away from the
    centre of an ellipsoid."""
    f = object_faces(RINGS, SEGMENTS)
    assert f.shape == (2 * (RINGS - 1) * SEGMENTS, 3)
    v = object_vertices(_palm_joints(), [_object("ball", (0.03, 0.02, 0.05), (1.0, 1.0))], 1.0,
                        RINGS, SEGMENTS)[0]  # fmt: skip
    t = v[torch.as_tensor(f)]
    n = torch.linalg.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0], dim=-1)
    area = n.norm(dim=-1)
    real = area > 1e-12
    assert real.sum() == 2 * (RINGS - 2) * SEGMENTS  # one ring of faces at each pole: points
    centre = v.mean(0)
    assert ((n * (t.mean(1) - centre)).sum(-1)[real] > 0).all()
    # closed: glue coincident pole vertices, then every edge is in two real faces
    key = [tuple(np.round(p, 12)) for p in v.numpy()]
    ids = {k: i for i, k in enumerate(dict.fromkeys(key))}
    g = np.array([[ids[key[i]] for i in face] for face in f[real.numpy()]])
    edges = Counter(tuple(sorted((a[k], a[(k + 1) % 3]))) for a in g for k in range(3))
    assert set(edges.values()) == {2}
    directed = Counter((a[k], a[(k + 1) % 3]) for a in g for k in range(3))
    assert max(directed.values()) == 1


@pytest.mark.parametrize(
    "kind, half, exponents, spin, palmar",
    [("ball", (0.04, 0.04, 0.04), (1.0, 1.0), 0.0, 1.0),
     ("bottle", (0.03, 0.03, 0.09), (0.15, 1.0), 0.0, -1.0),
     ("phone", (0.06, 0.008, 0.03), (0.2, 0.2), 0.4, 1.0)],
)  # fmt: skip
def test_object_placement_in_closed_form(kind, half, exponents, spin, palmar):
    """The object sits on the ``palmar`` side (+z here for +1), its centre half-way between
    the wrist and the knuckles' mean, lifted by its half-thickness b + lift; its extents
    along its axes (x: the fingers turned by ``spin`` about the normal, y: the normal, z: x
    cross y) are the half-extents (a, b, c)."""
    j = _palm_joints()
    lift = 0.012
    v = object_vertices(j, [_object(kind, half, exponents, spin, lift)], palmar, RINGS,
                        SEGMENTS)[0]  # fmt: skip
    palm = 0.5 * (j[0, 0] + j[0, [5, 9, 13, 17]].mean(0))
    normal = torch.tensor([0.0, 0.0, palmar], dtype=torch.float64)
    fingers = torch.tensor([0.0, -1.0, 0.0], dtype=torch.float64)
    across = torch.linalg.cross(normal, fingers)
    x = np.cos(spin) * fingers + np.sin(spin) * across
    z = torch.linalg.cross(x, normal)
    centre = palm + (half[1] + lift) * normal
    assert torch.allclose(0.5 * (v.amax(0) + v.amin(0)), centre, atol=1e-12)
    d = v - centre
    for axis, h in zip((x, normal, z), half, strict=True):
        assert (d @ axis).abs().max().item() == pytest.approx(h, abs=1e-12)
    if kind == "ball":
        assert torch.allclose(d.norm(dim=-1), torch.full((len(v),), half[0]).double(), atol=1e-12)


@pytest.mark.parametrize("flexion", [0.35, 0.6, 0.85])
def test_objects_are_held_on_the_palms_side(flexion):
    """OpenHand with its finger joints flexed to a share of their limits (the fingertips
    well off the palm's plane): the object's centre and the fingertips lie on the same side
    of the palm, away from the wrist-knuckle plane by at least 5 mm each."""
    hand = OpenHand()
    s = palmar_side(hand)
    assert s in (1.0, -1.0)
    lim = torch.as_tensor(hand.pose_space.limits, dtype=torch.float32)
    angles = torch.as_tensor(hand.pose_space.relaxed, dtype=torch.float32)[None].clone()
    angles[..., 0] = flexion * lim[:, 0, 1]
    with torch.no_grad():
        j = hand(hand_pose=hand.pose_space.to_axis_angle(angles)).joints[0].double()
    v = object_vertices(j[None], [_object("ball", (0.03,) * 3, (1.0, 1.0))], s)[0]
    # the palm's plane through wrist, index and little MCPs, its normal of either sign
    n = torch.nn.functional.normalize(torch.linalg.cross(j[5] - j[0], j[17] - j[0]), dim=0)
    tips = ((j[[8, 12, 16, 20]] - j[0]) @ n).mean()
    centre = (v.mean(0) - j[0]) @ n
    assert abs(tips) > 0.005 and abs(centre) > 0.005, (tips, centre)
    assert torch.sign(tips) == torch.sign(centre)


def test_a_missing_object_is_behind_the_camera():
    v = object_vertices(_palm_joints().repeat(2, 1, 1),
                        [None, _object("ball", (0.03,) * 3, (1.0, 1.0))], 1.0)  # fmt: skip
    assert (v[0, :, 2] == -1).all() and (v[1, :, 2] > 0).all()


def test_drop_shadow_offset_and_depth():
    """A disc lit from +x (and the camera's side) darkens the background by ``strength`` at
    its centre moved by ``shift`` of the image size towards -x; nothing moves in y."""
    s = 128
    yy, xx = np.mgrid[0:s, 0:s]
    disc = (((xx - 64) ** 2 + (yy - 60) ** 2) <= 20**2).astype(np.float32)
    p = {"shift": 0.1, "blur": 0.01, "strength": 0.4}
    dark = drop_shadow(disc, np.array([0.6, 0.0, -0.8]), p)
    assert dark.min() == pytest.approx(0.6, abs=1e-4) and dark.max() == pytest.approx(1.0)
    w = 1 - dark
    cx, cy = (w * xx).sum() / w.sum(), (w * yy).sum() / w.sum()
    assert cx == pytest.approx(64 - 12.8, abs=0.05) and cy == pytest.approx(60, abs=0.05)


def test_v3_params_cover_every_kind():
    draws = [v3_params(np.random.default_rng([0, i, 3])) for i in range(400)]
    kinds = Counter(d["object"]["kind"] if d["object"] else None for d in draws)
    assert set(kinds) == {None, *_OBJECTS} and 0.25 < 1 - kinds[None] / 400 < 0.45
    shadows = sum(d["shadow"] is not None for d in draws) / 400
    assert 0.4 < shadows < 0.6


def _mask(root: Path, i: int) -> np.ndarray:
    return np.asarray(Image.open(root / "training" / "mask" / f"{i:08d}.jpg")) > 127


@pytest.fixture(scope="module")
def v2_v3(tmp_path_factory) -> tuple[Path, Path, dict]:
    cfg = {"num": 12, "size": 96, "batch": 6, "seed": 4, "eval_fraction": 0.0}
    root = tmp_path_factory.mktemp("v3")
    generate(root / "v2", SynthConfig(**cfg, style="v2"))
    generate(root / "v3", SynthConfig(**cfg, style="v3"))
    return root / "v2", root / "v3", cfg


def test_v3_keeps_v2_where_it_draws_nothing(v2_v3):
    """Same labels as v2; a sample without object or shadow is v2's to the byte, one with a
    shadow is not, nor are some with an object (others hide it behind the back of the
    hand); the model file names each sample's object."""
    v2, v3, cfg = v2_v3
    for key in ("K", "xyz", "verts", "mano"):
        a = json.loads((v2 / f"training_{key}.json").read_text())
        assert a == json.loads((v3 / f"training_{key}.json").read_text()), key
    draws = [v3_params(np.random.default_rng([cfg["seed"], i, 3])) for i in range(cfg["num"])]
    plain = [i for i, d in enumerate(draws) if d["object"] is None and d["shadow"] is None]
    assert 0 < len(plain) < cfg["num"]
    changed_by_objects = 0
    for i in range(cfg["num"]):
        name = f"training/rgb/{i:08d}.jpg"
        same = (v2 / name).read_bytes() == (v3 / name).read_bytes()
        if i in plain:
            assert same, i
        elif draws[i]["shadow"] is not None:
            assert not same, i
        else:  # an object alone: hidden where the palm faces away from the camera
            changed_by_objects += not same
    assert changed_by_objects > 0
    model = json.loads((v3 / "training_model.json").read_text())
    assert [m["held_object"] for m in model] == [
        d["object"]["kind"] if d["object"] else None for d in draws
    ]


def test_held_objects_only_hide_the_hand(v2_v3):
    """The hand's mask with an object is the v2 mask less what the object covers: (almost)
    no pixel is added, and some object hides part of some hand."""
    v2, v3, cfg = v2_v3
    draws = [v3_params(np.random.default_rng([cfg["seed"], i, 3])) for i in range(cfg["num"])]
    hidden = []
    for i in range(cfg["num"]):
        m2, m3 = _mask(v2, i), _mask(v3, i)
        assert (m3 & ~m2).sum() <= 0.01 * m2.sum() + 2, i
        if draws[i]["object"] is None:
            assert (m2 != m3).sum() <= 2, i
        else:
            hidden.append((m2 & ~m3).sum() / m2.sum())
    assert hidden and max(hidden) > 0.05, hidden
