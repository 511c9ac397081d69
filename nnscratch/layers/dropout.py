"""Dropout: random zeroing in training, the identity in evaluation."""

from __future__ import annotations

import numbers

import numpy as np

from ..kernels.memory import KeepsMemory
from ..protocol import Layer
from ..seeding import get_rng


class Dropout(KeepsMemory, Layer):
    """Inverted dropout: in training, y = x * m / (1 - p) with m ~ Bernoulli(1 - p) per element.

    Each element is zeroed with probability p and the survivors are scaled by 1 / (1 - p), so the
    expected output equals x and eval mode needs no rescaling: there it is the identity (y = x), as it
    is for p = 0. Backward uses the exact mask of the last forward: dL/dx = delta * m / (1 - p).

    Randomness comes from ``self.rng``, a numpy Generator (``rng``: a Generator, an int seed, or None
    to draw one from ``nnscratch.seed``). ``sanity_check`` rewinds it before every forward, so every
    forward of a check draws the same mask.

    The output keeps the input's dtype (integers become float32).

    Shape:
        x: any, y: same as x
    """

    _caches = ("_mask", "_shape")  # what forward keeps for backward (see kernels/memory.py)

    def __init__(self, p=0.5, rng=None):
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, numbers.Real):
            raise TypeError(f"Dropout: p must be a number in [0, 1), got {type(p).__name__} {p!r}")
        if not 0.0 <= float(p) < 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1) (the probability of zeroing an element), got {p!r}")
        self.p = float(p)
        self.rng = get_rng(rng)
        self._mask = None  # the scaled mask m / (1 - p) of the last training forward; None: identity
        self._shape = None  # the shape of the last output (None before any forward)

    def config(self) -> dict:
        return {"p": self.p}

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def forward(self, x, *args):
        self._check_input(x)
        if x.dtype.kind != "f":
            x = x.astype(np.float32)  # integer images and the like: compute in float32
        self._shape = x.shape
        if not self.training or self.p == 0.0:
            self._mask = None
            return x
        self._mask = self._scaled_mask(x)
        return x * self._mask

    def backward(self, delta):
        self._check_forward_called(self._shape)
        delta = self._check_delta(delta, self._shape)
        if self._mask is None:
            return delta
        return delta.astype(self._mask.dtype, copy=False) * self._mask

    def _scaled_mask(self, x: np.ndarray) -> np.ndarray:
        """m / (1 - p) in x's dtype, from uniforms drawn in that dtype (no float64 temporary for a
        float32 batch)."""
        drawn = x.dtype if x.dtype in (np.float32, np.float64) else np.dtype(np.float32)  # what numpy draws
        keep = self.rng.random(x.shape, dtype=drawn) >= self.p
        return keep.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - self.p))
