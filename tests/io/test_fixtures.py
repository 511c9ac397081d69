"""Checkpoints written by nnscratch at d6c09a8 (before the second architecture pass) still load, to
the same numbers.

tests/io/fixtures/v1/ holds files written by tests/io/fixtures/make_checkpoints_v1.py, run at that
commit: networks with every built-in layer and every textbook twin (``reference.*``), in float32 and
float64, with each optimizer's state, and a ``train-mnist --save`` checkpoint. Beside each,
``<name>.expected.npz`` holds an input and the eval-mode output the network gave then.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import nnscratch as nn
from nnscratch.inference import inference_model

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "v1"
NAMES = sorted(p.name[: -len(".expected.npz")] for p in FIXTURES.glob("*.expected.npz"))


def test_the_fixtures_are_there():
    assert len(NAMES) == 7, NAMES


def _raw(path: Path) -> dict:
    """The file's arrays as NumPy reads them, without nnscratch: the independent witness."""
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


@pytest.mark.parametrize("name", NAMES)
def test_an_old_checkpoint_loads_to_the_same_numbers(name):
    path = FIXTURES / f"{name}.npz"
    raw = _raw(path)
    header = json.loads(str(raw["header"]))
    checkpoint = nn.load_checkpoint(path)
    model = checkpoint.model
    # every array lands where the header says, bit for bit
    for i, p in enumerate(model.parameters):
        np.testing.assert_array_equal(p, raw[f"param.{i}"])
        assert p.dtype == raw[f"param.{i}"].dtype
    for i, b in enumerate(model.buffers):
        np.testing.assert_array_equal(b, raw[f"buffer.{i}"])
    assert len(model.parameters) == len(header["parameters"]) and len(model.buffers) == len(header["buffers"])
    if header["optimizer"] is not None:
        assert type(checkpoint.optimizer).__name__ == header["optimizer"]["class"]
        state = checkpoint.optimizer.state_dict()
        assert state["steps"] == header["optimizer"]["steps"] > 0
        for key in header["optimizer"]["state"]:
            np.testing.assert_array_equal(state[key], raw[f"optimizer.{key}"])
    assert checkpoint.epoch == header["epoch"] and checkpoint.metadata == header["metadata"]
    # the layer classes are the ones the file names, twins included
    assert _class_names(model) == _described_names(header["architecture"])
    # and the network computes what it computed when it was saved
    expected = _raw(FIXTURES / f"{name}.expected.npz")
    y = nn.predict(inference_model(model), expected["x"])
    rtol = 1e-12 if y.dtype == np.float64 else 1e-5
    np.testing.assert_allclose(y, expected["y"], rtol=rtol, atol=rtol * 1e-2)


def test_an_old_checkpoint_saves_again_to_the_same_file_contents(tmp_path):
    for name in NAMES:
        checkpoint = nn.load_checkpoint(FIXTURES / f"{name}.npz")
        path = nn.save(checkpoint.model, tmp_path / f"{name}.npz", optimizer=checkpoint.optimizer,
                       epoch=checkpoint.epoch, metadata=checkpoint.metadata)
        old, new = _raw(FIXTURES / f"{name}.npz"), _raw(path)
        assert sorted(old) == sorted(new)
        assert json.loads(str(old["header"])) == json.loads(str(new["header"]))
        for key in old:
            np.testing.assert_array_equal(old[key], new[key])


def _class_names(layer) -> list:
    if type(layer) in (nn.Sequential, nn.Residual):
        return [type(layer).__name__, [_class_names(inner) for inner in layer.layers]]
    prefix = "reference." if type(layer).__module__.startswith("nnscratch.reference") else ""
    return prefix + type(layer).__name__


def _described_names(description) -> list:
    if "layers" in description:
        return [description["class"], [_described_names(inner) for inner in description["layers"]]]
    return description["class"]
