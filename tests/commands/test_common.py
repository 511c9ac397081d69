"""nnscratch/commands/common.py: the output-path check and the checkpoint loading predict, report,
export and train-mnist share (each command's tests check them again through its own options)."""

import errno
import os
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


# -- outputs against inputs ----------------------------------------------------------------------
def test_same_file_sees_every_spelling_of_one_file(tmp_path, monkeypatch):
    from nnscratch.commands.common import same_file

    (tmp_path / "f").write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    os.symlink(tmp_path / "f", tmp_path / "link")
    os.link(tmp_path / "f", tmp_path / "hard")
    monkeypatch.chdir(tmp_path / "sub")
    for other in ("../f", tmp_path / "sub" / ".." / "f", tmp_path / "link", tmp_path / "hard"):
        assert same_file(tmp_path / "f", other)
    assert same_file(tmp_path / "new", "../new")  # neither exists yet: the resolved paths tell
    assert not same_file(tmp_path / "f", tmp_path / "g") and not same_file(tmp_path / "f", tmp_path / "new")
    (tmp_path / "copy").write_bytes(b"x")
    assert not same_file(tmp_path / "f", tmp_path / "copy")  # equal content is not the same file


def test_check_outputs_checks_each_output_and_skips_those_not_given(tmp_path):
    from nnscratch.commands.common import check_outputs

    (tmp_path / "ck.npz").write_bytes(b"x")
    given = check_outputs([("--save", tmp_path / "a"), ("--plot", None), ("--metrics", str(tmp_path / "b"))],
                          [("the checkpoint", tmp_path / "ck.npz")])
    assert given == {"--save": tmp_path / "a", "--metrics": tmp_path / "b"}
    with pytest.raises(UsageError, match=re.escape(f"the checkpoint {tmp_path / 'ck.npz'} and --out "
                                                   f"{tmp_path / 'ck.npz'} name the same file")):
        check_outputs([("--out", tmp_path / "ck.npz")], [("the checkpoint", tmp_path / "ck.npz")])
    with pytest.raises(UsageError, match=re.escape(f"--out {tmp_path / 'ck.npz'}/x: the directory")):
        check_outputs([("--out", tmp_path / "ck.npz" / "x")])


def test_shown_makes_undecodable_file_names_printable():
    from nnscratch.commands.common import shown

    name = os.fsdecode(b"caf\xe9-\xff.png")  # not UTF-8: Python keeps the bytes as surrogates
    assert shown(name) == "caf\\xe9-\\xff.png" and shown(name).encode("utf-8")
    assert shown("café.png") == "café.png" and shown(b"x/\xe9") == "x/\\xe9"


def test_run_command_turns_usage_errors_and_ctrl_c_into_one_line(capsys):
    from nnscratch.commands.common import run_command

    def interrupted(args):
        raise KeyboardInterrupt

    def bad(args):
        raise UsageError("--top must be >= 1, got 0")

    assert run_command("predict", lambda args: 0 if args == "ok" else 1, "ok") == 0
    assert run_command("predict", interrupted, None) == 130
    assert run_command("nnscratch export", bad, None) == 2
    assert capsys.readouterr().err == "predict: interrupted\nnnscratch export: error: --top must be >= 1, got 0\n"


def test_ctrl_c_while_predict_reads_its_images_is_one_line(tmp_path, capsys, monkeypatch):
    from nnscratch.cli import main
    from nnscratch.data import digit_files

    def interrupt(path):
        raise KeyboardInterrupt

    nn.save(nn.Sequential(nn.Linear(784, 10, rng=0)), tmp_path / "m.npz")
    np.save(tmp_path / "x.npy", np.zeros((28, 28), dtype=np.uint8))
    monkeypatch.setattr(digit_files, "read_digit", interrupt)
    assert main(["predict", str(tmp_path / "m.npz"), str(tmp_path / "x.npy")]) == 130
    assert capsys.readouterr() == ("", "predict: interrupted\n")
