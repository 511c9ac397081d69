"""The element-wise losses: MeanSquaredError, BinaryCrossEntropy and its fused SigmoidBinaryCrossEntropy,
each averaged over every value of a sample but the batch axis."""

from __future__ import annotations

import math

import numpy as np

from ...kernels.memory import KeepsMemory
from ...protocol import Layer
from ..activations import _sigmoid
from .targets import elementwise_pair, per_sample_delta


def _per_sample_mean(values: np.ndarray) -> np.ndarray:
    """(N, ...) -> (N,): the mean over every axis but the first, in values' dtype."""
    n = values.shape[0]
    flat = values.reshape(n, -1)
    return np.add.reduce(flat, axis=1) / values.dtype.type(max(flat.shape[1], 1))


def _spread(delta: np.ndarray, like: np.ndarray) -> np.ndarray:
    """delta (N,) divided by the per-sample count, shaped (N, 1, ...) to broadcast against ``like``."""
    count = math.prod(like.shape[1:])
    return (delta / like.dtype.type(max(count, 1))).reshape((-1,) + (1,) * (like.ndim - 1))


class MeanSquaredError(KeepsMemory, Layer):
    """Per-sample mean squared error: loss_n = (1 / M) sum_i (x_ni - t_ni)^2 over the M values of sample n.

    Backward: dL/dx_ni = delta_n 2 (x_ni - t_ni) / M. Followed by ``Mean``, it equals PyTorch's
    ``MSELoss()``.

    Shape:
        x (predictions): (N, ...); targets: same as x
        loss: (N,); backward delta: (N,)
    """

    _caches = ("_difference",)

    def __init__(self):
        super().__init__()
        self._difference = None

    def output_shape(self, input_shape):
        return (input_shape[0],)

    def forward(self, x, targets=None, *args):
        x, targets = elementwise_pair(self, x, targets, "predictions")
        self._difference = x - targets
        return _per_sample_mean(self._difference * self._difference)

    def backward(self, delta):
        self._check_forward_called(self._difference)
        difference = self._difference
        delta = per_sample_delta(self, delta, difference.shape[0], difference.dtype)
        return difference * (2 * _spread(delta, difference))


# PyTorch's BCELoss clamps each log at -100, so a probability of exactly 0 or 1 gives a finite loss,
# and its backward divides by max(p (1 - p), 1e-12); both are copied for the same numbers (its 1e-12
# is a float32 constant, 9.99999996e-13, hence the rounding here).
_LOG_FLOOR = -100.0
_BCE_EPSILON = float(np.float32(1e-12))


class BinaryCrossEntropy(KeepsMemory, Layer):
    """Per-sample binary cross-entropy of probabilities, averaged over the M values of each sample:

        loss_n = -(1 / M) sum_i [t_ni log(p_ni) + (1 - t_ni) log(1 - p_ni)],  each log clamped at -100

    Backward: dL/dp_ni = delta_n (p_ni - t_ni) / (M max(p_ni (1 - p_ni), 1e-12)). The clamp and the
    floor are PyTorch's, so that followed by ``Mean`` it equals ``BCELoss()``, and a probability of
    exactly 0 or 1 gives a finite loss and gradient. Probabilities and targets must be in [0, 1].

    Shape:
        p (probabilities): (N, ...); targets: same as p, in [0, 1]
        loss: (N,); backward delta: (N,)
    """

    _caches = ("_p", "_targets")

    def __init__(self):
        super().__init__()
        self._p = None
        self._targets = None

    def output_shape(self, input_shape):
        return (input_shape[0],)

    def forward(self, x, targets=None, *args):
        p, targets = elementwise_pair(self, x, targets, "probabilities", unit_interval=True)
        with np.errstate(divide="ignore"):  # log(0) = -inf, floored next
            log_p = np.maximum(np.log(p), _LOG_FLOOR)
            log_not_p = np.maximum(np.log(1 - p), _LOG_FLOOR)
        self._p, self._targets = p, targets
        return -_per_sample_mean(targets * log_p + (1 - targets) * log_not_p)

    def backward(self, delta):
        self._check_forward_called(self._p)
        p, targets = self._p, self._targets
        delta = per_sample_delta(self, delta, p.shape[0], p.dtype)
        return (p - targets) / np.maximum(p * (1 - p), _BCE_EPSILON) * _spread(delta, p)


class SigmoidBinaryCrossEntropy(KeepsMemory, Layer):
    """Sigmoid followed by binary cross-entropy, fused, from logits z, averaged over the M values of
    each sample:

        loss_n = (1 / M) sum_i [max(z_ni, 0) - z_ni t_ni + log(1 + exp(-|z_ni|))]

    That is -(t log sigmoid(z) + (1 - t) log(1 - sigmoid(z))) rewritten so that exp only ever sees
    -|z|: finite for logits like +-1e4, where the unfused form would take log(0). Backward: the
    famous dL/dz_ni = delta_n (sigmoid(z_ni) - t_ni) / M. Followed by ``Mean`` it equals PyTorch's
    ``BCEWithLogitsLoss()``.

    Shape:
        z (logits): (N, ...); targets: same as z, in [0, 1]
        loss: (N,); backward delta: (N,)
    """

    _caches = ("_z", "_targets")

    def __init__(self):
        super().__init__()
        self._z = None
        self._targets = None

    def output_shape(self, input_shape):
        return (input_shape[0],)

    def forward(self, x, targets=None, *args):
        z, targets = elementwise_pair(self, x, targets, "logits")
        outside = ~((targets >= 0) & (targets <= 1))
        if outside.any():
            raise ValueError(f"{self.name}: targets must be in [0, 1], got {targets[outside].flat[0]}")
        self._z, self._targets = z, targets
        return _per_sample_mean(np.maximum(z, 0) - z * targets + np.log1p(np.exp(-np.abs(z))))

    def backward(self, delta):
        self._check_forward_called(self._z)
        z = self._z
        delta = per_sample_delta(self, delta, z.shape[0], z.dtype)
        return (_sigmoid(z) - self._targets) * _spread(delta, z)
