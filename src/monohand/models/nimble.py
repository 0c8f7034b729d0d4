"""The NIMBLE hand model (Li et al., TOG 2022): bones, muscles, skin and texture maps.

NIMBLE's files cannot be shipped or downloaded; this layer reads them in their documented
format (``NIMBLE_DICT_9137.pkl``, ``NIMBLE_TEX_DICT.pkl``, ``NIMBLE_MANO_VREG.pkl``; pickles of
torch tensors, read by ``assets.load_pickle(allow_torch=True)``, never plain pickle) and
reimplements NIMBLE's forward pass (facts in ``docs/notes/nimble_facts.md``):

- shape: ``v = vert + (betas * shape_pm_std + shape_pm_mean) @ shape_basis``;
- pose: 57 PCA-decoded axis-angle numbers (19 bones) ``(theta * pose_pm_std + pose_pm_mean)
  @ pose_basis + pose_mean``, a root slot in front (here: ``global_orient``) -> 20 rotations
  driving a 25-joint tree whose five end joints are not rotated;
- joints regressed from the shaped *bone* vertices; pose blend shapes (R - I of the 19 bones)
  and linear blend skinning (25 joints) for every vertex, bone, muscle and skin alike;
- texture maps ``mean + basis[:, :K] @ (alpha * std[:K])`` for diffuse, normal and specular,
  stored BGR, returned RGB.

Unlike NIMBLE's own layer this one applies a global rotation, scale and translation, works in
metres (NIMBLE's files are in millimetres), and returns FreiHAND-order keypoints (``jreg_mano``,
rows in FreiHAND order) and MANO-topology vertices (the VREG barycentric samples, averaged).
Collision handling (optional) is batched and differentiable (``models.collision``), with
NIMBLE's geodesic "soft" spreading of the offsets when ``skin_v_gd`` is in the files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..atomic import atomic_write
from ..render.shade import sample_texture, vertex_normals
from .assets import AssetError, load_npz, load_pickle, save_npz
from .base import HandModel, HandOutput
from .collision import push_out, soften, spread_weights
from .lbs import batch_rigid_transform, batch_rodrigues, skin_vertices, tree_levels
from .obj_uv import align_uv_faces, parse_obj_uv_lines

NIMBLE_PARENTS = (
    -1,
    0,
    1,
    2,
    3,
    0,
    5,
    6,
    7,
    8,
    0,
    10,
    11,
    12,
    13,
    0,
    15,
    16,
    17,
    18,
    0,
    20,
    21,
    22,
    23,
)
# Pose slot (0 = root) of each of the 25 joints; -1: an end joint, never rotated.
NIMBLE_JOINT_SLOT = (
    0,
    1,
    2,
    3,
    -1,
    4,
    5,
    6,
    7,
    -1,
    8,
    9,
    10,
    11,
    -1,
    12,
    13,
    14,
    15,
    -1,
    16,
    17,
    18,
    19,
    -1,
)
MM = 1e-3
FILES = ("NIMBLE_DICT_9137.pkl", "NIMBLE_TEX_DICT.pkl", "NIMBLE_MANO_VREG.pkl")
# Optional: the skin's UV layout, as NIMBLE's code writes it into OBJ files (a pickled list of
# OBJ text lines: ``vt u v`` and ``f v/vt/vn ...``, 1-based, v up).
UV_FILE = "NIMBLE_TEX_FUV.pkl"
_DICT_KEYS = (
    "vert",
    "all_sw",
    "all_pbs",
    "jreg_bone",
    "jreg_mano",
    "shape_basis",
    "shape_pm_std",
    "shape_pm_mean",
    "pose_basis",
    "pose_mean",
    "pose_pm_std",
    "pose_pm_mean",
    "bone_f",
    "muscle_f",
    "skin_f",
    "bone_v_sep",
    "skin_v_sep",
    "skin_v_surface_mask",
)


def _np(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def load_nimble_arrays(asset_dir: str | Path) -> dict[str, np.ndarray]:
    """Read and check NIMBLE's three files (or the ``.npz`` of ``save_nimble_npz``); lengths
    in metres. Raises ``AssetError``."""
    d = Path(asset_dir)
    if d.suffix in (".npz", ".pt"):
        arrays = load_npz(d) if d.suffix == ".npz" else _load_pt(d)
        need = (*_DICT_KEYS, "tex_size", "lmk_faces_idx", "lmk_bary_coords",
                *(f"tex_{kind}_{part}" for kind in ("diffuse", "normal", "spec")
                  for part in ("basis", "mean", "std")))  # fmt: skip
        if any(k not in arrays for k in need):
            raise AssetError(
                f"{d}: not a converted NIMBLE file (missing {[k for k in need if k not in arrays]})"
            )
        for k in ("bone_v_sep", "skin_v_sep", "tex_size"):
            arrays[k] = int(arrays[k])
        return arrays
    if d.name in (*FILES, UV_FILE) and d.is_file():
        raise AssetError(f"{d}: one of NIMBLE's files: give the folder that holds the three "
                         f"({d.parent})")  # fmt: skip
    missing = [f for f in FILES if not (d / f).is_file()]
    if missing:
        raise AssetError(f"{d}: missing NIMBLE files {missing}")
    main = load_pickle(d / FILES[0], allow_torch=True)
    tex = load_pickle(d / FILES[1], allow_torch=True)
    vreg = load_pickle(d / FILES[2], allow_torch=True)
    if not isinstance(main, dict) or any(k not in main for k in _DICT_KEYS):
        absent = [k for k in _DICT_KEYS if not isinstance(main, dict) or k not in main]
        raise AssetError(f"{d / FILES[0]}: missing keys {absent}")
    a = {
        k: _np(main[k]).squeeze() if k not in ("bone_f", "muscle_f", "skin_f") else _np(main[k])
        for k in _DICT_KEYS
    }
    for k in ("bone_f", "muscle_f", "skin_f"):
        a[k] = a[k].reshape(-1, 3).astype(np.int64)
    a["vert"] = a["vert"].reshape(-1, 3) * MM
    n = len(a["vert"])
    a["shape_basis"] = a["shape_basis"].reshape(-1, n * 3) * MM
    a["all_pbs"] = a["all_pbs"].reshape(n, 3, -1) * MM
    a["all_sw"] = a["all_sw"].reshape(n, -1)
    a["bone_v_sep"], a["skin_v_sep"] = int(a["bone_v_sep"]), int(a["skin_v_sep"])
    n_bone, n_skin = (
        a["bone_v_sep"],
        -a["skin_v_sep"] if a["skin_v_sep"] < 0 else n - a["skin_v_sep"],
    )
    checks = {
        "all_sw": (a["all_sw"].shape, (n, 25)),
        "all_pbs": (a["all_pbs"].shape, (n, 3, 171)),
        "jreg_bone": (a["jreg_bone"].shape, (25, n_bone)),
        "jreg_mano": (a["jreg_mano"].shape, (21, n_skin)),
        "pose_basis": (a["pose_basis"].shape[1:], (57,)),
        "skin_v_surface_mask": (a["skin_v_surface_mask"].shape, (n_skin,)),
    }
    for key, (got, want) in checks.items():
        if tuple(got) != want:
            raise AssetError(f"{d / FILES[0]}: '{key}' has shape {tuple(got)}, expected {want}")
    for kind in ("diffuse", "normal", "spec"):
        if kind not in tex or any(k not in tex[kind] for k in ("basis", "mean", "std")):
            raise AssetError(f"{d / FILES[1]}: missing '{kind}' basis/mean/std")
        a[f"tex_{kind}_basis"] = _np(tex[kind]["basis"]).squeeze()
        a[f"tex_{kind}_mean"] = _np(tex[kind]["mean"]).reshape(-1)
        a[f"tex_{kind}_std"] = _np(tex[kind]["std"]).reshape(-1)
    size = int(round(np.sqrt(len(a["tex_diffuse_mean"]) / 3)))
    if 3 * size * size != len(a["tex_diffuse_mean"]):
        raise AssetError(
            f"{d / FILES[1]}: texture mean of {len(a['tex_diffuse_mean'])} is not square RGB"
        )
    a["tex_size"] = size
    try:
        a["lmk_faces_idx"] = _np(vreg["lmk_faces_idx"]).astype(np.int64)
        a["lmk_bary_coords"] = _np(vreg["lmk_bary_coords"]).astype(np.float64)
    except (KeyError, TypeError) as e:
        raise AssetError(f"{d / FILES[2]}: missing lmk_faces_idx / lmk_bary_coords") from e
    if a["lmk_faces_idx"].shape != a["lmk_bary_coords"].shape[:2]:
        raise AssetError(
            f"{d / FILES[2]}: lmk_faces_idx {a['lmk_faces_idx'].shape} and "
            f"lmk_bary_coords {a['lmk_bary_coords'].shape} disagree"
        )
    if "skin_v_gd" in main:  # geodesic distances (mm) for the soft collision offsets
        gd = _np(main["skin_v_gd"]).squeeze()
        if gd.shape != (n_skin, n_skin):
            raise AssetError(f"{d / FILES[0]}: 'skin_v_gd' has shape {gd.shape}, "
                             f"expected {(n_skin, n_skin)}")  # fmt: skip
        a["spread_index"], a["spread_value"] = spread_weights(gd)
    if (d / UV_FILE).is_file():
        uvs, faces, face_uvs = parse_obj_uv_lines(load_pickle(d / UV_FILE), d / UV_FILE)
        if faces.max() >= n_skin:
            raise AssetError(f"{d / UV_FILE}: faces index beyond the {n_skin} skin vertices")
        a["uvs"] = uvs
        a["face_uvs"] = align_uv_faces(a["skin_f"], faces, face_uvs, d / UV_FILE)
    return a


def save_nimble_npz(asset_dir: str | Path, out: str | Path) -> Path:
    """Convert NIMBLE's pickles to one plain ``.npz`` or a ``.pt`` of tensors (by ``out``'s
    suffix; metres; both load without unpickling code: ``.pt`` with ``weights_only``)."""
    arrays = {k: np.asarray(v) for k, v in load_nimble_arrays(asset_dir).items()}
    out = Path(out)
    if out.suffix == ".pt":
        tensors = {k: torch.from_numpy(np.array(v, copy=True)) for k, v in arrays.items()}
        return atomic_write(out, lambda t: torch.save(tensors, t))
    save_npz(out, arrays)
    return out


def _load_pt(path: Path) -> dict[str, np.ndarray]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch.load fails in many ways on a foreign file
        raise AssetError(f"{path}: not a readable .pt of tensors ({e})") from e
    if not isinstance(state, dict):
        raise AssetError(f"{path}: expected a dict of tensors")
    return {k: _np(v) for k, v in state.items()}


@dataclass(repr=False)  # (HandOutput's one line of shapes)
class NimbleOutput(HandOutput):
    """``HandOutput`` (skin as ``vertices``) plus NIMBLE's tissues and maps, metres, RGB.

    Attributes:
        bones: (B, n_bone, 3); muscles: (B, n_muscle, 3); joints25: (B, 25, 3) rig joints.
        mano_vertices: (B, 778, 3) MANO-topology vertices (for FreiHAND evaluation).
        texture_maps: (B, h, w, 9) diffuse | normal | specular, RGB in [0, 1], or None.
    """

    bones: Tensor | None = None
    muscles: Tensor | None = None
    joints25: Tensor | None = None
    mano_vertices: Tensor | None = None
    texture_maps: Tensor | None = None

    @property
    def evaluation_vertices(self) -> Tensor:
        return self.vertices if self.mano_vertices is None else self.mano_vertices


class NIMBLE(HandModel):
    """NIMBLE layer with monohand's interface (see the module doc).

    Args:
        asset_dir: folder with NIMBLE's three files, the ``.npz`` of ``save_nimble_npz``, or a
            dict of arrays as ``load_nimble_arrays`` returns.
        pose_ncomp, shape_ncomp, tex_ncomp: PCA components used.
        use_pose_pca: ``hand_pose`` is ``pose_ncomp`` normalised PCA coefficients (NIMBLE's
            own parameters), else 57 axis-angle numbers of the 19 bones.
        texture_size: decode the texture maps at this size (area-averaged bases: exact, and
            far cheaper than 1024^2 when rendering small images); default (and at most): the
            files' size.
    """

    name = "nimble"

    def __init__(
        self,
        asset_dir: str | Path,
        pose_ncomp: int = 30,
        shape_ncomp: int = 20,
        tex_ncomp: int = 10,
        use_pose_pca: bool = True,
        texture_size: int | None = None,
        side: str = "right",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        if side != "right":
            raise ValueError("NIMBLE is a right-hand model; mirror its output for a left hand")
        # A dict is taken as the arrays of ``load_nimble_arrays`` (benchmarks, conversions).
        a = dict(asset_dir) if isinstance(asset_dir, dict) else load_nimble_arrays(asset_dir)
        source = "the arrays given" if isinstance(asset_dir, dict) else str(asset_dir)
        have = {"pose_ncomp": (pose_ncomp if use_pose_pca else 0, len(a["pose_basis"])),
                "shape_ncomp": (shape_ncomp, len(a["shape_basis"])),
                "tex_ncomp": (tex_ncomp, min(a[f"tex_{kind}_basis"].shape[-1]
                                             for kind in ("diffuse", "normal", "spec")))}
        for name, (asked, held) in have.items():
            if asked > held:
                raise AssetError(f"{source}: {held} {name.split('_')[0]} components, "
                                 f"{asked} asked ({name}={asked}): give {name} <= "
                                 f"{held}")  # fmt: skip
        self.use_pose_pca = use_pose_pca
        self.num_pose_params = pose_ncomp if use_pose_pca else 57
        self.num_shape_params = shape_ncomp
        self.num_texture_params = tex_ncomp
        self.joint_names = tuple(f"nimble_{i}" for i in range(25))
        self.bone_v_sep, self.skin_v_sep = a["bone_v_sep"], a["skin_v_sep"]

        def buf(name, x, dt=dtype):
            self.register_buffer(name, torch.as_tensor(np.ascontiguousarray(x), dtype=dt))

        buf("vert", a["vert"])
        buf("shape_basis", a["shape_basis"][:shape_ncomp])
        buf("shape_pm_std", a["shape_pm_std"][:shape_ncomp])
        buf("shape_pm_mean", a["shape_pm_mean"][:shape_ncomp])
        buf("pose_basis", a["pose_basis"][:pose_ncomp])
        buf("pose_mean", a["pose_mean"])
        buf("pose_pm_std", a["pose_pm_std"][:pose_ncomp])
        buf("pose_pm_mean", a["pose_pm_mean"][:pose_ncomp])
        buf("posedirs", a["all_pbs"].reshape(-1, 171).T)  # (171, N * 3)
        buf("weights", a["all_sw"])
        buf("jreg_bone", a["jreg_bone"])
        buf("jreg_mano", a["jreg_mano"])
        buf("faces", a["skin_f"], torch.long)
        buf("bone_faces", a["bone_f"], torch.long)
        buf("muscle_faces", a["muscle_f"], torch.long)
        buf("surface_mask", a["skin_v_surface_mask"], torch.bool)
        buf("parents", np.array(NIMBLE_PARENTS), torch.long)
        buf("joint_slot", np.array(NIMBLE_JOINT_SLOT), torch.long)
        buf("lmk_faces_idx", a["lmk_faces_idx"], torch.long)
        buf("lmk_bary", a["lmk_bary_coords"])
        size = a["tex_size"]
        out = min(texture_size or size, size)  # never upsample the files' maps
        if size % out:
            raise ValueError(f"texture_size must divide the files' {size}")
        for kind in ("diffuse", "normal", "spec"):
            basis = a[f"tex_{kind}_basis"][:, :tex_ncomp].reshape(size, size, 3, tex_ncomp)
            mean = a[f"tex_{kind}_mean"].reshape(size, size, 3)
            f = size // out
            if f > 1:  # area averaging commutes with the linear decode
                basis = basis.reshape(out, f, out, f, 3, tex_ncomp).mean((1, 3))
                mean = mean.reshape(out, f, out, f, 3).mean((1, 3))
            buf(f"tex_{kind}_basis", basis[:, :, ::-1])  # BGR -> RGB
            buf(f"tex_{kind}_mean", mean[:, :, ::-1])
            buf(f"tex_{kind}_std", a[f"tex_{kind}_std"][:tex_ncomp])
        if "spread_index" not in a:
            self.spread = None
        else:
            self.register_buffer(
                "spread",
                torch.sparse_coo_tensor(
                    torch.as_tensor(a["spread_index"], dtype=torch.long),
                    torch.as_tensor(a["spread_value"], dtype=dtype),
                    (self.num_vertices, self.num_vertices),
                    check_invariants=True,
                ).coalesce(),
            )
        if "uvs" not in a:
            self.uvs = self.face_uvs = None
        else:  # the UV layout (NIMBLE_TEX_FUV.pkl): textured rendering and fitting
            buf("uvs", a["uvs"])
            buf("face_uvs", a["face_uvs"], torch.long)
            # One UV per skin vertex (its first face corner) for vertex colours; skin
            # vertices on no face keep the map's mean colour.
            corner = np.full(self.num_vertices, -1, np.int64)
            corner[a["skin_f"].ravel()[::-1]] = a["face_uvs"].ravel()[::-1]
            buf("vertex_uv_index", corner, torch.long)
        self._levels = tree_levels(self.parents.cpu())

    def _dtype(self) -> torch.dtype:
        return self.vert.dtype

    @property
    def num_vertices(self) -> int:
        return -self.skin_v_sep if self.skin_v_sep < 0 else self.vert.shape[0] - self.skin_v_sep

    def full_pose(self, global_orient: Tensor, hand_pose: Tensor) -> Tensor:
        """(B, 20, 3) axis-angle: root slot = ``global_orient``, then the 19 bones."""
        if self.use_pose_pca:
            denorm = hand_pose * self.pose_pm_std + self.pose_pm_mean
            bones = denorm @ self.pose_basis + self.pose_mean
        else:
            bones = hand_pose
        return torch.cat([global_orient, bones], 1).view(-1, 20, 3)

    def texture_maps(self, texture: Tensor) -> Tensor:
        """(B, T) -> (B, h, w, 9) diffuse | normal | specular, RGB, clamped to [0, 1]."""
        maps = []
        for kind in ("diffuse", "normal", "spec"):
            alpha = texture * getattr(self, f"tex_{kind}_std")
            maps.append(
                getattr(self, f"tex_{kind}_mean")
                + torch.einsum("bt,hwct->bhwc", alpha, getattr(self, f"tex_{kind}_basis"))
            )
        return torch.cat(maps, -1).clamp(0, 1)

    def albedo(self, texture: Tensor) -> tuple[Tensor, Tensor]:
        """Texture coefficients (B, T) -> (diffuse map (B, h, w, 3) RGB, vertex colours
        (B, n_skin, 3) sampled at the vertices' UVs). Needs the UV layout."""
        if self.uvs is None:
            raise ValueError(f"NIMBLE: no UV layout ({UV_FILE}) was given with the model files")
        diffuse = self.texture_maps(texture)[..., :3]
        idx = self.vertex_uv_index
        uv = self.uvs[idx.clamp_min(0)][None, None].expand(diffuse.shape[0], 1, -1, 2)
        colours = sample_texture(diffuse, uv)[:, 0]
        mean = diffuse.mean((1, 2))[:, None].expand_as(colours)
        return diffuse, torch.where((idx >= 0)[None, :, None], colours, mean)

    def mano_vertices(self, skin: Tensor) -> Tensor:
        """(B, n_skin, 3) -> (B, 778, 3): NIMBLE_MANO_VREG's barycentric samples, averaged."""
        tri = skin[:, self.faces[self.lmk_faces_idx]]  # (B, 20, 778, 3 corners, 3)
        return torch.einsum("bsvkc,svk->bsvc", tri, self.lmk_bary).mean(1)

    def forward(
        self,
        global_orient: Tensor | None = None,
        hand_pose: Tensor | None = None,
        betas: Tensor | None = None,
        transl: Tensor | None = None,
        texture: Tensor | None = None,
        scale: Tensor | None = None,
        handle_collision: bool = False,
    ) -> NimbleOutput:
        """Pose NIMBLE.

        Args:
            global_orient: (B, 3) rotation about the root (carpal) joint, axis-angle.
            hand_pose: (B, pose_ncomp) normalised PCA coefficients, or (B, 57) axis-angle.
            betas: (B, shape_ncomp) normalised shape coefficients.
            transl: (B, 3) metres; scale: (B, 1) about the root joint (default 1).
            texture: (B, tex_ncomp) texture coefficients -> ``texture_maps``.
            handle_collision: push skin surface vertices that end up inside the muscles out
                along their normals (2 mm), batched and differentiable (``collision``).
        Returns:
            ``NimbleOutput``: skin vertices (B, n_skin, 3), 21 FreiHAND keypoints
            (``jreg_mano`` on the skin), bones, muscles, 25 rig joints, MANO vertices, metres.
        """
        b = self._batch_size(global_orient=global_orient, hand_pose=hand_pose, betas=betas,
                             transl=transl, texture=texture, scale=scale)  # fmt: skip
        global_orient = self._param(global_orient, b, 3, "global_orient")
        hand_pose = self._param(hand_pose, b, self.num_pose_params, "hand_pose")
        betas = self._param(betas, b, self.num_shape_params, "betas")
        transl = self._param(transl, b, 3, "transl")
        scale = (
            torch.ones_like(transl[:, :1]) if scale is None else self._param(scale, b, 1, "scale")
        )
        if texture is not None:
            texture = self._param(texture, b, self.num_texture_params, "texture")
        n = self.vert.shape[0]
        real = betas * self.shape_pm_std + self.shape_pm_mean
        v_shaped = self.vert + (real @ self.shape_basis).view(b, n, 3)
        rest_joints = torch.einsum("jv,bvc->bjc", self.jreg_bone, v_shaped[:, : self.bone_v_sep])
        slots = batch_rodrigues(self.full_pose(global_orient, hand_pose))  # (B, 20, 3, 3)
        eye = torch.eye(3, dtype=slots.dtype, device=slots.device).expand(b, 1, 3, 3)
        rot = torch.cat([slots, eye], 1)[:, self.joint_slot]  # slot -1 -> the identity
        feats = (slots[:, 1:] - torch.eye(3, dtype=slots.dtype, device=slots.device)).flatten(1)
        v_posed = v_shaped + (feats @ self.posedirs).view(b, n, 3)
        joints, rel = batch_rigid_transform(rot, rest_joints, self.parents, self._levels)
        verts = skin_vertices(v_posed, self.weights, rel)
        root = joints[:, :1]
        place = lambda x: root + scale[:, None] * (x - root) + transl[:, None]  # noqa: E731
        verts, joints = place(verts), place(joints)
        skin = verts[:, self.skin_v_sep :]
        if handle_collision:
            muscles = verts[:, self.bone_v_sep : self.skin_v_sep]
            normals = vertex_normals(skin, self.faces)
            hard = push_out(skin, normals, muscles, self.muscle_faces, self.surface_mask)
            skin = hard if self.spread is None else soften(skin, hard, self.spread)
        keypoints = torch.einsum("jv,bvc->bjc", self.jreg_mano, skin)
        tex = None if texture is None else self.texture_maps(texture)
        return NimbleOutput(
            vertices=skin,
            joints=keypoints,
            joints_native=joints,
            faces=self.faces,
            full_pose=self.full_pose(global_orient, hand_pose).flatten(1),
            betas=betas,
            global_orient=global_orient,
            hand_pose=hand_pose,
            transl=transl,
            texture=None if tex is None else tex[..., :3],
            bones=verts[:, : self.bone_v_sep],
            muscles=verts[:, self.bone_v_sep : self.skin_v_sep],
            joints25=joints,
            mano_vertices=self.mano_vertices(skin),
            texture_maps=tex,
        )
