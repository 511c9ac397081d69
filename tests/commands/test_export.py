"""``nnscratch export``: the input shape from --input-shape, the train-mnist preset or a first Linear;
ONNX Runtime agreeing with the checkpoint's model; one line and the right exit status on every error."""

from __future__ import annotations

import os

import numpy as np
import pytest

import nnscratch as nn
from nnscratch import cli
from nnscratch.presets import PRESETS

from helpers.interop_cases import perturb


def train_mnist_checkpoint(path, preset: str):
    """A checkpoint as train-mnist --save writes it: the whole network, the preset in the metadata."""
    net = perturb(PRESETS[preset].build(rng=0), seed=2)
    for p in net.parameters:
        p *= 0.1
    nn.save(net, path, metadata={"train_mnist": {"config": {"model": preset}, "history": []}})
    return net


@pytest.mark.onnx
@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_a_train_mnist_checkpoint_exports_without_input_shape(preset, tmp_path, capsys):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    net = train_mnist_checkpoint(tmp_path / "net.npz", preset)
    assert cli.main(["export", str(tmp_path / "net.npz"), str(tmp_path / "net.onnx")]) == 0
    out, err = capsys.readouterr()
    shape = ", ".join(map(str, PRESETS[preset].input_shape))
    assert out == f"wrote {tmp_path / 'net.onnx'}: input (N, {shape}) -> output (N, 10), ONNX opset 17, float32\n"
    assert err == ""
    x = np.random.default_rng(0).random((6, *PRESETS[preset].input_shape), dtype=np.float32)
    (got,) = ort.InferenceSession(str(tmp_path / "net.onnx")).run(None, {"input": x})
    np.testing.assert_allclose(got, nn.predict(net[:-2], x), rtol=1e-5, atol=1e-6)


@pytest.mark.onnx
def test_input_shape_from_the_option_or_a_first_linear(tmp_path, capsys):
    pytest.importorskip("onnx")
    nn.save(nn.Sequential(nn.Sequential(nn.Linear(7, 3, rng=0)), nn.ReLU()), tmp_path / "mlp.npz")
    assert cli.main(["export", str(tmp_path / "mlp.npz"), str(tmp_path / "mlp.onnx")]) == 0
    assert "input (N, 7) -> output (N, 3)" in capsys.readouterr().out
    nn.save(nn.Sequential(nn.Conv2D(3, 2, 3, rng=0), nn.Flatten()), tmp_path / "cnn.npz")
    assert cli.main(["export", str(tmp_path / "cnn.npz"), str(tmp_path / "cnn.onnx"), "--input-shape", "3, 5,6"]) == 0
    assert "input (N, 3, 5, 6) -> output (N, 24)" in capsys.readouterr().out


