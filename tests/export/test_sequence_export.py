"""Embedding and the positional encodings handed over beyond the shared cases of
helpers/interop_cases.py: an ONNX graph that takes int64 ids, modules PyTorch built and initialised
read back by from_torch, the twins' repr, and the settings from_torch refuses."""

from __future__ import annotations

import numpy as np
import pytest

import nnscratch as nn
from nnscratch.export import torch_modules

from helpers.interop_cases import Ids
from helpers.interop_checks import assert_float32_close, assert_same_function, run_exported


def token_front(dtype=np.float32):
    """Embedding (id 0 padding) + learned and fixed positions + LayerNorm: a text model's first layers."""
    model = nn.Sequential(nn.Embedding(11, 6, padding_idx=0, dtype=dtype, rng=0), nn.PositionalEmbedding(9, 6, dtype=dtype,
                          rng=1), nn.SinusoidalPositionalEncoding(6, max_len=9), nn.LayerNorm(6, dtype=dtype))
    model[1].weight *= 10  # positions as large as the embeddings, so a wrong row shows
    return model


@pytest.mark.onnx
def test_onnx_input_is_int64_ids_for_a_model_starting_with_embedding(ort, tmp_path):
    import onnx

    model = token_front()
    proto = nn.export_onnx(model, tmp_path / "m.onnx", (7,))
    (graph_input,) = proto.graph.input
    assert graph_input.type.tensor_type.elem_type == onnx.TensorProto.INT64
    assert [node.op_type for node in proto.graph.node] == ["Gather", "Add", "Add", "LayerNormalization"]
    ids = np.random.default_rng(0).integers(0, 11, (4, 7))
    ids[0, 3:] = 0  # padding
    assert_float32_close(run_exported(ort, tmp_path / "m.onnx", ids), nn.predict(model, ids))
    float_model = nn.export_onnx(nn.Sequential(nn.PositionalEmbedding(9, 6, rng=0)), tmp_path / "f.onnx", (7, 6))
    assert float_model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT


@pytest.mark.onnx
def test_onnx_positions_cover_the_input_length_given(ort, tmp_path):
    model = token_front()
    for length in (1, 9):  # one position, and max_len
        nn.export_onnx(model, tmp_path / "m.onnx", (length,))
        ids = np.random.default_rng(length).integers(0, 11, (3, length))
        assert_float32_close(run_exported(ort, tmp_path / "m.onnx", ids), nn.predict(model, ids))
    with pytest.raises(ValueError, match=r"export_onnx: the model does not take samples of shape \(10,\).*T = 10 "
                                         r"positions, longer than max_len = 9"):
        nn.export_onnx(model, tmp_path / "m.onnx", (10,))


@pytest.mark.torch
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_from_torch_takes_an_embedding_pytorch_built(torch, dtype):
    torch.manual_seed(0)
    twins = torch_modules(torch)
    positions = twins.PositionalEmbedding(8, 5)
    torch.nn.init.normal_(positions.weight, std=0.5)
    module = torch.nn.Sequential(torch.nn.Embedding(13, 5, padding_idx=2), positions,
                                 twins.SinusoidalPositionalEncoding(5, max_len=8), torch.nn.Linear(5, 3))
    module = module.to(getattr(torch, dtype))
    model = nn.from_torch(module)
    assert [type(layer) for layer in model] == [nn.Embedding, nn.PositionalEmbedding, nn.SinusoidalPositionalEncoding,
                                                nn.Linear]
    assert model[0].config() == {"num_embeddings": 13, "embedding_dim": 5, "padding_idx": 2, "dtype": dtype}
    assert model[2].config() == {"dim": 5, "max_len": 8}
    assert not model[0].weight[2].any()  # PyTorch zeroes the padding row too
    ids = np.random.default_rng(1).integers(0, 13, (4, 8))
    with torch.no_grad():
        np.testing.assert_allclose(model.forward(ids), module(torch.from_numpy(ids)).numpy(), rtol=1e-5, atol=1e-6)
    assert_same_function(torch, nn.Sequential(*model.layers[:3]), torch.nn.Sequential(*list(module)[:3]),
                         Ids((8,), 13), np.dtype(dtype).type)


@pytest.mark.torch
def test_the_twins_say_what_they_hold(torch):
    module = nn.to_torch(token_front())
    assert [repr(m) for m in list(module)[:3]] == [
        "Embedding(11, 6, padding_idx=0)", "PositionalEmbedding(max_len=9, dim=6)",
        "SinusoidalPositionalEncoding(dim=6, max_len=9)"]


@pytest.mark.torch
@pytest.mark.parametrize("settings, message", [
    ({"max_norm": 1.0}, r"has max_norm=1.0; nnscratch's Embedding does not renormalise its rows"),
    ({"scale_grad_by_freq": True}, r"has scale_grad_by_freq=True; nnscratch's Embedding sums the gradient"),
    ({"sparse": True}, r"has sparse=True; nnscratch's Embedding has a dense gradient"),
])
def test_from_torch_refuses_embedding_settings_nnscratch_lacks(torch, settings, message):
    module = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Embedding(5, 3, **settings))
    with pytest.raises(ValueError, match=r"^from_torch: module\[1\] \(Embedding\) " + message):
        nn.from_torch(module)
