"""Adam and AdamW."""

from __future__ import annotations

import math

import numpy as np

from ..validation import check_bool, check_number
from .base import Optimizer


class Adam(Optimizer):
    """Adam (Kingma & Ba), with L2 weight decay added to the gradient as in PyTorch's Adam.

        g = dL/dp + weight_decay * p
        m = beta1 m + (1 - beta1) g            v = beta2 v + (1 - beta2) g^2
        m_hat = m / (1 - beta1^t)              v_hat = v / (1 - beta2^t)      (t = 1, 2, ...)
        p = p - lr * m_hat / (sqrt(v_hat) + eps)
    """

    _state_names = ("m", "v")
    _decoupled = False  # AdamW: weight decay shrinks p directly instead of entering g

    def __init__(self, source, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decay_matrices_only=False):
        super().__init__(source)
        name = type(self).__name__
        self.lr = check_number(name, "lr", lr, 0.0, low_inclusive=False)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"{name}: betas must be a pair (beta1, beta2), got {betas!r}")
        self.betas = (
            check_number(name, "beta1", betas[0], 0.0, 1.0),
            check_number(name, "beta2", betas[1], 0.0, 1.0),
        )
        self.eps = check_number(name, "eps", eps, 0.0, low_inclusive=False)
        self.weight_decay = check_number(name, "weight_decay", weight_decay, 0.0)
        self.decay_matrices_only = check_bool(name, "decay_matrices_only", decay_matrices_only)
        self.m = None
        self.v = None

    def _update(self, params, deltas) -> None:
        beta1, beta2 = self.betas
        m_all, v_all = self._state_arrays("m", params), self._state_arrays("v", params)
        correction1 = 1.0 - beta1**self.steps
        correction2 = 1.0 - beta2**self.steps
        # lr * m_hat / (sqrt(v_hat) + eps) is the same as step_size * m / (sqrt(v) + eps_hat): the
        # bias corrections fold into two scalars, and every pass below is in place, into one scratch
        # array (fresh temporaries for each product made a step about 1.3x slower).
        step_size = self.lr * math.sqrt(correction2) / correction1
        eps_hat = self.eps * math.sqrt(correction2)
        for p, d, m, v in zip(params, deltas, m_all, v_all):
            if self._decoupled:
                if self._decays(p):
                    p *= 1.0 - self.lr * self.weight_decay
                g = d
            else:
                g = self._gradient(p, d)
            s = self._scratch(p)
            m *= beta1
            np.multiply(g, 1.0 - beta1, out=s)
            m += s  # m = beta1 m + (1 - beta1) g
            v *= beta2
            np.multiply(g, math.sqrt(1.0 - beta2), out=s)
            np.square(s, out=s)
            v += s  # v = beta2 v + (sqrt(1 - beta2) g)^2
            np.sqrt(v, out=s)
            s += eps_hat
            np.divide(m, s, out=s)
            np.multiply(s, -step_size, out=s)
            p += s  # p -= step_size m / (sqrt(v) + eps_hat)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), as PyTorch's AdamW.

        p = p * (1 - lr * weight_decay)        (before the Adam step, and not through g)
        m = beta1 m + (1 - beta1) g            v = beta2 v + (1 - beta2) g^2,   g = dL/dp
        p = p - lr * m_hat / (sqrt(v_hat) + eps)

    Unlike L2 decay in Adam, the decay is not divided by sqrt(v_hat): every weight shrinks by the
    same fraction per step, whatever its gradient's history.
    """

    _decoupled = True

    def __init__(self, source, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01, decay_matrices_only=False):
        super().__init__(source, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         decay_matrices_only=decay_matrices_only)
