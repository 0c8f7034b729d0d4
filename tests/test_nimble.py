"""NIMBLE: files in NIMBLE's format written here (built from OpenHand), and the layer against a
naive per-sample reference of NIMBLE's forward pass."""

from __future__ import annotations

import pickle
from dataclasses import replace

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from monohand.models.assets import AssetError
from monohand.models.nimble import NIMBLE
from monohand.models.openhand import OpenHand

PARENTS = [-1, 0, 1, 2, 3, 0, 5, 6, 7, 8, 0, 10, 11, 12, 13, 0, 15, 16, 17, 18, 0, 20, 21, 22, 23]
SLOT = [
    0,
    1,
    2,
    3,
    None,
    4,
    5,
    6,
    7,
    None,
    8,
    9,
    10,
    11,
    None,
    12,
    13,
    14,
    15,
    None,
    16,
    17,
    18,
    19,
    None,
]
from conftest import NIMBLE_TEX as TEX  # noqa: E402


def reference(d, go, theta, betas, transl, scale, alpha, k_pose=30, k_shape=20, k_tex=10):
    """NIMBLE's forward for one sample, loops and scipy, in millimetres -> metres."""
    m = {
        k: (v.numpy() if isinstance(v, torch.Tensor) else v)
        for k, v in pickle.loads((d / "NIMBLE_DICT_9137.pkl").read_bytes()).items()
    }
    tex = pickle.loads((d / "NIMBLE_TEX_DICT.pkl").read_bytes())
    vreg = pickle.loads((d / "NIMBLE_MANO_VREG.pkl").read_bytes())
    vert = m["vert"][0]
    n = len(vert)
    b_real = betas * m["shape_pm_std"][:k_shape] + m["shape_pm_mean"][:k_shape]
    v_shaped = vert + (m["shape_basis"][:k_shape].T @ b_real).reshape(n, 3)
    joints = m["jreg_bone"] @ v_shaped[:100]
    denorm = theta * m["pose_pm_std"][:k_pose] + m["pose_pm_mean"][:k_pose]
    full = m["pose_basis"][:k_pose].T @ denorm + m["pose_mean"]
    slots = np.concatenate([go, full]).reshape(20, 3)
    rs = [Rotation.from_rotvec(s).as_matrix() for s in slots]
    feat = np.concatenate([(rs[i] - np.eye(3)).ravel() for i in range(1, 20)])
    v_posed = v_shaped + np.einsum("vcp,p->vc", m["all_pbs"], feat)
    world = []
    for j in range(25):
        r = np.eye(3) if SLOT[j] is None else rs[SLOT[j]]
        tmat = np.eye(4)
        tmat[:3, :3] = r
        tmat[:3, 3] = joints[j] - (joints[PARENTS[j]] if j else 0)
        world.append(tmat if j == 0 else world[PARENTS[j]] @ tmat)
    posed_joints = np.array([w[:3, 3] for w in world])
    a = []
    for j in range(25):
        back = np.eye(4)
        back[:3, 3] = -joints[j]
        a.append(world[j] @ back)
    a = np.array(a)
    blend = np.einsum("vj,jab->vab", m["all_sw"], a)
    verts = np.einsum("vab,vb->va", blend[:, :3, :3], v_posed) + blend[:, :3, 3]
    root = posed_joints[0]
    verts = (root + scale * (verts - root) + transl * 1000) / 1000
    posed_joints = (root + scale * (posed_joints - root) + transl * 1000) / 1000
    skin = verts[m["skin_v_sep"] :]
    kp = m["jreg_mano"] @ skin
    f = m["skin_f"][0]
    mano = np.mean(
        [
            np.einsum(
                "vkc,vk->vc",
                skin[f[vreg["lmk_faces_idx"][i].numpy()]],
                vreg["lmk_bary_coords"][i].numpy(),
            )
            for i in range(20)
        ],
        0,
    )
    maps = []
    for kind in ("diffuse", "normal", "spec"):
        t = {k: v.numpy() for k, v in tex[kind].items()}
        x = t["basis"][:, :k_tex] @ (alpha * t["std"][:k_tex]) + t["mean"]
        maps.append(x.reshape(TEX, TEX, 3)[:, :, ::-1])  # stored BGR
    return verts, skin, kp, posed_joints, mano, np.clip(np.concatenate(maps, -1), 0, 1)


