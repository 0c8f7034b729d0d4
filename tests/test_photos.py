"""Photo sets (real photos without 3D labels): the import writes FreiHAND's layout with the
detector's labels and each photo's camera, the dataset reads it as items without 3D, the
losses leave those items out of the 3D terms and take the detector's 2D with its
confidences, and training runs on a synthetic set and a photo set together."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from monohand import losses as L
from monohand.config import load_config
from monohand.data.detection_file import load_detections
from monohand.data.freihand import DatasetError, FreiHANDDataset
from monohand.data.photos import import_photos, list_photos, read_photo_set
from monohand.render.camera import DEFAULT_FOV_DEG
from monohand.train.inputs import Concat, Repeat
from trainkit import SMOKE, exact_outputs, tiny_config

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "hand.jpg"


@pytest.fixture(scope="module")
def photo_set(tmp_path_factory) -> tuple[Path, Path]:
    """The example photo (a right hand) as it is, mirrored (a left hand) and as a PNG in a
    subfolder, a grey TIFF (no hand; a TIFF is a photo as for reconstruct) and a file that is
    no image, imported without MediaPipe's augmented copies."""
    src = tmp_path_factory.mktemp("photos")
    shutil.copy(EXAMPLE, src / "a.jpg")
    Image.open(EXAMPLE).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(src / "flip.jpg",
                                                                       quality=95)  # fmt: skip
    (src / "sub").mkdir()
    Image.open(EXAMPLE).save(src / "sub" / "b.png")
    Image.new("RGB", (200, 160), (128, 128, 128)).save(src / "grey.tif")
    (src / "broken.jpg").write_bytes(b"not an image")
    out = tmp_path_factory.mktemp("set") / "photos"
    import_photos([src], out, licence="test photos", tta=False)
    return src, out


def test_import_writes_a_photo_set(photo_set):
    src, out = photo_set
    assert list_photos([src]) == sorted([src / "a.jpg", src / "broken.jpg", src / "flip.jpg",
                                         src / "grey.tif", src / "sub" / "b.png"])  # fmt: skip
    info = read_photo_set(out)
    assert info["licence"] == "test photos" and info["seen"] == 5 and info["unreadable"] == 1
    # the files left out are named, and why (not only counted)
    assert [m.split(":")[0] for m in info["left_out"]["unreadable"]] == [str(src / "broken.jpg")]
    assert info["left_out"]["no_hand"] == [str(src / "grey.tif")]
    assert [(Path(x["source"]).name, x["mirrored"]) for x in info["images"]] == [
        ("a.jpg", False), ("flip.jpg", True), ("b.png", False)]  # fmt: skip
    rgb = sorted((out / "training" / "rgb").iterdir())
    assert [p.name for p in rgb] == ["00000000.jpg", "00000001.jpg", "00000002.jpg"]
    w, h = Image.open(EXAMPLE).size
    f = 0.5 * w / math.tan(math.radians(DEFAULT_FOV_DEG) / 2)  # no EXIF focal length
    K = np.asarray(json.loads((out / "training_K.json").read_text()))
    assert K.shape == (3, 3, 3)
    assert np.allclose(K, [[f, 0, (w - 1) / 2], [0, f, (h - 1) / 2], [0, 0, 1]])
    xy, conf, names = load_detections(out / "detections_mediapipe.json")
    assert names == [p.name for p in rgb] and (conf.max(1) > 0).all()
    # the PNG is the same picture, and the left hand is stored mirrored back: the same
    # image within JPEG noise, the same keypoints within a few pixels (MediaPipe on a
    # mirrored photo is not exactly its mirror: up to 8 % of the hand's size at a joint here)
    size = np.linalg.norm(xy[0, 9] - xy[0, 0])
    assert np.abs(xy[0] - xy[2]).max() < 3.0
    assert np.abs(xy[0] - xy[1]).mean() < 0.04 * size and np.abs(xy[0] - xy[1]).max() < 0.1 * size
    im = [np.asarray(Image.open(p), dtype=np.float64) for p in rgb]
    assert np.abs(im[0] - im[1]).mean() < 3.0 < np.abs(im[0] - im[0][:, ::-1]).mean()
    assert [p.name for p in out.parent.iterdir()] == ["photos"]  # no temporary folder left


