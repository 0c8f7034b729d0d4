"""Synthetic hands in FreiHAND's layout: the training data that needs no download.

Each sample: a shape from the model's shape space, a pose from its anatomical sampler, a skin
from its texture space, random lighting, a random orientation, a FreiHAND-like camera (the hand
0.4-0.9 m away, a 224x224 crop centred on it), a background cropped from the photos that ship
with scikit-image or a procedural texture, and sometimes an occluder. Rendered by
``monohand.render`` in batches; written exactly as FreiHAND (``read_freihand`` reads it
unchanged) plus ``{split}_model.json`` with the parameters FreiHAND's files have no place for.

Two styles. "v1", the first: Lambert light, the hand ending in a cut tube at the wrist, a
fixed JPEG quality. "v2" (``style``) adds what photos have and v1 lacks, each drawn per
sample: a forearm (skin or a sleeve) continuing from the wrist out of the frame, rasterised
with the hand so either can hide the other; one to three coloured lights with Blinn-Phong
highlights; a white-balance cast and exposure; defocus or motion blur; sensor noise; JPEG
quality 35-95; and matplotlib's public-domain Grace Hopper photo among the backgrounds.
"v3" is v2 plus an object held in front of the palm (a ball, bottle or phone, rasterised
with hand and arm) in about a third of the samples and, in half, the soft shadow of the
scene on the background. The styles' pieces live in ``data.synth_style``; their draws come
from generators of their own, so a v1 sample is the same in every style and a v2 sample in
v3 (but for what v3 adds).

Deterministic: sample i depends only on (seed, i), not on batching or workers. The output goes
to a temporary folder renamed into place at the end, so an interrupted run leaves nothing.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
from dataclasses import asdict, dataclass
from importlib import resources
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import orjson
import torch
from PIL import Image

from ..models.openhand import OpenHand
from ..render import Renderer
from ..render.camera import project
from .freihand import DETECTIONS_FILE, DatasetError
from .synth_style import (
    arm_faces,
    arm_vertices,
    camera_effects,
    drop_shadow,
    object_faces,
    object_vertices,
    palmar_side,
    shade_v2,
    v2_params,
    v3_params,
)

_BACKGROUND_FILES = (
    "astronaut.png",
    "brick.png",
    "camera.png",
    "chelsea.png",
    "coffee.png",
    "coins.png",
    "color.png",
    "grass.png",
    "gravel.png",
    "horse.png",
    "hubble_deep_field.jpg",
    "ihc.png",
    "moon.png",
    "motorcycle_left.png",
    "motorcycle_right.png",
    "page.png",
    "retina.jpg",
    "rocket.jpg",
    "text.png",
    "clock_motion.png",
    "cell.png",
    "logo.png",
)


STYLES = ("v1", "v2", "v3")


@dataclass
class SynthConfig:
    num: int = 100
    size: int = 224
    seed: int = 0
    model: str = "openhand"
    model_path: str | None = None  # another OpenHand build (.npz); default: the shipped one
    eval_fraction: float = 0.1
    distance: tuple[float, float] = (0.4, 0.9)
    fill: tuple[float, float] = (0.55, 0.9)  # hand's extent / image size
    occluder_prob: float = 0.2
    # "frontal": FreiHAND-like views (palm or back towards the camera, tilted at most
    # ``max_tilt_deg``, in-plane angle within +-``max_spin_deg`` of upright); "uniform": any
    # rotation, fingertip-on views too.
    orientation: str = "frontal"
    max_tilt_deg: float = 70.0
    max_spin_deg: float = 180.0
    batch: int = 32
    workers: int = 1
    style: str = "v1"  # "v1", "v2" or "v3" (see the module doc)

    @property
    def num_evaluation(self) -> int:
        """How many of the ``num`` images the evaluation split holds (the rest train; a
        single image trains, unless eval_fraction 1 asks for evaluation only)."""
        if self.eval_fraction == 1:
            return self.num
        return int(round(self.num * self.eval_fraction)) if self.num > 1 else 0

    def check(self) -> None:
        """Raise ``ValueError`` naming the first setting that cannot make a dataset."""
        if self.model != "openhand":
            raise ValueError(f"model {self.model!r}: the generator renders OpenHand only (it "
                             "needs a texture space)")  # fmt: skip
        if self.num < 1:
            raise ValueError(f"num must be at least 1, got {self.num}")
        if self.size < 32:
            raise ValueError(f"size must be at least 32 pixels, got {self.size}")
        if self.workers < 1 or self.batch < 1:
            raise ValueError(f"workers and batch must be at least 1, got {self.workers}, "
                             f"{self.batch}")  # fmt: skip
        if not 0 <= self.eval_fraction <= 1:
            raise ValueError(f"eval_fraction must be in [0, 1], got {self.eval_fraction}")
        if not 0 < self.fill[0] <= self.fill[1]:
            raise ValueError(f"fill must be 0 < LO <= HI, got {self.fill}")
        if not 0 < self.distance[0] <= self.distance[1]:
            raise ValueError(f"distance must be 0 < NEAR <= FAR, got {self.distance}")
        if self.orientation not in ("frontal", "uniform"):
            raise ValueError(f"orientation must be 'frontal' or 'uniform', got "
                             f"{self.orientation!r}")  # fmt: skip
        if self.style not in STYLES:
            raise ValueError(f"style must be one of {', '.join(STYLES)}, got {self.style!r}")
        if not 0 <= self.max_spin_deg <= 180:
            raise ValueError(f"max_spin_deg must be in [0, 180], got {self.max_spin_deg}")


def background_images(style: str = "v1") -> list[np.ndarray]:
    """Photos bundled with scikit-image (no download), RGB uint8; v2 adds matplotlib's
    sample photo of Grace Hopper (US Navy, public domain)."""
    base = Path(str(resources.files("skimage") / "data"))
    paths = [base / name for name in _BACKGROUND_FILES]
    if style in ("v2", "v3"):
        paths.append(Path(str(resources.files("matplotlib") / "mpl-data" / "sample_data"
                              / "grace_hopper.jpg")))  # fmt: skip
    out = []
    for p in paths:
        if p.is_file():
            with Image.open(p) as im:
                out.append(np.asarray(im.convert("RGB")))
    return out


def _background(rng: np.random.Generator, photos: list[np.ndarray], s: int) -> np.ndarray:
    if photos and rng.random() < 0.7:
        img = photos[rng.integers(len(photos))]
        h, w = img.shape[:2]
        c = int(rng.uniform(0.3, 1.0) * min(h, w))
        y, x = rng.integers(0, h - c + 1), rng.integers(0, w - c + 1)
        crop = Image.fromarray(img[y : y + c, x : x + c]).resize((s, s), Image.BILINEAR)
        out = np.asarray(crop).astype(np.float32)
        if rng.random() < 0.5:
            out = out[:, ::-1]
        out = out * rng.uniform(0.6, 1.3, size=3)  # tint
    else:  # smooth noise or stripes in random colours
        lo = rng.uniform(0, 255, size=(rng.integers(2, 9), rng.integers(2, 9), 3)).astype(
            np.float32
        )
        out = np.asarray(Image.fromarray(lo.astype(np.uint8)).resize((s, s), Image.BICUBIC)).astype(
            np.float32
        )
        if rng.random() < 0.4:
            yy, xx = np.mgrid[0:s, 0:s]
            a = rng.uniform(0, np.pi)
            stripes = np.sin((np.cos(a) * xx + np.sin(a) * yy) * rng.uniform(0.05, 0.4)) > 0
            out = np.where(stripes[..., None], out, out * rng.uniform(0.3, 0.8))
    return np.clip(out, 0, 255) / 255.0


def _occluder(rng: np.random.Generator, s: int) -> tuple[np.ndarray, np.ndarray]:
    """A random ellipse or bar: (mask (s, s) bool, colour image (s, s, 3) in [0, 1])."""
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
    cx, cy = rng.uniform(0.2, 0.8, size=2) * s
    a = rng.uniform(0, np.pi)
    u = (xx - cx) * np.cos(a) + (yy - cy) * np.sin(a)
    v = -(xx - cx) * np.sin(a) + (yy - cy) * np.cos(a)
    rx, ry = rng.uniform(0.05, 0.25) * s, rng.uniform(0.03, 0.12) * s
    mask = (
        (u / rx) ** 2 + (v / ry) ** 2 <= 1
        if rng.random() < 0.5
        else (np.abs(u) < rx) & (np.abs(v) < ry)
    )
    colour = rng.uniform(0, 1, size=3) * (1 + 0.15 * np.sin(u / rng.uniform(2, 8)))[..., None]
    return mask, np.clip(colour, 0, 1)


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    """Axis-angle of a uniformly random rotation."""
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    w, v = abs(q[0]), q[1:] * np.sign(q[0] or 1.0)
    angle = 2 * np.arctan2(np.linalg.norm(v), w)
    return v / max(np.linalg.norm(v), 1e-12) * angle


# OpenHand's template has its fingers along -x and its palm's normal along y; this puts the
# fingers up in the image (camera -y) and the normal along the optical axis (camera +z).
_UPRIGHT = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def _frontal_rotation(
    rng: np.random.Generator, max_tilt_deg: float, max_spin_deg: float = 180.0
) -> np.ndarray:
    """Axis-angle of a FreiHAND-like view: upright hand, turned palm-away or palm-towards
    (about its finger axis), tilted out of the image plane about a random in-plane axis by up
    to ``max_tilt_deg``, then spun by an in-plane angle uniform in +-``max_spin_deg``."""
    from scipy.spatial.transform import Rotation

    flip = Rotation.from_rotvec([np.pi * rng.integers(2), 0.0, 0.0])  # model frame: fingers x
    a = rng.uniform(0, 2 * np.pi)
    tilt = Rotation.from_rotvec(
        np.deg2rad(rng.uniform(0, max_tilt_deg)) * np.array([np.cos(a), np.sin(a), 0.0])
    )
    spin_max = np.deg2rad(max_spin_deg)
    spin = Rotation.from_rotvec([0.0, 0.0, rng.uniform(-spin_max, spin_max)])
    return (spin * tilt * Rotation.from_matrix(_UPRIGHT) * flip).as_rotvec()


def ensure_synthetic(root: str | Path, cfg: SynthConfig, split: str, write: bool = True,
                     progress=None) -> None:  # fmt: skip
    """The generated set that training or ``ablate`` caches at ``root``: made (when ``write``)
    unless one holding ``split`` is there, and refused if it was made with other settings
    (its ``synth_config.json`` says how; sets older than a setting had its first value:
    uniform orientation, any in-plane angle, style v1). ``progress(total)``, when the set is
    generated: returns ``generate``'s progress callable (e.g. a progress bar's)."""
    root = Path(root)
    path = root / SYNTH_CONFIG
    if path.is_file():
        made = json.loads(path.read_text())
        olds = {"orientation": "uniform", "max_spin_deg": 180.0, "style": "v1"}
        for key in ("num", "seed", "size", "fill", *olds):
            want = getattr(cfg, key)
            was = made.get(key, olds.get(key, want))
            if isinstance(want, tuple):  # (JSON keeps a tuple as a list)
                was = tuple(was)
            if was != want:
                raise DatasetError(f"{path}: this set was generated with {key} {was!r}, not "
                                 f"{want!r}; delete {root} to regenerate it")  # fmt: skip
    if write and not (root / f"{split}_K.json").is_file():
        try:
            generate(root, cfg, progress(cfg.num) if progress else None, overwrite=True)
        except FileExistsError as e:  # a folder of other files (or the working directory)
            raise DatasetError(f"{e} (the generated data's folder, data.root: give one of "
                               "its own)") from e  # fmt: skip


class _Worker:
    """Holds the model, renderer and backgrounds of one process."""

    def __init__(self, cfg: SynthConfig) -> None:
        torch.set_num_threads(1 if cfg.workers > 1 else torch.get_num_threads())
        self.cfg = cfg
        self.hand = OpenHand(cfg.model_path)
        self.renderer = Renderer((cfg.size, cfg.size))
        self.photos = background_images(cfg.style)
        self.arm_faces = torch.as_tensor(arm_faces())
        self.object_faces = torch.as_tensor(object_faces())
        self.palmar = palmar_side(self.hand)

    def params(self, i: int) -> dict:
        """Everything random about sample i, from (seed, i) alone."""
        cfg = self.cfg
        rng = np.random.default_rng([cfg.seed, i])
        g = torch.Generator().manual_seed(int(rng.integers(2**62)))
        tex = rng.normal(scale=0.7, size=10)
        tex[0] = rng.uniform(-2.2, 2.2)
        d = rng.normal(size=3) + [0, -0.6, -1.5]
        return {
            "rng": rng,
            "v2": v2_params(np.random.default_rng([cfg.seed, i, 2])) if cfg.style != "v1" else None,
            "v3": v3_params(np.random.default_rng([cfg.seed, i, 3])) if cfg.style == "v3" else None,
            "angles": self.hand.pose_space.sample(1, g)[0],
            "betas": rng.normal(scale=0.8, size=10),
            "texture": tex,
            "global_orient": _random_rotation(rng)
            if cfg.orientation == "uniform"
            else _frontal_rotation(rng, cfg.max_tilt_deg, cfg.max_spin_deg),
            "distance": rng.uniform(*cfg.distance),
            "fill": rng.uniform(*cfg.fill),
            "offset": rng.uniform(-0.05, 0.05, size=2),
            "light": np.concatenate(
                [
                    [rng.uniform(0.35, 0.7), rng.uniform(0.2, 0.7)],
                    1 + rng.uniform(-0.12, 0.12, 3),
                    1 + rng.uniform(-0.12, 0.12, 3),
                    d / np.linalg.norm(d),
                ]
            ),
        }

    def render(self, ids: list[int]) -> tuple[list[dict], list[tuple[bytes, bytes]]]:
        cfg, hand, s = self.cfg, self.hand, self.cfg.size
        ps = [self.params(i) for i in ids]
        f32 = torch.float32
        stack = lambda k: torch.as_tensor(np.stack([np.asarray(p[k]) for p in ps]), dtype=f32)  # noqa: E731
        hand_pose = hand.pose_space.to_axis_angle(torch.stack([p["angles"] for p in ps]))
        with torch.no_grad():
            out = hand(
                global_orient=stack("global_orient"),
                hand_pose=hand_pose,
                betas=stack("betas"),
                texture=stack("texture"),
            )
            verts, joints = out.vertices, out.joints
            # Place the hand's centre on the optical axis at the drawn distance.
            centre = 0.5 * (verts.amin(1) + verts.amax(1))
            shift = torch.stack([-centre[:, 0], -centre[:, 1], stack("distance") - centre[:, 2]], 1)
            verts, joints = verts + shift[:, None], joints + shift[:, None]
            # FreiHAND-like crop: focal length so the hand spans ``fill`` of the image.
            unit = verts[..., :2] / verts[..., 2:3]
            lo, hi = unit.amin(1), unit.amax(1)
            f = stack("fill") * s / (hi - lo).max(1).values
            mid = 0.5 * (lo + hi)
            K = torch.zeros(len(ids), 3, 3)
            K[:, 0, 0] = K[:, 1, 1] = f
            K[:, :2, 2] = (s - 1) / 2 - f[:, None] * mid + stack("offset") * s
            K[:, 2, 2] = 1
            bg = torch.as_tensor(
                np.stack([_background(p["rng"], self.photos, s) for p in ps]), dtype=f32
            )
            if cfg.style != "v1":
                rgb, alpha = self._render_v2(ps, verts, joints, K, out.texture, bg)
            else:
                r = self.renderer(verts, hand.faces, K, texture=out.texture, uvs=hand.uvs,
                                  face_uvs=hand.face_uvs, light=stack("light"), background=bg)
                rgb, alpha = r.rgb.numpy(), r.silhouette.numpy()
        records, files = [], []
        kp9 = project(joints[:, 9:10], K)[:, 0]
        mean = torch.as_tensor(hand.data.hands_mean, dtype=f32)
        for k, p in enumerate(ps):
            img, mask = rgb[k], alpha[k] > 0.5
            occluded = bool(p["rng"].random() < cfg.occluder_prob)
            if occluded:
                occ, colour = _occluder(p["rng"], s)
                img = np.where(occ[..., None], colour, img)
                mask &= ~occ
            quality = 92
            if p["v2"] is not None:
                img = camera_effects(img.astype(np.float32), p["v2"], p["rng"])
                quality = p["v2"]["jpeg"]
            img_b, mask_b = io.BytesIO(), io.BytesIO()
            Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8)).save(
                img_b, "JPEG", quality=quality
            )
            Image.fromarray((mask * 255).astype(np.uint8)).save(mask_b, "JPEG", quality=95)
            files.append((img_b.getvalue(), mask_b.getvalue()))
            z9 = joints[k, 9, 2].item()
            theta = np.concatenate(
                [
                    p["global_orient"],
                    (hand_pose[k] - mean).numpy(),
                    p["betas"],
                    kp9[k].numpy(),
                    [f[k].item() / z9],
                ]
            )
            records.append(
                {
                    "K": K[k].numpy(),
                    "xyz": joints[k].numpy(),
                    "verts": verts[k].numpy(),
                    "mano": theta[None],
                    "scale": float(torch.linalg.norm(joints[k, 10] - joints[k, 9])),
                    "model": {
                        "model": cfg.model,
                        "side": "right",
                        "texture": p["texture"].tolist(),
                        "light": p["light"].tolist(),
                        "transl": shift[k].tolist(),
                        "occluder": occluded,
                        **({} if p["v3"] is None else {"held_object": _object_kind(p["v3"])}),
                    },
                }
            )
        return records, files


    def _render_v2(self, ps, verts, joints, K, texture, bg):
        """Hand, forearm and (v3) held object in one rasterisation, shaded by ``shade_v2``,
        over the background with (v3) the scene's shadow: (rgb (B, H, W, 3), the hand's
        coverage (B, H, W)), numpy."""
        from ..render.shade import sample_texture

        hand, f32 = self.hand, torch.float32
        v2 = [p["v2"] for p in ps]
        arm = arm_vertices(joints, torch.as_tensor(np.stack([q["bend"] for q in v2]), dtype=f32))
        nh, na = verts.shape[1], arm.shape[1]
        parts = [verts, arm]
        faces = [hand.faces.long(), self.arm_faces + nh]
        v3 = [p["v3"] for p in ps]
        if v3[0] is not None:  # one style per set: every sample has the object's vertices
            objects = [q["object"] for q in v3]
            parts.append(object_vertices(joints, objects, self.palmar))
            faces.append(self.object_faces + nh + na)
        faces = torch.cat(faces)
        # Arm and object faces take the texture coordinate of a wrist vertex: never
        # sampled, as their albedo replaces the texture where they are.
        face_uvs = torch.cat([hand.face_uvs.long(), torch.zeros_like(faces[len(hand.faces):])])
        g = self.renderer.gbuffer(torch.cat(parts, 1), faces, K, hand.uvs, face_uvs)
        albedo = sample_texture(texture, g.uv)
        skin = texture.mean((1, 2))  # (B, 3): the forearm in the hand's mean skin colour
        arm_rgb = torch.stack([skin[k] if q["arm_colour"] is None
                               else torch.as_tensor(q["arm_colour"], dtype=f32)
                               for k, q in enumerate(v2)])  # fmt: skip
        fid = g.fragments.face_ids
        on_arm = (fid >= len(hand.faces))[..., None]
        albedo = torch.where(on_arm, arm_rgb[:, None, None], albedo)
        if v3[0] is not None:
            obj_rgb = torch.as_tensor(np.stack([np.zeros(3) if o is None else o["colour"]
                                                for o in objects]), dtype=f32)  # fmt: skip
            on_obj = (fid >= len(hand.faces) + len(self.arm_faces))[..., None]
            albedo = torch.where(on_obj, obj_rgb[:, None, None], albedo)
        lights = {k: torch.as_tensor(np.stack([q[k] for q in v2]), dtype=f32)
                  for k in ("ambient", "dirs", "colours", "specular", "shininess")}  # fmt: skip
        shaded = shade_v2(albedo, g.normals, lights)
        a = g.fragments.alpha[..., None]
        if v3[0] is not None:  # the shadow of hand, arm and object, away from the main light
            dark = [np.ones(bg.shape[1:3], np.float32) if q["shadow"] is None
                    else drop_shadow(g.fragments.alpha[k].numpy(), q2["dirs"][0], q["shadow"])
                    for k, (q, q2) in enumerate(zip(v3, v2, strict=True))]  # fmt: skip
            bg = bg * torch.as_tensor(np.stack(dark))[..., None]
        rgb = a * shaded + (1 - a) * bg
        hand_cov = g.fragments.alpha * (~on_arm[..., 0]) * (fid >= 0)
        return rgb.numpy(), hand_cov.numpy()


def _object_kind(v3: dict) -> str | None:
    return None if v3["object"] is None else v3["object"]["kind"]


_WORKER: _Worker | None = None


def _init(cfg: SynthConfig) -> None:
    global _WORKER
    _WORKER = _Worker(cfg)


def _run(job: tuple[str, int, list[int], str]) -> tuple[str, list[int], list[dict]]:
    split, first, ids, tmp = job
    records, files = _WORKER.render(ids)
    base = Path(tmp) / split
    for j, (img, mask) in enumerate(files):
        (base / "rgb" / f"{first + j:08d}.jpg").write_bytes(img)
        (base / "mask" / f"{first + j:08d}.jpg").write_bytes(mask)
    return split, [first + j for j in range(len(ids))], records


@dataclass
class SynthSummary:
    out_dir: Path
    training: int
    evaluation: int


SYNTH_CONFIG = "synth_config.json"  # what marks a folder as a set this generator wrote


def _of_a_set(name: str) -> bool:
    """Whether a top-level entry of a set's folder is the generator's (its splits, their
    arrays, its config) or made from the set (the MediaPipe labels' cache)."""
    return (name in ("training", "evaluation", SYNTH_CONFIG, DETECTIONS_FILE)
            or bool(re.fullmatch(r"(training|evaluation)_\w+\.json", name)))  # fmt: skip


def check_synth_out(out: Path, overwrite: bool) -> None:
    """Refuse an output folder that exists (unless ``overwrite``), and one that ``overwrite``
    would remove though this generator did not make it (no ``SYNTH_CONFIG``, not empty), or
    that holds files it did not write beside a set (a training run's; hidden files such as
    .DS_Store and the set's own label cache may go), or that holds the working directory:
    ``generate`` replaces the folder whole."""
    if not out.exists() and not out.is_symlink():
        return
    if not overwrite:
        raise FileExistsError(f"{out}: exists (pass overwrite to replace it)")
    if out.is_symlink():
        raise FileExistsError(f"{out}: a symbolic link; give the folder itself")
    if not out.is_dir() or not ((out / SYNTH_CONFIG).is_file() or not any(out.iterdir())):
        raise FileExistsError(f"{out}: not a synthetic set (no {SYNTH_CONFIG}); overwrite "
                              "replaces only a set made by this generator: choose another "
                              "folder")  # fmt: skip
    theirs = sorted(p.name for p in out.iterdir()
                    if not _of_a_set(p.name) and not p.name.startswith("."))  # (.DS_Store)
    if theirs:
        raise FileExistsError(f"{out}: holds {', '.join(theirs[:3])}"
                              f"{' ...' if len(theirs) > 3 else ''}, which this generator did "
                              "not write (a training run's?); overwrite replaces the whole "
                              "set: move them, or choose another folder")  # fmt: skip
    if Path.cwd().resolve().is_relative_to(out.resolve()):
        raise FileExistsError(f"{out}: holds the working directory, which replacing it would "
                              "remove: run from elsewhere, or choose another folder")


def generate(
    out_dir: str | Path, cfg: SynthConfig, progress=None, overwrite: bool = False
) -> SynthSummary:
    """Write a synthetic dataset in FreiHAND's layout to ``out_dir``.

    Args:
        progress: optional callable(n_done) called as batches finish.
    Raises:
        FileExistsError: ``out_dir`` exists and ``overwrite`` is False, or it is no set
            this generator made (``check_synth_out``).
    """
    out = Path(out_dir)
    check_synth_out(out, overwrite)
    out = out.resolve()  # ("." has no name to put the temporary folder beside)
    cfg.check()
    n_eval = cfg.num_evaluation
    n_train = cfg.num - n_eval
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    for split in ("training", "evaluation"):
        (tmp / split / "rgb").mkdir(parents=True)
        (tmp / split / "mask").mkdir(parents=True)
    # Global sample index i: training 0..n_train-1, evaluation after; file ids restart per split.
    jobs = []
    for split, start, count in (("training", 0, n_train), ("evaluation", n_train, n_eval)):
        for b in range(0, count, cfg.batch):
            ids = list(range(start + b, start + min(b + cfg.batch, count)))
            jobs.append((split, b, ids, str(tmp)))
    results: dict[str, dict[int, dict]] = {"training": {}, "evaluation": {}}
    try:
        if cfg.workers > 1:
            with get_context("spawn").Pool(cfg.workers, initializer=_init, initargs=(cfg,)) as pool:
                for split, fids, recs in pool.imap_unordered(_run, jobs):
                    results[split].update(zip(fids, recs, strict=True))
                    if progress:
                        progress(len(fids))
        else:
            _init(cfg)
            for job in jobs:
                split, fids, recs = _run(job)
                results[split].update(zip(fids, recs, strict=True))
                if progress:
                    progress(len(fids))
        for split, recs in results.items():
            ordered = [recs[k] for k in sorted(recs)]
            for key in ("K", "xyz", "verts", "mano", "scale"):
                arr = np.asarray([r[key] for r in ordered], dtype=np.float64)
                (tmp / f"{split}_{key}.json").write_bytes(
                    orjson.dumps(arr, option=orjson.OPT_SERIALIZE_NUMPY)
                )
            (tmp / f"{split}_model.json").write_text(json.dumps([r["model"] for r in ordered]))
        (tmp / SYNTH_CONFIG).write_text(json.dumps(asdict(cfg), indent=1))
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return SynthSummary(out, n_train, n_eval)
