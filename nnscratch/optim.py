"""Optimizers: SGD (with momentum, Nesterov and weight decay), Adam, AdamW, RMSprop and Adagrad.

An optimizer reads ``parameters`` and ``parameters_deltas`` from its source (a layer, a Sequential
or a list of layers) at every ``step()`` and updates the parameter arrays in place, so every
object holding them sees the new values. Its state (velocities, moments) has the parameters'
dtype: a float32 model stays float32. A step allocates nothing: every intermediate goes into
scratch arrays kept between steps.

Every optimizer takes ``weight_decay`` and ``decay_matrices_only``: with it True, the decay applies
only to the parameters of two or more axes (the weights of Linear, Conv2D, Embedding, attention), not
to biases or normalization gains, as nanoGPT does with two PyTorch parameter groups.

Each follows ``torch.optim``'s update rule with the same hyperparameters (tests/test_optim.py
checks them against PyTorch and against textbook twins). Parameters must be float32 or float64:
in float16, Adam's eps (1e-8) rounds to zero and a step divides by zero.
"""

from __future__ import annotations

import math

import numpy as np

from .kernels import aligned
from .validation import check_bool, check_number, check_parameter_dtype


def source_layers(owner: str, source) -> list:
    """The layers of an optimizer's source (a layer, a Sequential or a list of layers), checked."""
    layers = list(source) if isinstance(source, (list, tuple)) else [source]
    for layer in layers:
        if not (hasattr(layer, "parameters") and hasattr(layer, "parameters_deltas")):
            raise TypeError(
                f"{owner}: expected a layer, a Sequential or a list of layers "
                f"(objects with parameters and parameters_deltas), got {type(layer).__name__}"
            )
    return layers


class Optimizer:
    """Shared plumbing: find the parameters of the source, check them, keep per-parameter state."""

    def __init__(self, source):
        self.layers = source_layers(type(self).__name__, source)
        for index, p in enumerate(p for layer in self.layers for p in layer.parameters):
            check_parameter_dtype(type(self).__name__, index, p)
        self.steps = 0  # number of updates done; Adam's bias correction uses it
        self._work: dict = {}  # scratch arrays for _update, by (dtype, slot)

    def _pairs(self):
        params = [p for layer in self.layers for p in layer.parameters]
        deltas = [d for layer in self.layers for d in layer.parameters_deltas]
        if len(params) != len(deltas):
            raise ValueError(
                f"{type(self).__name__}: {len(params)} parameters but {len(deltas)} parameters_deltas; "
                "every parameter needs its delta (has backward been called?)"
            )
        for index, (p, d) in enumerate(zip(params, deltas)):
            check_parameter_dtype(type(self).__name__, index, p)  # a parameter may have been swapped since
            if np.shape(d) != p.shape:
                raise ValueError(
                    f"{type(self).__name__}: parameter {index} has shape {p.shape} "
                    f"but its delta has shape {np.shape(d)}"
                )
        return params, deltas

    def _state_arrays(self, name: str, params) -> list:
        """Per-parameter state arrays (velocities, moments), made on first use, zero-filled, in each
        parameter's dtype."""
        arrays = getattr(self, name, None)
        if arrays is None or [a.shape for a in arrays] != [p.shape for p in params]:
            arrays = [aligned.zeros_like(p) for p in params]
            setattr(self, name, arrays)
        return arrays

    def _scratch(self, p, slot: int = 0) -> np.ndarray:
        """A work array in p's shape and dtype: a view of one buffer per dtype and slot, kept
        between steps (slot 1 holds the weight-decayed gradient while slot 0 is in use).

        Updating through it, instead of through a fresh temporary per product, saves an allocation
        and keeps the memory in cache from step to step (SGD's step: 83 us instead of 100 for the
        benchmark MLP). Every view starts at the buffer's start, which is 64-byte aligned.
        """
        key = (p.dtype, slot)
        work = self._work.get(key)
        if work is None or work.size < p.size:
            work = self._work[key] = aligned.empty(p.size, p.dtype)
        return work[: p.size].reshape(p.shape)

    # Weight decay on every parameter (PyTorch's default), or, with decay_matrices_only=True, on the
    # parameters of two or more axes only (the weights of Linear, Conv2D, Embedding, attention) and not
    # on biases or normalization gains, as nanoGPT and most Transformer recipes do.
    decay_matrices_only: bool = False

    def _decays(self, p) -> bool:
        return bool(self.weight_decay) and (p.ndim >= 2 or not self.decay_matrices_only)

    def _gradient(self, p, d) -> np.ndarray:
        """g = d + weight_decay * p (L2 weight decay as PyTorch adds it), in scratch slot 1; d itself
        without weight decay."""
        if not self._decays(p):
            return d
        g = self._scratch(p, 1)
        np.multiply(p, self.weight_decay, out=g)
        g += d
        return g

    def step(self) -> None:
        params, deltas = self._pairs()
        self.steps += 1
        self._update(params, deltas)

    # -- checkpoints ---------------------------------------------------------------------------
    _state_names: tuple = ()

    def state_dict(self) -> dict:
        """Arrays and counters that resume training exactly: {"steps": int, "<state>.<i>": array}."""
        state = {"steps": self.steps}
        for name in self._state_names:
            for index, array in enumerate(getattr(self, name, None) or []):
                state[f"{name}.{index}"] = array.copy()
        return state

    def load_state_dict(self, state: dict) -> None:
        params, _ = self._pairs()
        self.steps = int(state["steps"])
        for name in self._state_names:
            keys = [f"{name}.{index}" for index in range(len(params))]
            if not any(key in state for key in keys):
                setattr(self, name, None)
                continue
            arrays = []
            for key, p in zip(keys, params):
                if key not in state:
                    raise ValueError(f"{type(self).__name__}: optimizer state is missing {key!r}")
                value = np.asarray(state[key])
                if value.shape != p.shape:
                    raise ValueError(
                        f"{type(self).__name__}: optimizer state {key!r} has shape {value.shape}, "
                        f"expected {p.shape}"
                    )
                arrays.append(aligned.copy(value.astype(p.dtype, copy=False)))
            setattr(self, name, arrays)


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