def test_layer_matches_the_reference(nimble_dir):
    model = NIMBLE(nimble_dir, dtype=torch.float64)
    g = torch.Generator().manual_seed(1)
    b = 3
    x = dict(
        global_orient=torch.randn(b, 3, generator=g, dtype=torch.float64) * 0.5,
        hand_pose=torch.randn(b, 30, generator=g, dtype=torch.float64),
        betas=torch.randn(b, 20, generator=g, dtype=torch.float64),
        transl=torch.randn(b, 3, generator=g, dtype=torch.float64) * 0.1,
        scale=1 + 0.1 * torch.randn(b, 1, generator=g, dtype=torch.float64),
        texture=torch.randn(b, 10, generator=g, dtype=torch.float64),
    )
    out = model(**x)
    assert out.vertices.shape == (b, 1528, 3) and out.joints.shape == (b, 21, 3)
    assert out.joints25.shape == (b, 25, 3) and out.mano_vertices.shape == (b, 778, 3)
    # what FreiHAND evaluation compares (predict, ablate, the network on crops): MANO topology
    assert out.evaluation_vertices is out.mano_vertices
    assert out.texture_maps.shape == (b, TEX, TEX, 9) and out.bones.shape == (b, 100, 3)
    for i in range(b):
        verts, skin, kp, joints, mano, maps = reference(
            nimble_dir,
            *(x[k][i].numpy() for k in ("global_orient", "hand_pose", "betas", "transl")),
            x["scale"][i].item(),
            x["texture"][i].numpy(),
        )
        assert np.abs(out.vertices[i].numpy() - skin).max() < 1e-10
        assert np.abs(out.bones[i].numpy() - verts[:100]).max() < 1e-10
        assert np.abs(out.muscles[i].numpy() - verts[100:160]).max() < 1e-10
        assert np.abs(out.joints[i].numpy() - kp).max() < 1e-10
        assert np.abs(out.joints25[i].numpy() - joints).max() < 1e-10
        assert np.abs(out.mano_vertices[i].numpy() - mano).max() < 1e-10
        assert np.abs(out.texture_maps[i].numpy() - maps).max() < 1e-10


def test_units_texture_resolution_and_errors(nimble_dir, tmp_path):
    model = NIMBLE(nimble_dir, dtype=torch.float64)
    rest = model()
    assert 0.15 < float(rest.vertices.amax(1)[0, 0] - rest.vertices.amin(1)[0, 0]) < 0.3  # metres
    t = torch.randn(2, 10, dtype=torch.float64)
    full = model(texture=t).texture_maps
    half = NIMBLE(nimble_dir, texture_size=8, dtype=torch.float64)(texture=t).texture_maps
    # Decoding at a lower resolution equals area-averaging the full decode (before clamping).
    avg = full.reshape(2, 8, 2, 8, 2, 9).mean((2, 4))
    inside = (full.reshape(2, 8, 2, 8, 2, 9) > 0).all(4).all(2) & (
        full.reshape(2, 8, 2, 8, 2, 9) < 1
    ).all(4).all(2)
    assert torch.allclose(half[inside], avg[inside], atol=1e-10)
    for name in ("NIMBLE_TEX_DICT.pkl", "NIMBLE_MANO_VREG.pkl"):
        (tmp_path / name).write_bytes((nimble_dir / name).read_bytes())
    d = pickle.loads((nimble_dir / "NIMBLE_DICT_9137.pkl").read_bytes())
    del d["jreg_bone"]
    (tmp_path / "NIMBLE_DICT_9137.pkl").write_bytes(pickle.dumps(d, protocol=3))
    with pytest.raises(AssetError, match=r"missing keys \['jreg_bone'\]"):
        NIMBLE(tmp_path)
    with pytest.raises(AssetError, match="missing NIMBLE files"):
        NIMBLE(tmp_path / "nowhere")
    # one of its files given for the folder; given to MANO's loader
    one = nimble_dir / "NIMBLE_DICT_9137.pkl"
    with pytest.raises(AssetError, match="one of NIMBLE's files: give the folder"):
        NIMBLE(one)
    from monohand.models.mano import MANO

    with pytest.raises(AssetError, match="a NIMBLE file, not MANO's"):
        MANO(one)


