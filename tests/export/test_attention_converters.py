"""The converters of MultiHeadAttention and TransformerBlock beyond the shared cases of
helpers/interop_cases.py: PyTorch twins built by hand read back by from_torch, the key padding mask
through the twin, the round trip's classes, and what from_torch and to_torch refuse."""

from __future__ import annotations

import numpy as np
import pytest

import nnscratch as nn
from nnscratch.export import torch_modules

from helpers.interop_checks import assert_same_function

pytestmark = pytest.mark.torch


def _perturbed(torch, module, seed=0):
    """Every parameter of ``module`` drawn from N(0, 0.4^2) (biases and LayerNorm weights included)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=generator, dtype=p.dtype) * 0.4)
    return module


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_twins_built_in_pytorch_come_back_as_the_same_function(torch, dtype):
    twins = torch_modules(torch)
    module = _perturbed(torch, torch.nn.Sequential(
        twins.MultiHeadAttention(6, 3, causal=False, bias=False),
        twins.TransformerBlock(6, 2, hidden=9, causal=True),  # mlp_ratio 1.5
        twins.TransformerBlock(6, 6, hidden=12, dropout=0.25, causal=False)).to(getattr(torch, dtype)).eval())
    model = nn.from_torch(module)
    assert [type(layer) for layer in model] == [nn.MultiHeadAttention, nn.TransformerBlock, nn.TransformerBlock]
    assert model[1].config() == {"dim": 6, "num_heads": 2, "mlp_ratio": 1.5, "dropout": 0.0, "causal": True,
                                 "dtype": dtype}
    assert model[2].config()["mlp_ratio"] == 2 and model[2].dropout == 0.25 and not model[2].training
    assert all(p.dtype == np.dtype(dtype) for p in model.parameters)
    assert_same_function(torch, model, module, (5, 6), np.dtype(dtype).type)


def test_the_twin_takes_the_key_padding_mask_as_the_layer_does(torch):
    layer = nn.MultiHeadAttention(8, 2, causal=True, dtype=np.float64, rng=0)
    for p in layer.parameters:
        p += np.random.default_rng(1).normal(0.0, 0.3, p.shape)
    twin = nn.to_torch(layer)[0]
    assert type(twin) is torch_modules(torch).MultiHeadAttention and twin.causal
    x = np.random.default_rng(2).standard_normal((3, 5, 8))
    mask = np.array([[False] * 5, [True, True, False, False, True], [True] * 5])
    with torch.no_grad():
        theirs = twin(torch.from_numpy(x), key_padding_mask=torch.from_numpy(mask)).numpy()
    np.testing.assert_allclose(layer.forward(x, key_padding_mask=mask), theirs, rtol=1e-10, atol=1e-12)


def test_a_round_trip_keeps_the_classes_config_and_modes(torch):
    model = nn.Sequential(nn.TransformerBlock(8, 2, dropout=0.1, rng=0), nn.reference.MultiHeadAttention(8, 4, rng=1))
    model[0][1][4].eval()  # the MLP's Dropout alone in eval mode
    back = nn.from_torch(nn.to_torch(model))
    assert [type(layer) for layer in back] == [nn.TransformerBlock, nn.MultiHeadAttention]  # the twin: the fast layer
    assert back[0].config() == model[0].config() and back[1].config() == model[1].config()
    assert [layer.training for layer in back[0][1]] == [True, True, True, True, False]
    for a, b in zip(back.parameters, model.parameters):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("change, message", [
    (lambda m: setattr(m.attention, "batch_first", False), r"has batch_first=False"),
    (lambda m: setattr(m, "attention", __import__("torch").nn.MultiheadAttention(4, 2, kdim=3, batch_first=True)),
     r"has kdim and vdim=\(3, 4\); nnscratch's attention is self-attention"),
    (lambda m: setattr(m, "attention", __import__("torch").nn.MultiheadAttention(4, 2, add_bias_kv=True,
                                                                                 batch_first=True)),
     r"has add_bias_kv=True"),
    (lambda m: setattr(m, "attention", __import__("torch").nn.MultiheadAttention(4, 2, add_zero_attn=True,
                                                                                 batch_first=True)),
     r"has add_zero_attn=True"),
])  # fmt: skip
def test_from_torch_refuses_attention_settings_the_layer_lacks(torch, change, message):
    module = torch_modules(torch).MultiHeadAttention(4, 2)
    change(module)
    with pytest.raises(ValueError, match=rf"^from_torch: module\[0\]\.attention \(MultiheadAttention\) {message}"):
        nn.from_torch(torch.nn.Sequential(module))


@pytest.mark.parametrize("change, message", [
    (lambda m: setattr(m.ln_2, "eps", 1e-6), r"has ln_1 and ln_2 \(elementwise_affine, eps\)=.*1e-06"),
    (lambda m: setattr(m.mlp[3], "p", 0.5), r"has attn_dropout.p and mlp\[3\].p=\(0.0, 0.5\)"),
    (lambda m: setattr(m.mlp[1], "approximate", "none"), r"mlp\[1\] \(GELU\) has approximate='none'"),
    (lambda m: setattr(m, "attn", torch_modules(__import__("torch")).MultiHeadAttention(4, 2, bias=False)),
     r"has attn bias=False"),
])  # fmt: skip
def test_from_torch_refuses_a_block_the_layer_cannot_be(torch, change, message):
    module = torch_modules(torch).TransformerBlock(4, 2, hidden=8)
    change(module)
    with pytest.raises(ValueError, match=rf"^from_torch: module\[0\].*{message}"):
        nn.from_torch(torch.nn.Sequential(module))


def test_to_torch_refuses_a_block_whose_layers_were_changed(torch):
    block = nn.TransformerBlock(4, 2, rng=0)
    block[1].layers[2] = nn.ReLU()
    with pytest.raises(TypeError, match=r"TransformerBlock: its layers were changed from LayerNorm, MultiHeadAttention "
                                        r"and LayerNorm, Linear, GELU, Linear; got .*'ReLU'"):
        nn.to_torch(block)


def test_a_bare_multihead_attention_converts_as_non_causal_self_attention(torch):
    # PyTorch's own module, as nn.LSTM's is taken bare; it was "no nnscratch layer here"
    module = _perturbed(torch, torch.nn.MultiheadAttention(6, 3, batch_first=True, dtype=torch.float64)).eval()
    (layer,) = nn.from_torch(module)  # a Sequential of one, as every module comes back
    assert type(layer) is nn.MultiHeadAttention and not layer.causal and not layer.training
    x = np.random.default_rng(3).standard_normal((2, 5, 6))
    mask = np.array([[False] * 5, [False, True, False, True, True]])
    with torch.no_grad():
        t = torch.from_numpy(x)
        theirs = module(t, t, t, key_padding_mask=torch.from_numpy(mask), need_weights=False)[0].numpy()
    np.testing.assert_allclose(layer.forward(x, key_padding_mask=mask), theirs, rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match=r"^from_torch: module \(MultiheadAttention\) has batch_first=False"):
        nn.from_torch(torch.nn.MultiheadAttention(6, 3))
