"""The machinery of the fast attention (nnscratch/kernels/attention.py), without the layer: head views
without copies, the masks as one additive array, the softmax over the keys in place (a query that sees
nothing gets zeros), and forward and backward of the heads against plain float64 formulas."""

from __future__ import annotations

import numpy as np
import pytest

from nnscratch.kernels.attention import (additive_mask, attention_backward, heads, scores_softmax, softmax_keys_,
                                         split_heads, weighted_values)


def test_heads_are_views_of_the_columns_side_by_side():
    n, t, h, d = 2, 3, 4, 5
    columns = np.arange(n * t * h * d, dtype=float).reshape(n * t, h * d)
    view = heads(columns, n, t, h)
    assert view.shape == (n, h, t, d) and np.shares_memory(view, columns)
    for b, head, step in np.ndindex(n, h, t):
        np.testing.assert_array_equal(view[b, head, step], columns[b * t + step, head * d : (head + 1) * d])


def test_split_heads_takes_q_k_and_v_from_the_three_thirds():
    n, t, h, d = 2, 3, 2, 4
    qkv = np.random.default_rng(0).standard_normal((n * t, 3 * h * d))
    q, k, v = split_heads(qkv, n, t, h)
    e = h * d
    for i, part in enumerate((q, k, v)):
        np.testing.assert_array_equal(part, heads(qkv[:, i * e : (i + 1) * e].copy(), n, t, h))
        assert np.shares_memory(part, qkv)


def test_additive_mask_causal_padding_both_or_none():
    assert additive_mask(3, False, None, np.float32) is None
    causal = additive_mask(3, True, None, np.float32)
    # (keys, queries): key j hidden from query i where j > i
    assert causal.dtype == np.float32 and not causal.flags.writeable
    np.testing.assert_array_equal(np.isneginf(causal), [[0, 0, 0], [1, 0, 0], [1, 1, 0]])
    assert not causal[~np.isneginf(causal)].any()
    padding = np.array([[False, False, True], [False, False, False]])
    padded = additive_mask(3, False, padding, np.float64)
    assert padded.shape == (2, 1, 3, 1)
    np.testing.assert_array_equal(np.isneginf(padded[:, 0, :, 0]), padding)
    both = additive_mask(3, True, padding, np.float64)
    assert both.shape == (2, 1, 3, 3)
    np.testing.assert_array_equal(np.isneginf(both[0, 0]), [[0, 0, 0], [1, 0, 0], [1, 1, 1]])


def test_softmax_over_the_keys_in_place_and_a_query_that_sees_nothing_gets_zeros():
    scores = np.random.default_rng(1).standard_normal((1, 1, 3, 2)) * 50  # large: no overflow anyway
    expected = np.exp(scores - scores.max(axis=-2, keepdims=True))
    expected /= expected.sum(axis=-2, keepdims=True)
    bias = np.array([[0.0, -np.inf], [0.0, -np.inf], [0.0, -np.inf]])  # query 1 sees no key
    result = softmax_keys_(scores, bias)
    assert result is scores
    np.testing.assert_allclose(result[..., 0], expected[..., 0], rtol=1e-12)
    assert not result[..., 1].any() and np.isfinite(result).all()


def reference_attention(q, k, v, bias=None):
    """softmax(Q K^T + mask) V per head in float64, the weights not transposed: (N, H, Tq, Tk)."""
    scores = q @ k.transpose(0, 1, 3, 2)
    if bias is not None:
        scores = scores + bias.transpose(0, 1, 3, 2) if bias.ndim == 4 else scores + bias.T
    weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
    weights /= weights.sum(axis=-1, keepdims=True)
    return weights, weights @ v


@pytest.mark.parametrize("causal", [False, True])
def test_forward_and_backward_of_the_heads_against_plain_formulas(causal):
    n, h, t, d = 2, 3, 4, 5
    rng = np.random.default_rng(2)
    q, k, v = (rng.standard_normal((n, h, t, d)) for _ in range(3))
    bias = additive_mask(t, causal, None, np.float64)
    weights = np.empty((n, h, t, t))
    scores_softmax(weights, k, q, *(() if bias is None else (bias,)))
    expected_weights, expected_out = reference_attention(q, k, v, bias)
    np.testing.assert_allclose(weights.transpose(0, 1, 3, 2), expected_weights, rtol=1e-12, atol=1e-15)
    # the heads' outputs side by side in (N, T, E) memory, as the layer keeps them
    out = np.empty((n, t, h * d))
    out_heads = out.reshape(n, t, h, d).transpose(0, 2, 1, 3)
    weighted_values(out_heads, weights, v)
    np.testing.assert_allclose(out_heads, expected_out, rtol=1e-12)
    # backward from dO, against the chain rule written out
    d_out = rng.standard_normal((n, t, h * d))
    d_heads = d_out.reshape(n, t, h, d).transpose(0, 2, 1, 3)
    dq, dk, dv = (np.empty((n, h, t, d)) for _ in range(3))
    attention_backward(d_heads, d_out, out, weights, weights, q, k, v, dq, dk, dv)
    a = expected_weights
    da = d_heads @ v.transpose(0, 1, 3, 2)
    ds = a * (da - (da * a).sum(axis=-1, keepdims=True))
    np.testing.assert_allclose(dv, a.transpose(0, 1, 3, 2) @ d_heads, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dq, ds @ k, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dk, ds.transpose(0, 1, 3, 2) @ q, rtol=1e-10, atol=1e-12)


def test_backward_with_dropout_and_the_scale_folded_into_q():
    n, h, t, d = 1, 2, 3, 4
    rng = np.random.default_rng(3)
    q, k, v = (rng.standard_normal((n, h, t, d)) for _ in range(3))
    weights = np.empty((n, h, t, t))
    scores_softmax(weights, k, q)
    keep = rng.uniform(size=weights.shape) > 0.3
    used = weights * keep / 0.7
    out = np.empty((n, t, h * d))
    weighted_values(out.reshape(n, t, h, d).transpose(0, 2, 1, 3), used, v)
    d_out = rng.standard_normal(out.shape)
    d_heads = d_out.reshape(n, t, h, d).transpose(0, 2, 1, 3)
    dq, dk, dv = (np.empty((n, h, t, d)) for _ in range(3))
    attention_backward(d_heads, d_out, out, used, weights, q, k, v, dq, dk, dv, keep, keep_scale=1 / 0.7, q_scale=0.5)
    a = weights.transpose(0, 1, 3, 2)
    da = (d_heads @ v.transpose(0, 1, 3, 2)) * keep.transpose(0, 1, 3, 2) / 0.7
    ds = a * (da - (da * a).sum(axis=-1, keepdims=True))
    np.testing.assert_allclose(dv, used @ d_heads, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dq, 0.5 * ds @ k, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dk, ds.transpose(0, 1, 3, 2) @ q, rtol=1e-10, atol=1e-12)