def test_a_shape_it_cannot_tell_exits_2_asking_for_input_shape(tmp_path, capsys):
    nn.save(nn.Sequential(nn.Conv2D(3, 2, 3, rng=0)), tmp_path / "cnn.npz")
    assert cli.main(["export", str(tmp_path / "cnn.npz"), str(tmp_path / "cnn.onnx")]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert err.startswith("nnscratch export: error: cannot tell the input shape of ")
    assert "pass --input-shape, e.g. 1,28,28" in err
    assert not (tmp_path / "cnn.onnx").exists()


@pytest.mark.parametrize("text", ["", "1,x", "0,28", "-1", "1,,2"])
def test_a_bad_input_shape_exits_2(tmp_path, capsys, text):
    assert cli.main(["export", str(tmp_path / "any.npz"), str(tmp_path / "m.onnx"), "--input-shape", text]) == 2
    err = capsys.readouterr().err
    assert err == (f"nnscratch export: error: --input-shape: expected positive ints separated by commas, "
                   f"like 1,28,28; got {text!r}\n")


def test_a_missing_or_broken_checkpoint_exits_2_in_one_line(tmp_path, capsys):
    assert cli.main(["export", str(tmp_path / "missing.npz"), str(tmp_path / "m.onnx")]) == 2
    assert capsys.readouterr().err == f"nnscratch export: error: {tmp_path / 'missing.npz'}: no such checkpoint\n"
    (tmp_path / "junk.npz").write_bytes(b"not a checkpoint")
    assert cli.main(["export", str(tmp_path / "junk.npz"), str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nnscratch export: error: ") and "not a readable nnscratch checkpoint" in err
    assert err.count("\n") == 1
    assert sorted(os.listdir(tmp_path)) == ["junk.npz"]  # nothing written


@pytest.mark.parametrize("value, count, values_are", [(np.nan, 3, "3 weight values in 1 of its 6 parameter arrays are"),
                                                       (np.inf, 1, "1 weight value in 1 of its 6 parameter arrays is")])
def test_a_checkpoint_with_non_finite_weights_is_not_exported(tmp_path, capsys, value, count, values_are):
    net = train_mnist_checkpoint(tmp_path / "net.npz", "mlp")
    net.parameters[2][1, :count] = value  # a diverged run's weights: a model that computes nothing
    nn.save(net, tmp_path / "net.npz")
    assert cli.main(["export", str(tmp_path / "net.npz"), str(tmp_path / "net.onnx")]) == 2
    assert capsys.readouterr().err == (
        f"nnscratch export: error: {tmp_path / 'net.npz'}: {values_are} NaN or infinite (did the training diverge?): "
        "an ONNX file of it would compute nothing meaningful\n")
    assert sorted(os.listdir(tmp_path)) == ["net.npz"]


def test_an_out_that_cannot_be_written_exits_2_before_reading_the_checkpoint(tmp_path, capsys):
    out = tmp_path / "no" / "dir" / "m.onnx"
    assert cli.main(["export", str(tmp_path / "missing.npz"), str(out)]) == 2
    assert capsys.readouterr().err == (
        f"nnscratch export: error: OUT {out}: the directory {out.parent} does not exist\n")
    assert cli.main(["export", str(tmp_path / "missing.npz"), str(tmp_path)]) == 2
    assert "is a directory, expected a file path" in capsys.readouterr().err


@pytest.mark.onnx
def test_an_input_shape_the_model_does_not_take_exits_1(tmp_path, capsys):
    pytest.importorskip("onnx")
    nn.save(nn.Sequential(nn.Linear(7, 3, rng=0)), tmp_path / "mlp.npz")
    assert cli.main(["export", str(tmp_path / "mlp.npz"), str(tmp_path / "m.onnx"), "--input-shape", "8"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("nnscratch export: export_onnx: the model does not take samples of shape (8,)")
    assert not (tmp_path / "m.onnx").exists()


def test_without_onnx_the_message_names_the_extra(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "onnx", None)
    nn.save(nn.Sequential(nn.Linear(7, 3, rng=0)), tmp_path / "mlp.npz")
    assert cli.main(["export", str(tmp_path / "mlp.npz"), str(tmp_path / "m.onnx")]) == 1
    assert capsys.readouterr().err == (
        "nnscratch export: export_onnx needs the onnx package, an optional extra: pip install 'nnscratch[onnx]'\n"
    )


@pytest.mark.onnx
def test_a_train_text_checkpoint_exports_its_context_without_input_shape(tmp_path, capsys):
    # a text model's sample is its context of ids; export asked for --input-shape "e.g. 1,28,28"
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    (tmp_path / "t.txt").write_text("to be or not to be, that is the question\n" * 20)
    assert cli.train_text_main([str(tmp_path / "t.txt"), "--model", "lstm", "--iters", "1", "--block-size", "12",
                                "--batch-size", "2", "--threads", "1", "--quiet", "--save", str(tmp_path / "t.npz")]) == 0
    capsys.readouterr()
    assert cli.main(["export", str(tmp_path / "t.npz"), str(tmp_path / "t.onnx")]) == 0
    out, err = capsys.readouterr()
    assert out == f"wrote {tmp_path / 't.onnx'}: input (N, 12) -> output (N, 12, 15), ONNX opset 17, float32\n"
    assert err == ""
    ids = np.random.default_rng(0).integers(0, 15, (3, 12))  # 15 distinct characters
    (got,) = ort.InferenceSession(str(tmp_path / "t.onnx")).run(None, {"input": ids})
    np.testing.assert_allclose(got, nn.predict(nn.load(tmp_path / "t.npz")[:-2], ids), rtol=1e-5, atol=1e-5)
