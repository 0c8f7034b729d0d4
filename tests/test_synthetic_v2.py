"""Synthetic data, style "v2": the forearm tube's topology and outward winding, the arm's
geometry in closed form, Blinn-Phong shading against a per-pixel loop and closed-form lights,
the camera effects against their definitions, and v1 left unchanged by v2 (same seed: same
labels, v1 bytes reproducible)."""

from __future__ import annotations

import io
import json
from collections import Counter
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from monohand.data.synth_style import arm_faces, arm_vertices, camera_effects, shade_v2
from monohand.data.synthetic import SynthConfig, ensure_synthetic, generate
from monohand.render.shade import vertex_normals

TINY = {"num": 4, "size": 64, "batch": 4, "seed": 3}


def _edges(faces: np.ndarray) -> Counter:
    """Undirected edge -> the number of faces holding it."""
    return Counter(tuple(sorted((int(f[k]), int(f[(k + 1) % 3])))) for f in faces for k in range(3))


@pytest.mark.parametrize("rings, segments", [(6, 16), (2, 3), (4, 7)])
def test_arm_faces_are_an_open_tube(rings, segments):
    """2 (rings - 1) segments faces; every edge in two faces except the edges of the first
    and last rings, which are in one; each vertex used."""
    f = arm_faces(rings, segments)
    assert f.shape == (2 * (rings - 1) * segments, 3)
    assert set(np.unique(f)) == set(range(rings * segments))
    edges = _edges(f)
    boundary = {
        tuple(sorted((r * segments + k, r * segments + (k + 1) % segments)))
        for r in (0, rings - 1)
        for k in range(segments)
    }
    assert {e for e, n in edges.items() if n == 1} == boundary
    assert all(n == 2 for e, n in edges.items() if e not in boundary)
    # a consistent orientation: each inner edge is traversed once each way
    directed = Counter((int(a[k]), int(a[(k + 1) % 3])) for a in f for k in range(3))
    assert max(directed.values()) == 1


def _random_joints(rng: np.random.Generator, b: int) -> torch.Tensor:
    """B random hands' wrist, middle knuckle and index/little knuckles (the joints the arm
    reads), left and right alike, 0.3-0.8 m in front of the camera."""
    j = rng.normal(scale=0.03, size=(b, 21, 3))
    wrist = rng.normal(scale=0.1, size=(b, 3)) + [0, 0, 0.55]
    up = rng.normal(size=(b, 3))
    up /= np.linalg.norm(up, axis=1, keepdims=True)
    side = np.cross(up, rng.normal(size=(b, 3)))
    side /= np.linalg.norm(side, axis=1, keepdims=True)
    j[:, 0] = wrist
    j[:, 9] = wrist + 0.085 * up
    j[:, 5] = wrist + 0.08 * up + 0.04 * side * rng.choice([-1, 1], (b, 1))
    j[:, 17] = 2 * j[:, 9] - j[:, 5] + rng.normal(scale=0.005, size=(b, 3))
    return torch.as_tensor(j)


@pytest.mark.parametrize("seed", range(3))
def test_arm_normals_point_away_from_its_axis(seed):
    """For random hands and bends every face's normal ((v1 - v0) x (v2 - v0), the hand mesh's
    and vertex_normals' convention) points away from the tube's axis, as do the renderer's
    vertex normals; the axis is found from the ring centres."""
    rng = np.random.default_rng(seed)
    joints = _random_joints(rng, 5)
    bend = torch.as_tensor(rng.normal(scale=0.4, size=(5, 3)))
    v = arm_vertices(joints, bend)
    rings, segments = 6, 16
    assert v.shape == (5, rings * segments, 3)
    f = torch.as_tensor(arm_faces(rings, segments))
    centres = v.view(5, rings, segments, 3).mean(2)  # (B, R, 3): on the axis
    t = v[:, f]  # (B, F, 3, 3)
    n = torch.linalg.cross(t[:, :, 1] - t[:, :, 0], t[:, :, 2] - t[:, :, 0], dim=-1)
    mid = t.mean(2)
    r = f.min(1).values // segments  # the face's first ring
    c0, c1 = centres[:, r], centres[:, r + 1]
    axis = torch.nn.functional.normalize(c1 - c0, dim=-1)
    off = mid - c0
    radial = off - (off * axis).sum(-1, keepdim=True) * axis
    outward = (n * radial).sum(-1) > 0
    assert outward.all(), f"{1 - outward.double().mean():.0%} of the faces wind inwards"
    vn = vertex_normals(v, f)
    vr = v.view(5, rings, segments, 3) - centres[:, :, None]
    assert ((vn.view(5, rings, segments, 3) * vr).sum(-1) > 0).all()


