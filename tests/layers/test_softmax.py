"""Softmax over the last axis (nnscratch/layers/softmax.py): the softmax function on its own (values,
rows summing to 1, no overflow, the input's dtype kept) and the Softmax layer against a loop twin and
its Jacobian, stable for large inputs, over the last axis of any input."""

import math

import numpy as np
import pytest

import nnscratch as nn
from nnscratch.layers.softmax import softmax


def naive_softmax_rows(x):
    out = np.zeros_like(x)
    for n in range(x.shape[0]):
        exps = [math.exp(v - max(x[n])) for v in x[n]]
        total = sum(exps)
        out[n] = [e / total for e in exps]
    return out


def naive_softmax_jacobian_product(y, delta):
    """dL/dx_i = sum_j delta_j dy_j/dx_i with dy_j/dx_i = y_j (1[i == j] - y_i)."""
    out = np.zeros_like(y)
    for n in range(y.shape[0]):
        for i in range(y.shape[1]):
            out[n, i] = sum(delta[n, j] * y[n, j] * ((i == j) - y[n, i]) for j in range(y.shape[1]))
    return out


def test_softmax_matches_reference_and_rows_sum_to_one():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 7))
    delta = rng.normal(size=(4, 7))
    layer = nn.Softmax()
    y = layer.forward(x)
    np.testing.assert_allclose(y, naive_softmax_rows(x), rtol=1e-12)
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(layer.backward(delta), naive_softmax_jacobian_product(y, delta), rtol=1e-10, atol=1e-14)


def test_softmax_is_stable_for_large_inputs():
    x = np.array([[1e4, 1e4 - 1, -1e4], [1000.0, 0.0, 0.0]], np.float32)
    y = nn.Softmax().forward(x)
    assert np.all(np.isfinite(y))
    e = math.exp(-1)
    np.testing.assert_allclose(y[0], [1 / (1 + e), e / (1 + e), 0.0], rtol=1e-6)
    np.testing.assert_allclose(y[1], [1.0, 0.0, 0.0], atol=1e-7)


def test_softmax_over_last_axis_of_3d_input():
    x = np.random.default_rng(2).normal(size=(2, 3, 4))
    y = nn.Softmax().forward(x)
    np.testing.assert_allclose(y.reshape(6, 4), naive_softmax_rows(x.reshape(6, 4)), rtol=1e-12)


# -- the softmax function ------------------------------------------------------------------------
def test_softmax_function_against_the_loop_twin_on_any_leading_axes():
    x = np.random.default_rng(0).standard_normal((2, 3, 5))
    y = softmax(x.copy())
    np.testing.assert_allclose(y.reshape(6, 5), naive_softmax_rows(x.reshape(6, 5)), rtol=1e-12)
    np.testing.assert_allclose(y.sum(axis=-1), 1.0, rtol=1e-15)


def test_softmax_function_keeps_the_dtype_and_never_overflows():
    x = np.array([[1000.0, 1001.0, 999.0], [-1000.0, -1000.0, -1000.0]], np.float32)
    y = softmax(x)
    assert y.dtype == np.float32 and np.isfinite(y).all()
    e = np.exp([-1.0, 0.0, -2.0])
    np.testing.assert_allclose(y[0], e / e.sum(), rtol=1e-6)
    np.testing.assert_allclose(y[1], 1 / 3, rtol=1e-6)
    np.testing.assert_array_equal(x[0], [1000.0, 1001.0, 999.0])  # a new array: the input is left alone


def test_the_layer_computes_through_the_function():
    x = np.random.default_rng(1).standard_normal((4, 3))
    np.testing.assert_array_equal(nn.Softmax().forward(x), softmax(x))


def test_softmax_over_no_classes_is_a_clear_error():
    # rows of no values cannot sum to 1 (the max over them was numpy's own error)
    with pytest.raises(ValueError, match=r"^Softmax: expected at least one value along the last axis, got shape \(2, 3, 0\)$"):
        nn.Softmax().forward(np.zeros((2, 3, 0)))
    assert nn.Softmax().forward(np.zeros((0, 3))).shape == (0, 3)  # no rows is fine: nothing to normalise
