"""The reconstruction record describes itself: written files and the web API's results are
valid against the shipped JSON Schema, which refuses records without the header; so do a
video's tracks (``tracks.schema.json``; a written file is checked in ``tests/test_video.py``)."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from monohand.cli import app
from monohand.models.joints import FREIHAND_JOINT_NAMES
from monohand.record import FORMAT, record_header

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "hand.jpg"


@pytest.fixture(scope="module")
def schema():
    text = (resources.files("monohand") / "schemas" / "reconstruction.schema.json").read_text()
    s = json.loads(text)
    jsonschema.Draft202012Validator.check_schema(s)
    return s


def test_a_written_record_is_valid_and_says_what_it_holds(tmp_path, schema):
    for method in ("network", "hybrid"):
        res = CliRunner().invoke(app, ["reconstruct", str(EXAMPLE), "--method", method,
                                       "--out", str(tmp_path / method)])  # fmt: skip
        assert res.exit_code == 0, res.output
        record = json.loads((tmp_path / method / "hand.json").read_text())
        jsonschema.validate(record, schema)
        assert record["format"] == FORMAT and record["joint_names"] == list(FREIHAND_JOINT_NAMES)
        assert "metres" in record["units"] and "OpenCV" in record["frame"]
        # the record's parameters pose the side's layer to its vertices (light left out)
        from monohand.models.registry import create
        from monohand.record import layer_inputs

        (hand,) = record["hands"]
        inputs = layer_inputs(hand["parameters"], torch.float64)
        assert "light" not in inputs and "light" in hand["parameters"]
        layer = create(hand["model"], side=hand["side"]).double()
        np.testing.assert_allclose(layer(**inputs).vertices[0].numpy(), hand["vertices"],
                                   atol=1e-5)  # fmt: skip


def test_the_schema_refuses_what_is_not_a_record(schema):
    good = {**record_header(), "image": "x.jpg", "K": [[1, 0, 0], [0, 1, 0], [0, 0, 1]],
            "K_source": "given", "hands": []}  # fmt: skip
    jsonschema.validate(good, schema)
    for broken in ({k: v for k, v in good.items() if k != "format"},
                   {**good, "format_version": 2},
                   {**good, "K": [[1, 0], [0, 1]]},
                   {**good, "hands": [{"side": "middle"}]}):  # fmt: skip
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, schema)


def tracks_schema() -> dict:
    text = (resources.files("monohand") / "schemas" / "tracks.schema.json").read_text()
    s = json.loads(text)
    jsonschema.Draft202012Validator.check_schema(s)
    return s


def test_the_tracks_schema_refuses_what_is_not_a_tracks_file():
    from monohand.record import TRACKS_FORMAT

    schema = tracks_schema()
    head = record_header()
    joints = [[[0.0, 0.0, 0.5]] * 21]
    good = {"format": TRACKS_FORMAT, "format_version": 1,
            "monohand_version": head["monohand_version"], "units": "metres",
            "joint_names": head["joint_names"], "source": "clip.mp4", "method": "hybrid",
            "network": "shipped", "frames": 3, "fps": 30.0,
            "K": [[500, 0, 160], [0, 500, 120], [0, 0, 1]], "K_source": "given",
            "tracks": {"0": {"side": "right", "frames": [1], "joints3d": joints,
                             "warm": [False]}}}  # fmt: skip
    jsonschema.validate(good, schema)
    track = good["tracks"]["0"]
    for broken in ({k: v for k, v in good.items() if k != "format"},
                   {**good, "format": "monohand.reconstruction"},
                   {**good, "fps": 0},
                   {**good, "tracks": {"a": track}},
                   {**good, "tracks": {"0": {**track, "side": "Right"}}},
                   {**good, "tracks": {"0": {**track, "joints3d": [[[0.0, 0.0]] * 21]}}},
                   {**good, "tracks": {"0": {k: v for k, v in track.items() if k != "warm"}}}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, schema)
