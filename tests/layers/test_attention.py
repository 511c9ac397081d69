"""The fast MultiHeadAttention against its textbook twin (itself checked against the loop twin in
tests/reference/), what both levels share (constructor, checks, parameters, dtype), the numerics
(masked rows, long and large inputs), and what only the fast layer has (recycled work arrays)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnscratch as nn
from nnscratch import MultiHeadAttention, reference

BOTH = pytest.mark.parametrize("cls", [MultiHeadAttention, reference.MultiHeadAttention], ids=["fast", "reference"])


def twins(e, h, causal=False, dropout=0.0, bias=True, dtype=np.float64, seed=0):
    """The fast layer and its reference twin with the same (perturbed) parameters and rng state."""
    fast = MultiHeadAttention(e, h, causal=causal, dropout=dropout, bias=bias, dtype=dtype, rng=seed)
    slow = reference.MultiHeadAttention(e, h, causal=causal, dropout=dropout, bias=bias, dtype=dtype, rng=seed)
    rng = np.random.default_rng(seed + 1)
    for mine, theirs in zip(fast.parameters, slow.parameters):
        mine[...] = theirs[...] = rng.normal(0.0, 0.6, mine.shape)
    return fast, slow


def assert_twins_agree(fast, slow, x, mask=None, delta_seed=0):
    """Forward, dL/dx and every parameter gradient of the two levels: 1e-10 in float64, float32's
    rounding in float32 (sums of terms of size ~1 that cancel: an absolute 1e-4 of the largest value)."""
    float32 = fast.in_proj_weight.dtype == np.float32

    def close(got, want):
        if float32:
            np.testing.assert_allclose(got, want, rtol=2e-4, atol=1e-4 * max(1.0, np.abs(want).max()))
        else:
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)

    y, y_ref = fast.forward(x, key_padding_mask=mask), slow.forward(x, key_padding_mask=mask)
    assert y.dtype == y_ref.dtype == fast.in_proj_weight.dtype
    close(y, y_ref)
    delta = np.random.default_rng(delta_seed).standard_normal(y.shape)
    dx, dx_ref = fast.backward(delta), slow.backward(delta)
    assert dx.dtype == y.dtype
    close(dx, dx_ref)
    assert len(fast.parameters_deltas) == len(slow.parameters_deltas)
    for got, want in zip(fast.parameters_deltas, slow.parameters_deltas):
        assert got.dtype == y.dtype
        close(got, want)
    return y, dx


@st.composite
def attention_cases(draw):
    h = draw(st.integers(1, 4))
    e = h * draw(st.integers(1, 4))
    n, t = draw(st.integers(1, 3)), draw(st.integers(1, 7))
    mask = draw(st.none() | st.lists(st.booleans(), min_size=n * t, max_size=n * t))
    return dict(e=e, h=h, n=n, t=t, causal=draw(st.booleans()), bias=draw(st.booleans()),
                dropout=draw(st.sampled_from([0.0, 0.0, 0.5])), training=draw(st.booleans()),
                dtype=draw(st.sampled_from([np.float64, np.float32])),
                mask=None if mask is None else np.array(mask).reshape(n, t), seed=draw(st.integers(0, 2**16)))


@settings(max_examples=150, deadline=None)
@given(attention_cases())
def test_random_configurations_match_the_reference_twin(case):
    # Shapes, heads, causal or not, biases or not, random padding (rows that see no key included),
    # dropout in training (both draw the same mask from the same generator state) and eval, dtypes.
    fast, slow = twins(case["e"], case["h"], case["causal"], case["dropout"], case["bias"], case["dtype"], case["seed"])
    fast.train(case["training"]), slow.train(case["training"])
    x = np.random.default_rng(case["seed"]).standard_normal((case["n"], case["t"], case["e"])).astype(case["dtype"])
    y, dx = assert_twins_agree(fast, slow, x, case["mask"], case["seed"])
    assert np.isfinite(y).all() and np.isfinite(dx).all()


def test_a_query_that_sees_no_key_outputs_the_bias_never_nan():
    fast, _ = twins(8, 2, causal=True, dtype=np.float32)
    x = np.random.default_rng(1).standard_normal((3, 4, 8)).astype(np.float32)
    mask = np.array([[True, True, False, False], [True] * 4, [False] * 4])
    with np.errstate(all="raise"):
        y = fast.forward(x, key_padding_mask=mask)
        dx = fast.backward(np.ones_like(y))
    np.testing.assert_array_equal(y[1], np.broadcast_to(fast.out_proj_bias, (4, 8)))
    np.testing.assert_array_equal(y[0, :2], np.broadcast_to(fast.out_proj_bias, (2, 8)))
    assert not np.allclose(y[0, 2:], fast.out_proj_bias)
    assert np.isfinite(dx).all() and all(np.isfinite(d).all() for d in fast.parameters_deltas)
    np.testing.assert_array_equal(dx[1], 0.0)


@pytest.mark.parametrize("causal", [False, True])
def test_long_sequences_and_huge_scores_stay_finite(causal):
    # T = 512 with scores of size ~1e4 (the max subtraction keeps exp from overflowing), float32
    layer = MultiHeadAttention(16, 4, causal=causal, rng=0)
    layer.in_proj_weight *= 30.0
    x = np.random.default_rng(2).standard_normal((2, 512, 16)).astype(np.float32) * 10
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y = layer.forward(x)
        dx = layer.backward(np.random.default_rng(3).standard_normal(y.shape).astype(np.float32))
    assert y.dtype == np.float32 and np.isfinite(y).all() and np.isfinite(dx).all()
    assert all(np.isfinite(d).all() for d in layer.parameters_deltas)
    if causal:  # the first query sees itself only, so it is the same without the 511 keys after it
        np.testing.assert_allclose(layer.forward(x[:, :1]), y[:, :1], rtol=1e-5, atol=1e-3)


def test_rows_of_attention_weights_sum_to_one_and_causal_weights_are_lower_triangular():
    layer = MultiHeadAttention(6, 3, causal=True, dtype=np.float64, rng=0)
    mask = np.array([[False, False, True, False, False]])
    layer.forward(np.random.default_rng(0).standard_normal((1, 5, 6)), key_padding_mask=mask)
    weights = layer._cache[2].transpose(0, 1, 3, 2)  # kept as (N, H, keys, queries): (N, H, queries, keys)
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(np.triu(weights, k=1), 0.0)
    np.testing.assert_array_equal(weights[..., 2], 0.0)  # the padded key


def test_dropout_zeroes_weights_in_training_only_and_draws_from_self_rng():
    layer = MultiHeadAttention(8, 2, dropout=0.5, dtype=np.float64, rng=0)
    x = np.random.default_rng(1).standard_normal((2, 6, 8))
    state = layer.rng.bit_generator.state
    y1 = layer.forward(x)
    used, weights = layer._cache[3], layer._cache[2]
    assert 0.3 < (used == 0).mean() < 0.7
    np.testing.assert_allclose(used[used != 0], (weights * 2)[used != 0])  # kept ones scaled by 1/(1-p)
    layer.rng.bit_generator.state = state
    np.testing.assert_array_equal(layer.forward(x), y1)  # the same draws from the same state
    assert not np.allclose(layer.forward(x), y1)  # the next draws differ
    layer.eval()
    np.testing.assert_array_equal(layer.forward(x), layer.forward(x))
    assert layer._cache[3] is layer._cache[2]  # no dropout in eval mode


def test_results_never_alias_between_calls_and_backward_is_repeatable():
    # Work arrays are recycled; what the layer handed out must not change under the caller.
    layer, _ = twins(8, 2, causal=True, dtype=np.float32)
    rng = np.random.default_rng(0)
    x1, x2 = rng.standard_normal((2, 3, 5, 8)).astype(np.float32)
    y1 = layer.forward(x1)
    dx1 = layer.backward(np.ones_like(y1))
    kept = (y1.copy(), dx1.copy(), [d.copy() for d in layer.parameters_deltas])
    dx1_again = layer.backward(np.ones_like(y1))
    np.testing.assert_array_equal(dx1_again, kept[1])
    layer.forward(x2)
    layer.backward(np.full_like(y1, 3.0))
    np.testing.assert_array_equal(y1, kept[0])
    np.testing.assert_array_equal(dx1, kept[1])
    layer.forward(x1)
    layer.backward(2 * np.ones_like(y1))  # deltas overwritten, never accumulated
    for got, want in zip(layer.parameters_deltas, kept[2]):
        np.testing.assert_allclose(got, 2 * want, rtol=1e-5, atol=1e-6)


def test_release_memory_drops_caches_and_work_arrays():
    layer = MultiHeadAttention(64, 2, rng=0)
    x = np.ones((4, 64, 64), np.float32)  # large enough for its work arrays to be kept
    layer.backward(np.ones_like(layer.forward(x)))
    assert layer._recycled and layer._cache is not None
    layer.release_memory()
    assert layer._recycled == {} and layer._cache is None
    with pytest.raises(RuntimeError, match="MultiHeadAttention.backward called before forward"):
        layer.backward(np.ones((4, 64, 64), np.float32))


def test_non_contiguous_and_integer_inputs():
    fast, slow = twins(4, 2, dtype=np.float64)
    memory = np.random.default_rng(0).standard_normal((5, 3, 4))
    assert_twins_agree(fast, slow, memory.transpose(1, 0, 2))  # (3, 5, 4), strided
    assert fast.forward(np.ones((1, 2, 4), dtype=np.int64)).dtype == np.float64


# -- what both levels share ------------------------------------------------------------------------
@BOTH
def test_parameters_follow_pytorch_names_layout_and_initialisation(cls):
    layer = cls(64, 4, rng=0)
    assert [p.shape for p in layer.parameters] == [(192, 64), (192,), (64, 64), (64,)]
    assert layer.parameters[0] is layer.in_proj_weight and layer.parameters[3] is layer.out_proj_bias
    assert all(d.shape == p.shape and d.dtype == np.float32 for d, p in zip(layer.parameters_deltas, layer.parameters))
    glorot = math.sqrt(6.0 / (64 + 192))  # xavier_uniform_ of the (3E, E) matrix
    assert 0.98 * glorot < np.abs(layer.in_proj_weight).max() <= glorot
    assert 0.98 / 8 < np.abs(layer.out_proj_weight).max() <= 1 / 8  # U(-1/sqrt(E), 1/sqrt(E))
    assert not layer.in_proj_bias.any() and not layer.out_proj_bias.any()
    no_bias = cls(8, 2, bias=False)
    assert [p.shape for p in no_bias.parameters] == [(24, 8), (8, 8)] and no_bias.in_proj_bias is None
    assert cls(8, 2, rng=3).in_proj_weight.tolist() == cls(8, 2, rng=3).in_proj_weight.tolist()


@BOTH
def test_config_rebuilds_the_layer_and_parameter_specs_match(cls):
    layer = cls(12, 3, causal=True, dropout=0.25, bias=False, dtype="float64")
    config = layer.config()
    assert config == {"embed_dim": 12, "num_heads": 3, "causal": True, "dropout": 0.25, "bias": False,
                      "dtype": "float64"}
    assert cls(**config).config() == config
    specs = cls.parameter_specs(**config)
    assert [(s, d) for s, d in specs] == [(p.shape, p.dtype) for p in layer.parameters]
    assert repr(layer).startswith(f"MultiHeadAttention(embed_dim=12, num_heads=3, causal=True")
    assert layer.output_shape((5, 7, 12)) == (5, 7, 12)


@BOTH
def test_float32_stays_float32(cls):
    layer = cls(8, 2, causal=True)
    y = layer.forward(np.random.default_rng(0).standard_normal((2, 3, 8)))  # float64 input is cast
    assert y.dtype == np.float32
    assert layer.backward(np.ones(y.shape)).dtype == np.float32
    assert all(d.dtype == np.float32 for d in layer.parameters_deltas)


@BOTH
@pytest.mark.parametrize("kwargs, error, message", [
    (dict(embed_dim=10, num_heads=3), ValueError, r"embed_dim must be divisible by num_heads.*embed_dim=10, num_heads=3"),
    (dict(embed_dim=0, num_heads=1), ValueError, r"embed_dim must be a positive int, got 0"),
    (dict(embed_dim=8, num_heads=0), ValueError, r"num_heads must be a positive int, got 0"),
    (dict(embed_dim=8.0, num_heads=2), TypeError, r"embed_dim must be an int, got float"),
    (dict(embed_dim=8, num_heads=2, dropout=1.0), ValueError, r"dropout must be >= 0 and < 1, got 1.0"),
    (dict(embed_dim=8, num_heads=2, dropout=-0.1), ValueError, r"dropout must be >= 0"),
    (dict(embed_dim=8, num_heads=2, causal=1), TypeError, r"causal must be True or False, got int"),
    (dict(embed_dim=8, num_heads=2, bias="yes"), TypeError, r"bias must be True or False, got str"),
    (dict(embed_dim=8, num_heads=2, dtype=np.float16), TypeError, r"dtype float16 is not supported"),
])
def test_bad_hyperparameters(cls, kwargs, error, message):
    with pytest.raises(error, match=rf"MultiHeadAttention: {message}"):
        cls(**kwargs)


@BOTH
def test_bad_inputs_and_masks_name_the_layer_what_was_expected_and_what_came(cls):
    layer = cls(8, 2)
    x = np.zeros((2, 3, 8), np.float32)
    cases = [
        (lambda: layer.forward([[1.0]]), TypeError, r"expected a numpy array as input, got list"),
        (lambda: layer.forward(np.zeros((2, 8))), ValueError, r"expected a 3-D input \(N, T, embed_dim\), got shape \(2, 8\)"),
        (lambda: layer.forward(np.zeros((2, 3, 6))), ValueError, r"expected 8 features.*got x of shape \(2, 3, 6\)"),
        (lambda: layer.forward(np.zeros((2, 3, 8), dtype=complex)), TypeError, r"the input must be real numbers"),
        (lambda: layer.forward(x, key_padding_mask=np.zeros((2, 3))), TypeError,
         r"key_padding_mask must be a bool array .*got dtype float64; use mask.astype\(bool\)"),
        (lambda: layer.forward(x, key_padding_mask=np.zeros((2, 3), int)), TypeError, r"got dtype int64"),
        (lambda: layer.forward(x, key_padding_mask=[[True] * 3] * 2), TypeError, r"numpy bool array.*got list"),
        (lambda: layer.forward(x, key_padding_mask=np.zeros((3, 2), bool)), ValueError,
         r"key_padding_mask must have shape \(N, T\) = \(2, 3\).*got shape \(3, 2\)"),
        (lambda: layer.forward(x, key_padding_mask=np.zeros((2, 3, 1), bool)), ValueError, r"got shape \(2, 3, 1\)"),
        (lambda: layer.forward(x, np.zeros((2, 3), bool)), None, None),  # positional args are ignored (targets)
    ]
    for call, error, message in cases:
        if error is None:
            assert call().shape == x.shape
            continue
        with pytest.raises(error, match=rf"MultiHeadAttention: .*{message}"):
            call()
    layer.forward(x)
    with pytest.raises(ValueError, match=r"MultiHeadAttention.backward: expected delta of shape \(2, 3, 8\)"):
        layer.backward(np.zeros((2, 8)))
    layer.in_proj_weight = layer.in_proj_weight.copy()  # rebound: the optimizer would update the old array
    with pytest.raises(ValueError, match=r"MultiHeadAttention: in_proj_weight is not the array in parameters"):
        layer.forward(x)


def test_save_and_load_round_trip_both_levels(tmp_path):
    model = nn.Sequential(MultiHeadAttention(8, 2, causal=True, dropout=0.1, rng=0),
                          reference.MultiHeadAttention(8, 4, bias=False, rng=1)).eval()
    for p in model.parameters:
        p += np.random.default_rng(2).normal(0.0, 0.3, p.shape).astype(p.dtype)
    nn.save(model, tmp_path / "attention.npz")
    loaded = nn.load(tmp_path / "attention.npz").eval()
    assert [type(layer) for layer in loaded] == [MultiHeadAttention, reference.MultiHeadAttention]
    assert [layer.config() for layer in loaded] == [layer.config() for layer in model]
    x = np.random.default_rng(3).standard_normal((2, 5, 8)).astype(np.float32)
    np.testing.assert_array_equal(loaded.forward(x), model.forward(x))


@pytest.mark.parametrize("shape", [(0, 5, 4), (2, 0, 4), (0, 0, 4)], ids=["N=0", "T=0", "both"])
@pytest.mark.parametrize("causal", [False, True])
def test_an_empty_batch_or_sequence_gives_empty_results_and_zero_gradients(shape, causal):
    # as PyTorch's nn.MultiheadAttention: (N, T, E) out, zero gradients; both levels failed in numpy's
    # reshape or in the softmax's max over no keys
    fast, slow = twins(4, 2, causal=causal)
    for layer in (fast, slow):
        layer.parameters_deltas[0][...] = 1.0  # a stale gradient must be overwritten
    mask = np.zeros(shape[:2], bool)
    y, dx = assert_twins_agree(fast, slow, np.zeros(shape), mask=mask)
    assert y.shape == dx.shape == shape
    assert all(not grad.any() for grad in fast.parameters_deltas)
