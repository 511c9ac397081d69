"""What the converters share (nnscratch/export/common.py): the table and its refusals, the walk with
positions, and convertible, which drops the trailing losses and refuses before any work; and every
table against the built-in layers and the cases. Plain Python: these run without onnx and torch."""

from __future__ import annotations

import pytest

import nnscratch as nn
from nnscratch.export.common import (
    CONTAINERS,
    ConverterTable,
    convertible,
    positions,
    refusal,
    spoken_list,
    walk_positions,
)

from nnscratch.export.onnx_layers import CONVERTERS
from nnscratch.export.torch import TO_TORCH

from helpers.interop_cases import Scale, builtin_inference_layers, covered_classes


@pytest.mark.parametrize("table, where", [
    (CONVERTERS, "nnscratch/export/onnx_layers.py"),
    (TO_TORCH, "nnscratch/export/torch.py (and its way back to from_pytorch.py, which the round trip tests)"),
], ids=["export_onnx", "to_torch"])  # fmt: skip
def test_every_built_in_layer_has_a_converter_and_every_converter_a_case(table, where):
    missing = sorted(cls.__name__ for cls in builtin_inference_layers() - set(table))
    assert not missing, (f"{table.tool} has no converter for {', '.join(missing)}: add one to {where}, "
                         "and a case to tests/helpers/interop_cases.py")
    assert set(table) | set(CONTAINERS) <= covered_classes()


def table_of(*classes) -> ConverterTable:
    """A table converting ``classes`` to their names."""
    table = ConverterTable("to_names", "name")
    table.converts(*classes)(lambda layer: type(layer).__name__)
    return table


def test_converts_registers_one_function_for_each_class_and_returns_it_unchanged():
    table = ConverterTable("to_names", "name")

    def convert(layer):
        return "either"

    assert table.converts(nn.ReLU, nn.reference.Conv2D)(convert) is convert
    assert table == {nn.ReLU: convert, nn.reference.Conv2D: convert}
    assert table.find(nn.ReLU(), "model[0]") is convert
    assert table.names() == ["ReLU", "Residual", "Sequential", "reference.Conv2D"]  # the containers opened too
    assert {cls.__name__ for cls in CONTAINERS} == {"Sequential", "Residual"}


def test_find_refuses_a_layer_without_a_converter_naming_it_where_it_sits_and_what_converts():
    table = table_of(nn.Linear, nn.ReLU)
    with pytest.raises(TypeError) as info:
        table.find(Scale(), "model[1][2]")
    assert str(info.value) == (
        "to_names: model[1][2] is a Scale, which has no name here; to_names converts Linear, ReLU, Residual and "
        "Sequential (and drops the losses at the end of a training network)")


def test_find_names_a_loss_in_the_middle_as_such():
    with pytest.raises(TypeError) as info:
        table_of(nn.Linear).find(nn.SoftmaxCrossEntropy(), "model[3]")
    assert str(info.value) == ("to_names: model[3] is a SoftmaxCrossEntropy, a loss in the middle of the model; "
                               "to_names drops the losses at the end of a training network only")


def test_find_takes_the_exact_class_only():
    class MyLinear(nn.Linear):
        """A subclass may compute something else: it needs a converter of its own."""

    with pytest.raises(TypeError, match=r"model is a MyLinear, which has no name here"):
        table_of(nn.Linear).find(MyLinear(2, 2, rng=0), "model")


def test_spoken_list_and_refusal():
    assert spoken_list(["A"]) == "A" and spoken_list(["A", "B"]) == "A and B"
    assert spoken_list(iter(["A", "B", "C"])) == "A, B and C"
    error = refusal("from_x", "module[0]", "x.Conv1d", "nnscratch layer", ["x.A", "x.B"])
    assert isinstance(error, TypeError)
    assert str(error) == ("from_x: module[0] is a x.Conv1d, which has no nnscratch layer here; "
                          "from_x converts x.A and x.B")


def test_walk_positions_opens_sequentials_and_residuals_depth_first():
    conv, relu, linear, tanh, scale = nn.Conv2D(1, 1, 1, rng=0), nn.ReLU(), nn.Linear(2, 2, rng=0), nn.Tanh(), Scale()
    block = nn.Residual(nn.Sequential(linear, tanh), scale)
    model = nn.Sequential(conv, nn.Sequential(relu, block))
    found = [(type(layer).__name__, where) for layer, where in walk_positions(model)]
    assert found == [("Sequential", "model"), ("Conv2D", "model[0]"), ("Sequential", "model[1]"),
                     ("ReLU", "model[1][0]"), ("Residual", "model[1][1]"), ("Sequential", "model[1][1][0]"),
                     ("Linear", "model[1][1][0][0]"), ("Tanh", "model[1][1][0][1]"), ("Scale", "model[1][1][1]")]
    assert positions([relu, block], "m[2]") == [(relu, "m[2][0]"), (block, "m[2][1]")]


def test_walk_positions_does_not_open_a_subclass_of_a_container():
    class MySequential(nn.Sequential):
        pass

    assert [where for _, where in walk_positions(nn.Sequential(MySequential(nn.ReLU())))] == ["model", "model[0]"]


def test_convertible_drops_the_trailing_losses_by_inference_models_rule():
    linear, tanh = nn.Linear(3, 4, rng=0), nn.Tanh()
    net = nn.Sequential(nn.Sequential(linear, tanh, nn.SoftmaxCrossEntropy()), nn.Mean())
    model = convertible(net, table_of(nn.Linear, nn.Tanh))
    assert len(model.layers) == 1 and model.layers[0].layers == [linear, tanh]  # the nesting kept
    bare = nn.Sequential(linear, tanh)
    assert convertible(bare, table_of(nn.Linear, nn.Tanh)) is bare  # nothing to drop


def test_convertible_refuses_the_first_layer_it_cannot_convert_before_any_converter_runs():
    calls = []
    table = ConverterTable("to_names", "name")
    table.converts(nn.Linear, nn.ReLU)(calls.append)
    model = nn.Sequential(nn.Linear(3, 4, rng=0), nn.Residual(nn.ReLU(), nn.Mean()), Scale(), nn.Mean())
    with pytest.raises(TypeError, match=r"^to_names: model\[1\]\[1\] is a Mean, a loss in the middle of the model"):
        convertible(model, table)
    assert calls == []


def test_convertible_refuses_a_network_of_only_losses_naming_the_tool():
    with pytest.raises(ValueError, match=r"^to_names: the network holds no layers besides its loss layers"):
        convertible(nn.Sequential(nn.SoftmaxCrossEntropy(), nn.Mean()), table_of(nn.Linear))
