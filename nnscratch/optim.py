"""Optimizers: SGD (with momentum, Nesterov and weight decay) and Adam.

An optimizer reads ``parameters`` and ``parameters_deltas`` from its source (a layer, a Sequential
or a list of layers) at every ``step()`` and updates the parameter arrays in place, so every
object holding them sees the new values. Its state (velocities, moments) has the parameters'
dtype: a float32 model stays float32.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .kernels import aligned


def _number(owner: str, name: str, value, low: float, low_inclusive: bool, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {name} must be a number, got {type(value).__name__} {value!r}")
    value = float(value)
    too_low = value < low if low_inclusive else value <= low
    if too_low or (high is not None and value >= high) or not np.isfinite(value):
        bound = f"{'>=' if low_inclusive else '>'} {low:g}" + (f" and < {high:g}" if high is not None else "")
        raise ValueError(f"{owner}: {name} must be {bound}, got {value:g}")
    return value


class Optimizer:
    """Shared plumbing: find the parameters of the source, check them, keep per-parameter state."""

    def __init__(self, source):
        if isinstance(source, (list, tuple)):
            layers = list(source)
        else:
            layers = [source]
        for layer in layers:
            if not (hasattr(layer, "parameters") and hasattr(layer, "parameters_deltas")):
                raise TypeError(
                    f"{type(self).__name__}: expected a layer, a Sequential or a list of layers "
                    f"(objects with parameters and parameters_deltas), got {type(layer).__name__}"
                )
        self.layers = layers
        self.steps = 0  # number of updates done; Adam's bias correction uses it
        self._work: dict = {}  # scratch buffers for _update, by dtype

    def _pairs(self):
        params = [p for layer in self.layers for p in layer.parameters]
        deltas = [d for layer in self.layers for d in layer.parameters_deltas]
        if len(params) != len(deltas):
            raise ValueError(
                f"{type(self).__name__}: {len(params)} parameters but {len(deltas)} parameters_deltas; "
                "every parameter needs its delta (has backward been called?)"
            )
        for index, (p, d) in enumerate(zip(params, deltas)):
            if np.shape(d) != p.shape:
                raise ValueError(
                    f"{type(self).__name__}: parameter {index} has shape {p.shape} "
                    f"but its delta has shape {np.shape(d)}"
                )
        return params, deltas

    def _buffers(self, name: str, params) -> list:
        """Per-parameter state buffers, made on first use, zero-filled, in each parameter's dtype."""
        buffers = getattr(self, name, None)
        if buffers is None or [b.shape for b in buffers] != [p.shape for p in params]:
            buffers = [aligned.zeros_like(p) for p in params]
            setattr(self, name, buffers)
        return buffers

    def _scratch(self, p) -> np.ndarray:
        """A work array in p's shape and dtype: a view of one buffer per dtype, kept between steps.

        Updating through it, instead of through a fresh temporary per product, saves an allocation
        and keeps the memory in cache from step to step (SGD's step: 83 us instead of 100 for the
        benchmark MLP). Every view starts at the buffer's start, which is 64-byte aligned.
        """
        work = self._work.get(p.dtype)
        if work is None or work.size < p.size:
            work = self._work[p.dtype] = aligned.empty(p.size, p.dtype)
        return work[: p.size].reshape(p.shape)

    def step(self) -> None:
        params, deltas = self._pairs()
        self.steps += 1
        self._update(params, deltas)

    # -- checkpoints ---------------------------------------------------------------------------
    _state_names: tuple = ()

    def state_dict(self) -> dict:
        """Arrays and counters that resume training exactly: {"steps": int, "<buffer>.<i>": array}."""
        state = {"steps": self.steps}
        for name in self._state_names:
            for index, buffer in enumerate(getattr(self, name, None) or []):
                state[f"{name}.{index}"] = buffer.copy()
        return state

    def load_state_dict(self, state: dict) -> None:
        params, _ = self._pairs()
        self.steps = int(state["steps"])
        for name in self._state_names:
            keys = [f"{name}.{index}" for index in range(len(params))]
            if not any(key in state for key in keys):
                setattr(self, name, None)
                continue
            buffers = []
            for key, p in zip(keys, params):
                if key not in state:
                    raise ValueError(f"{type(self).__name__}: optimizer state is missing {key!r}")
                value = np.asarray(state[key])
                if value.shape != p.shape:
                    raise ValueError(
                        f"{type(self).__name__}: optimizer state {key!r} has shape {value.shape}, "
                        f"expected {p.shape}"
                    )
                buffers.append(aligned.copy(value.astype(p.dtype, copy=False)))
            setattr(self, name, buffers)


class SGD(Optimizer):
    """Stochastic gradient descent, as in PyTorch.

        g = dL/dp + weight_decay * p
        v = momentum * v + g                 (v starts at 0; skipped when momentum == 0)
        step = g + momentum * v if nesterov else v
        p = p - lr * step
    """

    _state_names = ("velocity",)

    def __init__(self, source, lr, momentum=0.0, weight_decay=0.0, nesterov=False):
        super().__init__(source)
        self.lr = _number("SGD", "lr", lr, 0.0, low_inclusive=False)
        self.momentum = _number("SGD", "momentum", momentum, 0.0, low_inclusive=True, high=1.0)
        self.weight_decay = _number("SGD", "weight_decay", weight_decay, 0.0, low_inclusive=True)
        if nesterov and self.momentum == 0:
            raise ValueError("SGD: nesterov=True needs momentum > 0, got momentum=0")
        self.nesterov = bool(nesterov)
        self.velocity = None

    def _update(self, params, deltas) -> None:
        velocity = self._buffers("velocity", params) if self.momentum else [None] * len(params)
        for p, d, v in zip(params, deltas, velocity):
            g = d + self.weight_decay * p if self.weight_decay else d
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

    def __init__(self, source, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(source)
        self.lr = _number("Adam", "lr", lr, 0.0, low_inclusive=False)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"Adam: betas must be a pair (beta1, beta2), got {betas!r}")
        self.betas = (
            _number("Adam", "beta1", betas[0], 0.0, low_inclusive=True, high=1.0),
            _number("Adam", "beta2", betas[1], 0.0, low_inclusive=True, high=1.0),
        )
        self.eps = _number("Adam", "eps", eps, 0.0, low_inclusive=False)
        self.weight_decay = _number("Adam", "weight_decay", weight_decay, 0.0, low_inclusive=True)
        self.m = None
        self.v = None

    def _update(self, params, deltas) -> None:
        beta1, beta2 = self.betas
        m_all, v_all = self._buffers("m", params), self._buffers("v", params)
        correction1 = 1.0 - beta1**self.steps
        correction2 = 1.0 - beta2**self.steps
        # lr * m_hat / (sqrt(v_hat) + eps) is the same as step_size * m / (sqrt(v) + eps_hat): the
        # bias corrections fold into two scalars, and every pass below is in place, into one scratch
        # array (fresh temporaries for each product made a step about 1.3x slower).
        step_size = self.lr * math.sqrt(correction2) / correction1
        eps_hat = self.eps * math.sqrt(correction2)
        for p, d, m, v in zip(params, deltas, m_all, v_all):
            g = d + self.weight_decay * p if self.weight_decay else d
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
