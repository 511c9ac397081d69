"""The PyTorch side of the converters (nnscratch/export/torch_modules.py): PyTorch imported on demand
with a message saying how to get it, and the small modules twinning the nnscratch layers PyTorch has no
exact twin of, each against what its nnscratch layer computes."""

from __future__ import annotations

import sys

import pytest

import nnscratch as nn
from nnscratch.export import torch_modules
from nnscratch.export.torch_modules import import_torch
from nnscratch.layers.positional import sinusoid_table


@pytest.mark.torch
def test_the_twin_modules_have_the_names_of_the_layers_they_twin(torch):
    twins = torch_modules(torch)
    assert torch_modules(torch) is twins  # made once
    assert twins.GlobalAvgPool2D.__name__ == nn.GlobalAvgPool2D.__name__ == "GlobalAvgPool2D"
    assert twins.Residual.__name__ == nn.Residual.__name__ == "Residual"
    assert twins.GlobalAvgPool2D.__module__ == twins.Residual.__module__ == "nnscratch.export.torch_modules"
    x = torch.arange(24.0).reshape(1, 2, 3, 4)
    torch.testing.assert_close(twins.GlobalAvgPool2D()(x), torch.tensor([[5.5, 17.5]]))
    torch.testing.assert_close(twins.Residual(torch.nn.ReLU())(-x), -x)  # x + relu(x), x <= 0


def test_without_torch_the_message_says_how_to_get_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match=r"need PyTorch, which nnscratch does not install: pip install torch"):
        nn.to_torch(nn.Sequential(nn.Linear(2, 2, rng=0)))
    with pytest.raises(ImportError, match=r"need PyTorch"):
        nn.from_torch(object())


@pytest.mark.torch
def test_import_torch_gives_the_module(torch):
    assert import_torch() is torch


@pytest.mark.torch
def test_the_positions_add_a_row_per_step(torch):
    twins = torch_modules(torch)
    learned = twins.PositionalEmbedding(6, 3, dtype=torch.float64)
    with torch.no_grad():
        learned.weight.copy_(torch.arange(18.0, dtype=torch.float64).reshape(6, 3))
    x = torch.ones(2, 4, 3, dtype=torch.float64)
    torch.testing.assert_close(learned(x), 1 + learned.weight[:4].expand(2, 4, 3))
    assert learned.extra_repr() == "max_len=6, dim=3"
    fixed = twins.SinusoidalPositionalEncoding(4)
    x = torch.zeros(1, 5, 4, dtype=torch.float32)
    torch.testing.assert_close(fixed(x)[0], torch.from_numpy(sinusoid_table(5, 4)).float())
    assert fixed(x).dtype == torch.float32 and list(fixed.parameters()) == []


@pytest.mark.torch
def test_recurrent_gives_the_output_sequence_only(torch):
    twins = torch_modules(torch)
    lstm = torch.nn.LSTM(3, 4, batch_first=True)
    x = torch.randn(2, 5, 3, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(twins.Recurrent(lstm)(x), lstm(x)[0])


@pytest.mark.torch
def test_attention_masks_the_future_when_causal(torch):
    twins = torch_modules(torch)
    torch.manual_seed(0)
    attention = twins.MultiHeadAttention(4, 2, causal=True, dtype=torch.float64)
    x = torch.randn(1, 5, 4, dtype=torch.float64)
    y = attention(x)
    changed = x.clone()
    changed[0, 3:] += 1.0  # the last two steps: the first three outputs must not see them
    torch.testing.assert_close(attention(changed)[0, :3], y[0, :3])
    assert not torch.allclose(attention(changed)[0, 3:], y[0, 3:])


@pytest.mark.torch
def test_the_transformer_block_reads_as_its_diagram(torch):
    twins = torch_modules(torch)
    torch.manual_seed(0)
    block = twins.TransformerBlock(8, 2, 16, dtype=torch.float64).eval()
    x = torch.randn(2, 3, 8, dtype=torch.float64)
    h = x + block.attn(block.ln_1(x))
    torch.testing.assert_close(block(x), h + block.mlp(block.ln_2(h)))
    assert block.mlp[1].approximate == "tanh"
