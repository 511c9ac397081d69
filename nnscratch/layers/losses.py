"""Losses: CrossEntropy on probabilities, the fused SoftmaxCrossEntropy on logits, and Mean.

The per-sample losses return one value per example, shape (N,); ``Mean`` reduces them to the scalar
that training minimises. Keeping the two apart lets a user weight, sum or inspect the per-sample
values, and is the classic computation-graph recipe: ... -> Softmax -> CrossEntropy -> Mean.

Targets come in two kinds, accepted by both cross-entropies:
- integer class labels, shape (N,), each in [0, C);
- one-hot or soft distributions, shape (N, C), float.
"""

from __future__ import annotations

import math

import numpy as np

from .base import Layer


def _targets(layer: Layer, targets, n: int, num_classes: int, dtype) -> np.ndarray:
    """Validate targets against a batch of ``n`` rows of ``num_classes``; return labels or a float matrix."""
    if targets is None:
        raise TypeError(
            f"{layer.name}: forward needs targets: forward(x, targets) with integer labels (N,) "
            "or one-hot/soft targets (N, C)"
        )
    targets = np.asarray(targets)
    if targets.ndim == 1:
        if targets.dtype.kind not in "iu":
            raise TypeError(
                f"{layer.name}: 1-D targets must be integer class labels, got dtype {targets.dtype} "
                "(pass labels as integers, or one-hot targets of shape (N, C))"
            )
        if targets.shape[0] != n:
            raise ValueError(
                f"{layer.name}: expected {n} labels (one per sample in the batch), got {targets.shape[0]}"
            )
        if targets.size and (targets.min() < 0 or targets.max() >= num_classes):
            bad = targets[(targets < 0) | (targets >= num_classes)][0]
            raise ValueError(
                f"{layer.name}: labels must be in [0, {num_classes}) for {num_classes} classes, got {bad}"
            )
        return targets
    if targets.ndim == 2:
        if targets.shape != (n, num_classes):
            raise ValueError(
                f"{layer.name}: expected one-hot/soft targets of shape {(n, num_classes)}, got {targets.shape}"
            )
        return targets.astype(dtype, copy=False)
    raise ValueError(
        f"{layer.name}: expected integer labels (N,) or one-hot/soft targets (N, C), got shape {targets.shape}"
    )


def _check_scores(layer: Layer, x, what: str) -> np.ndarray:
    layer._check_input(x, 2, f"N, C {what}")
    if x.dtype.kind != "f":
        x = x.astype(np.float32)
    return x


def _check_per_sample_delta(layer: Layer, delta, n: int, dtype) -> np.ndarray:
    delta = np.asarray(delta, dtype=dtype)
    if delta.ndim == 0:  # a scalar weight for every sample is a convenience
        return np.full(n, delta, dtype=dtype)
    return layer._check_delta(delta, (n,))


class CrossEntropy(Layer):
    """Per-sample cross-entropy of predicted probabilities: loss_n = -sum_c t_nc log(x_nc).

    x is clipped to the smallest positive normal number of its dtype before the log, so a zero
    probability gives a large finite loss rather than inf. Backward: dL/dx_nc = -delta_n t_nc / x_nc.

    Shape:
        x (probabilities): (N, C); targets: (N,) integer labels or (N, C) one-hot/soft
        loss: (N,); backward delta: (N,)
    """

    def __init__(self):
        super().__init__()
        self._x = None
        self._targets = None

    def output_shape(self, input_shape):
        return (input_shape[0],)

    def forward(self, x, targets=None, *args):
        x = _check_scores(self, x, "probabilities")
        n, num_classes = x.shape
        targets = _targets(self, targets, n, num_classes, x.dtype)
        x = np.maximum(x, np.finfo(x.dtype).tiny)
        self._x, self._targets = x, targets
        if targets.ndim == 1:
            return -np.log(x[np.arange(n), targets])
        return -np.sum(targets * np.log(x), axis=1)

    def backward(self, delta):
        self._check_forward_called(self._x)
        x, targets = self._x, self._targets
        n = x.shape[0]
        delta = _check_per_sample_delta(self, delta, n, x.dtype)
        if targets.ndim == 1:
            rows = np.arange(n)
            delta_x = np.zeros_like(x)
            delta_x[rows, targets] = -delta / x[rows, targets]
            return delta_x
        return -(delta[:, None] * targets) / x


class SoftmaxCrossEntropy(Layer):
    """Softmax followed by cross-entropy, fused: loss_n = logsumexp(z_n) - sum_c t_nc z_nc.

    (For targets that sum to 1, as labels and one-hot rows do.) Working from the logits z through
    log-sum-exp keeps the loss finite for logits of any size, and the gradient is the famous
    dL/dz_nc = delta_n (softmax(z)_nc * sum_k t_nk - t_nc), i.e. softmax - target.

    Shape:
        z (logits): (N, C); targets: (N,) integer labels or (N, C) one-hot/soft
        loss: (N,); backward delta: (N,)
    """

    def __init__(self):
        super().__init__()
        self._probs = None
        self._targets = None

    def output_shape(self, input_shape):
        return (input_shape[0],)

    def forward(self, x, targets=None, *args):
        z = _check_scores(self, x, "logits")
        n, num_classes = z.shape
        targets = _targets(self, targets, n, num_classes, z.dtype)
        # Subtracting the row max changes nothing mathematically and keeps exp() from overflowing.
        shifted = z - z.max(axis=1, keepdims=True)
        probs = np.exp(shifted)
        sum_exp = probs.sum(axis=1, keepdims=True)
        probs /= sum_exp
        log_probs = shifted
        log_probs -= np.log(sum_exp)
        self._probs, self._targets = probs, targets
        if targets.ndim == 1:
            return -log_probs[np.arange(n), targets]
        return -np.sum(targets * log_probs, axis=1)

    def backward(self, delta):
        self._check_forward_called(self._probs)
        probs, targets = self._probs, self._targets
        n = probs.shape[0]
        delta = _check_per_sample_delta(self, delta, n, probs.dtype)
        if targets.ndim == 1:
            delta_z = probs.copy()
            delta_z[np.arange(n), targets] -= 1
        else:
            delta_z = probs * targets.sum(axis=1, keepdims=True) - targets
        delta_z *= delta[:, None]
        return delta_z


class Mean(Layer):
    """Mean of all elements: y = (1 / size) sum_i x_i, a scalar. Backward: dL/dx_i = delta / size.

    Shape:
        x: any; y: () scalar; backward delta: () scalar (1.0 when it is the final loss)
    """

    def __init__(self):
        super().__init__()
        self._shape = None
        self._dtype = None

    def output_shape(self, input_shape):
        return ()

    def forward(self, x, *args):
        if isinstance(x, np.generic):  # a numpy scalar, e.g. another Mean's output
            x = np.asarray(x)
        self._check_input(x)
        if x.size == 0:
            raise ValueError(f"Mean: expected a non-empty input, got shape {x.shape}")
        dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float32)
        self._shape, self._dtype = x.shape, dtype
        # What np.mean computes (a sum in dtype, then a division), without its Python-level wrapper.
        return np.add.reduce(x, axis=None, dtype=dtype) / dtype.type(x.size)

    def backward(self, delta=1.0):
        self._check_forward_called(self._shape)
        delta = np.asarray(delta, dtype=self._dtype)
        if delta.shape != ():
            raise ValueError(f"Mean.backward: expected a scalar delta (shape ()), got shape {delta.shape}")
        return np.full(self._shape, delta / math.prod(self._shape), dtype=self._dtype)