def test_import_refuses_an_existing_folder_and_nothing_found(photo_set, tmp_path):
    src, out = photo_set
    with pytest.raises(FileExistsError, match="exists"):
        import_photos([src], out)
    (tmp_path / "grey").mkdir()
    Image.new("RGB", (64, 64), (90, 90, 90)).save(tmp_path / "grey" / "g.jpg")
    with pytest.raises(ValueError, match="no hand"):
        import_photos([tmp_path / "grey"], tmp_path / "none", tta=False)
    assert not (tmp_path / "none").exists() and not list(tmp_path.glob(".none*"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images"):
        import_photos([tmp_path / "empty"], tmp_path / "x")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "b.jpg").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="none of the 1 images could be read: .*b.jpg"):
        import_photos([tmp_path / "broken"], tmp_path / "y", tta=False)


def test_overwrite_replaces_only_a_photo_set_and_never_the_sources(photo_set, tmp_path):
    """--overwrite removes the output folder whole: refused for a folder that is no photo
    set (it once deleted the very photos being imported, and a user's notes beside them),
    and for a folder that holds the sources; a set written inside its own source folder is
    not imported again on a rerun."""
    src, _ = photo_set
    mine = tmp_path / "mine"
    mine.mkdir()
    shutil.copy(EXAMPLE, mine / "hand.jpg")
    (mine / "notes.txt").write_text("my notes")
    for out in (mine, tmp_path):  # the sources' own folder, a folder above them
        with pytest.raises(ValueError, match="holds the photos being imported"):
            import_photos([mine], out, overwrite=True, tta=False)
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="not a photo set"):
        import_photos([src / "a.jpg"], other, overwrite=True, tta=False)
    assert (mine / "notes.txt").is_file() and (other / "keep.txt").is_file()
    inside = mine / "set"
    for _ in range(2):  # the second run sees the first's images under mine/ and skips them
        res = import_photos([mine], inside, licence="x", overwrite=True, tta=False)
        assert (res.kept, res.seen) == (1, 1)
    assert [Path(x["source"]).name for x in read_photo_set(inside)["images"]] == ["hand.jpg"]
    # nor is a set of another name there; and a user's folder named like a temporary one
    # is neither read as a set's leftovers nor removed
    (tmp_path / "mine.tmp").mkdir()
    shutil.copy(EXAMPLE, tmp_path / "mine.tmp" / "kept.jpg")
    res = import_photos([mine, tmp_path / "mine.tmp"], tmp_path / "second", licence="x",
                        tta=False)  # fmt: skip
    assert (res.kept, res.seen) == (2, 2) and (tmp_path / "mine.tmp" / "kept.jpg").is_file()
    # an output folder that is a link to a set is refused before any work
    (tmp_path / "link").symlink_to(inside)
    with pytest.raises(FileExistsError, match="a symbolic link"):
        import_photos([src / "a.jpg"], tmp_path / "link", overwrite=True, tta=False)


def test_a_photo_set_reads_as_items_without_3d(photo_set):
    _, out = photo_set
    with pytest.raises(DatasetError, match="no 3D labels"):
        FreiHANDDataset(out)
    ds = FreiHANDDataset(out, labels=out / "detections_mediapipe.json")
    xy, conf, _ = load_detections(out / "detections_mediapipe.json")
    item = ds[1]
    assert item["has_3d"].item() == 0.0 and (item["joints3d"] == 0).all()
    assert torch.allclose(item["joints2d"], torch.as_tensor(xy[1], dtype=torch.float32))
    assert torch.allclose(item["keypoints"], item["joints2d"])
    assert torch.allclose(item["confidence"], torch.as_tensor(conf[1], dtype=torch.float32))


