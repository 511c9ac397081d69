"""nnscratch.reference: the textbook Conv2D, MaxPool2D and batch norms against the loop twins in naive.py.

The first two levels of truth: loop twins -> reference layers (here) -> fast layers (test_conv.py,
test_pool.py, against these; the fast batch norms here, against the reference ones). Also what makes a reference layer a stand-in for the fast one: the
same constructor, initialisation and parameters, the same numbers through training, save/load
(tests/io/test_registry.py) and sanity_check.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnscratch as nn
from helpers.layer_configs import CONV_CONFIGS, LAYOUTS, MAXPOOL_CONFIGS, with_layout
from helpers.naive import (
    _zero_pad,
    naive_batchnorm_backward,
    naive_batchnorm_forward,
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


def assert_same_training(build, batch_size):
    """``build(kind)`` from the reference layers and from the fast ones, each trained by fit: the same
    losses, parameters and buffers (running statistics), and the same predict (eval mode)."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((24, 1, 6, 6)), rng.integers(0, 3, 24)
    runs = []
    for kind in (nn.reference, nn):
        model = build(kind)
        loss = nn.Sequential(nn.SoftmaxCrossEntropy(), nn.Mean())
        history = nn.fit(model, loss, nn.SGD(model, lr=0.1, momentum=0.9), x, y, epochs=3, batch_size=batch_size,
                         rng=0, progress=False)
        runs.append(([h["loss"] for h in history], model.parameters + model.buffers, nn.predict(model, x)))
    (loss_ref, state_ref, out_ref), (loss_fast, state_fast, out_fast) = runs
    np.testing.assert_allclose(loss_fast, loss_ref, rtol=1e-10)
    assert loss_ref[-1] < loss_ref[0]  # it trained
    for a, b in zip(state_fast, state_ref, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(out_fast, out_ref, rtol=1e-9, atol=1e-12)


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


# -- BatchNorm1D, BatchNorm2D ---------------------------------------------------------------------
BATCH_NORM_SHAPES = [  # (class name, input shape)
    ("BatchNorm1D", (6, 4)),
    ("BatchNorm1D", (5, 3, 4)),
    ("BatchNorm2D", (4, 3, 2, 5)),
    ("BatchNorm2D", (1, 2, 3, 3)),  # one image: the statistics over H and W alone
]


def make_batch_norm(kind, name, channels, seed, dtype=np.float64, **kwargs):
    """``kind.<name>`` with weight, bias and running statistics no fresh layer has (a swapped or
    dropped term shows), the variances positive."""
    layer = getattr(kind, name)(channels, dtype=dtype, **kwargs)
    rng = np.random.default_rng(seed)
    if layer.affine:
        layer.weight[...] = rng.uniform(0.5, 1.5, channels)
        layer.bias[...] = rng.uniform(-1.0, 1.0, channels)
    layer.running_mean[...] = rng.uniform(-0.5, 0.5, channels)
    layer.running_var[...] = rng.uniform(0.5, 2.0, channels)
    return layer


@pytest.mark.parametrize("name, shape", BATCH_NORM_SHAPES)
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_matches_naive_twin_over_training_steps_then_in_eval(name, shape, affine):
    c = shape[1]
    layer = make_batch_norm(nn.reference, name, c, 3, momentum=0.3, affine=affine)
    weight = layer.weight.copy() if affine else np.ones(c)
    bias = layer.bias.copy() if affine else np.zeros(c)
    running = layer.running_mean.copy(), layer.running_var.copy()
    for step in range(4):
        training = step < 3  # three training steps move the running statistics, then eval uses them
        layer.train(training)
        rng = np.random.default_rng(10 + step)
        x, delta = 1.5 + 2.0 * rng.standard_normal(shape), rng.standard_normal(shape)
        y, *new_running = naive_batchnorm_forward(x, weight, bias, *running, momentum=0.3, training=training)
        dx, dweight, dbias = naive_batchnorm_backward(x, weight, delta, *running, training=training)
        running = new_running
        np.testing.assert_allclose(layer.forward(x), y, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(layer.backward(delta), dx, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(layer.running_mean, running[0], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(layer.running_var, running[1], rtol=1e-10, atol=1e-12)
        if affine:
            np.testing.assert_allclose(layer.parameters_deltas[0], dweight, rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(layer.parameters_deltas[1], dbias, rtol=1e-10, atol=1e-12)


def test_batch_norm_twin_tests_can_tell_the_modes_apart():
    # The naive twin's two modes differ on these inputs, so the test above pins down each one.
    x, delta = np.random.default_rng(0).normal(1.0, 2.0, (5, 3)), np.random.default_rng(1).normal(size=(5, 3))
    stats = np.full(3, 0.2), np.full(3, 0.7)
    assert not np.allclose(naive_batchnorm_forward(x, np.ones(3), np.zeros(3), *stats)[0],
                           naive_batchnorm_forward(x, np.ones(3), np.zeros(3), *stats, training=False)[0])
    assert not np.allclose(naive_batchnorm_backward(x, np.ones(3), delta, *stats)[0],
                           naive_batchnorm_backward(x, np.ones(3), delta, *stats, training=False)[0])


def laid_out(x: np.ndarray, layout: str) -> np.ndarray:
    """The values of ``x`` in another memory layout: C order, channel-major (Conv2D's output, 4-D
    only) or a non-contiguous slice of a larger array."""
    if layout == "channel-major":
        n, c, h, w = x.shape
        out = np.empty((c, n, h, w), x.dtype).transpose(1, 0, 2, 3)
    elif layout == "strided":
        out = np.zeros((2 * x.shape[0], *x.shape[1:-1], 3 * x.shape[-1]), x.dtype)[::2, ..., 1::3]
    else:
        out = np.empty(x.shape, x.dtype)
    out[...] = x
    return out


@st.composite
def batch_norm_cases(draw):
    name = draw(st.sampled_from(["BatchNorm1D", "BatchNorm2D"]))
    ndim = draw(st.sampled_from([2, 3])) if name == "BatchNorm1D" else 4
    shape = [draw(st.integers(1, 5)), draw(st.integers(1, 4))] + [draw(st.integers(1, 5)) for _ in range(ndim - 2)]
    if int(np.prod(shape)) // shape[1] < 2:
        shape[0] += 1  # training needs two values per channel
    layouts = ["C", "strided"] + (["channel-major"] if ndim == 4 else [])
    return (name, tuple(shape), draw(st.sampled_from([np.float32, np.float64])), draw(st.sampled_from(layouts)),
            draw(st.sampled_from(layouts)), draw(st.booleans()), draw(st.booleans()),
            draw(st.floats(0.0, 1.0)), draw(st.integers(0, 2**16)))


def assert_close_in(dtype, actual, expected):
    """1e-10 relative in float64; float32 rounding (amplified a little by the normalization) in float32."""
    assert actual.dtype == dtype
    tol = 1e-10 if dtype == np.float64 else 2e-5
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol * max(1.0, float(np.abs(expected).max())))


@settings(max_examples=120, deadline=None)
@given(batch_norm_cases())
def test_fast_batch_norms_match_the_reference_on_any_shape_dtype_and_layout(case):
    name, shape, dtype, x_layout, delta_layout, affine, training, momentum, seed = case
    layers = [make_batch_norm(kind, name, shape[1], seed, dtype, momentum=momentum, affine=affine).train(training)
              for kind in (nn.reference, nn)]
    rng = np.random.default_rng(seed)
    for step in range(2):  # the second step sees the running statistics the first one left
        x = laid_out((rng.uniform(-1.0, 3.0) + rng.uniform(0.5, 3.0) * rng.standard_normal(shape)).astype(dtype),
                     x_layout)
        delta = laid_out(rng.standard_normal(shape).astype(dtype), delta_layout)
        reference, fast = ([layer.forward(x), layer.backward(delta)] for layer in layers)
        for ours, theirs in zip(fast, reference):
            assert ours.shape == shape
            assert_close_in(dtype, ours, theirs)
        for ours, theirs in zip(layers[1].parameters_deltas + layers[1].buffers,
                                layers[0].parameters_deltas + layers[0].buffers, strict=True):
            assert_close_in(dtype, ours, theirs)


@pytest.mark.parametrize("name, shape", BATCH_NORM_SHAPES)
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_sanity_check_in_both_modes(name, shape, affine, training):
    layer = make_batch_norm(nn.reference, name, shape[1], 4, np.float32, affine=affine).train(training)
    stats = [b.copy() for b in layer.buffers]
    x = np.random.default_rng(5).normal(0.5, 1.5, shape)
    report = nn.sanity_check(layer, x, max_coords=None)
    assert report.passed
    assert [row.tensor for row in report] == ["input"] + (["parameter 0", "parameter 1"] if affine else [])
    for before, after in zip(stats, layer.buffers):  # the check ran on a copy
        np.testing.assert_array_equal(after, before)


@pytest.mark.parametrize("kwargs", [
    {"num_features": 3},
    {"num_features": 5, "eps": 1e-3, "momentum": 0.5, "affine": False},
    {"num_features": 2, "momentum": 1.0, "dtype": "float64"},
])
@pytest.mark.parametrize("name", ["BatchNorm1D", "BatchNorm2D"])
def test_batch_norm_has_the_constructor_parameters_and_buffers_of_the_fast_layer(name, kwargs):
    reference, fast = getattr(nn.reference, name)(**kwargs), getattr(nn, name)(**kwargs)
    assert reference.config() == fast.config() and repr(reference) == repr(fast)
    for mine, theirs in ((reference.parameters, fast.parameters), (reference.buffers, fast.buffers),
                         (reference.parameters_deltas, fast.parameters_deltas)):
        assert len(mine) == len(theirs)
        for a, b in zip(mine, theirs):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)
    assert type(reference).parameter_specs(**kwargs) == type(fast).parameter_specs(**kwargs)
    assert type(reference).buffer_specs(**kwargs) == type(fast).buffer_specs(**kwargs)
    assert len(reference.buffers) == 2 and len(reference.parameters) == (0 if kwargs.get("affine") is False else 2)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"num_features": 0}, ValueError, "num_features"),
    ({"num_features": 3, "eps": 0.0}, ValueError, "eps"),
    ({"num_features": 3, "momentum": 1.5}, ValueError, r"momentum must be >= 0 and <= 1, got 1.5"),
    ({"num_features": 3, "affine": 1}, TypeError, "affine"),
    ({"num_features": 3, "dtype": "int32"}, (TypeError, ValueError), "dtype"),
])
@pytest.mark.parametrize("name", ["BatchNorm1D", "BatchNorm2D"])
def test_batch_norm_refuses_bad_hyperparameters_as_the_fast_layer_does(name, kwargs, error, match):
    messages = []
    for kind in (nn.reference, nn):
        with pytest.raises(error, match=rf"{name}: .*{match}") as raised:
            getattr(kind, name)(**kwargs)
        messages.append((type(raised.value), str(raised.value)))
    assert messages[0] == messages[1]


