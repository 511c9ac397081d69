"""Softmax over the last axis: the one ``softmax`` function of the package, and the ``Softmax`` layer.

The losses on logits (``SoftmaxCrossEntropy``), ``class_probabilities`` and the attention layers
compute their softmax through ``softmax`` here or as it does (the row's max subtracted first).
"""

from __future__ import annotations

import numpy as np

from .activations import Elementwise


def softmax(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, in x's dtype: y_i = exp(x_i - m) / sum_j exp(x_j - m), m = max_j x_j.

    Subtracting the row's max leaves the result unchanged and keeps every exponent at or below 0,
    so exp never overflows. ``x`` is a float array; the ``Softmax`` layer and ``class_probabilities``
    (in float64) both compute through this function.

    Shape:
        x: (..., C), y: same as x, each row summing to 1
    """
    y = x - x.max(axis=-1, keepdims=True)
    np.exp(y, out=y)
    y /= y.sum(axis=-1, keepdims=True)
    return y


class Softmax(Elementwise):
    """Softmax over the last axis: y_i = exp(x_i) / sum_j exp(x_j), computed by ``softmax``.

    Backward: dL/dx_i = y_i (delta_i - sum_j delta_j y_j).

    Shape:
        x: (..., C), y: same as x, each row summing to 1
    """

    _caches = ("_y",)

    def __init__(self):
        super().__init__()
        self._y = None

    def forward(self, x, *args):
        x = self._input(x)
        if x.ndim == 0:
            raise ValueError("Softmax: expected an input with at least 1 axis (..., C), got a scalar")
        if x.shape[-1] < 1:  # no values to sum to 1
            raise ValueError(f"Softmax: expected at least one value along the last axis, got shape {x.shape}")
        self._y = softmax(x)
        return self._y

    def backward(self, delta):
        delta = self._delta(delta, self._y)
        y = self._y
        return y * (delta - np.sum(delta * y, axis=-1, keepdims=True))
