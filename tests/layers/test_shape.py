"""Flatten: a view forward, a reshape backward."""

import numpy as np
import pytest

import nnscratch as nn


def test_flatten_forward_backward():
    x = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    layer = nn.Flatten()
    y = layer.forward(x)
    assert y.shape == (2, 60) and np.shares_memory(x, y)
    for n in range(2):
        np.testing.assert_array_equal(y[n], [x[n, c, h, w] for c in range(3) for h in range(4) for w in range(5)])
    delta = np.random.default_rng(0).normal(size=(2, 60)).astype(np.float32)
    d_x = layer.backward(delta)
    assert d_x.shape == x.shape and d_x.dtype == np.float32
    np.testing.assert_array_equal(d_x[1, 2, 3, 4], delta[1, 59])
    assert layer.output_shape((7, 3, 4, 5)) == (7, 60)


def test_flatten_sanity_check_despite_returning_a_view():
    report = nn.sanity_check(nn.Flatten(), np.random.default_rng(0).normal(size=(2, 3, 2)))
    assert report.passed and [(row.tensor, row.coords) for row in report] == [("input", 12)]
    assert report[0].max_abs_err < 1e-9  # a reshape: central differences are exact up to rounding


def test_flatten_bad_input():
    layer = nn.Flatten()
    with pytest.raises(ValueError, match=r"Flatten: expected an input with a batch axis"):
        layer.forward(np.zeros(()))
    layer.forward(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match=r"Flatten.backward: expected delta of shape \(2, 12\), got \(2, 11\)"):
        layer.backward(np.zeros((2, 11)))


def test_flatten_backward_returns_delta_in_the_inputs_memory_order():
    x = np.arange(3 * 2 * 4 * 5, dtype=np.float32).reshape(3, 2, 4, 5).transpose(1, 0, 2, 3)  # channel-major
    layer = nn.Flatten()
    y = layer.forward(x)
    np.testing.assert_array_equal(y, np.ascontiguousarray(x).reshape(2, 60))
    delta = np.random.default_rng(0).normal(size=(2, 60)).astype(np.float32)
    d_x = layer.backward(delta)
    np.testing.assert_array_equal(d_x, delta.reshape(2, 3, 4, 5))
    assert d_x.strides == x.strides and d_x.dtype == np.float32
    # C-order input: backward stays a view of delta, as before.
    layer.forward(np.ascontiguousarray(x))
    assert np.shares_memory(layer.backward(delta), delta)