@pytest.mark.parametrize("name, x, training, match", [
    ("BatchNorm1D", np.ones((4, 2)), True, r"BatchNorm1D: expected input of shape \(N, 3\) or \(N, 3, L\) \(3 features\), got shape \(4, 2\)"),
    ("BatchNorm2D", np.ones((4, 3, 2)), True, r"BatchNorm2D: expected input of shape \(N, 3, H, W\) \(3 channels\), got shape \(4, 3, 2\)"),
    ("BatchNorm1D", np.ones((1, 3)), True, r"BatchNorm1D: in training mode each feature needs at least 2 values \(N, or N\*L\)"),
    ("BatchNorm2D", np.ones((1, 3, 1, 1)), True, r"BatchNorm2D: in training mode each feature needs at least 2 values \(N\*H\*W\)"),
])
def test_batch_norm_refuses_bad_input_as_the_fast_layer_does(name, x, training, match):
    for kind in (nn.reference, nn):
        with pytest.raises(ValueError, match=match):
            getattr(kind, name)(3).train(training).forward(x)
    assert nn.reference.BatchNorm1D(3).eval().forward(np.ones((1, 3))).shape == (1, 3)  # eval takes one sample


def test_batch_norm_refuses_a_rebound_buffer_and_backward_before_forward():
    layer = nn.reference.BatchNorm2D(2)
    with pytest.raises(RuntimeError, match="BatchNorm2D.backward called before forward"):
        layer.backward(np.ones((2, 2, 2, 2)))
    layer.running_var = np.ones(2, np.float32)
    with pytest.raises(ValueError, match=r"BatchNorm2D: running_var is not the array in buffers"):
        layer.forward(np.ones((2, 2, 2, 2)))
    layer = nn.reference.BatchNorm1D(2)
    layer.forward(np.arange(6.0).reshape(3, 2))
    with pytest.raises(ValueError, match=r"BatchNorm1D"):
        layer.backward(np.ones((3, 3)))


