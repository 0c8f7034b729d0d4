"""The renderer against a brute-force rasteriser, closed forms and finite differences."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
import trimesh

from monohand.render import Renderer, antialias, interpolate, rasterize, sample_texture, zbuffer
from monohand.render.camera import default_K, project
from monohand.render.shade import default_light, lambert

F64 = torch.float64


def blob(
    seed: int, centre=(0.0, 0.0, 0.5), radius=0.05, subdivisions=2
) -> tuple[torch.Tensor, torch.Tensor]:
    """A closed, bumpy sphere (outward faces) at ``centre``."""
    s = trimesh.creation.icosphere(subdivisions=subdivisions)
    rng = np.random.default_rng(seed)
    v = s.vertices * (1 + 0.15 * rng.uniform(-1, 1, size=(len(s.vertices), 1)))
    rot = trimesh.transformations.random_rotation_matrix(rng.random(3))[:3, :3]
    v = v @ rot.T * radius + np.asarray(centre)
    return torch.tensor(v, dtype=F64)[None], torch.tensor(s.faces, dtype=torch.long)


def brute_force(vertices, faces, K, size):
    """Per-pixel point-in-triangle with perspective-correct depth, nearest wins (any face)."""
    h, w = size
    uv = project(vertices, K)[0].numpy()
    z = vertices[0, :, 2].numpy()
    ys, xs = np.mgrid[0:h, 0:w]
    p = np.stack([xs, ys], -1).astype(float)
    depth = np.full((h, w), np.inf)
    fid = np.full((h, w), -1)
    for f, (a, b, c) in enumerate(faces.numpy()):
        t = uv[[a, b, c]]
        area = (t[1, 0] - t[0, 0]) * (t[2, 1] - t[0, 1]) - (t[2, 0] - t[0, 0]) * (t[1, 1] - t[0, 1])
        if abs(area) < 1e-12:
            continue

        def cross(u, v):
            return u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]

        l0 = cross(t[1] - p, t[2] - p) / area
        l1 = cross(t[2] - p, t[0] - p) / area
        l2 = 1 - l0 - l1
        inside = (l0 >= 0) & (l1 >= 0) & (l2 >= 0)
        d = 1.0 / (l0 / z[a] + l1 / z[b] + l2 / z[c])
        better = inside & (d < depth)
        depth[better], fid[better] = d[better], f
    return fid, np.where(fid >= 0, depth, 0.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_brute_force(seed):
    v1, f1 = blob(seed, centre=(0.01, 0.0, 0.45))
    v2, f2 = blob(seed + 10, centre=(-0.03, 0.02, 0.55), radius=0.04)
    v = torch.cat([v1, v2], 1)
    f = torch.cat([f1, f2 + v1.shape[1]])
    size = (64, 80)
    K = default_K(size, 45).to(F64)
    frags = rasterize(v, f, K, size)
    fid_ref, depth_ref = brute_force(v, f, K, size)
    got = frags.face_ids[0].numpy()
    got_hard = np.where(frags.mask[0].numpy(), got, -1)
    cover_ref = fid_ref >= 0
    # Coverage agrees except on pixels whose centre lies on an edge (none expected here).
    assert np.mean(got_hard >= 0) > 0.05
    assert np.array_equal(got_hard >= 0, cover_ref)
    same = got_hard == fid_ref
    assert same[cover_ref].mean() > 0.99  # ties on shared edges may pick the neighbour
    both = cover_ref
    assert np.abs(frags.depth[0].numpy()[both] - depth_ref[both]).max() < 1e-5


def test_planar_triangle_interpolation_is_perspective_correct():
    # A slanted triangle; attribute = the 3D point itself. Interpolation must give the point
    # where the pixel's ray meets the triangle's plane.
    v = torch.tensor([[[-0.1, -0.08, 0.4], [0.12, -0.05, 0.7], [0.0, 0.1, 0.5]]], dtype=F64)
    f = torch.tensor([[0, 2, 1]])
    size = (48, 48)
    K = default_K(size, 60).to(F64)
    frags = rasterize(v, f, K, size)
    if not frags.mask.any():  # orientation: try the other winding
        f = torch.tensor([[0, 1, 2]])
        frags = rasterize(v, f, K, size)
    assert frags.mask.sum() > 50
    pts = interpolate(v, f, frags)[0][frags.mask[0]]
    ys, xs = torch.nonzero(frags.mask[0], as_tuple=True)
    rays = torch.stack([xs, ys, torch.ones_like(xs)], -1).to(F64) @ torch.linalg.inv(K[0]).T
    n = torch.cross(v[0, 1] - v[0, 0], v[0, 2] - v[0, 0], dim=0)
    t = (v[0, 0] @ n) / (rays @ n)
    assert torch.allclose(pts, rays * t[:, None], atol=1e-12)
    assert torch.allclose(frags.depth[0][frags.mask[0]], (rays * t[:, None])[:, 2], atol=1e-12)


def test_sphere_silhouette_area_is_pi_r_squared():
    s = trimesh.creation.icosphere(subdivisions=5)
    radius, dist = 0.05, 0.6
    v = torch.tensor(s.vertices * radius + [0, 0, dist], dtype=F64)[None]
    f = torch.tensor(s.faces)
    size = (160, 160)
    K = torch.tensor([[[500.0, 0, 79.5], [0, 500.0, 79.5], [0, 0, 1]]], dtype=F64)
    out = Renderer(size)(v, f, K)
    # The silhouette of a sphere centred on the axis: a circle of radius f R / sqrt(d^2 - R^2).
    r_px = 500 * radius / math.sqrt(dist**2 - radius**2)
    assert out.silhouette.sum().item() == pytest.approx(math.pi * r_px**2, rel=0.01)
    assert out.mask.sum().item() == pytest.approx(math.pi * r_px**2, rel=0.02)


def fd_check(loss_fn, v, n_dirs=4, eps=1e-6, seed=0):
    v = v.clone().requires_grad_()
    loss = loss_fn(v)
    (grad,) = torch.autograd.grad(loss, v)
    g = torch.Generator().manual_seed(seed)
    for _ in range(n_dirs):
        d = torch.randn(v.shape, generator=g, dtype=F64)
        num = (loss_fn(v.detach() + eps * d) - loss_fn(v.detach() - eps * d)) / (2 * eps)
        ana = (grad * d).sum()
        assert torch.sign(num) == torch.sign(ana)
        assert ana.item() == pytest.approx(num.item(), rel=0.05, abs=1e-3 * abs(num.item()) + 1e-8)


def test_silhouette_gradient_matches_finite_differences():
    v, f = blob(3, centre=(0.0, 0.0, 0.5))
    size = (48, 48)
    K = default_K(size, 40).to(F64)
    target = torch.rand(1, *size, generator=torch.Generator().manual_seed(1), dtype=F64)
    ren = Renderer(size)

    def loss(x):
        return ((ren(x, f, K).silhouette - target) ** 2).sum()

    fd_check(loss, v)


def test_rgb_gradient_matches_finite_differences():
    v, f = blob(4, centre=(0.0, 0.0, 0.5))
    size = (40, 40)
    K = default_K(size, 40).to(F64)
    colors = torch.rand(1, v.shape[1], 3, generator=torch.Generator().manual_seed(2), dtype=F64)
    target = torch.rand(1, *size, 3, generator=torch.Generator().manual_seed(3), dtype=F64)
    ren = Renderer(size, background=(0.2, 0.3, 0.4))

    def loss(x):
        return (
            (ren(x, f, K, vertex_colors=colors, light=default_light(1, F64)).rgb - target) ** 2
        ).sum()

    fd_check(loss, v)


def test_shading_and_texture_gradients():
    # Lambert: closed form at a pixel facing the light.
    albedo = torch.tensor([[0.5, 0.4, 0.3]], dtype=F64)
    n = torch.tensor([[0.0, 0.0, -1.0]], dtype=F64)
    light = torch.tensor([[0.3, 0.6, 1, 1, 1, 1, 0.5, 0.5, 0, 0, -2.0]], dtype=F64)
    want = albedo * (0.3 + 0.6 * torch.tensor([1.0, 0.5, 0.5], dtype=F64) * 2.0)
    assert torch.allclose(lambert(albedo, n, light), want)
    # Texture lookup: exact at texel centres, differentiable in texture and UV.
    tex = torch.rand(1, 8, 6, 3, dtype=F64)
    i, j = 2, 3
    uv = torch.tensor([[[[(j + 0.5) / 6, 1 - (i + 0.5) / 8]]]], dtype=F64)
    assert torch.allclose(sample_texture(tex, uv)[0, 0, 0], tex[0, i, j])
    uv2 = (torch.rand(1, 2, 3, 2, dtype=F64) * 0.8 + 0.1).requires_grad_()
    assert torch.autograd.gradcheck(sample_texture, (tex.clone().requires_grad_(), uv2))


def test_renderer_interface_and_empty_images():
    v, f = blob(5, centre=(0.0, 0.0, 0.5))
    v = torch.cat([v, v + torch.tensor([0, 0, -2.0], dtype=F64)])  # the second is behind
    K = default_K((32, 32), 40, 2).to(F64)
    out = Renderer((32, 32))(v.float(), f, K.float(), vertex_colors=torch.rand(2, v.shape[1], 3))
    assert out.silhouette.shape == (2, 32, 32) and out.rgb.shape == (2, 32, 32, 3)
    assert out.face_ids.dtype == torch.long and out.normals.shape == (2, 32, 32, 3)
    assert out.silhouette[0].sum() > 10 and out.silhouette[1].sum() == 0
    assert (out.face_ids[1] == -1).all() and (out.depth[1] == 0).all()
    assert (out.depth[0][out.mask[0]] > 0.4).all()
    with pytest.raises(ValueError, match=r"disagree on the batch size: vertices 2, K 1"):
        Renderer((32, 32))(v.float(), f, K[:1].float())
    # Normals point to the camera (-z) where the surface is seen.
    assert (out.normals[0][out.mask[0]][:, 2] < 0.3).all()


def test_the_renderers_inputs_are_checked_and_named():
    """Each mistake names its argument and the shape or type wanted (they were raw
    IndexErrors from deep inside, or blamed K for vertices without a batch axis)."""
    v, f = blob(5)
    v = v.float().repeat(2, 1, 1)
    K = default_K((32, 32), 40, 2).float()
    r = Renderer((32, 32))
    n = v.shape[1]
    cases = [
        (lambda: r(v[0], f, K[:1]), ValueError, "vertices: expected shape (B, V, 3), got"),
        (lambda: r(v, f, K, vertex_colors=torch.rand(n, 3)), ValueError,
         "vertex_colors: expected shape (B, V, 3)"),
        (lambda: r(v, f, K, vertex_colors=torch.rand(2, 7, 3)), ValueError,
         f"disagree on the vertex count: vertices {n}, vertex_colors 7"),
        (lambda: r(v[:0], f, K[:0]), ValueError, "a batch of 0 meshes"),
        (lambda: r(v, f[:, :2], K), ValueError, "faces: expected shape (F, 3)"),
        (lambda: r(v, f.float(), K), TypeError, "faces: expected an integer tensor"),
        (lambda: r(v, f + n, K), ValueError, f"faces: indices {n}..{int(f.max()) + n} for {n}"),
        (lambda: r(v, f, K.numpy()), TypeError, "K: expected a torch tensor (B, 3, 3)"),
        (lambda: r(v.numpy(), f, K), TypeError, "torch.as_tensor(x) converts one"),
        (lambda: r(v, f, K, light=torch.zeros(2, 9)), ValueError, "light: expected shape (B, 11)"),
        (lambda: r(v, f, K, background=torch.zeros(2, 8, 8, 3)), ValueError,
         "background: expected shape (2, 32, 32, 3)"),
        (lambda: r(v, f, K, background=torch.zeros(2, 32, 32, 3, dtype=torch.uint8)),
         TypeError, "x.float() / 255"),
        (lambda: Renderer((0, 32)), ValueError, "image_size: expected sizes above 0"),
        (lambda: Renderer((32.5, 32)), ValueError, "image_size: expected (H, W) in whole"),
        (lambda: Renderer((32, 32, 3)), ValueError, "image_size: expected (H, W) in whole"),
    ]  # fmt: skip
    for call, kind, words in cases:
        with pytest.raises(kind, match=re.escape(words)):
            call()
    assert Renderer(32).image_size == (32, 32)  # one int: a square image
    assert Renderer(np.int64(32)).image_size == Renderer((np.int64(32), 32)).image_size
    ok = r(v, f, K, background=torch.full((3,), 0.5))
    assert ok.rgb.shape == (2, 32, 32, 3) and ok.rgb[ok.silhouette == 0].eq(0.5).all()


def test_gbuffer_shaded_again_equals_a_fresh_render():
    # Fitting shades one rasterisation many times: that must equal rendering anew.
    v, f = blob(5, centre=(0.0, 0.0, 0.5))
    K = default_K((32, 32), 40, 1).to(F64)
    uvs = torch.rand(v.shape[1], 2, dtype=F64)
    ren = Renderer((32, 32))
    g = ren.gbuffer(v, f, K, uvs, f)
    for seed in (0, 1):
        tex = torch.rand(1, 8, 8, 3, dtype=F64, generator=torch.Generator().manual_seed(seed))
        light = default_light(1, F64) * (1 + seed)
        fresh = ren(v, f, K, texture=tex, uvs=uvs, face_uvs=f, light=light)
        again = ren.compose(g, sample_texture(tex, g.uv), light)
        assert torch.equal(again.rgb, fresh.rgb) and torch.equal(again.mask, fresh.mask)
    with pytest.raises(ValueError, match="uvs and face_uvs"):
        ren.gbuffer(v, f, K, uvs, None)
    with pytest.raises(ValueError, match="uvs and face_uvs"):
        ren(v, f, K, texture=tex)
    # UVs without a texture are ignored (a model's UVs passed along with vertex colours).
    plain = ren(v, f, K, uvs=uvs, face_uvs=f)
    assert torch.equal(plain.rgb, ren(v, f, K).rgb)
    # The topology is cached per faces tensor: an equal copy elsewhere in memory is new.
    first = ren.topology(f)
    assert ren.topology(f) is first and ren.topology(f.clone()) is not first


def test_gbuffer_taken_at_pixels_shades_those_pixels_alike():
    v, f = blob(5, centre=(0.0, 0.0, 0.5))
    v = torch.cat([v, v * torch.tensor([1.1, 0.9, 1.0], dtype=F64)])  # two different images
    K = default_K((32, 32), 40, 2).to(F64)
    uvs = torch.rand(v.shape[1], 2, dtype=F64, generator=torch.Generator().manual_seed(3))
    ren = Renderer((32, 32))
    g = ren.gbuffer(v, f, K, uvs, f)
    tex = torch.rand(2, 8, 8, 3, dtype=F64, generator=torch.Generator().manual_seed(4))
    light = default_light(2, F64)
    full = ren.compose(g, sample_texture(tex, g.uv), light).rgb.flatten(1, 2)
    pixels = torch.tensor([0, 5, 300, 511, 512, 700, 1023])
    part = g.take(pixels)
    assert part.normals.shape == (2, 7, 1, 3) and part.fragments.mask.shape == (2, 7, 1)
    again = ren.compose(part, sample_texture(tex, part.uv), light).rgb
    assert torch.equal(again[:, :, 0], full[:, pixels])


def test_zbuffer_and_antialias_are_primitives_of_their_own():
    v, f = blob(1, centre=(0.01, -0.005, 0.45))
    size = (40, 40)
    K = default_K(size, 40).to(F64)
    hard = zbuffer(v, f, K, size)
    assert torch.equal(hard.alpha, hard.mask.to(F64))  # no anti-aliasing yet
    fid, depth = brute_force(v, f, K, size)
    assert (hard.face_ids.numpy()[0] == fid).mean() > 0.99
    soft = antialias(hard, v, f, K)
    both = rasterize(v, f, K, size)
    for name in ("face_ids", "bary", "depth", "mask", "alpha"):
        assert torch.equal(getattr(soft, name), getattr(both, name)), name
    # Only a band around the outer contour changes, and there the coverage is soft.
    changed = soft.alpha != hard.alpha
    assert changed.any() and torch.equal(soft.mask, hard.mask)
    inner = -torch.nn.functional.max_pool2d(-hard.mask[:, None].to(F64), 7, 1, 3)[:, 0] > 0
    assert not (changed & inner).any()
    # The hard coverage has no gradient; the anti-aliased one moves with the vertices.
    x = v.clone().requires_grad_()
    assert not zbuffer(x, f, K, size).alpha.requires_grad
    (g,) = torch.autograd.grad(antialias(zbuffer(x, f, K, size), x, f, K).alpha.sum(), x)
    assert g.abs().max() > 0


def test_silhouette_alone_is_the_rasterisers_coverage_and_gradient():
    from monohand.render import silhouette

    for seed in (0, 3):
        v, f = blob(seed, centre=(0.01, -0.005, 0.45))
        v = torch.cat([v, blob(seed + 1, centre=(-0.02, 0.01, 0.5))[0]])  # a batch of two
        size = (36, 44)
        K = default_K(size, 40).to(F64).expand(2, 3, 3)
        x = v.clone().requires_grad_()
        full = rasterize(x, f, K, size).alpha
        alone = silhouette(x, f, K, size)
        assert torch.equal(full, alone)
        assert ((alone > 0) & (alone < 1)).any()  # a soft contour, as the renderer's
        w = torch.rand(full.shape, generator=torch.Generator().manual_seed(seed), dtype=F64)
        (g_full,) = torch.autograd.grad((w * full).sum(), x)
        (g_alone,) = torch.autograd.grad((w * silhouette(x, f, K, size)).sum(), x)
        assert g_full.abs().max() > 0 and torch.equal(g_full, g_alone)