def test_full_pose_mode_and_gradients(nimble_dir):
    model = NIMBLE(nimble_dir, use_pose_pca=False, dtype=torch.float64)
    pose = (0.2 * torch.randn(2, 57, dtype=torch.float64)).requires_grad_()
    betas = torch.zeros(2, 20, dtype=torch.float64, requires_grad=True)
    out = model(hand_pose=pose, betas=betas)
    (out.joints.square().sum() + out.mano_vertices.sum()).backward()
    assert pose.grad.abs().sum() > 0 and betas.grad.abs().sum() > 0
    # With collision handling the skin only ever moves outwards from the muscles.
    plain = model(hand_pose=pose.detach())
    fixed = model(hand_pose=pose.detach(), handle_collision=True)
    assert fixed.vertices.shape == plain.vertices.shape
    assert torch.isfinite(fixed.vertices).all()


def test_conversion_to_npz(nimble_dir, tmp_path):
    from typer.testing import CliRunner

    from monohand.cli import app

    res = CliRunner().invoke(app, ["convert-model", str(nimble_dir), str(tmp_path / "nimble.npz")])
    assert res.exit_code == 0, res.output
    a, b = (
        NIMBLE(nimble_dir, dtype=torch.float64),
        NIMBLE(tmp_path / "nimble.npz", dtype=torch.float64),
    )
    x = {
        "hand_pose": torch.randn(2, 30, dtype=torch.float64),
        "texture": torch.randn(2, 10, dtype=torch.float64),
    }
    oa, ob = a(**x), b(**x)
    assert torch.equal(oa.vertices, ob.vertices) and torch.equal(oa.texture_maps, ob.texture_maps)
    res = CliRunner().invoke(app, ["convert-model", str(nimble_dir), str(tmp_path / "nimble.pt")])
    assert res.exit_code == 0, res.output
    oc = NIMBLE(tmp_path / "nimble.pt", dtype=torch.float64)(**x)
    assert torch.equal(oa.vertices, oc.vertices) and torch.equal(oa.joints, oc.joints)
    oa, oc = (m(**x, handle_collision=True) for m in (a, NIMBLE(tmp_path / "nimble.pt",
                                                                dtype=torch.float64)))  # fmt: skip
    assert torch.equal(oa.vertices, oc.vertices)  # the soft-collision weights came along
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(AssetError, match="junk.pt: not a readable .pt"):
        NIMBLE(tmp_path / "junk.pt")
    # a converted file missing a key the layer reads is named at load, not mid-fit
    arrays = dict(np.load(tmp_path / "nimble.npz"))
    del arrays["jreg_mano"]
    np.savez(tmp_path / "less.npz", **arrays)
    with pytest.raises(AssetError, match=r"less.npz: not a converted NIMBLE file \(missing "
                                         r"\['jreg_mano'\]"):  # fmt: skip
        NIMBLE(tmp_path / "less.npz")


def test_fewer_components_than_asked_are_named(nimble_dir):
    """Files with fewer PCA components than a layer asks for are refused naming the file,
    the count and the setting (a reshape error, or a crash mid-fit, before)."""
    from monohand.models.nimble import load_nimble_arrays

    a = load_nimble_arrays(nimble_dir)
    held = {"shape": len(a["shape_basis"]), "tex": a["tex_diffuse_basis"].shape[-1],
            "pose": len(a["pose_basis"])}  # fmt: skip
    for name, n in held.items():
        with pytest.raises(AssetError, match=f"{nimble_dir}: {n} {name} components, {n + 1} "
                                             f"asked \\({name}_ncomp={n + 1}\\)"):  # fmt: skip
            NIMBLE(nimble_dir, **{f"{name}_ncomp": n + 1})
        NIMBLE(nimble_dir, **{f"{name}_ncomp": n})  # as many as held: fine