def test_batch_norm_keeps_float32_and_releases_its_cache():
    layer = nn.reference.BatchNorm2D(3)
    x = np.random.default_rng(0).normal(size=(2, 3, 4, 4))  # float64 input is cast to the layer's float32
    y = layer.forward(x)
    assert y.dtype == np.float32 and layer.running_mean.dtype == np.float32
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0.0, atol=1e-6)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1.0, rtol=1e-4)  # (1 - eps / var, about)
    assert layer.backward(np.ones(y.shape)).dtype == np.float32
    assert [d.dtype for d in layer.parameters_deltas] == [np.float32] * 2
    layer.release_memory()
    assert layer._cache is None
    with pytest.raises(RuntimeError, match="BatchNorm2D.backward called before forward"):
        layer.backward(np.ones(y.shape))


def test_swapping_in_the_reference_batch_norms_gives_the_same_training_and_statistics():
    def build(kind):
        return nn.Sequential(kind.Conv2D(1, 3, 3, padding=1, dtype=np.float64, rng=1), kind.BatchNorm2D(3, dtype=np.float64),
                             nn.ReLU(), kind.MaxPool2D(2), nn.Flatten(), nn.Linear(27, 6, dtype=np.float64, rng=2),
                             kind.BatchNorm1D(6, affine=False, dtype=np.float64), nn.Tanh(),
                             nn.Linear(6, 3, dtype=np.float64, rng=3))

    assert_same_training(build, batch_size=6)
