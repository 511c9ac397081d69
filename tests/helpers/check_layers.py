"""Plain protocol layers written the way a user would (no base class), and the call that checks one:
what the tests of sanity_check and of its working copy and sampling share (tests/check/)."""

from __future__ import annotations

import numpy as np

from nnscratch.check import sanity_check


class PlainLinear:
    """y = x @ W + b, with preallocated delta buffers written in place."""

    def __init__(self, n_in=4, n_out=3, dtype=np.float64, seed=0):
        rng = np.random.default_rng(seed)
        self.W = rng.standard_normal((n_in, n_out)).astype(dtype)
        self.b = rng.standard_normal(n_out).astype(dtype)
        self.parameters = [self.W, self.b]
        self.parameters_deltas = [np.zeros_like(self.W), np.zeros_like(self.b)]

    def forward(self, x, *args):
        self.x = x.astype(self.W.dtype, copy=False)
        return self.x @ self.W + self.b

    def backward(self, delta):
        self.parameters_deltas[0][...] = self.x.T @ delta
        self.parameters_deltas[1][...] = delta.sum(axis=0)
        return delta @ self.W.T


class WrongWeightGradient(PlainLinear):
    def backward(self, delta):
        delta_x = super().backward(delta)
        self.parameters_deltas[0][1, 2] += 0.5  # a single wrong coordinate
        return delta_x


class Square:
    """y = x**2 elementwise; no parameters at all (not even the attributes)."""

    def forward(self, x, *args):
        self.x = x
        return x**2

    def backward(self, delta):
        return 2 * self.x * delta


def run_check(layer, x=None, **kwargs):
    x = np.random.default_rng(1).standard_normal((5, 4)) if x is None else x
    return sanity_check(layer, x, **kwargs)