def test_collision_pushes_skin_out_of_the_muscle_with_gradients():
    import trimesh

    from monohand.models.collision import inside_mesh, push_out
    from monohand.render.shade import vertex_normals

    s = trimesh.creation.icosphere(subdivisions=3)
    skin = torch.tensor(s.vertices * 0.02, dtype=torch.float64)[None]  # 2 cm skin ball
    faces = torch.tensor(s.faces)
    m = trimesh.creation.icosphere(subdivisions=2)
    muscle = torch.tensor(m.vertices * 0.012 + [0.012, 0, 0], dtype=torch.float64)[
        None
    ].requires_grad_()
    mfaces = torch.tensor(m.faces)
    normals = vertex_normals(skin, faces)
    inside = inside_mesh(skin, muscle, mfaces)
    # Reference: distance from the muscle centre below its radius (polyhedron: a little less).
    d = (skin[0] - torch.tensor([0.012, 0, 0], dtype=torch.float64)).norm(dim=-1)
    assert inside.sum() > 0 and torch.equal(
        inside[0][d < 0.0115], torch.ones_like(inside[0][d < 0.0115])
    )
    assert not inside[0][d > 0.0121].any()
    out = push_out(skin, normals, muscle, mfaces, margin=0.002)
    assert not inside_mesh(out.detach(), muscle.detach(), mfaces).any()
    moved = (out - skin).norm(dim=-1)[0] > 0
    assert torch.equal(moved, inside[0])
    # Moved vertices stay on their normal's line, beyond the muscle.
    delta = (out - skin)[0][moved]
    cos = (delta * normals[0][moved]).sum(-1) / delta.norm(dim=-1)
    assert (cos > 0.999).all()
    out.sum().backward()
    assert muscle.grad is not None and muscle.grad.abs().sum() > 0


def test_fitting_works_with_nimble(nimble_dir):
    """Two hands in one batch (their PnP starts once crashed OpenCV: NIMBLE's batched joints
    are a strided view)."""
    from monohand.evaluate.align import procrustes_align
    from monohand.fit import FitConfig, FitInputs, fit_hands
    from monohand.render.camera import project

    model = NIMBLE(nimble_dir)
    g = torch.Generator().manual_seed(3)
    truth = model(
        global_orient=torch.tensor([[2.5, 0.2, 0.1], [2.5, 0.3, 0.0]]),
        hand_pose=0.5 * torch.randn(1, 30, generator=g).repeat(2, 1),  # placed twice
        transl=torch.tensor([[0.0, 0.0, 0.5], [0.08, 0.02, 0.55]]),
    )
    K = torch.tensor([[[600.0, 0, 320], [0, 600.0, 240], [0, 0, 1]]]).repeat(2, 1, 1)
    world = truth.joints - truth.joints.mean(1, keepdim=True)
    res = fit_hands(
        model,
        FitInputs(project(truth.joints, K), torch.ones(2, 21), K, world=world),
        FitConfig(photo_iters=0),
    )
    assert (res.reprojection_px < 3.0).all()
    pa = procrustes_align(res.output.joints.double().numpy(), truth.joints.double().numpy())
    assert (np.linalg.norm(pa - truth.joints.numpy(), axis=-1).mean(1) < 0.008).all()


