"""Rendered scenes of two touching hands with known depths (palms together, as in prayer):
what the joint fit of touching hands (``monohand.twohands``) is measured on.

A scene: a right OpenHand in a mild random pose (one whose fingers do not cross) and shape,
and its mirror image across a plane parallel to its palm (a left hand of the same person:
same pose angles and shape, since OpenHand's left layer is the right one's mirror), the plane
a small gap away from the palm; both are turned as one so that a camera looking down +z sees
them from a random side, and placed at a random depth. The left hand's parameters are found
in closed form (Kabsch on its joints: the mirror image of a posed right hand is a posed left
hand).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..geometry import kabsch, rotmat_to_axis_angle
from ..models.collision import HAND_REACH, deepest_penetration, finger_collision
from ..models.lbs import batch_rodrigues
from ..models.openhand import OpenHand
from ..render.camera import project
from .detection import HandDetection

MAX_SEPARATIONS = 20  # moves of the mirror plane before giving up on an interpenetration
MAX_POSE_DRAWS = 50  # draws of the pose before giving up on fingers that cross


@dataclass
class TwoHandScene:
    """Two hands in the camera frame (metres, OpenCV). Index 0 right, 1 left.

    Attributes:
        global_orient, angles, betas, transl: per hand (2, 3), (2, 15, 3), (2, 10), (2, 3).
        joints: (2, 21, 3); vertices: (2, V, 3).
        K: (3, 3) of a ``size`` x ``size`` image.
    """

    global_orient: Tensor
    angles: Tensor
    betas: Tensor
    transl: Tensor
    joints: Tensor
    vertices: Tensor
    K: np.ndarray
    size: int


def two_hand_scene(
    models: dict[str, OpenHand],
    seed: int,
    gap: float = 0.008,
    size: int = 256,
    depth: tuple[float, float] = (0.45, 0.8),
) -> TwoHandScene:
    """A palms-together scene (see the module doc).

    Args:
        models: {"right", "left"} OpenHand layers.
        seed: of the scene's one random stream (pose, shape, view, depth, in that order).
        gap: metres from the hand's joint nearest to the mirror plane to that plane: the two
            hands' joints are at least twice this apart; more where the meshes would
            otherwise interpenetrate (no vertex of either lies inside the other).
        size: the image's side, pixels; depth: metres, the range of the pair's centre.
    Raises:
        RuntimeError: no pose without crossing fingers in ``MAX_POSE_DRAWS`` draws, or the
            hands still interpenetrate after ``MAX_SEPARATIONS`` moves apart.
    """
    g = torch.Generator().manual_seed(seed)
    right, left = models["right"], models["left"]
    space = right.pose_space
    relaxed = torch.as_tensor(space.relaxed, dtype=torch.float32)[None]
    lim = torch.as_tensor(space.limits, dtype=torch.float32)

    def draw_angles() -> Tensor:
        # Straighter than relaxed (palms together), so the fingers meet their mirror images.
        a = 0.4 * relaxed + 0.1 * torch.randn(1, 15, 3, generator=g)
        return torch.minimum(torch.maximum(a, lim[..., 0]), lim[..., 1])

    angles = draw_angles()
    betas = 0.8 * torch.randn(1, 10, generator=g)
    # Drawn again while two fingers pass through each other (the ring finger's axis 1.5 mm
    # from the little finger's in one scene): such a truth is no hand, and the fit's finger
    # collision prior (its spheres, 15 mm between fingers' axes) rightly refuses it.
    for _ in range(MAX_POSE_DRAWS):
        with torch.no_grad():
            jr = right(hand_pose=space.to_axis_angle(angles), betas=betas).joints[0]
        if finger_collision(jr[None]).item() == 0:
            break
        angles = draw_angles()
    else:
        raise RuntimeError(f"two_hand_scene(seed={seed}): no pose without crossing fingers in "
                           f"{MAX_POSE_DRAWS} draws")  # fmt: skip
    with torch.no_grad():
        flexed = right(hand_pose=space.to_axis_angle(angles + torch.tensor([0.6, 0, 0])),
                       betas=betas).joints[0]  # fmt: skip
    # The palm's normal, pointing to where flexed fingers go (the palm side).
    n = torch.linalg.cross(jr[5] - jr[0], jr[17] - jr[0])
    n = n / n.norm()
    if ((flexed[12] - jr[12]) @ n) < 0:
        n = -n
    palm = jr[[0, 5, 9, 13, 17]].mean(0)
    # Turn the pair as one: palm normal roughly sideways in the image, a random view.
    yaw, pitch, roll = (torch.rand(3, generator=g) - 0.5) * torch.tensor([2.2, 1.0, 1.2])
    turn = batch_rodrigues(torch.stack([pitch, yaw, roll])[None])[0]
    align = kabsch(torch.stack([n, jr[9] - jr[0]])[None].double(),
                   torch.tensor([[[1.0, 0, 0], [0, -1.0, 0]]], dtype=torch.float64))[0].float()
    rot = turn @ align  # hand frame -> camera orientation
    lo, hi = depth
    z = lo + (hi - lo) * torch.rand(1, generator=g).item()
    centre = torch.tensor([0.0, 0.0, z])
    hand_pose = space.to_axis_angle(angles)
    left_pose = left.pose_space.to_axis_angle(angles)
    with torch.no_grad():
        rest = left(hand_pose=left_pose, betas=betas).joints
    mirror = torch.eye(3) - 2 * torch.outer(n, n)
    # The mirror plane: ``gap`` beyond the hand's joint that reaches furthest to the palm side
    # (often the thumb's tip), so the two hands' joints stay 2 gap apart at least; moved out
    # further while the meshes interpenetrate (a thick palm or thumb can reach through it).
    reach = ((jr - palm) @ n).max()
    go_r = rotmat_to_axis_angle(rot)[None]
    for _ in range(MAX_SEPARATIONS):
        origin = palm + (reach + gap) * n
        # global_orient turns the hand about its root joint, not about the origin
        tr_r = (centre + (jr[0] - origin) @ rot.T - jr[0])[None]
        target = ((jr - origin) @ mirror.T) @ rot.T + centre  # the mirror image, placed
        with torch.no_grad():
            out_r = right(global_orient=go_r, hand_pose=hand_pose, betas=betas, transl=tr_r)
            go_l = rotmat_to_axis_angle(kabsch(rest, target[None]))
            placed = left(global_orient=go_l, hand_pose=left_pose, betas=betas).joints
            tr_l = target.mean(0, keepdim=True) - placed.mean(1)
            out_l = left(global_orient=go_l, hand_pose=left_pose, betas=betas, transl=tr_l)
            # (a vertex inside a hand lies within reach of that hand's vertices)
            depth_in = deepest_penetration(out_r.vertices, right.faces, out_l.vertices,
                                           left.faces, reach=HAND_REACH)[0]  # fmt: skip
        if depth_in == 0:
            break
        # each hand moves half the way (the pair is symmetric about the plane)
        gap = gap + depth_in.item() / 2 + 0.0005
    else:
        raise RuntimeError(f"two_hand_scene(seed={seed}): the hands still interpenetrate by "
                           f"{1000 * depth_in.item():.1f} mm after {MAX_SEPARATIONS} moves "
                           "of the mirror plane")  # fmt: skip
    joints = torch.cat([out_r.joints, out_l.joints])
    # Focal length so that the pair fills about 60 % of the image.
    extent = (joints[..., :2] / joints[..., 2:]).flatten(0, 1)
    span = (extent.max(0).values - extent.min(0).values).max().item()
    f = 0.6 * size / max(span, 1e-3)
    mid = (extent.max(0).values + extent.min(0).values) / 2
    K = np.array([[f, 0, (size - 1) / 2 - f * mid[0].item()],
                  [0, f, (size - 1) / 2 - f * mid[1].item()], [0, 0, 1.0]])  # fmt: skip
    return TwoHandScene(
        torch.cat([go_r, go_l]), angles.repeat(2, 1, 1), betas.repeat(2, 1),
        torch.cat([tr_r, tr_l]), joints, torch.cat([out_r.vertices, out_l.vertices]), K, size,
    )  # fmt: skip


def render_scene(scene: TwoHandScene, models: dict[str, OpenHand]) -> np.ndarray:
    """(size, size, 3) uint8: both hands in skin colour on grey, shaded (for figures)."""
    from ..render import Renderer
    from ..render.shade import default_light

    ren = Renderer((scene.size, scene.size))
    faces = models["right"].faces
    verts = scene.vertices
    f = torch.cat([faces, models["left"].faces + verts.shape[1]])
    v = verts.reshape(1, -1, 3)
    colours = torch.tensor([0.80, 0.62, 0.52]).expand(1, v.shape[1], 3)
    K = torch.as_tensor(scene.K, dtype=torch.float32)[None]
    with torch.no_grad():
        r = ren(v, f, K, vertex_colors=colours, light=default_light(1),
                background=torch.tensor([0.5, 0.5, 0.5]))  # fmt: skip
    return (r.rgb[0].clamp(0, 1) * 255).round().byte().numpy()


def simulated_detections(scene: TwoHandScene, rng: np.random.Generator, noise_px: float = 2.0,
                         world_mm: float = 5.0) -> list[HandDetection]:  # fmt: skip
    """The scene's right and left hand as a detector would give them (MediaPipe rarely finds
    both of two rendered hands pressed together): projected joints with Gaussian pixel noise
    of ``noise_px`` per axis, confidence 1, and hand-centred world landmarks (as MediaPipe's,
    in the camera's axes) with ``world_mm`` of noise. Per hand, the world noise is drawn
    first, then the pixels'."""
    K = torch.as_tensor(scene.K, dtype=torch.float32)[None].repeat(2, 1, 1)
    uv = project(scene.joints, K).double().numpy()
    j = scene.joints.double().numpy()
    out = []
    for k, side in enumerate(("right", "left")):
        world = j[k] - j[k].mean(0) + rng.normal(0, world_mm / 1000, (21, 3))
        out.append(HandDetection(uv[k] + rng.normal(0, noise_px, (21, 2)), np.ones(21), 1.0,
                                 side, world))  # fmt: skip
    return out


def moving_pair(scene: TwoHandScene, models: dict[str, OpenHand], n: int, fps: float = 30.0,
                turn_deg: float = 25.0, drift: float = 0.02) -> list[TwoHandScene]:  # fmt: skip
    """``n`` frames of ``scene``'s pair moving as one rigid body (hands still pressed
    together, their poses and shape fixed): turned about the camera's y axis through the pair's
    centre by ``turn_deg * sin`` (half a cycle per second, so that each hand comes nearer and
    then farther than the other) and drifting up to ``drift`` metres sideways; the camera
    (``scene.K``) fixed. Frame 0 is ``scene`` itself. For the video benchmark of touching hands
    (``bench/bench_video_twohands.py``)."""
    t = torch.arange(n, dtype=torch.float64) / fps
    phase = torch.pi * t
    centre = scene.joints.reshape(-1, 3).mean(0).double()
    frames = []
    for k in range(n):
        turn = batch_rodrigues(torch.tensor([[0.0, turn_deg * torch.pi / 180, 0.0]],
                                            dtype=torch.float64) * torch.sin(phase[k]))[0]
        shift = torch.tensor([drift, 0.5 * drift, 0.0], dtype=torch.float64) * torch.sin(phase[k])
        go, tr, joints, verts = [], [], [], []
        for i, side in enumerate(("right", "left")):
            model = models[side]
            rot = turn @ batch_rodrigues(scene.global_orient[i : i + 1].double())[0]
            root = scene.joints[i, 0].double()
            root_new = (root - centre) @ turn.T + centre + shift
            g = rotmat_to_axis_angle(rot.float()[None])
            pose = model.pose_space.to_axis_angle(scene.angles[i : i + 1])
            with torch.no_grad():
                placed = model(global_orient=g, hand_pose=pose, betas=scene.betas[i : i + 1])
                tr_i = (root_new.float() - placed.joints[0, 0])[None]
                out = model(global_orient=g, hand_pose=pose, betas=scene.betas[i : i + 1],
                            transl=tr_i)  # fmt: skip
            go.append(g)
            tr.append(tr_i)
            joints.append(out.joints)
            verts.append(out.vertices)
        frames.append(TwoHandScene(torch.cat(go), scene.angles, scene.betas, torch.cat(tr),
                                   torch.cat(joints), torch.cat(verts), scene.K, scene.size))
    return frames
