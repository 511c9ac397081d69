"""RMSprop and Adagrad: steps divided by a running (RMSprop) or summed (Adagrad) size of the gradient."""

from __future__ import annotations

import numpy as np

from ..validation import check_bool, check_number
from .base import Optimizer


class RMSprop(Optimizer):
    """RMSprop (Hinton), as PyTorch's: each step divided by a running RMS of the gradient.

        g = dL/dp + weight_decay * p
        v = alpha v + (1 - alpha) g^2                         (v starts at 0)
        centered:  a = alpha a + (1 - alpha) g,  v' = v - a^2  (else v' = v)
        u = g / (sqrt(v') + eps)
        b = momentum b + u;  p = p - lr * b                   (momentum > 0; b starts at 0)
        p = p - lr * u                                        (momentum == 0)
    """

    _state_names = ("square_avg", "momentum_buffer", "grad_avg")

    def __init__(self, source, lr=0.01, alpha=0.99, eps=1e-8, momentum=0.0, weight_decay=0.0, centered=False,
                 decay_matrices_only=False):
        super().__init__(source)
        self.lr = check_number("RMSprop", "lr", lr, 0.0, low_inclusive=False)
        self.alpha = check_number("RMSprop", "alpha", alpha, 0.0, 1.0)
        self.eps = check_number("RMSprop", "eps", eps, 0.0, low_inclusive=False)
        self.momentum = check_number("RMSprop", "momentum", momentum, 0.0, 1.0)
        self.weight_decay = check_number("RMSprop", "weight_decay", weight_decay, 0.0)
        self.decay_matrices_only = check_bool("RMSprop", "decay_matrices_only", decay_matrices_only)
        self.centered = check_bool("RMSprop", "centered", centered)
        self.square_avg = self.momentum_buffer = self.grad_avg = None

    def _update(self, params, deltas) -> None:
        alpha = self.alpha
        square_avg = self._state_arrays("square_avg", params)
        momentum = self._state_arrays("momentum_buffer", params) if self.momentum else [None] * len(params)
        grad_avg = self._state_arrays("grad_avg", params) if self.centered else [None] * len(params)
        for p, d, v, b, a in zip(params, deltas, square_avg, momentum, grad_avg):
            g = self._gradient(p, d)
            s = self._scratch(p)
            v *= alpha
            np.square(g, out=s)
            s *= 1.0 - alpha
            v += s  # v = alpha v + (1 - alpha) g^2
            if a is None:
                np.sqrt(v, out=s)
            else:
                a *= alpha
                np.multiply(g, 1.0 - alpha, out=s)
                a += s  # a = alpha a + (1 - alpha) g
                np.square(a, out=s)
                np.subtract(v, s, out=s)
                np.sqrt(s, out=s)
            s += self.eps
            np.divide(g, s, out=s)  # u = g / (sqrt(v') + eps)
            if b is not None:
                b *= self.momentum
                b += s
                np.multiply(b, self.lr, out=s)
            else:
                s *= self.lr
            p -= s


class Adagrad(Optimizer):
    """Adagrad (Duchi et al.), as PyTorch's: each weight's step shrinks with its summed squared gradients.

        g = dL/dp + weight_decay * p
        G = G + g^2                       (G starts at 0)
        p = p - lr * g / (sqrt(G) + eps)
    """

    _state_names = ("sum_squares",)

    def __init__(self, source, lr=0.01, eps=1e-10, weight_decay=0.0, decay_matrices_only=False):
        super().__init__(source)
        self.lr = check_number("Adagrad", "lr", lr, 0.0, low_inclusive=False)
        self.eps = check_number("Adagrad", "eps", eps, 0.0, low_inclusive=False)
        self.weight_decay = check_number("Adagrad", "weight_decay", weight_decay, 0.0)
        self.decay_matrices_only = check_bool("Adagrad", "decay_matrices_only", decay_matrices_only)
        self.sum_squares = None

    def _update(self, params, deltas) -> None:
        for p, d, total in zip(params, deltas, self._state_arrays("sum_squares", params)):
            g = self._gradient(p, d)
            s = self._scratch(p)
            np.square(g, out=s)
            total += s  # G = G + g^2
            np.sqrt(total, out=s)
            s += self.eps
            np.divide(g, s, out=s)
            s *= self.lr
            p -= s