def test_arm_geometry_in_closed_form():
    """Wrist at (0, 0, 0.5), middle knuckle 8 cm above (image up, -y), index/little knuckles
    8 cm apart in x: the axis runs down (+y) from 1.5 cm inside the wrist for 35 cm; the rings
    are ellipses of semi-axes 0.42 x 8 cm (x) and 0.65 of that (z), 25 % wider at the end. A
    bend of 0.3 rad about x turns the axis to (0, cos, sin) 0.3."""
    j = torch.zeros(1, 21, 3, dtype=torch.float64)
    j[0, :, 2] = 0.5
    j[0, 9] = torch.tensor([0.0, -0.08, 0.5])
    j[0, 5] = torch.tensor([-0.04, -0.075, 0.5])
    j[0, 17] = torch.tensor([0.04, -0.06, 0.5])
    rings, segments = 6, 16
    v = arm_vertices(j, torch.zeros(1, 3, dtype=torch.float64)).view(rings, segments, 3)
    centres = v.mean(1)
    tt = torch.linspace(0, 1, rings, dtype=torch.float64)
    want = torch.stack([torch.zeros(rings), 0.35 * tt - 0.015, torch.full((rings,), 0.5)], 1)
    assert torch.allclose(centres, want.double(), atol=1e-12)
    ra = 0.42 * 0.08 * (1 + 0.25 * tt)
    off = v - centres[:, None]
    assert torch.allclose(off[..., 0].abs().amax(1), ra, atol=1e-12)
    assert torch.allclose(off[..., 2].abs().amax(1), 0.65 * ra, atol=1e-12)
    assert torch.allclose(off[..., 1], torch.zeros(()).double(), atol=1e-12)
    bent = arm_vertices(j, torch.tensor([[0.3, 0.0, 0.0]], dtype=torch.float64))
    c = bent.view(rings, segments, 3).mean(1)
    d = (c[-1] - c[0]) / 0.35
    assert torch.allclose(d, torch.tensor([0.0, np.cos(0.3), np.sin(0.3)]).double(), atol=1e-9)


def _lights(ambient, dirs, colours, specular, shininess) -> dict:
    t = lambda x: torch.as_tensor(np.asarray(x, dtype=np.float64))  # noqa: E731
    return {"ambient": t(ambient), "dirs": t(dirs), "colours": t(colours),
            "specular": t(specular), "shininess": t(shininess)}  # fmt: skip


