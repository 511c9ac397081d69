"""Element-wise activations and Softmax. None has parameters; each keeps its input's dtype."""

from __future__ import annotations

import numpy as np

from .base import Layer


class _Elementwise(Layer):
    """Shared plumbing: check the input is an array, cache the output, check delta's shape."""

    def _input(self, x) -> np.ndarray:
        if not isinstance(x, np.ndarray):
            raise TypeError(f"{self.name}: expected a numpy array as input, got {type(x).__name__}")
        if x.dtype.kind != "f":
            x = x.astype(np.float32)  # integer images and the like: compute in float32
        return x

    def _delta(self, delta, cached) -> np.ndarray:
        self._check_forward_called(cached)
        return self._check_delta(delta, cached.shape).astype(cached.dtype, copy=False)

    def output_shape(self, input_shape):
        return tuple(input_shape)


class Sigmoid(_Elementwise):
    """Logistic function: y = 1 / (1 + exp(-x)), dy/dx = y (1 - y).

    Computed as 0.5 + 0.5 tanh(x / 2), the same function, which never overflows for large |x|.

    Shape:
        x: any, y: same as x
    """

    def __init__(self):
        super().__init__()
        self._y = None

    def forward(self, x, *args):
        x = self._input(x)
        y = np.tanh(x * 0.5)
        y *= 0.5
        y += 0.5
        self._y = y
        return y

    def backward(self, delta):
        delta = self._delta(delta, self._y)
        return delta * self._y * (1 - self._y)


class Tanh(_Elementwise):
    """Hyperbolic tangent: y = tanh(x), dy/dx = 1 - y^2.

    Shape:
        x: any, y: same as x
    """

    def __init__(self):
        super().__init__()
        self._y = None

    def forward(self, x, *args):
        self._y = np.tanh(self._input(x))
        return self._y

    def backward(self, delta):
        delta = self._delta(delta, self._y)
        return delta * (1 - self._y * self._y)


class ReLU(_Elementwise):
    """Rectified linear unit: y = max(x, 0), dy/dx = 1 where x > 0, else 0 (0 at the kink itself).

    Shape:
        x: any, y: same as x
    """

    def __init__(self):
        super().__init__()
        self._mask = None
        self._dtype = None

    def forward(self, x, *args):
        x = self._input(x)
        # max(x, 0) against an array of zeros, not the scalar 0: numpy's SIMD loop takes two arrays,
        # and the one for a broadcast scalar is several times slower. The zeros array becomes y.
        # (Keeping one zeros array from call to call would save its fill, ~5 us per MLP step, but
        # would hold an input-sized array for good after a large inference batch.)
        y = np.zeros_like(x)
        np.maximum(x, y, out=y)
        # y > 0 exactly where x > 0 (NaN included), and y is contiguous where x may be a strided view.
        # The mask is private (only backward reads it), so its buffer is rewritten from one forward
        # to the next: a fresh large array per call made the allocator hand memory back to the
        # system and fault it in again, ~600 page faults per CNN training step.
        mask = self._mask
        if mask is None or mask.shape != y.shape or mask.strides != tuple(s // y.itemsize for s in y.strides):
            mask = self._mask = np.empty_like(y, dtype=bool)
        np.greater(y, 0, out=mask)
        self._dtype = x.dtype
        return y

    def backward(self, delta):
        self._check_forward_called(self._mask)
        delta = self._check_delta(delta, self._mask.shape).astype(self._dtype, copy=False)
        return delta * self._mask


class Softmax(_Elementwise):
    """Softmax over the last axis: y_i = exp(x_i) / sum_j exp(x_j).

    Backward: dL/dx_i = y_i (delta_i - sum_j delta_j y_j).

    Shape:
        x: (..., C), y: same as x, each row summing to 1
    """

    def __init__(self):
        super().__init__()
        self._y = None

    def forward(self, x, *args):
        x = self._input(x)
        if x.ndim == 0:
            raise ValueError("Softmax: expected an input with at least 1 axis (..., C), got a scalar")
        # exp(x - max) is the same softmax and never overflows: the largest exponent is 0.
        y = x - x.max(axis=-1, keepdims=True)
        np.exp(y, out=y)
        y /= y.sum(axis=-1, keepdims=True)
        self._y = y
        return y

    def backward(self, delta):
        delta = self._delta(delta, self._y)
        y = self._y
        return y * (delta - np.sum(delta * y, axis=-1, keepdims=True))
