"""Stochastic gradient descent, with momentum, Nesterov momentum and weight decay."""

from __future__ import annotations

import numpy as np

from ..validation import check_bool, check_number
from .base import Optimizer


class SGD(Optimizer):
    """Stochastic gradient descent, as in PyTorch.

        g = dL/dp + weight_decay * p
        v = momentum * v + g                 (v starts at 0; skipped when momentum == 0)
        step = g + momentum * v if nesterov else v
        p = p - lr * step
    """

    _state_names = ("velocity",)

    def __init__(self, source, lr, momentum=0.0, weight_decay=0.0, nesterov=False, decay_matrices_only=False):
        super().__init__(source)
        self.lr = check_number("SGD", "lr", lr, 0.0, low_inclusive=False)
        self.momentum = check_number("SGD", "momentum", momentum, 0.0, 1.0)
        self.weight_decay = check_number("SGD", "weight_decay", weight_decay, 0.0)
        self.decay_matrices_only = check_bool("SGD", "decay_matrices_only", decay_matrices_only)
        self.nesterov = check_bool("SGD", "nesterov", nesterov)
        if self.nesterov and self.momentum == 0:
            raise ValueError("SGD: nesterov=True needs momentum > 0, got momentum=0")
        self.velocity = None

    def _update(self, params, deltas) -> None:
        velocity = self._state_arrays("velocity", params) if self.momentum else [None] * len(params)
        for p, d, v in zip(params, deltas, velocity):
            g = self._gradient(p, d)
            s = self._scratch(p)
            if v is None:
                step = g
            else:
                v *= self.momentum
                v += g
                step = v
                if self.nesterov:
                    np.multiply(v, self.momentum, out=s)
                    s += g
                    step = s  # g + momentum * v
            np.multiply(step, self.lr, out=s)
            p -= s
