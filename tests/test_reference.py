"""nnscratch.reference: the textbook Conv2D and MaxPool2D against the loop twins in naive.py.

The first two levels of truth: loop twins -> reference layers (here) -> fast layers (test_conv.py,
test_pool.py, against these). Also what makes a reference layer a stand-in for the fast one: the
same constructor, initialisation and parameters, the same numbers through training, save/load
(test_io.py) and sanity_check.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnscratch as nn
from layer_configs import CONV_CONFIGS, LAYOUTS, MAXPOOL_CONFIGS, with_layout
from naive import (
    _zero_pad,
    naive_conv2d_backward,
    naive_conv2d_forward,
    naive_maxpool2d_backward,
    naive_maxpool2d_forward,
)


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


def pool_against_naive(layer, x, delta_seed=0):
    y = layer.forward(x)
    np.testing.assert_array_equal(y, naive_maxpool2d_forward(x, layer.kernel_size, layer.stride))
    delta = np.random.default_rng(delta_seed).standard_normal(y.shape)
    dx = layer.backward(delta)
    np.testing.assert_allclose(dx, naive_maxpool2d_backward(x, delta, layer.kernel_size, layer.stride),
                               rtol=1e-12, atol=1e-12)
    return y, dx, delta


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

    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((24, 1, 6, 6)), rng.integers(0, 3, 24)
    runs = []
    for kind in (nn.reference, nn):
        model = build(kind)
        loss = nn.Sequential(nn.SoftmaxCrossEntropy(), nn.Mean())
        history = nn.fit(model, loss, nn.SGD(model, lr=0.1, momentum=0.9), x, y, epochs=3, batch_size=5, rng=0,
                         progress=False)
        runs.append(([h["loss"] for h in history], model.parameters, nn.predict(model, x)))
    (loss_ref, params_ref, out_ref), (loss_fast, params_fast, out_fast) = runs
    np.testing.assert_allclose(loss_fast, loss_ref, rtol=1e-10)
    assert loss_ref[-1] < loss_ref[0]  # it trained
    for a, b in zip(params_fast, params_ref):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(out_fast, out_ref, rtol=1e-9, atol=1e-12)


def test_conv_release_memory_drops_the_last_forward():
    layer = make_conv(2, 3, 3, 1, 1, True)
    x = np.random.default_rng(0).standard_normal((2, 2, 5, 5))
    y = layer.forward(x).copy()
    layer.release_memory()
    assert layer._windows is None
    with pytest.raises(RuntimeError, match="Conv2D.backward called before forward"):
        layer.backward(np.ones_like(y))
    np.testing.assert_array_equal(layer.forward(x), y)


# -- MaxPool2D --------------------------------------------------------------------------------------
@pytest.mark.parametrize("config", MAXPOOL_CONFIGS, ids=[c[0] for c in MAXPOOL_CONFIGS])
@pytest.mark.parametrize("values", ["distinct", "ties"])
def test_max_pool_matches_naive_twin(config, values):
    _, kernel, stride, shape = config
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape) if values == "distinct" else rng.integers(0, 2, shape).astype(np.float64)
    layer = nn.reference.MaxPool2D(kernel, stride)
    y, dx, delta = pool_against_naive(layer, x)
    assert y.shape == layer.output_shape(shape)
    np.testing.assert_allclose(dx.sum(), delta.sum())  # every delta goes to exactly one input


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_max_pool_random_configurations_match_naive_twin(data):
    kh, kw = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    stride = data.draw(st.one_of(st.none(), st.tuples(st.integers(1, 4), st.integers(1, 4))))
    shape = (data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)), data.draw(st.integers(kh, 9)),
             data.draw(st.integers(kw, 9)))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    x = rng.standard_normal(shape) if data.draw(st.booleans()) else rng.integers(-1, 2, shape).astype(np.float64)
    pool_against_naive(nn.reference.MaxPool2D((kh, kw), stride), with_layout(x, data.draw(st.sampled_from(LAYOUTS))))


def test_max_pool_sanity_check_keeps_dtype_and_matches_the_fast_layer_s_constructor():
    x = (np.random.default_rng(0).permutation(2 * 3 * 7 * 7) * 0.1).reshape(2, 3, 7, 7)  # no near-ties
    report = nn.sanity_check(nn.reference.MaxPool2D(3, stride=2), x)
    assert report.passed and [row.tensor for row in report] == ["input"]
    layer = nn.reference.MaxPool2D((2, 3), stride=(1, 2))
    assert layer.config() == nn.MaxPool2D((2, 3), stride=(1, 2)).config() and repr(layer).startswith("MaxPool2D(")
    y = layer.forward(x.astype(np.float32))
    assert y.dtype == np.float32 and layer.backward(np.ones(y.shape)).dtype == np.float32
    assert layer.forward(np.arange(12).reshape(1, 1, 3, 4)).dtype == np.float32  # integers computed in float32
    layer.release_memory()
    with pytest.raises(RuntimeError, match="MaxPool2D.backward called before forward"):
        layer.backward(np.ones(y.shape))