def test_concat_and_repeat(photo_set, data_root):
    """Concat: items in order, cut to the shared keys, the epoch passed on; Repeat: item i
    is item i mod n, each copy drawn as an epoch of its own (different crops)."""
    from monohand.data.crops import MediaPipeCrop

    _, out = photo_set
    synth = FreiHANDDataset(data_root)
    photos = FreiHANDDataset(out, labels=out / "detections_mediapipe.json")
    n = len(photos)
    both = Concat([synth, Repeat(photos, 3)])
    assert len(both) == len(synth) + 3 * n
    assert both[0]["has_3d"] == 1 and both[len(synth) + n + 1]["has_3d"] == 0
    assert torch.equal(both[len(synth) + n + 1]["image"], photos[1]["image"])
    # the keys every part has: a synthetic item's vertices and mask are left out
    assert "vertices" in synth[0] and set(both[0]) == set(both[len(synth)])
    assert "vertices" not in both[0]
    both.epoch = 5
    assert synth.epoch == 5
    both[len(synth) + 2 * n + 1]  # photo 1, copy 2: drawn as epoch 5 * 3 + 2
    assert photos.epoch == 17
    with pytest.raises(IndexError):
        both[len(both)]
    cropped = Repeat(FreiHANDDataset(out, labels=out / "detections_mediapipe.json",
                                     augment=MediaPipeCrop(64)), 2)  # fmt: skip
    a, b = cropped[0], cropped[n]  # photo 0, copies 0 and 1
    assert not torch.equal(a["image"], b["image"])
    assert torch.equal(a["image"], cropped[0]["image"])  # and each copy reproducible


def _batch(has_3d: list[float]):
    """Two hands, labels (keypoints) off the ground truth's 2D by 0-30 px per joint, the
    farthest with confidence 0, the rest between 0.1 and 1; joints that project exactly onto
    the ground truth (K = I, z = 1); random 3D targets."""
    g = torch.Generator().manual_seed(0)
    j2 = torch.rand(2, 21, 2, generator=g) * 50 + 20
    off = torch.rand(2, 21, 2, generator=g) * 30
    conf = 0.1 + 0.9 * torch.rand(2, 21, generator=g)
    conf[off.norm(dim=-1) > 30] = 0.0
    batch = {"K": torch.eye(3).repeat(2, 1, 1), "joints2d": j2, "keypoints": j2 + off,
             "confidence": conf, "has_3d": torch.tensor(has_3d),
             "joints3d": torch.rand(2, 21, 3, generator=g)}  # fmt: skip
    # a photo item's "ground truth" is its labels (as the dataset makes it)
    photo = batch["has_3d"] == 0
    batch["joints2d"] = torch.where(photo[:, None, None], batch["keypoints"], j2)

    return (batch, *exact_outputs(j2))


def test_losses_leave_photos_out_of_3d_and_weight_their_labels():
    """GT-2D training with a photo in the batch: its keypoint term is the robust 2D loss
    against its labels (a per-item reference), the synthetic item's is zero; the 3D-norm
    term is the synthetic item's alone; with every item synthetic, as before."""
    from monohand.train import compute_losses

    cfg = load_config(SMOKE, ["loss.joints_3d_norm=1.0", "loss.bone=0", "loss.scale_2d=0"])
    cfg.loss.keypoints_target = "gt"
    batch, Out, Params = _batch([1.0, 0.0])
    terms = compute_losses(cfg, batch, Params, Out)
    uv = Out.joints[1:, :, :2]
    target = batch["keypoints"][1:]
    size = (target[:, 9] - target[:, 0]).norm(dim=-1).clamp_min(4.0)
    conf = batch["confidence"][1:]
    assert (conf == 0).any() and conf.std() > 0.1  # the weights matter here
    if cfg.loss.joint_weights:  # S2HAND's per-joint weights, on top of the confidences
        conf = conf * torch.tensor(L.S2HAND_JOINT_WEIGHTS)
    photo = L.keypoints_2d(uv, target, conf, size, cfg.loss.keypoints_sigma)
    want = cfg.loss.keypoints_2d * (0.0 + photo.item()) / 2
    assert terms["keypoints_2d"].item() == pytest.approx(want, rel=1e-5)
    flat = L.keypoints_2d(uv, target, torch.ones_like(conf), size, cfg.loss.keypoints_sigma)
    assert abs(flat.item() - photo.item()) > 0.05 * photo.item()
    norm0 = L.joints_3d_norm(Out.joints[:1], batch["joints3d"][:1]).item()
    assert terms["joints_3d_norm"].item() == pytest.approx(norm0, rel=1e-5)
    # the same batch with both items synthetic: the old mean over both
    batch2, _, _ = _batch([1.0, 1.0])
    terms2 = compute_losses(cfg, batch2, Params, Out)
    assert terms2["keypoints_2d"].item() < 1e-9
    both = L.joints_3d_norm(Out.joints, batch2["joints3d"]).mean().item()
    assert terms2["joints_3d_norm"].item() == pytest.approx(both, rel=1e-5)