def test_shade_v2_lambert_against_a_per_pixel_loop():
    """One light, no specular: albedo (ambient + colour max(0, n.l)) pixel by pixel; two
    more lights of colour zero change nothing."""
    rng = np.random.default_rng(0)
    b, h, w = 2, 5, 6
    albedo = rng.uniform(0, 1, (b, h, w, 3))
    n = rng.normal(size=(b, h, w, 3))
    n /= np.linalg.norm(n, axis=-1, keepdims=True)
    ldir = rng.normal(size=(b, 1, 3))
    ldir /= np.linalg.norm(ldir, axis=-1, keepdims=True)
    amb, col = rng.uniform(0.1, 0.5, (b, 3)), rng.uniform(0.2, 0.9, (b, 1, 3))
    got = shade_v2(torch.as_tensor(albedo), torch.as_tensor(n),
                   _lights(amb, ldir, col, np.zeros(b), np.full(b, 20.0))).numpy()  # fmt: skip
    want = np.empty_like(albedo)
    for i in range(b):
        for y in range(h):
            for x in range(w):
                cos = max(0.0, float(n[i, y, x] @ ldir[i, 0]))
                want[i, y, x] = albedo[i, y, x] * (amb[i] + col[i, 0] * cos)
    assert np.abs(got - want).max() < 1e-12
    assert (n[..., None, :] @ ldir[:, None, None, 0, :, None]).min() < 0  # some face away
    dirs3 = np.concatenate([ldir, rng.normal(size=(b, 2, 3))], 1)
    dirs3 /= np.linalg.norm(dirs3, axis=-1, keepdims=True)
    col3 = np.concatenate([col, np.zeros((b, 2, 3))], 1)
    got3 = shade_v2(torch.as_tensor(albedo), torch.as_tensor(n),
                    _lights(amb, dirs3, col3, np.zeros(b), np.full(b, 20.0))).numpy()  # fmt: skip
    assert np.abs(got3 - want).max() < 1e-12


def test_shade_v2_highlights_in_closed_form():
    """A normal facing the camera: lit from the camera it gets albedo (ambient + colour) +
    specular colour; lit at angle a from the view, Lambert cos a and a highlight
    cos(a / 2) ** shininess (the half vector halves the angle); lit from behind (a > 90 deg)
    ambient only, though the half vector still faces it. The normal facing away gets the
    mirror image: ambient only, then Lambert -cos a and no highlight."""
    albedo = np.array([0.6, 0.4, 0.3])
    amb, col, spec, shin = np.array([0.2, 0.25, 0.3]), np.array([0.9, 0.8, 0.7]), 0.3, 12.0
    normals = np.array([[0, 0, -1.0], [0, 0, -1.0], [0, 0, 1.0]])[None, None]  # (1, 1, 3, 3)
    for a in (0.0, 0.7, np.deg2rad(100)):
        ldir = [np.sin(a), 0, -np.cos(a)]
        highlight = spec * col * np.cos(a / 2) ** shin if np.cos(a) > 0 else 0.0
        towards = albedo * (amb + max(np.cos(a), 0) * col) + highlight
        away = albedo * (amb + max(-np.cos(a), 0) * col)
        lights = _lights(amb[None], [[ldir]], [[col]], [spec], [shin])
        alb = torch.as_tensor(np.broadcast_to(albedo, (1, 1, 3, 3)).copy())
        got = shade_v2(alb, torch.as_tensor(normals), lights)[0, 0].numpy()
        want = np.stack([towards, towards, away])
        assert np.abs(got - want).max() < 1e-12, a
    assert np.abs(got[0] - albedo * amb).max() < 1e-12  # from behind: the highlight is masked


def _params(**kw) -> dict:
    p = {"cast": np.ones(3), "gamma": 1.0, "blur": "none", "blur_size": 1.0,
         "blur_angle": 0.0, "noise": 0.0}  # fmt: skip
    p.update(kw)
    return p


def test_camera_effects_against_their_definitions():
    """Neutral settings leave the image; white balance and exposure are clip(img cast) **
    gamma; defocus keeps a flat image flat; a horizontal motion blur spreads a dot along its
    row only, a vertical one along its column; the noise's spread is noise sqrt(level)."""
    rng = np.random.default_rng(0)
    img = rng.uniform(0, 1, (16, 20, 3)).astype(np.float32)
    assert np.allclose(camera_effects(img, _params(), rng), img, atol=1e-7)
    cast = np.array([1.1, 0.95, 0.9])
    got = camera_effects(img, _params(cast=cast, gamma=1.3), rng)
    assert np.allclose(got, np.clip(img * cast, 0, 1) ** 1.3, atol=1e-6)
    flat = np.full((16, 16, 3), 0.4, np.float32)
    assert np.allclose(camera_effects(flat, _params(blur="defocus"), rng), 0.4, atol=1e-6)
    dot = np.zeros((21, 21, 3), np.float32)
    dot[10, 10] = 1.0
    for angle, axis in ((0.0, 0), (np.pi / 2, 1)):
        out = camera_effects(dot, _params(blur="motion", blur_size=1.5, blur_angle=angle), rng)
        lit = np.argwhere(out[..., 0] > 1e-6)
        assert len(lit) >= 5 and np.all(lit[:, axis] == 10)  # row 10 or column 10 only
        assert out[..., 0].sum() == pytest.approx(1.0, abs=1e-5)
    level = np.full((64, 64, 3), 0.25, np.float32)
    noisy = camera_effects(level, _params(noise=0.03), np.random.default_rng(1))
    assert np.std(noisy - 0.25) == pytest.approx(0.03 * 0.5, rel=0.05)
    assert abs(np.mean(noisy - 0.25)) < 1e-3


