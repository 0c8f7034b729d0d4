"""MediaPipe's hand crop (data.crops): the ROI against MediaPipe's own rect calculators written
out here, the crop's camera against the pixel map by reprojection of random 3D points (skewed
K, off-centre principal point, mirrored or not), pixel content against the map, and the
dataset transform's labels against reprojection."""

from __future__ import annotations

import numpy as np
import pytest

from monohand.data.crops import (
    MediaPipeCrop,
    hand_crop,
    jitter_roi,
    mediapipe_roi,
    roi_affine,
)

H, W = 480, 640
# fx != fy and the principal point away from the image's centre (319.5, 239.5).
K_IMG = np.array([[910.0, 0.0, 338.0], [0.0, 860.0, 221.0], [0.0, 0.0, 1.0]])
D = np.diag([-1.0, 1.0, 1.0])
# MediaPipe's kPartialLandmarkIndices (hand_landmarks_to_rect_calculator.cc), written out.
PARTIAL = [0, 1, 2, 3, 5, 6, 9, 10, 13, 14, 17, 18]

# An upright hand in pixels, wrist at the origin: the index/ring knuckles symmetric about the
# middle one, so 0.25 (kp5 + kp13) + 0.5 kp9 lies straight above the wrist.
TEMPLATE = np.array([
    [0, 0],
    [-20, -15], [-35, -30], [-45, -45], [-52, -58],
    [-22, -75], [-26, -105], [-28, -125], [-30, -142],
    [0, -80], [0, -113], [0, -135], [0, -153],
    [22, -75], [25, -105], [27, -125], [29, -140],
    [40, -65], [47, -88], [51, -103], [54, -116],
], dtype=np.float64)  # fmt: skip


def _project(K: np.ndarray, X: np.ndarray) -> np.ndarray:
    x = X @ K.T
    return x[:, :2] / x[:, 2:3]


def _apply(A: np.ndarray, uv: np.ndarray) -> np.ndarray:
    x = np.c_[uv, np.ones(len(uv))] @ A.T
    return x[:, :2] / x[:, 2:3]


def _turn(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]])


def _hand_2d(rng: np.random.Generator, angle: float, centre=(330.0, 250.0), scale=1.0):
    """The template turned in the image plane by ``angle``, with a little noise."""
    kp = TEMPLATE * scale + rng.normal(scale=2.0, size=TEMPLATE.shape)
    return kp @ _turn(angle).T + np.asarray(centre)


def _points_3d(rng: np.random.Generator, n: int = 21) -> np.ndarray:
    """Random points 0.45-0.8 m in front of the camera, projecting into the image."""
    z = rng.uniform(0.45, 0.8, n)
    uv = rng.uniform([80, 60], [W - 80, H - 60], (n, 2))
    return np.c_[(uv - K_IMG[:2, 2]) / np.diag(K_IMG)[:2], np.ones(n)] * z[:, None]