def test_training_with_a_photo_set(tmp_path, photo_set, data_root):
    """A synthetic set and the photo set together (GT 2D + 3D norm for the synthetic items);
    the config refuses photos with render-and-compare."""
    from monohand.train import train

    _, out = photo_set
    cfg = tiny_config(tmp_path / "run", data_root, steps=4, log_every=1, **{
        "data.photos": out, "data.photos_repeat": 2, "data.crop": "mediapipe",
        "loss.keypoints_target": "gt", "loss.joints_3d_norm": 1.0})  # fmt: skip
    last = train(cfg)
    assert last["step"] == 4 and math.isfinite(last["loss"]) and "joints_3d_norm" in last
    with pytest.raises(ValueError, match="no masks"):
        load_config(SMOKE, [f"data.photos={out}", "data.crop=mediapipe", "loss.silhouette=1.0"])
    cfg = tiny_config(tmp_path / "bad", data_root, steps=1, **{"data.photos": data_root,
                                                                "data.crop": "mediapipe"})
    with pytest.raises(ValueError, match="not a photo set"):  # before any data is made
        train(cfg)
    with pytest.raises(ValueError, match="data.crop=mediapipe"):
        load_config(SMOKE, [f"data.photos={out}"])


def test_import_photos_command_and_a_corrupt_record(photo_set, tmp_path):
    """The command writes the set and says how many photos had a hand; it refuses an
    existing folder; a photo set whose record is not JSON is refused naming the file."""
    from typer.testing import CliRunner

    from monohand.cli import app

    src, _ = photo_set
    out = tmp_path / "cli_set"
    r = CliRunner().invoke(app, ["import-photos", str(src), str(out), "--no-tta",
                                 "--licence", "test"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "3 of 5 photos with a hand found, 1 unreadable" in " ".join(r.output.split())
    assert read_photo_set(out)["licence"] == "test"
    r = CliRunner().invoke(app, ["import-photos", str(src), str(out), "--licence", "test"])
    assert r.exit_code != 0 and "exists" in r.output
    # what was left out is named on the screen too; a missing source is a usage error
    r = CliRunner().invoke(app, ["import-photos", str(src), str(tmp_path / "again"), "--no-tta",
                                 "--licence", "test"])  # fmt: skip
    text = " ".join(r.output.split())
    assert r.exit_code == 0 and "skipped: " in text and "broken.jpg" in text, r.output
    assert "no hand: " in text and "grey.tif" in text
    r = CliRunner().invoke(app, ["import-photos", str(tmp_path / "nope"), str(tmp_path / "n2"),
                                 "--licence", "test"])  # fmt: skip
    assert r.exit_code == 2 and "no such file or folder" in r.output
    assert not (tmp_path / "n2").exists()
    r = CliRunner().invoke(app, ["import-photos", str(src), str(tmp_path / "new")])
    assert r.exit_code == 2 and "--licence" in r.output  # a set records what it may be used for
    blank = ["import-photos", str(src), str(tmp_path / "new"), "--licence", " "]
    r = CliRunner().invoke(app, blank)
    assert r.exit_code == 2 and "their licence" in " ".join(r.output.split())
    (out / "photo_set.json").write_text("{not json")
    with pytest.raises(DatasetError, match="photo_set.json"):
        read_photo_set(out)