def _read(root: Path, split: str, key: str) -> np.ndarray:
    return np.asarray(json.loads((root / f"{split}_{key}.json").read_text()))


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes()
            for p in sorted(root.rglob("*.jpg"))}  # fmt: skip


@cache
def _tables(quality: int) -> dict:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16)).save(buf, "JPEG", quality=quality)
    return Image.open(buf).quantization


def _jpeg_quality(data: bytes) -> int:
    """The PIL quality whose quantisation tables a JPEG file has."""
    q = Image.open(io.BytesIO(data)).quantization
    return next(k for k in range(1, 101) if _tables(k) == q)


@pytest.fixture(scope="module")
def v1_set(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("v1") / "set"
    generate(out, SynthConfig(**TINY))
    return out


def test_v1_is_reproducible(tmp_path, v1_set):
    """Two v1 runs of one seed write byte-identical images, masks and labels."""
    again = tmp_path / "again"
    generate(again, SynthConfig(**TINY))
    a, b = _files(v1_set), _files(again)
    assert len(a) == 2 * TINY["num"] and a == b
    for key in ("K", "xyz", "verts", "mano", "model"):
        assert (v1_set / f"training_{key}.json").read_bytes() == (
            again / f"training_{key}.json"
        ).read_bytes()


def test_v2_keeps_v1s_labels_and_changes_its_images(tmp_path, v1_set):
    """A v2 set of the same seed: the same K, joints, vertices and MANO entries (v2 draws
    from its own generator) but other images; v2 itself reproducible whatever the batching."""
    v2 = tmp_path / "v2"
    generate(v2, SynthConfig(**TINY, style="v2"))
    for key in ("K", "xyz", "verts", "mano"):
        assert np.array_equal(_read(v2, "training", key), _read(v1_set, "training", key)), key
    assert json.loads((v2 / "synth_config.json").read_text())["style"] == "v2"
    f1, f2 = _files(v1_set), _files(v2)
    assert f1.keys() == f2.keys()
    rgb = [k for k in f1 if "/rgb/" in k]
    assert len(rgb) == TINY["num"] and all(f1[k] != f2[k] for k in rgb)
    # v1 saves at quality 92, v2 at a quality drawn per sample in 35-95
    assert {_jpeg_quality(f1[k]) for k in rgb} == {92}
    q2 = [_jpeg_quality(f2[k]) for k in rgb]
    assert all(35 <= q <= 95 for q in q2) and len(set(q2)) > 1, q2
    # the first two samples alone, one a batch: the same bytes
    other = tmp_path / "v2b"
    generate(other, SynthConfig(**{**TINY, "num": 2, "batch": 1}, style="v2"))
    first = _files(other)
    assert len(first) == 4 and all(f2[k] == v for k, v in first.items())


def test_unknown_style_is_refused(tmp_path, v1_set):
    """generate refuses a style other than v1/v2/v3 before writing anything; a cached v1 set is
    not reused for v2."""
    with pytest.raises(ValueError, match="style"):
        generate(tmp_path / "bad", SynthConfig(num=2, style="v4"))
    assert not any(tmp_path.iterdir())
    with pytest.raises(ValueError, match="style"):
        ensure_synthetic(v1_set, SynthConfig(**TINY, style="v2"), "training")
