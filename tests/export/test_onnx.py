"""export_onnx and build_onnx: what the file holds (opset, names, the dynamic batch axis, float32),
the dropped loss, atomic writes, and clear errors, a loss in the middle refused before any shape."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

import nnscratch as nn
from nnscratch.export import OPSET, build_onnx, supported_layers

from helpers.interop_cases import Scale, perturb, sample_input
from helpers.interop_checks import assert_float32_close, run_exported


# -- what the file holds ---------------------------------------------------------------------------
@pytest.mark.onnx
def test_graph_has_a_named_dynamic_batch_axis_opset_17_and_float32(ort, tmp_path):
    import onnx

    model = nn.Sequential(nn.Conv2D(1, 2, 3, rng=0), nn.Flatten(), nn.Linear(2 * 26 * 26, 10, rng=0),
                          nn.SoftmaxCrossEntropy(), nn.Mean())
    proto = nn.export_onnx(model, tmp_path / "m.onnx", (1, 28, 28))
    stored = onnx.load(str(tmp_path / "m.onnx"))
    assert stored.SerializeToString() == proto.SerializeToString()  # returns what it wrote
    assert build_onnx(model, (1, 28, 28)).SerializeToString() == proto.SerializeToString()
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
def test_the_loss_at_the_end_of_a_nested_block_is_dropped_too(ort, tmp_path):
    linear = perturb(nn.Sequential(nn.Linear(3, 4, rng=0))).layers[0]
    net = nn.Sequential(nn.Sequential(linear, nn.Tanh(), nn.SoftmaxCrossEntropy(), nn.Mean()))
    proto = nn.export_onnx(net, tmp_path / "m.onnx", (3,))
    assert [node.op_type for node in proto.graph.node] == ["Gemm", "Tanh"]
    x = sample_input((3,), 5)
    assert_float32_close(run_exported(ort, tmp_path / "m.onnx", x), np.tanh(linear.forward(x)))


@pytest.mark.onnx
def test_overwrites_atomically_and_leaves_nothing_behind_on_error(ort, tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"previous")

    with pytest.raises(TypeError):
        nn.export_onnx(nn.Sequential(nn.Linear(3, 2, rng=0), Scale()), path, (3,))
    assert path.read_bytes() == b"previous"
    nn.export_onnx(nn.Sequential(nn.Linear(3, 2, rng=0)), path, (3,))
    assert path.read_bytes()[:8] != b"previous"
    assert os.listdir(tmp_path) == ["m.onnx"]  # no temporary file left


# -- clear errors ----------------------------------------------------------------------------------
@pytest.mark.onnx
def test_a_layer_without_an_onnx_form_is_named_with_where_it_sits(ort, tmp_path):
    model = nn.Sequential(nn.Linear(3, 4, rng=0), nn.Sequential(nn.ReLU(), Scale()), nn.Linear(4, 2, rng=0))
    with pytest.raises(TypeError, match=r"^export_onnx: model\[1\]\[1\] is a Scale, which has no ONNX form here; "
                       r"export_onnx converts AvgPool2D, .*Residual, Sequential, .*reference.MultiHeadAttention and reference.RNN "
                       r"\(and drops the losses at the end of a training network\)$") as info:
        nn.export_onnx(model, tmp_path / "m.onnx", (3,))
    assert all(name in str(info.value) for name in supported_layers())
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.onnx
@pytest.mark.parametrize("model, where, loss", [
    (lambda: nn.Sequential(nn.Linear(3, 4, rng=0), nn.Softmax(), nn.CrossEntropy(), nn.Sigmoid()), r"model\[2\]",
     "CrossEntropy"),
    # each of these fails the shape check too (a loss's output is per sample, or a scalar): the loss
    # must be named first, not the shape the next layer refuses
    (lambda: nn.Sequential(nn.Linear(3, 4, rng=0), nn.Mean(), nn.Linear(4, 2, rng=0)), r"model\[1\]", "Mean"),
    (lambda: nn.Sequential(nn.Linear(3, 4, rng=0), nn.SoftmaxCrossEntropy(), nn.Linear(4, 2, rng=0)), r"model\[1\]",
     "SoftmaxCrossEntropy"),
    (lambda: nn.Sequential(nn.Linear(3, 4, rng=0), nn.Sequential(nn.SoftmaxCrossEntropy(), nn.Mean()),
                           nn.Linear(4, 2, rng=0)), r"model\[1\]\[0\]", "SoftmaxCrossEntropy"),
    (lambda: nn.Sequential(nn.Linear(3, 4, rng=0), nn.Residual(nn.Linear(4, 4, rng=0), nn.Mean())),
     r"model\[1\]\[1\]", "Mean"),
])  # fmt: skip
def test_a_loss_in_the_middle_is_named_before_any_shape_is_checked(ort, tmp_path, model, where, loss):
    with pytest.raises(TypeError, match=rf"^export_onnx: {where} is a {loss}, a loss in the middle of the model; "
                       r"export_onnx drops the losses at the end of a training network only$"):
        nn.export_onnx(model(), tmp_path / "m.onnx", (3,))
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.onnx
@pytest.mark.parametrize("model", [lambda: nn.Sequential(nn.SoftmaxCrossEntropy(), nn.Mean()), lambda: nn.Mean(),
                                   lambda: nn.Sequential(), lambda: nn.Sequential(nn.Sequential(nn.Mean()))])
def test_a_model_of_only_a_loss_is_refused(ort, tmp_path, model):
    with pytest.raises(ValueError, match=r"^export_onnx: the network holds no layers besides its loss layers"):
        nn.export_onnx(model(), tmp_path / "m.onnx", (3,))


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
