"""TransformerBlock against a nanoGPT-style block written here in PyTorch (pre-LayerNorm, one packed
query/key/value projection, the attention spelled out, GELU's tanh form): outputs, dL/dx and every
parameter gradient over random shapes in float32 and float64, and gradient clipping."""

from __future__ import annotations

import math

import numpy as np
import pytest

import nnscratch as nn
from nnscratch import TransformerBlock

pytestmark = pytest.mark.torch
TOLERANCE = {np.float64: dict(rtol=1e-9, atol=1e-11), np.float32: dict(rtol=2e-4, atol=5e-5)}


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def torch_block(torch, dim, heads, hidden, causal):
    """A GPT-2 block: x + attn(ln_1(x)), then x + mlp(ln_2(x)); attention as the paper writes it."""

    class Attention(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.c_attn, self.c_proj = torch.nn.Linear(dim, 3 * dim), torch.nn.Linear(dim, dim)

        def forward(self, x):
            n, t, _ = x.shape
            q, k, v = (part.reshape(n, t, heads, dim // heads).transpose(1, 2) for part in self.c_attn(x).split(dim, -1))
            scores = q @ k.transpose(-2, -1) / math.sqrt(dim // heads)
            if causal:
                scores = scores.masked_fill(torch.ones(t, t, dtype=torch.bool).triu(1), float("-inf"))
            return self.c_proj((scores.softmax(-1) @ v).transpose(1, 2).reshape(n, t, dim))

    class Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1, self.attn, self.ln_2 = torch.nn.LayerNorm(dim), Attention(), torch.nn.LayerNorm(dim)
            self.c_fc, self.c_proj = torch.nn.Linear(dim, hidden), torch.nn.Linear(hidden, dim)

        def forward(self, x):
            x = x + self.attn(self.ln_1(x))
            return x + self.c_proj(torch.nn.functional.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))

    return Block()


def in_torch_layout(block, arrays) -> list:
    """The block's parameters (or deltas) as the PyTorch block lists them: the MLP's Linear weights
    transposed ((in, out) here), the attention's as they are (PyTorch's layout already)."""
    mlp_weights = {id(block[1][1].weight), id(block[1][3].weight)}
    return [a.T if id(p) in mlp_weights else a for p, a in zip(block.parameters, arrays)]


def twin(torch, block):
    dtype = {np.float32: torch.float32, np.float64: torch.float64}[block.parameters[0].dtype.type]
    module = torch_block(torch, block.dim, block.num_heads, block[1][1].out_features, block.causal).to(dtype)
    with torch.no_grad():
        for param, value in zip(module.parameters(), in_torch_layout(block, block.parameters)):
            assert tuple(param.shape) == value.shape
            param.copy_(torch.from_numpy(np.ascontiguousarray(value)))
    return module


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("seed", range(8))
def test_outputs_and_every_gradient_match_a_nanogpt_style_block(torch, dtype, seed):
    rng = np.random.default_rng(seed)
    heads = int(rng.integers(1, 5))
    dim, n, t = heads * int(rng.integers(1, 5)), int(rng.integers(1, 4)), int(rng.integers(1, 10))
    block = TransformerBlock(dim, heads, mlp_ratio=int(rng.integers(1, 5)), causal=bool(seed % 4), dtype=dtype, rng=seed)
    for p in block.parameters:  # LayerNorm's weights and every bias away from 1 and 0
        p += rng.normal(0.0, 0.3, p.shape).astype(dtype)
    module = twin(torch, block)
    x = rng.normal(0.0, 2.0, (n, t, dim)).astype(dtype)
    delta = rng.standard_normal((n, t, dim)).astype(dtype)
    y = block.forward(x)
    dx = block.backward(delta)
    tx = torch.from_numpy(x.copy()).requires_grad_(True)
    ty = module(tx)
    ty.backward(torch.from_numpy(delta))
    tolerance = TOLERANCE[dtype]
    assert y.dtype == dx.dtype == dtype
    np.testing.assert_allclose(y, ty.detach().numpy(), **tolerance)
    np.testing.assert_allclose(dx, tx.grad.numpy(), **tolerance)
    ours = in_torch_layout(block, block.parameters_deltas)
    theirs = [p.grad.numpy() for p in module.parameters()]
    assert len(ours) == len(theirs) == 12
    for index, (a, b) in enumerate(zip(ours, theirs)):
        assert a.dtype == dtype
        np.testing.assert_allclose(a, b, **tolerance, err_msg=f"parameter {index}")


def test_clip_grad_norm_across_the_block_as_pytorch_clips(torch):
    block = TransformerBlock(8, 2, dtype=np.float64, rng=0)
    for p in block.parameters:
        p += np.random.default_rng(1).normal(0.0, 0.5, p.shape)
    module = twin(torch, block)
    x = np.random.default_rng(2).standard_normal((2, 5, 8)) * 3
    delta = np.full((2, 5, 8), 4.0)
    block.backward(block.forward(x) * 0 + delta)
    module(torch.from_numpy(x)).backward(torch.from_numpy(delta))
    norm = nn.clip_grad_norm(block, 0.5)
    torch_norm = torch.nn.utils.clip_grad_norm_(module.parameters(), 0.5)
    assert norm == pytest.approx(torch_norm.item(), rel=1e-12) and norm > 0.5
    for ours, param in zip(in_torch_layout(block, block.parameters_deltas), module.parameters()):
        np.testing.assert_allclose(ours, param.grad.numpy(), rtol=1e-10, atol=1e-14)
