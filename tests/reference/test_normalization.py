"""The textbook batch norms (nnscratch/reference/normalization.py) against the loop twins in
helpers/naive.py over training steps and in eval mode, the fast batch norms against them on any shape,
dtype and memory layout, and what makes a twin a stand-in: constructor, buffers, checks, training."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnscratch as nn
from helpers.naive import naive_batchnorm_backward, naive_batchnorm_forward

from helpers.swap_training import assert_same_training


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
