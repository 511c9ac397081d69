"""Central differences of a scalar function of an array, element by element, in float64: the plain
numerical gradient that loop-level tests compare a backward with (tests/kernels/test_recurrent.py,
tests/reference/test_recurrent.py)."""

from __future__ import annotations

import numpy as np


def central_differences(loss, array: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """d loss() / d array, nudging each element of ``array`` in place by +-eps (put back after)."""
    grad = np.zeros(array.shape)
    for index in np.ndindex(array.shape):
        saved = array[index]
        array[index] = saved + eps
        plus = loss()
        array[index] = saved - eps
        minus = loss()
        array[index] = saved
        grad[index] = (plus - minus) / (2 * eps)
    return grad