def test_left_hands_are_said_not_dropped_silently(nimble_dir, tmp_path):
    """NIMBLE has right hands only: a left hand given to the fit is not reconstructed, with a
    ``SideWarning`` (a video's once); it takes no place of a right hand (``max_hands``);
    ``reconstruct_photo`` reports it as found but not reconstructed, and so does the
    command."""
    from monohand.data.detection import HandDetection, SideWarning
    from monohand.reconstruct import ReconstructConfig, Reconstructor

    image = np.full((240, 320, 3), 128, np.uint8)
    K = np.array([[300.0, 0, 160], [0, 300, 120], [0, 0, 1]])
    kp = np.column_stack([np.linspace(100, 150, 21), np.linspace(150, 80, 21)])
    right = HandDetection(kp, np.ones(21), 0.9, "right")
    left = HandDetection(kp + [120, 0], np.ones(21), 0.9, "left")
    cfg = ReconstructConfig(method="fit", model="nimble", model_path=str(nimble_dir),
                            search_windows=False)  # fmt: skip
    with Reconstructor(cfg) as rec:
        assert rec.sides == ("right",)
        with pytest.warns(SideWarning, match="1 left hand.*nimble has right hands only"):
            hands = rec.reconstruct(image, K, [right, left])
    assert [h.side for h in hands] == ["right"]

    class Found:  # a detector of one's own
        def __init__(self, hands):
            self.hands = hands

        def detect(self, image, windows=None):
            return list(self.hands)

    from monohand.reconstruct import reconstruct_photo
    from monohand.video.sequence import SequenceReconstructor

    with Reconstructor(cfg, detector=Found([left])) as rec:
        res = reconstruct_photo(rec, image, tmp_path / "out", "photo")
    assert res.hands == [] and res.unsupported == [left] and res.files == []
    one = replace(cfg, max_hands=1)
    with Reconstructor(one, detector=Found([left, right])) as rec:
        assert rec.detect(image) == [right]  # the left hand, scored first, goes last
        assert [h.side for h in SequenceReconstructor(rec).step(image, K, [left, right]).hands
                ] == ["right"]  # fmt: skip
    with Reconstructor(cfg, detector=Found([left, right])) as rec:
        seq = SequenceReconstructor(rec)
        with pytest.warns(SideWarning) as said:
            for _ in range(2):
                frame = seq.step(image, K, [left, right])
        assert [h.side for h in frame.hands] == ["right"]
    assert len([w for w in said if w.category is SideWarning]) == 1
    # the command says so, rather than "no hand found"
    from PIL import Image
    from typer.testing import CliRunner

    import monohand.data.mediapipe_hands as kp_module
    from monohand.cli import app

    Image.fromarray(image).save(tmp_path / "photo.png")
    mp = pytest.MonkeyPatch()
    mp.setattr(kp_module.MediaPipeHands, "detect", lambda self, image, windows=None: [left])
    try:
        res = CliRunner().invoke(app, ["reconstruct", str(tmp_path / "photo.png"), "--model",
                                       "nimble", "--model-path", str(nimble_dir), "--out",
                                       str(tmp_path / "cli")])  # fmt: skip
    finally:
        mp.undo()
    out = " ".join(res.output.split())
    assert "no hand reconstructed" in out and "1 left hand(s) found" in out, out
    assert "nimble has right hands only" in out and "no hand found" not in out


def _uv_nimble_dir(nimble_dir, tmp_path, shuffle: bool = True):
    """``nimble_dir`` plus NIMBLE_TEX_FUV.pkl (OBJ lines built from OpenHand's UV layout, faces
    shuffled and corners rotated) and a diffuse mean = OpenHand's albedo map, stored BGR."""
    import shutil

    d = tmp_path / "nimble_uv"
    shutil.copytree(nimble_dir, d)
    hand = OpenHand(dtype=torch.float64)
    albedo = hand.texture_mean.numpy()  # (S, S, 3) RGB, row 0 at v = 1
    s = albedo.shape[0]
    rng = np.random.default_rng(1)
    t = torch.as_tensor
    tex = {k: {"basis": t(rng.normal(scale=0.05, size=(s * s * 3, 2))),
               "mean": t(albedo[:, :, ::-1].reshape(-1).copy()),
               "std": t(np.ones(2))} for k in ("diffuse", "normal", "spec")}  # fmt: skip
    (d / "NIMBLE_TEX_DICT.pkl").write_bytes(pickle.dumps(tex, protocol=3))
    faces, fuv = hand.faces.numpy(), hand.face_uvs.numpy()
    order = rng.permutation(len(faces)) if shuffle else np.arange(len(faces))
    lines = ["usemtl material_0\n"] + [f"vt {u:.8f} {v:.8f}\n" for u, v in hand.uvs.numpy()]
    for i in order:
        r = rng.integers(3) if shuffle else 0  # the same triangle, another first corner
        cs = [(faces[i][(c + r) % 3] + 1, fuv[i][(c + r) % 3] + 1) for c in range(3)]
        lines.append("f " + " ".join(f"{a}/{b}/{a}" for a, b in cs) + "\n")
    lines.append("# End of File")
    (d / "NIMBLE_TEX_FUV.pkl").write_bytes(pickle.dumps(lines, protocol=3))
    return d, hand


