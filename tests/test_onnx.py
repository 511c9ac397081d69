"""export_onnx: ONNX Runtime's outputs against nn.predict for every layer it converts and for every
train-mnist preset, the dynamic batch axis, the dropped loss, atomic writes, and clear errors."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

import nnscratch as nn
from nnscratch.presets import PRESETS
from nnscratch.onnx import CONVERTERS, OPSET, supported_layers

from interop_cases import (  # tests/ on sys.path
    CASES,
    Scale,
    builtin_inference_layers,
    covered_classes,
    perturb,
    sample_input,
)

# The tests that run ONNX Runtime take this fixture and carry the onnx marker.
@pytest.fixture(scope="module")
def ort():
    pytest.importorskip("onnx")
    return pytest.importorskip("onnxruntime")


def run_exported(ort, path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (output,) = session.run(["output"], {"input": x})
    return output


def assert_float32_close(actual, expected):
    """Equal to float32 rounding: a few units in the last place of the largest value."""
    assert actual.shape == expected.shape and actual.dtype == np.float32
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6 * scale)


# -- the same numbers as nnscratch ------------------------------------------------------------------
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


def test_every_converted_layer_has_a_case():
    assert set(CONVERTERS) <= covered_classes()


def test_every_built_in_layer_has_an_onnx_converter():
    missing = sorted(cls.__name__ for cls in builtin_inference_layers() - set(CONVERTERS))
    assert not missing, (f"export_onnx has no converter for {', '.join(missing)}: add one to nnscratch/onnx.py "
                         "(and a case to tests/interop_cases.py)")


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


# -- what the file holds ---------------------------------------------------------------------------
@pytest.mark.onnx
def test_graph_has_a_named_dynamic_batch_axis_opset_17_and_float32(ort, tmp_path):
    import onnx

    model = nn.Sequential(nn.Conv2D(1, 2, 3, rng=0), nn.Flatten(), nn.Linear(2 * 26 * 26, 10, rng=0),
                          nn.SoftmaxCrossEntropy(), nn.Mean())
    proto = nn.export_onnx(model, tmp_path / "m.onnx", (1, 28, 28))
    stored = onnx.load(str(tmp_path / "m.onnx"))
    assert stored.SerializeToString() == proto.SerializeToString()  # returns what it wrote
    assert OPSET == 17 and [(o.domain, o.version) for o in stored.opset_import] == [("", 17)]
    assert stored.producer_name == "nnscratch" and stored.producer_version == nn.__version__

    def dims(value):
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    (graph_input,), (graph_output,) = stored.graph.input, stored.graph.output
    assert (graph_input.name, dims(graph_input)) == ("input", ["N", 1, 28, 28])
    assert (graph_output.name, dims(graph_output)) == ("output", ["N", 10])
    float32 = onnx.TensorProto.FLOAT
    assert graph_input.type.tensor_type.elem_type == float32 == graph_output.type.tensor_type.elem_type
    assert all(init.data_type == float32 for init in stored.graph.initializer)
    assert [node.op_type for node in stored.graph.node] == ["Conv", "Flatten", "Gemm"]
    onnx.checker.check_model(stored, full_check=True)


@pytest.mark.onnx
def test_input_shape_may_be_a_list_or_an_int(ort, tmp_path):
    model = nn.Sequential(nn.Linear(4, 2, rng=0))
    nn.export_onnx(model, tmp_path / "a.onnx", [4])
    nn.export_onnx(model, tmp_path / "b.onnx", 4)
    assert (tmp_path / "a.onnx").read_bytes() == (tmp_path / "b.onnx").read_bytes()


@pytest.mark.onnx
def test_a_single_layer_exports_as_well_as_a_sequential(ort, tmp_path):
    layer = perturb(nn.Sequential(nn.Linear(3, 2, rng=0))).layers[0]
    nn.export_onnx(layer, tmp_path / "m.onnx", (3,))
    x = sample_input((3,), 5)
    assert_float32_close(run_exported(ort, tmp_path / "m.onnx", x), layer.forward(x))


@pytest.mark.onnx
def test_overwrites_atomically_and_leaves_nothing_behind_on_error(ort, tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"previous")

    class Custom:
        parameters, parameters_deltas = [], []

        def forward(self, x, *args):
            return x

        def backward(self, delta):
            return delta

        def output_shape(self, shape):
            return shape

    with pytest.raises(TypeError):
        nn.export_onnx(nn.Sequential(nn.Linear(3, 2, rng=0), Custom()), path, (3,))
    assert path.read_bytes() == b"previous"
    nn.export_onnx(nn.Sequential(nn.Linear(3, 2, rng=0)), path, (3,))
    assert path.read_bytes()[:8] != b"previous"
    assert os.listdir(tmp_path) == ["m.onnx"]  # no temporary file left


# -- clear errors ----------------------------------------------------------------------------------
@pytest.mark.onnx
def test_a_layer_without_an_onnx_form_is_named_with_where_it_sits(ort, tmp_path):
    model = nn.Sequential(nn.Linear(3, 4, rng=0), nn.Sequential(nn.ReLU(), Scale()), nn.Linear(4, 2, rng=0))
    with pytest.raises(TypeError, match=r"export_onnx: model\[1\]\[1\] is a Scale, which has no ONNX form") as info:
        nn.export_onnx(model, tmp_path / "m.onnx", (3,))
    assert all(name in str(info.value) for name in supported_layers())
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.onnx
def test_a_loss_in_the_middle_is_refused(ort, tmp_path):
    model = nn.Sequential(nn.Linear(3, 4, rng=0), nn.Softmax(), nn.CrossEntropy(), nn.Sigmoid())
    with pytest.raises(TypeError, match=r"model\[2\] is a CrossEntropy, a loss in the middle of the model; export_onnx drops the "
                       r"losses at the end of a training network only"):
        nn.export_onnx(model, tmp_path / "m.onnx", (3,))


@pytest.mark.onnx
def test_a_model_of_only_a_loss_is_refused(ort, tmp_path):
    with pytest.raises(ValueError, match="no layers besides its loss"):
        nn.export_onnx(nn.Sequential(nn.SoftmaxCrossEntropy(), nn.Mean()), tmp_path / "m.onnx", (3,))


@pytest.mark.onnx
@pytest.mark.parametrize("shape", [(), (0, 3), (2.5,), "784", (True,), None, (-1,)])
def test_bad_input_shape(ort, tmp_path, shape):
    with pytest.raises(ValueError, match=r"input_shape must be one sample's shape as positive ints"):
        nn.export_onnx(nn.Sequential(nn.Linear(3, 2, rng=0)), tmp_path / "m.onnx", shape)


@pytest.mark.onnx
def test_input_shape_the_model_does_not_take(ort, tmp_path):
    with pytest.raises(ValueError, match=r"does not take samples of shape \(5,\) .*Linear: expected 3 input features"):
        nn.export_onnx(nn.Sequential(nn.Linear(3, 2, rng=0)), tmp_path / "m.onnx", (5,))
    with pytest.raises(ValueError, match=r"does not take samples of shape \(28, 28\) .*Conv2D: expected a 4-D input"):
        nn.export_onnx(nn.Sequential(nn.Conv2D(1, 2, 3, rng=0)), tmp_path / "m.onnx", (28, 28))  # no channel axis


def test_without_the_onnx_package_the_message_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'nnscratch\[onnx\]'"):
        nn.export_onnx(nn.Sequential(nn.Linear(3, 2, rng=0)), tmp_path / "m.onnx", (3,))
    assert not (tmp_path / "m.onnx").exists()
