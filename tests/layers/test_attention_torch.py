"""MultiHeadAttention (both levels) against PyTorch's nn.MultiheadAttention(batch_first=True): outputs,
dL/dx and every parameter gradient, with the parameters copied one to one (no transposes), over
random shapes, masks and both dtypes."""

from __future__ import annotations

import numpy as np
import pytest

from nnscratch import MultiHeadAttention, reference

pytestmark = pytest.mark.torch
TOLERANCE = {np.float64: dict(rtol=1e-10, atol=1e-12), np.float32: dict(rtol=1e-4, atol=2e-5)}


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def random_case(seed: int, dtype):
    """A random configuration: shapes, heads, causal or not, biases or not, and a padding mask (some
    of them with queries that see no key: PyTorch 2.13 gives those the output bias and no gradient,
    as nnscratch does; older versions gave NaN)."""
    rng = np.random.default_rng(seed)
    h = int(rng.integers(1, 5))
    e, n, t = h * int(rng.integers(1, 6)), int(rng.integers(1, 4)), int(rng.integers(1, 9))
    causal, bias = bool(rng.integers(2)), bool(rng.integers(2))
    mask = None
    if rng.integers(2):
        mask = rng.random((n, t)) < 0.4
        mask[0, :] |= seed % 3 == 0  # a sequence all padding
    x = rng.normal(0.0, 1.5, (n, t, e)).astype(dtype)
    return e, h, causal, bias, mask, x, rng.standard_normal((n, t, e)).astype(dtype)


def torch_attention(torch, layer):
    """nn.MultiheadAttention with the layer's parameters, in the layer's dtype."""
    dtype = {np.float32: torch.float32, np.float64: torch.float64}[layer.in_proj_weight.dtype.type]
    module = torch.nn.MultiheadAttention(layer.embed_dim, layer.num_heads, bias=layer.in_proj_bias is not None,
                                         batch_first=True, dtype=dtype)
    names = [name for name, _ in module.named_parameters()]
    assert names == (["in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"]
                     if layer.in_proj_bias is not None else ["in_proj_weight", "out_proj.weight"])
    with torch.no_grad():
        for param, value in zip(module.parameters(), layer.parameters):
            assert tuple(param.shape) == value.shape  # one to one, no transposes
            param.copy_(torch.from_numpy(value))
    return module


@pytest.mark.parametrize("cls", [MultiHeadAttention, reference.MultiHeadAttention], ids=["fast", "reference"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("seed", range(12))
def test_outputs_and_every_gradient_match_pytorch(torch, cls, dtype, seed):
    e, h, causal, bias, mask, x, delta = random_case(seed, dtype)
    layer = cls(e, h, causal=causal, bias=bias, dtype=dtype, rng=seed)
    for p in layer.parameters:
        p += np.random.default_rng(seed + 100).normal(0.0, 0.3, p.shape).astype(dtype)
    module = torch_attention(torch, layer)
    y = layer.forward(x, key_padding_mask=mask)
    dx = layer.backward(delta)

    tx = torch.from_numpy(x.copy()).requires_grad_(True)
    t = x.shape[1]
    attn_mask = torch.triu(torch.ones(t, t, dtype=torch.bool), diagonal=1) if causal else None
    padding = None if mask is None else torch.from_numpy(mask)
    ty, weights = module(tx, tx, tx, key_padding_mask=padding, attn_mask=attn_mask, need_weights=False)
    assert weights is None
    ty.backward(torch.from_numpy(delta))

    tolerance = TOLERANCE[dtype]
    assert y.dtype == dx.dtype == dtype
    np.testing.assert_allclose(y, ty.detach().numpy(), **tolerance)
    np.testing.assert_allclose(dx, tx.grad.numpy(), **tolerance)
    for index, (ours, param) in enumerate(zip(layer.parameters_deltas, module.parameters())):
        np.testing.assert_allclose(ours, param.grad.numpy(), **tolerance, err_msg=f"parameter {index}")


def test_the_random_cases_include_queries_that_see_no_key():
    dead = 0
    for seed in range(12):
        _, _, causal, _, mask, x, _ = random_case(seed, np.float64)
        if mask is not None:
            visible = ~mask[:, None, :] & (np.tril(np.ones((x.shape[1],) * 2, bool)) if causal else True)
            dead += int((~visible.any(axis=-1)).sum())
    assert dead >= 3


def test_a_query_that_sees_no_key_gives_the_output_bias_and_no_gradient_as_in_pytorch(torch):
    layer = MultiHeadAttention(4, 2, dtype=np.float64, rng=0)
    layer.in_proj_bias[...] = 1.0
    layer.out_proj_bias[...] = [0.5, -1.0, 2.0, 0.25]
    module = torch_attention(torch, layer)
    x = np.random.default_rng(1).standard_normal((2, 3, 4))
    mask = np.array([[False, True, False], [True, True, True]])  # sequence 1: every key padding
    y = layer.forward(x, key_padding_mask=mask)
    dx = layer.backward(np.ones_like(y))
    tx = torch.from_numpy(x.copy()).requires_grad_(True)
    ty, _ = module(tx, tx, tx, key_padding_mask=torch.from_numpy(mask), need_weights=False)
    ty.sum().backward()
    np.testing.assert_array_equal(y[1], np.broadcast_to(layer.out_proj_bias, (3, 4)))
    np.testing.assert_array_equal(dx[1], 0.0)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-10, atol=1e-12)
