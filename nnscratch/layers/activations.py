"""Element-wise activations. None has parameters; each keeps its input's dtype.

Sigmoid, Tanh, ReLU, LeakyReLU, ELU, GELU (tanh approximation), SiLU and Softplus; Softmax, over the
last axis, is in softmax.py. Each is finite, with a finite gradient and no overflow warning, for any
finite input.

Each class spells out its own constructor, forward and backward although they share a shape: one
class is the whole story of one function, formula to code, for a reader who opens just that one.
"""

from __future__ import annotations

import numpy as np

from ..kernels.memory import KeepsMemory
from ..kernels.recycle import RECYCLED_SIZE, empty_in_order, memory_order, recycled_empty
from ..kernels import gelu
from ..protocol import Layer
from ..validation import check_number


class Elementwise(KeepsMemory, Layer):
    """Shared plumbing: check the input is an array, cache the output, check delta's shape."""

    def _input(self, x) -> np.ndarray:
        self._check_input(x)
        if x.dtype.kind != "f":
            x = x.astype(np.float32)  # integer images and the like: compute in float32
        return x

    def _delta(self, delta, cached) -> np.ndarray:
        self._check_forward_called(cached)
        return self._check_delta(delta, cached.shape).astype(cached.dtype, copy=False)

    def output_shape(self, input_shape):
        return tuple(input_shape)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)) as 0.5 + 0.5 tanh(x / 2): the same function, never overflowing."""
    y = np.tanh(x * 0.5)
    y *= 0.5
    y += 0.5
    return y


class Sigmoid(Elementwise):
    """Logistic function: y = 1 / (1 + exp(-x)), dy/dx = y (1 - y).

    Computed as 0.5 + 0.5 tanh(x / 2), the same function, which never overflows for large |x|.

    Shape:
        x: any, y: same as x
    """

    _caches = ("_y",)

    def __init__(self):
        super().__init__()
        self._y = None

    def forward(self, x, *args):
        self._y = _sigmoid(self._input(x))
        return self._y

    def backward(self, delta):
        delta = self._delta(delta, self._y)
        return delta * self._y * (1 - self._y)


class Tanh(Elementwise):
    """Hyperbolic tangent: y = tanh(x), dy/dx = 1 - y^2.

    Shape:
        x: any, y: same as x
    """

    _caches = ("_y",)

    def __init__(self):
        super().__init__()
        self._y = None

    def forward(self, x, *args):
        self._y = np.tanh(self._input(x))
        return self._y

    def backward(self, delta):
        delta = self._delta(delta, self._y)
        return delta * (1 - self._y * self._y)


class ReLU(Elementwise):
    """Rectified linear unit: y = max(x, 0), dy/dx = 1 where x > 0, else 0 (0 at the kink itself).

    Shape:
        x: any, y: same as x
    """

    _caches = ("_mask",)

    def __init__(self):
        super().__init__()
        self._mask = None
        self._dtype = None

    def forward(self, x, *args):
        x = self._input(x)
        self._mask, self._dtype = x > 0, x.dtype  # where the gradient passes; False at NaN, as at 0
        return np.maximum(x, 0)

    def backward(self, delta):
        self._check_forward_called(self._mask)
        delta = self._check_delta(delta, self._mask.shape).astype(self._dtype, copy=False)
        return delta * self._mask


class LeakyReLU(Elementwise):
    """Leaky ReLU: y = x where x > 0, else negative_slope * x; dy/dx = 1 where x > 0, else
    negative_slope (negative_slope at the kink itself, as PyTorch).

    Shape:
        x: any, y: same as x
    """

    _caches = ("_positive",)

    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = check_number("LeakyReLU", "negative_slope", negative_slope)
        self._positive = None
        self._dtype = None

    def config(self):
        return {"negative_slope": self.negative_slope}

    def forward(self, x, *args):
        x = self._input(x)
        self._positive, self._dtype = x > 0, x.dtype
        return np.where(self._positive, x, x * self.negative_slope)

    def backward(self, delta):
        self._check_forward_called(self._positive)
        delta = self._check_delta(delta, self._positive.shape).astype(self._dtype, copy=False)
        return np.where(self._positive, delta, delta * self.negative_slope)


class ELU(Elementwise):
    """Exponential linear unit: y = x where x > 0, else alpha (exp(x) - 1).

    dy/dx = 1 where x > 0, else alpha exp(x). The exponential only ever sees min(x, 0), so a large
    positive x cannot overflow it, and expm1 keeps small negative x accurate.

    Shape:
        x: any, y: same as x
    """

    _caches = ("_positive", "_negative_part")

    def __init__(self, alpha=1.0):
        super().__init__()
        self.alpha = check_number("ELU", "alpha", alpha)
        self._positive = None
        self._negative_part = None

    def config(self):
        return {"alpha": self.alpha}

    def forward(self, x, *args):
        x = self._input(x)
        self._positive, self._negative_part = x > 0, np.minimum(x, 0)
        return np.where(self._positive, x, self.alpha * np.expm1(self._negative_part))

    def backward(self, delta):
        delta = self._delta(delta, self._negative_part)
        # alpha exp(x) from x itself, not as y + alpha, which loses its digits for x << 0
        return np.where(self._positive, delta, delta * (self.alpha * np.exp(self._negative_part)))


class GELU(Elementwise):
    """Gaussian error linear unit, tanh approximation (PyTorch's ``GELU(approximate="tanh")``):

        y = 0.5 x (1 + tanh(k (x + 0.044715 x^3))),  k = sqrt(2 / pi)
        dy/dx = 0.5 (1 + t) + 0.5 x (1 - t^2) k (1 + 3 * 0.044715 x^2),  t = that tanh

    This is not the exact erf form (PyTorch's default ``GELU()``); the two differ by up to ~5e-4.

    Computed in the input's dtype a cache-sized block of rows at a time (kernels/gelu.py), its
    temporaries in per-thread work memory. Forward keeps only x, and backward computes t again from
    it, as PyTorch does: on a Transformer's (N, T, 4 dim) activations, storing t (and reading it
    back) moved more memory than computing it again costs. Backward uses 1 - t^2 = 4 s (1 - s),
    s = (1 + t) / 2.

    Shape:
        x: any, y: same as x
    """

    _caches = ("_x",)
    _stores = ("_recycled",)  # results, recycled (see kernels/recycle.py)

    def __init__(self):
        super().__init__()
        self._x = None
        self._recycled: dict = {}

    def _empty(self, key: str, like: np.ndarray) -> np.ndarray:
        """An array laid out in memory as ``like`` (Conv2D's channel-major output stays so), recycled
        when large: below RECYCLED_SIZE elements a fresh one costs less than the bookkeeping."""
        if like.size < RECYCLED_SIZE:
            return np.empty_like(like)
        if like.flags.c_contiguous:
            return recycled_empty(self._recycled, key, like.shape, like.dtype)
        return empty_in_order(like.shape, memory_order(like), like.dtype, self._recycled, key)

    def forward(self, x, *args):
        x = self._input(x)
        y = self._empty("y", x)
        gelu.forward_into(x, y)
        self._x = x
        return y

    def backward(self, delta):
        delta = self._delta(delta, self._x)
        x = self._x
        dx = self._empty("dx", x)
        gelu.backward_into(x, delta, dx)
        return dx


class SiLU(Elementwise):
    """Sigmoid linear unit (swish): y = x sigmoid(x); dy/dx = s (1 + x (1 - s)), s = sigmoid(x).

    Shape:
        x: any, y: same as x
    """

    _caches = ("_x", "_sigmoid")

    def __init__(self):
        super().__init__()
        self._x = None
        self._sigmoid = None

    def forward(self, x, *args):
        x = self._input(x)
        self._x, self._sigmoid = x, _sigmoid(x)
        return x * self._sigmoid

    def backward(self, delta):
        delta = self._delta(delta, self._x)
        s = self._sigmoid
        return delta * (s * (1 + self._x * (1 - s)))


class Softplus(Elementwise):
    """Smooth ReLU: y = log(1 + exp(beta x)) / beta, and y = x where beta x > threshold (as PyTorch).

    dy/dx = sigmoid(beta x), and 1 above the threshold. log(1 + exp(z)) is computed as
    max(z, 0) + log1p(exp(-|z|)), the same value, whose exponent is never positive, so no input
    overflows it, whatever the threshold.

    Shape:
        x: any, y: same as x
    """

    _caches = ("_z",)

    def __init__(self, beta=1.0, threshold=20.0):
        super().__init__()
        self.beta = check_number("Softplus", "beta", beta, 0.0, low_inclusive=False)
        self.threshold = check_number("Softplus", "threshold", threshold)
        self._z = None

    def config(self):
        return {"beta": self.beta, "threshold": self.threshold}

    def forward(self, x, *args):
        x = self._input(x)
        with np.errstate(over="ignore"):
            # beta x may overflow to +-inf for x near the dtype's limit: +inf lands above the
            # threshold (y = x), -inf gives log1p(exp(-inf)) + 0 = 0, both the right limits.
            z = x * self.beta
        soft = np.log1p(np.exp(-np.abs(z)))
        soft += np.maximum(z, 0)
        soft /= self.beta
        self._z = z
        return np.where(z > self.threshold, x, soft)

    def backward(self, delta):
        delta = self._delta(delta, self._z)
        z = self._z
        return np.where(z > self.threshold, delta, delta * _sigmoid(z))