def test_uv_layout_renders_the_texture_maps(nimble_dir, tmp_path):
    """NIMBLE's UV file is parsed, matched to skin_f and rendered: the same surface with the
    same albedo (stored BGR) must render exactly as OpenHand's own UV pipeline does."""
    from monohand.models.base import has_texture_space
    from monohand.models.nimble import save_nimble_npz
    from monohand.render import Renderer
    from monohand.render.camera import default_K

    d, hand = _uv_nimble_dir(nimble_dir, tmp_path)
    model = NIMBLE(d, tex_ncomp=2, dtype=torch.float64)
    assert has_texture_space(model) and not has_texture_space(NIMBLE(nimble_dir))
    np.testing.assert_array_equal(model.face_uvs.numpy(), hand.face_uvs.numpy())
    np.testing.assert_allclose(model.uvs.numpy(), hand.uvs.numpy(), atol=1e-8)
    diffuse, colours = model.albedo(torch.zeros(1, 2, dtype=torch.float64))
    np.testing.assert_allclose(diffuse[0].numpy(), hand.texture_mean.numpy(), atol=1e-12)
    assert colours.shape == (1, model.num_vertices, 3)
    v = hand.data.v_template[None] @ np.diag([1.0, -1, -1]) + [0, 0, 0.4]
    v = torch.as_tensor(v)
    K = default_K((96, 96), 50).double()
    ren = Renderer((96, 96))
    a = ren(v, model.faces, K, texture=diffuse, uvs=model.uvs, face_uvs=model.face_uvs)
    b = ren(v, hand.faces, K, texture=hand.texture_mean[None], uvs=hand.uvs,
            face_uvs=hand.face_uvs)  # fmt: skip
    assert a.mask.sum() > 500
    np.testing.assert_allclose(a.rgb.numpy(), b.rgb.numpy(), atol=1e-6)
    # The UV layout survives the conversion to .npz.
    npz = NIMBLE(save_nimble_npz(d, tmp_path / "n.npz"), tex_ncomp=2, dtype=torch.float64)
    np.testing.assert_array_equal(npz.face_uvs.numpy(), model.face_uvs.numpy())


def test_uv_file_errors(nimble_dir, tmp_path):
    d, _ = _uv_nimble_dir(nimble_dir, tmp_path, shuffle=False)
    lines = pickle.loads((d / "NIMBLE_TEX_FUV.pkl").read_bytes())
    (d / "NIMBLE_TEX_FUV.pkl").write_bytes(pickle.dumps(lines[:-500], protocol=3))
    with pytest.raises(AssetError, match="NIMBLE_TEX_FUV.pkl: .* textured faces, skin_f has"):
        NIMBLE(d, tex_ncomp=2)
    (d / "NIMBLE_TEX_FUV.pkl").write_bytes(pickle.dumps(["vt 0.1", "f 1/1 2/2 3/3"], protocol=3))
    with pytest.raises(AssetError, match="bad OBJ line 'vt 0.1'"):
        NIMBLE(d, tex_ncomp=2)


def test_fitting_with_nimble_textures_and_a_textured_glb(nimble_dir, tmp_path):
    """Stage 2 (render-and-compare texture + light) and the textured .glb work for NIMBLE."""
    import trimesh

    from monohand.export import textured_mesh
    from monohand.fit import FitConfig, FitInputs, fit_hands
    from monohand.reconstruct import hands_from_fit
    from monohand.render import Renderer
    from monohand.render.camera import project

    d, _ = _uv_nimble_dir(nimble_dir, tmp_path)
    model = NIMBLE(d, tex_ncomp=2)
    truth = model(global_orient=torch.tensor([[2.5, 0.2, 0.1]]),
                  transl=torch.tensor([[0.0, 0.0, 0.5]]),
                  texture=torch.tensor([[1.5, -1.0]]))  # fmt: skip
    K = torch.tensor([[[600.0, 0, 64], [0, 600.0, 64], [0, 0, 1]]])
    crop = Renderer((128, 128))(truth.vertices, model.faces, K, texture=truth.texture,
                                uvs=model.uvs, face_uvs=model.face_uvs).rgb  # fmt: skip
    world = truth.joints - truth.joints.mean(1, keepdim=True)
    inputs = FitInputs(project(truth.joints, K), torch.ones(1, 21), K, world=world, crop=crop,
                       crop_K=K)  # fmt: skip
    res = fit_hands(model, inputs, FitConfig(iters=60, photo_iters=40))
    # The texture coefficients are recovered from the picture (from 0; measured 0.13 away).
    assert (res.texture - torch.tensor([[1.5, -1.0]])).norm() < 0.3
    from monohand.data.detection import HandDetection

    det = HandDetection(inputs.keypoints[0].numpy(), np.ones(21), 1.0, "right")
    (hd,) = hands_from_fit(model, res, [det], K)
    mesh = textured_mesh(hd)
    glb = tmp_path / "n.glb"
    mesh.export(glb, file_type="glb")
    back = trimesh.load(glb, force="mesh")
    assert back.visual.uv.shape == (len(back.vertices), 2)


