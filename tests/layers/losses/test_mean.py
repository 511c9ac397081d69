"""Mean (nnscratch/layers/losses/mean.py): the mean of the per-sample losses, its gradient, and a bad
delta refused."""

import numpy as np
import pytest

import nnscratch as nn


def test_mean_forward_backward():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    layer = nn.Mean()
    y = layer.forward(x)
    assert y.shape == () and y.dtype == np.float32 and y == pytest.approx(5.5)
    grad = layer.backward()
    assert grad.dtype == np.float32
    np.testing.assert_allclose(grad, np.full((3, 4), 1 / 12))
    np.testing.assert_allclose(layer.backward(3.0), np.full((3, 4), 3 / 12))


def test_mean_bad_delta():
    layer = nn.Mean()
    layer.forward(np.ones(3))
    with pytest.raises(ValueError, match=r"Mean.backward: expected a scalar delta \(shape \(\)\), got shape \(3,\)"):
        layer.backward(np.ones(3))
