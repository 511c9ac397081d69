"""RNN, LSTM and GRU handed over: ONNX's RNN, LSTM and GRU ops (gate orders mapped, PyTorch's GRU
reset rule), PyTorch's modules both ways, including modules PyTorch built (several layers, dropout
between them), and what cannot go across. The cases of helpers/interop_cases.py run every layer
through the generic tests of this folder too."""

from __future__ import annotations

import numpy as np
import pytest

import nnscratch as nn
from nnscratch.export import torch_modules

from helpers.interop_checks import assert_float32_close, assert_same_function, run_exported


def _layer(cls, *args, **kwargs):
    layer = cls(*args, rng=0, **kwargs)
    rng = np.random.default_rng(1)
    for p in layer.parameters:  # every gate and both biases distinct: a swapped block shows
        p[...] = rng.normal(0.0, 0.5, p.shape)
    return layer


@pytest.mark.onnx
@pytest.mark.parametrize("cell", ["RNN", "LSTM", "GRU"])
def test_onnx_uses_the_recurrent_op_and_matches_for_any_batch(ort, cell, tmp_path):
    layer = _layer(getattr(nn, cell), 3, 5)
    proto = nn.export_onnx(nn.Sequential(layer), tmp_path / "m.onnx", (8, 3))
    ops = [node.op_type for node in proto.graph.node]
    assert ops == ["Transpose", cell, "Squeeze", "Transpose"]  # one op over the sequence, not a loop
    for batch in (1, 4):
        x = np.random.default_rng(batch).normal(size=(batch, 8, 3)).astype(np.float32)
        assert_float32_close(run_exported(ort, tmp_path / "m.onnx", x), layer.forward(x))


@pytest.mark.onnx
def test_onnx_gru_needs_pytorch_s_reset_rule(ort, tmp_path):
    # With ONNX's default rule (linear_before_reset=0, r applied to h before W_hn) the numbers differ,
    # so the case above pins the attribute down.
    import onnx

    layer = _layer(nn.GRU, 3, 4)
    proto = nn.export_onnx(nn.Sequential(layer), tmp_path / "m.onnx", (6, 3))
    (gru,) = [node for node in proto.graph.node if node.op_type == "GRU"]
    for attribute in gru.attribute:
        if attribute.name == "linear_before_reset":
            attribute.i = 0
    onnx.save(proto, tmp_path / "other.onnx")
    x = np.random.default_rng(0).normal(size=(2, 6, 3)).astype(np.float32)
    assert np.abs(run_exported(ort, tmp_path / "other.onnx", x) - layer.forward(x)).max() > 1e-3


@pytest.mark.torch
def test_to_torch_wraps_the_module_to_give_the_sequence_and_starts_from_zeros(torch):
    layer = _layer(nn.LSTM, 3, 4, stateful=True)
    module = nn.to_torch(layer)
    (wrapper,) = module
    assert isinstance(wrapper, torch_modules(torch).Recurrent) and isinstance(wrapper.module, torch.nn.LSTM)
    assert wrapper.module.batch_first and [name for name, _ in wrapper.named_parameters()] == [
        "module.weight_ih_l0", "module.weight_hh_l0", "module.bias_ih_l0", "module.bias_hh_l0"]
    x = np.random.default_rng(0).normal(size=(2, 5, 3)).astype(np.float32)
    layer.forward(x)  # a carried state does not go across: the twin starts from zeros
    layer.reset_state()
    np.testing.assert_allclose(module(torch.from_numpy(x)).detach().numpy(), layer.forward(x), rtol=1e-5, atol=1e-6)


@pytest.mark.torch
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("cell, kwargs", [("RNN", {"nonlinearity": "relu"}), ("LSTM", {}), ("GRU", {"bias": False})])
def test_from_torch_takes_modules_pytorch_built(torch, dtype, cell, kwargs):
    torch.manual_seed(0)
    module = getattr(torch.nn, cell)(3, 5, batch_first=True, **kwargs).to(getattr(torch, dtype))
    model = nn.from_torch(module)  # a bare module: its output sequence, as nnscratch's layer gives
    assert [type(layer) for layer in model.layers] == [getattr(nn, cell)]
    expected = {"input_size": 3, "hidden_size": 5, "bias": kwargs.get("bias", True), "stateful": False, "dtype": dtype}
    assert model.layers[0].config() == expected | ({"nonlinearity": "relu"} if cell == "RNN" else {})
    assert_same_function(torch, model, torch_modules(torch).Recurrent(module), (6, 3), np.dtype(dtype).type)


@pytest.mark.torch
def test_several_pytorch_layers_become_a_sequential_with_their_dropout(torch):
    torch.manual_seed(1)
    lstm = torch.nn.LSTM(3, 4, num_layers=3, dropout=0.25, batch_first=True)
    module = torch.nn.Sequential(torch_modules(torch).Recurrent(lstm), torch.nn.Linear(4, 2)).double().eval()
    model = nn.from_torch(module)
    stack = model.layers[0]
    assert [type(layer) for layer in stack.layers] == [nn.LSTM, nn.Dropout, nn.LSTM, nn.Dropout, nn.LSTM]
    assert stack.layers[1].p == 0.25 and not any(layer.training for layer in stack.layers)
    assert [layer.input_size for layer in stack.layers[::2]] == [3, 4, 4]
    assert_same_function(torch, model, module, (5, 3), np.float64)


@pytest.mark.torch
@pytest.mark.parametrize("make, message", [
    (lambda tnn: tnn.LSTM(3, 4), r"module \(LSTM\) has batch_first=False; nnscratch's LSTM takes \(N, T, D\) sequences: "
                                 r"build it with batch_first=True"),
    (lambda tnn: tnn.GRU(3, 4, batch_first=True, bidirectional=True),
     r"module \(GRU\) has bidirectional=True; nnscratch's GRU runs one direction: run a second layer on the reversed"),
    (lambda tnn: tnn.LSTM(3, 4, batch_first=True, proj_size=2), r"module \(LSTM\) has proj_size=2; nnscratch's LSTM "
                                                                 r"has no projection"),
    (lambda tnn: tnn.RNN(3, 4, batch_first=True).half(), r"module \(RNN\) has a weight_ih_l0 of dtype float16"),
])
def test_from_torch_refuses_what_the_layers_do_not_do(torch, make, message):
    with pytest.raises(ValueError, match=f"^from_torch: {message}"):
        nn.from_torch(make(torch.nn))
