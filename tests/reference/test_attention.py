"""The textbook reference.MultiHeadAttention against the loop twin (tests/helpers/naive_attention.py),
one sequence, query and head at a time, and against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nnscratch import reference, sanity_check
from nnscratch.commands.sanity_check_sequences import KeyPaddingMasked
from helpers.naive_attention import (  # tests/ on sys.path
    dropout_keep,
    layer_params,
    naive_attention_backward,
    naive_attention_forward,
)

# (id, embed_dim, num_heads, causal, bias, N, T, padded keys (sequence, key) or None)
CONFIGS = [
    ("one head", 4, 1, False, True, 2, 3, None),
    ("two heads", 6, 2, False, True, 2, 4, None),
    ("causal", 6, 3, True, True, 2, 5, None),
    ("no bias", 4, 2, True, False, 1, 4, None),
    ("padding", 6, 2, False, True, 3, 4, [(0, 3), (1, 0), (1, 1)]),
    ("a sequence all padding", 4, 2, False, True, 2, 3, [(1, 0), (1, 1), (1, 2)]),
    ("padding and causal: first queries see nothing", 4, 2, True, True, 2, 4, [(0, 0), (0, 1), (1, 2)]),
]


def make_layer(e, h, causal, bias, dropout=0.0, seed=0):
    layer = reference.MultiHeadAttention(e, h, causal=causal, dropout=dropout, bias=bias, dtype=np.float64, rng=seed)
    rng = np.random.default_rng(seed + 1)
    for p in layer.parameters:  # non-zero biases, and weights large enough for peaked softmaxes
        p[...] = rng.normal(0.0, 0.7, p.shape)
    return layer


def padding_mask(n, t, padded):
    if padded is None:
        return None
    mask = np.zeros((n, t), dtype=bool)
    for row, key in padded:
        mask[row, key] = True
    return mask


@pytest.mark.parametrize("config", CONFIGS, ids=[c[0] for c in CONFIGS])
def test_matches_the_loop_twin_forward_and_backward(config):
    _, e, h, causal, bias, n, t, padded = config
    layer = make_layer(e, h, causal, bias)
    rng = np.random.default_rng(2)
    x, delta = rng.standard_normal((n, t, e)), rng.standard_normal((n, t, e))
    mask = padding_mask(n, t, padded)
    y = layer.forward(x, key_padding_mask=mask)
    expected = naive_attention_forward(x, layer_params(layer), h, causal, mask)
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)
    dx = layer.backward(delta)
    want_dx, want_deltas = naive_attention_backward(x, layer_params(layer), delta, h, causal, mask)
    np.testing.assert_allclose(dx, want_dx, rtol=1e-11, atol=1e-12)
    assert len(layer.parameters_deltas) == len(want_deltas) == (4 if bias else 2)
    for got, want in zip(layer.parameters_deltas, want_deltas):
        np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("causal", [False, True])
def test_dropout_in_training_matches_the_loop_twin_with_the_same_mask(causal):
    layer = make_layer(6, 2, causal, True, dropout=0.4, seed=3)
    rng = np.random.default_rng(4)
    x, delta = rng.standard_normal((2, 5, 6)), rng.standard_normal((2, 5, 6))
    keep = dropout_keep(layer, (2, 2, 5, 5), np.float64)
    assert 0 < keep.mean() < 1
    y = layer.forward(x)
    np.testing.assert_allclose(y, naive_attention_forward(x, layer_params(layer), 2, causal, None, keep, 0.4),
                               rtol=1e-12, atol=1e-12)
    dx = layer.backward(delta)
    want_dx, want_deltas = naive_attention_backward(x, layer_params(layer), delta, 2, causal, None, keep, 0.4)
    np.testing.assert_allclose(dx, want_dx, rtol=1e-11, atol=1e-12)
    for got, want in zip(layer.parameters_deltas, want_deltas):
        np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-12)
    # eval mode: no dropout at all
    layer.eval()
    np.testing.assert_allclose(layer.forward(x), naive_attention_forward(x, layer_params(layer), 2, causal),
                               rtol=1e-12, atol=1e-12)


def test_hand_computed_one_head_one_feature():
    # W_q = W_k = W_v = W_out = 1, no bias: tokens 0 and 1 score s_ij = x_i x_j.
    layer = reference.MultiHeadAttention(1, 1, bias=False, dtype=np.float64)
    layer.in_proj_weight[...] = 1.0
    layer.out_proj_weight[...] = 1.0
    x = np.array([[[0.0], [1.0]]])
    # query 0 scores (0, 0): weights (1/2, 1/2), y = 0.5; query 1 scores (0, 1): y = e / (1 + e)
    np.testing.assert_allclose(layer.forward(x)[0, :, 0], [0.5, math.e / (1 + math.e)], rtol=1e-15)
    layer.causal = True  # query 0 sees itself only: y = x_0 = 0
    np.testing.assert_allclose(layer.forward(x)[0, :, 0], [0.0, math.e / (1 + math.e)], rtol=1e-15)
    # key 1 padded: both queries see key 0 only, whose value is 0
    np.testing.assert_array_equal(layer.forward(x, key_padding_mask=np.array([[False, True]]))[0, :, 0], [0, 0])


def test_a_query_that_sees_no_key_outputs_the_bias_and_passes_no_gradient():
    layer = make_layer(4, 2, True, True)
    x = np.random.default_rng(5).standard_normal((2, 3, 4))
    mask = np.array([[True, True, False], [True, True, True]])
    with np.errstate(all="raise"):  # no 0 / 0, no inf - inf anywhere
        y = layer.forward(x, key_padding_mask=mask)
        dx = layer.backward(np.ones_like(x))
    # sequence 0: queries 0 and 1 see no key (causal and padding); sequence 1: none does
    for n, i in [(0, 0), (0, 1), (1, 0), (1, 1), (1, 2)]:
        np.testing.assert_array_equal(y[n, i], layer.out_proj_bias)
    assert np.isfinite(dx).all() and all(np.isfinite(d).all() for d in layer.parameters_deltas)
    np.testing.assert_array_equal(dx[1], 0.0)  # nothing of sequence 1 reaches its output


@pytest.mark.parametrize("causal", [False, True])
def test_sanity_check_input_and_every_parameter_with_a_padding_mask(causal):
    layer = make_layer(6, 3, causal, True, seed=6)
    mask = np.array([[False, False, True, True], [True, False, False, False]])
    report = sanity_check(KeyPaddingMasked(layer, mask), np.random.default_rng(7).standard_normal((2, 4, 6)))
    assert [row.tensor.split()[0] for row in report] == ["input"] + ["parameter"] * 4
