"""nnscratch/commands/common.py: the output-path check and the checkpoint loading predict, report,
export and train-mnist share (each command's tests check them again through its own options)."""

import errno
import re
import tempfile

import numpy as np
import pytest

import nnscratch as nn
from nnscratch.commands.common import UsageError, check_output_path, load_classifier


def test_check_output_path_returns_the_path_and_leaves_no_file(tmp_path):
    assert check_output_path("--out", tmp_path / "a.png") == tmp_path / "a.png"
    assert list(tmp_path.iterdir()) == []


def test_check_output_path_refuses_a_directory_and_a_missing_directory(tmp_path):
    with pytest.raises(UsageError, match=re.escape(f"--save {tmp_path}: is a directory, expected a file path")):
        check_output_path("--save", tmp_path)
    missing = tmp_path / "no" / "m.npz"
    with pytest.raises(UsageError, match=re.escape(f"--save {missing}: the directory {missing.parent} does not exist")):
        check_output_path("--save", missing)


def test_check_output_path_names_why_the_directory_cannot_be_written(tmp_path, monkeypatch):
    def refuse(**kwargs):
        raise OSError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", refuse)
    with pytest.raises(UsageError, match=re.escape(f"--out {tmp_path / 'r.png'}: cannot write in {tmp_path} "
                                                   "(Permission denied)")):
        check_output_path("--out", tmp_path / "r.png")


def test_load_classifier_drops_the_loss_and_finds_the_digit_shape(tmp_path):
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 10, rng=0), nn.SoftmaxCrossEntropy(), nn.Mean())
    nn.save(net, tmp_path / "m.npz")
    checkpoint, model, shape = load_classifier(tmp_path / "m.npz")
    assert [type(layer) for layer in model] == [nn.Flatten, nn.Linear]
    assert [type(layer) for layer in checkpoint.model] == [nn.Flatten, nn.Linear, nn.SoftmaxCrossEntropy, nn.Mean]
    np.testing.assert_array_equal(model[1].weight, net[1].weight)
    assert shape == (1, 28, 28)


def test_load_classifier_turns_every_unusable_checkpoint_into_one_line(tmp_path):
    with pytest.raises(UsageError, match=re.escape(f"{tmp_path / 'missing.npz'}: no such checkpoint")):
        load_classifier(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(UsageError) as error:
        load_classifier(tmp_path / "junk.npz")
    assert str(error.value).startswith(f"{tmp_path / 'junk.npz'}: not a readable nnscratch checkpoint")
    assert str(error.value).count(str(tmp_path / "junk.npz")) == 1  # the path is not repeated in front
    nn.save(nn.Sequential(nn.Linear(5, 3, rng=0)), tmp_path / "five.npz")
    with pytest.raises(UsageError) as error:
        load_classifier(tmp_path / "five.npz")
    assert str(error.value).startswith(f"{tmp_path / 'five.npz'}: the network does not take a 28x28 digit")
