"""The textbook Conv2D (nnscratch/reference/conv.py) against the loop twins in helpers/naive.py.

The first two levels of truth: loop twins -> reference layers (here, test_pool.py and
test_normalization.py) -> fast layers (tests/layers/, against these). Also what makes a reference
layer a stand-in for the fast one: the same constructor, initialisation and parameters, the same
numbers through training, save/load (tests/io/test_registry.py) and sanity_check.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnscratch as nn
from helpers.layer_configs import CONV_CONFIGS, LAYOUTS, with_layout
from helpers.naive import _zero_pad, naive_conv2d_backward, naive_conv2d_forward

from helpers.swap_training import assert_same_training


def make_conv(c_in, c_out, kernel, stride, padding, bias, dtype=np.float64, seed=0, cls=nn.reference.Conv2D):
    layer = cls(c_in, c_out, kernel, stride=stride, padding=padding, bias=bias, dtype=dtype, rng=seed)
    if bias:  # a non-zero bias, or its gradient path would not be tested
        layer.bias[...] = np.random.default_rng(seed + 1).standard_normal(c_out)
    return layer


def conv_against_naive(layer, x, delta_seed=0, rtol=1e-10, atol=1e-10):
    """Forward, input gradient and every parameter gradient of ``layer`` against the loop twin."""
    y = layer.forward(x)
    np.testing.assert_allclose(y, naive_conv2d_forward(x, layer.weight, layer.bias, layer.stride, layer.padding),
                               rtol=rtol, atol=atol)
    delta = np.random.default_rng(delta_seed).standard_normal(y.shape)
    dx = layer.backward(delta)
    dx_ref, dw_ref, db_ref = naive_conv2d_backward(x, layer.weight, delta, layer.stride, layer.padding)
    np.testing.assert_allclose(dx, dx_ref, rtol=rtol, atol=atol)
    np.testing.assert_allclose(layer.parameters_deltas[0], dw_ref, rtol=rtol, atol=atol)
    if layer.bias is not None:
        np.testing.assert_allclose(layer.parameters_deltas[1], db_ref, rtol=rtol, atol=atol)
    return y, dx


# -- the loop twins themselves ----------------------------------------------------------------------
def test_naive_twin_pads_with_zeros():
    x = np.ones((1, 1, 2, 2))
    np.testing.assert_array_equal(_zero_pad(x, (1, 2))[0, 0], [[0] * 6, [0, 0, 1, 1, 0, 0], [0, 0, 1, 1, 0, 0], [0] * 6])


# -- Conv2D ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("config", CONV_CONFIGS, ids=[c[0] for c in CONV_CONFIGS])
def test_conv_matches_naive_twin(config):
    _, c_in, c_out, kernel, stride, padding, bias, shape = config
    layer = make_conv(c_in, c_out, kernel, stride, padding, bias)
    y, dx = conv_against_naive(layer, np.random.default_rng(5).standard_normal(shape))
    assert y.shape == layer.output_shape(shape) and dx.shape == shape


@st.composite
def conv_cases(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    h, w = draw(st.integers(max(1, kh - 2 * ph), 8)), draw(st.integers(max(1, kw - 2 * pw), 8))
    n, c_in, c_out = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    return (c_in, c_out, (kh, kw), (sh, sw), (ph, pw), draw(st.booleans()), (n, c_in, h, w),
            draw(st.sampled_from(LAYOUTS)), draw(st.integers(0, 2**16)))


@settings(max_examples=60, deadline=None)
@given(conv_cases())
def test_conv_random_configurations_match_naive_twin(case):
    c_in, c_out, kernel, stride, padding, bias, shape, layout, seed = case
    layer = make_conv(c_in, c_out, kernel, stride, padding, bias, seed=seed)
    x = with_layout(np.random.default_rng(seed).standard_normal(shape), layout)
    conv_against_naive(layer, x, delta_seed=seed)


@pytest.mark.parametrize("config", CONV_CONFIGS[8:12], ids=[c[0] for c in CONV_CONFIGS[8:12]])
def test_conv_sanity_check_on_the_input_and_every_parameter(config):
    _, c_in, c_out, kernel, stride, padding, bias, shape = config
    layer = make_conv(c_in, c_out, kernel, stride, padding, bias, dtype=np.float32)
    report = nn.sanity_check(layer, np.random.default_rng(2).standard_normal(shape), max_coords=60)
    assert report.passed
    assert [row.tensor for row in report] == ["input", "parameter 0", "parameter 1"]


def test_conv_keeps_float32_and_matches_the_float64_layer_to_float32_rounding():
    layer32 = make_conv(3, 4, 3, 2, 1, True, dtype=np.float32)
    layer64 = make_conv(3, 4, 3, 2, 1, True)
    layer64.weight[...], layer64.bias[...] = layer32.weight, layer32.bias
    x = np.random.default_rng(0).standard_normal((2, 3, 7, 7))
    y32, y64 = layer32.forward(x), layer64.forward(x)  # float64 input is cast
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, y64, rtol=1e-5, atol=1e-5)
    delta = np.random.default_rng(1).standard_normal(y32.shape)
    dx32, dx64 = layer32.backward(delta), layer64.backward(delta)
    assert dx32.dtype == np.float32 and [d.dtype for d in layer32.parameters_deltas] == [np.float32] * 2
    np.testing.assert_allclose(dx32, dx64, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kwargs", [
    {"in_channels": 3, "out_channels": 5, "kernel_size": (3, 2)},
    {"in_channels": 16, "out_channels": 8, "kernel_size": 5, "stride": 2, "padding": 2, "bias": False},
    {"in_channels": 1, "out_channels": 2, "kernel_size": 3, "dtype": "float64"},
])
def test_conv_has_the_constructor_parameters_and_initialisation_of_the_fast_layer(kwargs):
    reference, fast = nn.reference.Conv2D(**kwargs, rng=0), nn.Conv2D(**kwargs, rng=0)
    assert reference.config() == fast.config()
    assert [(p.shape, p.dtype) for p in reference.parameters] == [(p.shape, p.dtype) for p in fast.parameters]
    assert [(d.shape, d.dtype) for d in reference.parameters_deltas] == [(d.shape, d.dtype) for d in fast.parameters_deltas]
    for a, b in zip(reference.parameters, fast.parameters):
        np.testing.assert_array_equal(a, b)
    assert repr(reference) == repr(fast)


def test_swapping_in_the_reference_layers_gives_the_same_training():
    # The same network built from either kind of layer, trained by fit: the same losses and weights.
    def build(kind):
        return nn.Sequential(kind.Conv2D(1, 3, 3, padding=1, dtype=np.float64, rng=1), nn.ReLU(), kind.MaxPool2D(2),
                             kind.Conv2D(3, 4, 3, stride=2, dtype=np.float64, rng=2), nn.Flatten(),
                             nn.Linear(4, 3, dtype=np.float64, rng=3))

    assert_same_training(build, batch_size=5)


def test_conv_release_memory_drops_the_last_forward():
    layer = make_conv(2, 3, 3, 1, 1, True)
    x = np.random.default_rng(0).standard_normal((2, 2, 5, 5))
    y = layer.forward(x).copy()
    layer.release_memory()
    assert layer._windows is None
    with pytest.raises(RuntimeError, match="Conv2D.backward called before forward"):
        layer.backward(np.ones_like(y))
    np.testing.assert_array_equal(layer.forward(x), y)