def _mediapipe_reference(kp: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """HandLandmarksToRectCalculator + RectTransformationCalculator (scale 2, shift_y -0.1,
    square_long) as MediaPipe's C++ does it, in pixels: rotation from the wrist to the
    knuckles' point, the box of the partial landmarks in the turned frame."""
    x0, y0 = kp[0]
    x1, y1 = 0.25 * (kp[5] + kp[13]) + 0.5 * kp[9]
    rotation = np.pi / 2 - np.arctan2(-(y1 - y0), x1 - x0)
    rotation = rotation - 2 * np.pi * np.floor((rotation + np.pi) / (2 * np.pi))
    pts = kp[PARTIAL]
    axis_centre = 0.5 * (pts.min(0) + pts.max(0))
    rev = -rotation
    o = pts - axis_centre
    px = o[:, 0] * np.cos(rev) - o[:, 1] * np.sin(rev)
    py = o[:, 0] * np.sin(rev) + o[:, 1] * np.cos(rev)
    pcx, pcy = 0.5 * (px.min() + px.max()), 0.5 * (py.min() + py.max())
    cx = pcx * np.cos(rotation) - pcy * np.sin(rotation) + axis_centre[0]
    cy = pcx * np.sin(rotation) + pcy * np.cos(rotation) + axis_centre[1]
    width, height = px.max() - px.min(), py.max() - py.min()
    cx += -height * -0.1 * np.sin(rotation)  # shift_y = -0.1 of the height, turned
    cy += height * -0.1 * np.cos(rotation)
    side = 2.0 * max(width, height)
    R2 = np.array([[np.cos(rotation), np.sin(rotation)], [-np.sin(rotation), np.cos(rotation)]])
    return np.array([cx, cy]), side, R2


def test_roi_of_an_upright_hand_in_closed_form():
    """Upright template: no turn, the box of the partial joints (x -45..47, y -113..0)
    doubled on its long side and moved up 0.1 of its height."""
    centre, side, R2 = mediapipe_roi(TEMPLATE)
    assert np.allclose(R2, np.eye(2), atol=1e-12)
    assert side == pytest.approx(2 * 113)
    assert np.allclose(centre, [1.0, -56.5 - 11.3], atol=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_roi_matches_mediapipes_rect_calculators(seed):
    """mediapipe_roi against the C++ calculators' arithmetic (turned frame, shift, square)."""
    rng = np.random.default_rng(seed)
    for angle in rng.uniform(-np.pi, np.pi, 5):
        kp = _hand_2d(rng, angle, scale=rng.uniform(0.5, 2.0))
        centre, side, R2 = mediapipe_roi(kp)
        c_ref, s_ref, R_ref = _mediapipe_reference(kp)
        assert np.allclose(centre, c_ref, atol=1e-9) and side == pytest.approx(s_ref, rel=1e-12)
        assert np.allclose(R2, R_ref, atol=1e-12)


def test_roi_turns_and_moves_with_the_hand():
    """Turning and shifting the keypoints turns and shifts the ROI: the crop coordinates of
    the keypoints do not change."""
    rng = np.random.default_rng(7)
    kp = _hand_2d(rng, 0.3)
    A = roi_affine(*mediapipe_roi(kp), 96)
    for angle in (0.5, 2.0, -2.8):
        Q, t = _turn(angle), np.array([40.0, -25.0])
        kq = kp @ Q.T + t
        centre, side, R2 = mediapipe_roi(kq)
        c0, s0, R0 = mediapipe_roi(kp)
        assert np.allclose(centre, Q @ c0 + t) and side == pytest.approx(s0)
        assert np.allclose(R2, R0 @ Q.T, atol=1e-12)
        assert np.allclose(_apply(roi_affine(centre, side, R2, 96), kq), _apply(A, kp), atol=1e-9)


def test_roi_affine_maps_the_square_onto_the_pixel_edges():
    """The ROI's centre lands on (size - 1) / 2, its corners on the crop's outer pixel edges
    (-0.5 and size - 0.5)."""
    centre, side, size = np.array([301.0, 177.0]), 150.0, 64
    R2 = _turn(0.7).T  # rows: the crop's x and y axes
    A = roi_affine(centre, side, R2, size)
    assert np.allclose(A[2], [0, 0, 1])
    assert np.allclose(_apply(A, centre[None]), (size - 1) / 2)
    signs = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]])
    corners = centre + 0.5 * side * signs @ R2
    assert np.allclose(_apply(A, corners), (size - 1) / 2 + 0.5 * size * signs)