def test_soft_collision_spreading_matches_a_naive_reference(nimble_dir):
    """NIMBLE's 0.7 hard + 0.3 soft blend with its dis_to_weight weights, written densely and
    per vertex here, against the layer's sparse batched version."""
    from monohand.models.collision import push_out
    from monohand.render.shade import vertex_normals

    model = NIMBLE(nimble_dir, use_pose_pca=False, dtype=torch.float64)
    pose = 0.3 * torch.randn(2, 57, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    plain = model(hand_pose=pose)
    fixed = model(hand_pose=pose, handle_collision=True)
    skin = plain.vertices
    hard = push_out(skin, vertex_normals(skin, model.faces), plain.muscles, model.muscle_faces,
                    model.surface_mask)  # fmt: skip
    assert (hard - skin).norm(dim=-1).gt(0).sum() > 0  # the fixture's muscles do collide
    gd = pickle.loads((nimble_dir / "NIMBLE_DICT_9137.pkl").read_bytes())["skin_v_gd"].numpy()
    n = len(gd)
    w = np.zeros((n, n))
    for i in range(n):  # NIMBLE's dis_to_weight(gd, 30, 50), one row at a time
        row = gd[i].astype(np.float64).copy()
        row[(row == 0) | (row > 30)] = 1e5
        e = np.exp(-row / 50)
        w[i] = e / (np.linalg.norm(e) + 1e-6)
    offset = (hard - skin).numpy()
    want = 0.7 * hard.numpy() + 0.3 * (skin.numpy() + np.einsum("ij,bjc->bic", w, offset))
    np.testing.assert_allclose(fixed.vertices.numpy(), want, atol=1e-9)
    # The soft part moves neighbours of pushed vertices too.
    moved = (fixed.vertices - skin).norm(dim=-1) > 1e-9
    assert moved.sum() > (hard - skin).norm(dim=-1).gt(0).sum()


def test_mano_regression_reproduces_a_known_mesh(nimble_dir, tmp_path):
    """A VREG whose 20 samples per MANO vertex all sit on one chosen skin vertex (one-hot
    barycentric weights on whichever corner of whichever face holds it) must return exactly
    those skin vertices: a known 778-vertex mesh."""
    import shutil

    d = tmp_path / "known"
    shutil.copytree(nimble_dir, d)
    skin_f = pickle.loads((d / "NIMBLE_DICT_9137.pkl").read_bytes())["skin_f"].numpy()[0]
    rng = np.random.default_rng(7)
    targets = rng.choice(np.unique(skin_f), 778, replace=False)
    faces_idx = np.zeros((20, 778), np.int64)
    bary = np.zeros((20, 778, 3))
    for k, t in enumerate(targets):
        holding = np.argwhere(skin_f == t)  # (face, corner) pairs
        pick = holding[rng.integers(len(holding), size=20)]
        faces_idx[:, k], bary[np.arange(20), k, pick[:, 1]] = pick[:, 0], 1.0
    vreg = {"lmk_faces_idx": torch.as_tensor(faces_idx), "lmk_bary_coords": torch.as_tensor(bary)}
    (d / "NIMBLE_MANO_VREG.pkl").write_bytes(pickle.dumps(vreg, protocol=3))
    model = NIMBLE(d, dtype=torch.float64)
    out = model(hand_pose=torch.randn(2, 30, dtype=torch.float64))
    np.testing.assert_allclose(out.mano_vertices.numpy(), out.vertices[:, targets].numpy(),
                               atol=1e-12)  # fmt: skip


def test_geodesic_matrix_of_the_wrong_shape_is_named(nimble_dir, tmp_path):
    import shutil

    d = tmp_path / "gd"
    shutil.copytree(nimble_dir, d)
    main = pickle.loads((d / "NIMBLE_DICT_9137.pkl").read_bytes())
    main["skin_v_gd"] = main["skin_v_gd"][:, :8]
    (d / "NIMBLE_DICT_9137.pkl").write_bytes(pickle.dumps(main, protocol=3))
    want = r"NIMBLE_DICT_9137.pkl: 'skin_v_gd' has shape \(1528, 8\)"
    with pytest.raises(AssetError, match=want):
        NIMBLE(d)
