"""Sigmoid, Tanh, ReLU, Softmax: forward and backward against element-by-element references."""

import math

import numpy as np
import pytest

import nnscratch as nn


def naive_sigmoid(x):
    return np.vectorize(lambda v: 1 / (1 + math.exp(-v)) if v > -700 else 0.0)(x)


def naive_tanh(x):
    return np.vectorize(math.tanh)(x)


def naive_relu(x):
    return np.vectorize(lambda v: v if v > 0 else 0.0)(x)


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


# (layer, forward reference, derivative of the function at x given y)
ELEMENTWISE = [
    (nn.Sigmoid, naive_sigmoid, lambda x, y: y * (1 - y)),
    (nn.Tanh, naive_tanh, lambda x, y: 1 - y**2),
    (nn.ReLU, naive_relu, lambda x, y: (x > 0).astype(float)),
]


@pytest.mark.parametrize("cls, reference, derivative", ELEMENTWISE, ids=lambda v: getattr(v, "__name__", ""))
def test_elementwise_forward_backward(cls, reference, derivative):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 4, 5)) * 3
    delta = rng.normal(size=x.shape)
    layer = cls()
    y = layer.forward(x)
    np.testing.assert_allclose(y, reference(x), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(layer.backward(delta), delta * derivative(x, reference(x)), rtol=1e-12, atol=1e-15)
    assert layer.parameters == [] and layer.parameters_deltas == []


@pytest.mark.parametrize("cls", [nn.Sigmoid, nn.Tanh, nn.ReLU, nn.Softmax])
def test_keeps_float32(cls):
    x = np.random.default_rng(0).normal(size=(4, 6)).astype(np.float32)
    layer = cls()
    y = layer.forward(x)
    d_x = layer.backward(np.ones_like(y, dtype=np.float64))
    assert y.dtype == np.float32 and d_x.dtype == np.float32


def test_sigmoid_is_finite_and_saturates_for_huge_inputs():
    y = nn.Sigmoid().forward(np.array([-1e4, -50.0, 0.0, 50.0, 1e4], np.float32))
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y, [0, 0, 0.5, 1, 1], atol=1e-7)


def test_relu_gradient_is_zero_at_the_kink():
    layer = nn.ReLU()
    layer.forward(np.array([-1.0, 0.0, 2.0]))
    np.testing.assert_array_equal(layer.backward(np.ones(3)), [0.0, 0.0, 1.0])


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


@pytest.mark.parametrize("cls", [nn.Sigmoid, nn.Tanh, nn.ReLU, nn.Softmax])
def test_sanity_check(cls):
    check = pytest.importorskip("nnscratch.check")
    rng = np.random.default_rng(3)
    # Keep ReLU's inputs away from its kink at 0, where the derivative is undefined.
    x = rng.uniform(0.2, 2.0, size=(3, 5)) * rng.choice([-1, 1], size=(3, 5))
    check.sanity_check(cls(), x.astype(np.float32))


@pytest.mark.parametrize("cls", [nn.Sigmoid, nn.Tanh, nn.ReLU, nn.Softmax])
def test_bad_input(cls):
    layer = cls()
    with pytest.raises(TypeError, match=rf"{cls.__name__}: expected a numpy array as input, got list"):
        layer.forward([1.0, 2.0])
    layer.forward(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=rf"{cls.__name__}.backward: expected delta of shape \(2, 3\).*got \(3, 2\)"):
        layer.backward(np.zeros((3, 2)))