@pytest.mark.parametrize("mirror", [False, True])
@pytest.mark.parametrize("seed", range(3))
def test_crop_camera_reprojects_exactly(mirror, seed):
    """K' projects R X (R diag(-1, 1, 1) X when mirrored) where the pixel map A puts the
    image projection of X; to_camera undoes R; K' is intrinsic and R a roll about z. Both for
    MediaPipe's ROI and a jittered one turned far from upright."""
    rng = np.random.default_rng(seed)
    X = _points_3d(rng)
    uv = _project(K_IMG, X)
    img = np.zeros((H, W, 3), np.uint8)
    roi = mediapipe_roi(uv)
    for r in (None, jitter_roi(*roi, rng, rotation_deg=90.0)):
        c = hand_crop(img, K_IMG, uv, size=128, mirror=mirror, roi=r)
        assert c.image.shape == (128, 128, 3) and c.image.dtype == np.uint8
        assert c.mirrored is mirror
        Y = X @ (c.R @ D).T if mirror else X @ c.R.T
        assert np.abs(_project(c.K, Y) - _apply(c.A, uv)).max() < 1e-9
        assert np.abs(c.to_camera(Y) - X).max() < 1e-12
        assert np.abs(c.to_camera(np.stack([Y, 2 * Y])) - np.stack([X, 2 * X])).max() < 1e-12
        K, R = c.K, c.R
        assert K[1, 0] == K[2, 0] == K[2, 1] == 0 and K[2, 2] == 1
        assert K[0, 0] > 0 and K[1, 1] > 0
        assert np.allclose(R @ R.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(R) == pytest.approx(1.0)
        assert np.array_equal(R[2], [0, 0, 1]) and np.array_equal(R[:, 2], [0, 0, 1])
        if not mirror and r is None:  # the ROI is what mediapipe_roi says
            assert np.allclose(c.A, roi_affine(*roi, 128))


@pytest.mark.parametrize("mirror", [False, True])
def test_wrist_below_the_knuckles_for_any_turn(mirror):
    """In the crop the wrist lies straight below 0.25 (kp5 + kp13) + 0.5 kp9: the vector from
    the wrist to that point is (0, -|v|), whatever the hand's in-plane angle."""
    rng = np.random.default_rng(11)
    img = np.zeros((H, W, 3), np.uint8)
    for angle in np.linspace(-np.pi, np.pi, 9):
        kp = _hand_2d(rng, angle)
        c = hand_crop(img, K_IMG, kp, size=96, mirror=mirror)
        k = _apply(c.A, kp)
        v = 0.25 * (k[5] + k[13]) + 0.5 * k[9] - k[0]
        assert v[1] < -5 and abs(v[0]) < 1e-9 * abs(v[1]), (angle, v)


@pytest.mark.parametrize("mirror", [False, True])
def test_crop_pixels_follow_the_map(mirror):
    """A bright dot drawn at (u, v) of the image peaks in the crop at A (u, v, 1), within a
    pixel, for a turned hand, zoomed in and out."""
    yy, xx = np.mgrid[0:H, 0:W]
    for angle, scale, size in ((0.6, 1.0, 96), (-2.2, 0.4, 128), (2.9, 2.5, 64)):
        kp = _hand_2d(np.random.default_rng(3), angle, scale=scale)
        centre, side, _ = mediapipe_roi(kp)
        dot = centre + np.array([0.17, -0.11]) * side  # well inside the ROI
        sigma = max(1.5, 2.0 * side / size)  # wide enough to survive down-sampling
        g = np.exp(-((xx - dot[0]) ** 2 + (yy - dot[1]) ** 2) / (2 * sigma**2))
        img = np.repeat((g * 255).round().astype(np.uint8)[..., None], 3, axis=2)
        c = hand_crop(img, K_IMG, kp, size=size, mirror=mirror)
        want = _apply(c.A, dot[None])[0]
        peak = np.unravel_index(c.image[..., 1].argmax(), (size, size))[::-1]
        assert np.abs(np.array(peak) - want).max() <= 1.0, (angle, peak, want)


def test_crop_is_black_outside_the_image():
    """Where a crop pixel's pre-image falls off the image the crop is 0, inside it keeps the
    image's value."""
    img = np.full((100, 120, 3), 200, np.uint8)
    kp = _hand_2d(np.random.default_rng(0), 0.4, centre=(20.0, 90.0), scale=0.5)
    c = hand_crop(img, K_IMG, kp, size=64)
    yy, xx = np.mgrid[0:64, 0:64]
    pre = _apply(np.linalg.inv(c.A), np.c_[xx.ravel(), yy.ravel()]).reshape(64, 64, 2)
    inside = (pre[..., 0] > 1) & (pre[..., 0] < 118) & (pre[..., 1] > 1) & (pre[..., 1] < 98)
    outside = (pre[..., 0] < -1) | (pre[..., 0] > 120) | (pre[..., 1] < -1) | (pre[..., 1] > 100)
    assert inside.sum() > 200 and outside.sum() > 200
    assert np.all(c.image[inside] == 200) and np.all(c.image[outside] == 0)


def test_roi_rejects_bad_keypoints():
    """A (20, 2) array, a NaN or an infinity is refused with ValueError."""
    with pytest.raises(ValueError):
        mediapipe_roi(TEMPLATE[:20])
    with pytest.raises(ValueError):
        mediapipe_roi(TEMPLATE.ravel())
    for bad in (np.nan, np.inf):
        kp = TEMPLATE.copy()
        kp[7, 1] = bad
        with pytest.raises(ValueError):
            mediapipe_roi(kp)


def test_jitter_roi_draws_the_documented_spread():
    """No spread gives the ROI back; otherwise over 4000 draws log side, centre shift / side
    and turn angle have standard deviations near the arguments, and R2 stays a rotation."""
    rng = np.random.default_rng(5)
    centre, side, R2 = np.array([200.0, 150.0]), 120.0, _turn(0.3).T
    c, s, R = jitter_roi(centre, side, R2, rng, scale=0.0, shift=0.0, rotation_deg=0.0)
    assert np.allclose(c, centre) and s == side and np.allclose(R, R2)
    logs, shifts, angles = [], [], []
    for _ in range(4000):
        c, s, R = jitter_roi(centre, side, R2, rng, scale=0.2, shift=0.05, rotation_deg=15.0)
        assert np.linalg.det(R) == pytest.approx(1.0) and np.allclose(R @ R.T, np.eye(2))
        logs.append(np.log(s / side))
        shifts.append((c - centre) / side)
        d = R @ R2.T
        angles.append(np.degrees(np.arctan2(d[0, 1], d[0, 0])))
    assert np.std(logs) == pytest.approx(0.2, rel=0.06)
    assert np.std(shifts, axis=0) == pytest.approx([0.05, 0.05], rel=0.06)
    assert np.std(angles) == pytest.approx(15.0, rel=0.06)
    assert abs(np.mean(angles)) < 1.0 and abs(np.mean(logs)) < 0.02


def _item(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    # a hand-like layout for the ROI: the template's 2D shape lifted to 0.5-0.7 m
    kp = _hand_2d(rng, rng.uniform(-np.pi, np.pi), centre=(300.0, 260.0))
    z = rng.uniform(0.5, 0.7, (21, 1))
    joints3d = np.c_[(kp - K_IMG[:2, 2]) / np.diag(K_IMG)[:2], np.ones(21)] * z
    verts = joints3d[rng.integers(0, 21, 200)] + rng.normal(scale=0.01, size=(200, 3))
    joints2d = _project(K_IMG, joints3d)
    yy, xx = np.mgrid[0:H, 0:W]
    mask = (np.hypot(xx - joints2d[9, 0], yy - joints2d[9, 1]) < 30).astype(np.float32)
    return {
        "image": rng.integers(0, 256, (H, W, 3), dtype=np.uint8),
        "K": K_IMG.copy(),
        "joints3d": joints3d,
        "joints2d": joints2d,
        "keypoints": joints2d + rng.normal(scale=3.0, size=(21, 2)),
        "confidence": rng.uniform(0.2, 1.0, 21),
        "vertices": verts,
        "mask": mask,
    }


def test_mediapipe_crop_keeps_labels_consistent():
    """The returned K projects the returned joints3d onto the returned joints2d and the
    returned vertices where A puts their image projections; keypoints move by A, confidence
    stays; the mask moves with the image; the same seed gives the same crop."""
    item = _item(0)
    tf = MediaPipeCrop(size=128)
    out = tf(item, np.random.default_rng(3))
    A = out["affine"]
    assert out["image"].shape == (128, 128, 3) and out["image"].dtype == np.uint8
    assert out["mask"].shape == (128, 128) and out["mask"].dtype == np.float32
    assert np.abs(_project(out["K"], out["joints3d"]) - out["joints2d"]).max() < 1e-6
    assert np.abs(out["joints2d"] - _apply(A, item["joints2d"])).max() < 1e-9
    v2d = _apply(A, _project(K_IMG, item["vertices"]))
    assert np.abs(_project(out["K"], out["vertices"]) - v2d).max() < 1e-6
    assert np.abs(out["keypoints"] - _apply(A, item["keypoints"])).max() < 1e-9
    assert np.array_equal(out["confidence"], item["confidence"])
    # a roll keeps depths and distances from the camera
    assert np.allclose(out["joints3d"][:, 2], item["joints3d"][:, 2])
    norm = np.linalg.norm
    assert np.allclose(norm(out["vertices"], axis=1), norm(item["vertices"], axis=1))
    # the mask's disk around joint 9 is where joint 9 went
    u, v = np.round(out["joints2d"][9]).astype(int)
    assert out["mask"][v, u] == 1 and set(np.unique(out["mask"])) <= {0.0, 1.0}
    # the input is not modified
    assert item["image"].shape == (H, W, 3) and np.array_equal(item["K"], K_IMG)
    again = tf(item, np.random.default_rng(3))
    for k in ("image", "mask", "K", "joints3d", "joints2d", "vertices", "affine"):
        assert np.array_equal(again[k], out[k]), k
    other = tf(item, np.random.default_rng(4))
    assert not np.allclose(other["K"], out["K"])


def test_mediapipe_crop_without_jitter_is_mediapipes_roi():
    """jitter=False crops exactly hand_crop's ROI of the projected joints."""
    item = _item(1)
    out = MediaPipeCrop(size=96, jitter=False)(item, np.random.default_rng(0))
    c = hand_crop(item["image"], item["K"], item["joints2d"], 96)
    assert np.array_equal(out["image"], c.image) and np.allclose(out["K"], c.K)
    assert np.allclose(out["affine"], roi_affine(*mediapipe_roi(item["joints2d"]), 96))
