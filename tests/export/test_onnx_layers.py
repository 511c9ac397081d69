"""export_onnx layer by layer: ONNX Runtime's outputs against nn.predict for every layer class in
CONVERTERS (onnx_layers.py: every case of interop_cases, which test_common.py checks covers them all)
and for every train-mnist preset, in float32 and from float64 weights."""

from __future__ import annotations

import numpy as np
import pytest

import nnscratch as nn
from nnscratch.presets import PRESETS

from helpers.interop_cases import CASES, perturb, sample_input
from helpers.interop_checks import assert_float32_close, run_exported


@pytest.mark.onnx
@pytest.mark.parametrize("case", sorted(CASES))
def test_onnx_runtime_matches_predict_for_every_layer(ort, case, tmp_path):
    build, input_shape = CASES[case]
    model = build()
    path = tmp_path / "model.onnx"
    nn.export_onnx(model, path, input_shape)
    for batch in (1, 3, 8):  # one file, several batch sizes: the batch axis is dynamic
        x = sample_input(input_shape, batch, seed=batch)
        assert_float32_close(run_exported(ort, path, x), nn.predict(model, x))


@pytest.mark.onnx
@pytest.mark.parametrize("name", sorted(PRESETS))
def test_onnx_runtime_matches_predict_for_each_train_mnist_preset(ort, name, tmp_path):
    preset = PRESETS[name]
    net = perturb(preset.build(rng=0), seed=3)
    for p in net.parameters:
        p *= 0.2  # keep the deep presets' scores in a realistic range
    path = tmp_path / f"{name}.onnx"
    nn.export_onnx(net, path, preset.input_shape)  # the whole training network: the loss is dropped
    x = np.random.default_rng(4).random((17, *preset.input_shape), dtype=np.float32)  # pixels in [0, 1]
    expected = nn.predict(net[:-2], x)
    got = run_exported(ort, path, x)
    assert_float32_close(got, expected)
    assert got.shape == (17, 10)
    assert (got.argmax(axis=1) == expected.argmax(axis=1)).all()
    if name == "softmax":  # Linear -> Softmax -> (CrossEntropy, Mean): probabilities
        np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.onnx
def test_a_model_in_training_mode_exports_its_inference_form(ort, tmp_path):
    model = CASES["BatchNorm2D"][0]()  # Conv2D -> BatchNorm2D -> ReLU, in training mode
    model.layers.insert(1, nn.Dropout(0.5, rng=0))
    nn.export_onnx(model, tmp_path / "m.onnx", (2, 5, 4))
    assert model.training  # left as it was
    x = sample_input((2, 5, 4), 6)
    got = run_exported(ort, tmp_path / "m.onnx", x)
    assert_float32_close(got, nn.predict(model, x))  # running statistics, no dropout
    assert not np.allclose(got, model.forward(x), atol=1e-3)  # not the batch statistics and masks


@pytest.mark.onnx
def test_float64_weights_are_exported_as_float32(ort, tmp_path):
    build, input_shape = CASES["nested-Sequential"]
    model = build(np.float64)
    nn.export_onnx(model, tmp_path / "m.onnx", input_shape)
    x = sample_input(input_shape, 4)
    expected = nn.predict(model, x.astype(np.float64)).astype(np.float32)
    assert_float32_close(run_exported(ort, tmp_path / "m.onnx", x), expected)
