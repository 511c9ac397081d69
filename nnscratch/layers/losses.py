"""Losses: CrossEntropy on probabilities, the fused SoftmaxCrossEntropy on logits, MeanSquaredError,
BinaryCrossEntropy and its fused SigmoidBinaryCrossEntropy, the multiclass Hinge, and Mean.

The per-sample losses return one value per example, shape (N,); ``Mean`` reduces them to the scalar
that training minimises. Keeping the two apart lets a user weight, sum or inspect the per-sample
values, and is the classic computation-graph recipe: ... -> Softmax -> CrossEntropy -> Mean.

Targets come in two kinds, accepted by both cross-entropies:
- integer class labels, shape (N,), each in [0, C);
- one-hot or soft distributions, shape (N, C), float.
Hinge takes integer labels only; MeanSquaredError and the binary cross-entropies take targets of
the predictions' own shape (N, ...), and average over every axis but the batch axis, so that
``Sequential(Loss(), Mean())`` is PyTorch's default mean reduction.
"""

from __future__ import annotations

import math

import numpy as np

from ..kernels.memory import KeepsMemory
from ..protocol import Layer
from ..validation import check_int, check_number
from .activations import _sigmoid
from .targets import check_scores, class_labels, class_targets, elementwise_pair, per_sample_delta, rows_delta, token_losses


class CrossEntropy(KeepsMemory, Layer):
    """Per-row cross-entropy of predicted probabilities: loss_n = -sum_c t_nc log(x_nc).

    x is clipped to the smallest positive normal number of its dtype before the log, so a zero
    probability gives a large finite loss rather than inf. Backward: dL/dx_nc = -delta_n t_nc / x_nc.

    Rows are the last axis: probabilities (N, T, C) with labels (N, T) give one loss per token.
    A label equal to ``ignore_index`` (PyTorch's default, -100) is ignored: its loss is masked (see
    ``token_losses``) and its gradient is exactly 0, so that followed by ``Mean`` the result is the
    mean over the rows that are not ignored, as PyTorch's
    ``NLLLoss(ignore_index=..., reduction="mean")`` of the log-probabilities.

    Shape:
        x (probabilities): (N, C) or (N, ..., C); targets: (N,) / (N, ...) integer labels, or
        one-hot/soft rows of x's shape
        loss: (N,) / (N, ...); backward delta: the loss's shape
    """

    _caches = ("_x", "_targets", "_ignored", "_shape")

    def __init__(self, ignore_index=-100):
        super().__init__()
        self.ignore_index = check_int("CrossEntropy", "ignore_index", ignore_index)
        self._x = self._targets = self._ignored = self._shape = None

    def config(self):
        return {} if self.ignore_index == -100 else {"ignore_index": self.ignore_index}

    def output_shape(self, input_shape):
        return tuple(input_shape[:-1])

    def forward(self, x, targets=None, *args):
        x = check_scores(self, x, "probabilities", leading_axes=True)
        targets, ignored = class_targets(self, targets, x.shape, x.dtype, self.ignore_index)
        rows = np.maximum(x, np.finfo(x.dtype).tiny)
        rows = rows if rows.ndim == 2 else rows.reshape(-1, x.shape[-1])  # (N*T, C) for tokens
        self._x, self._targets, self._ignored, self._shape = rows, targets, ignored, x.shape
        if targets.ndim == 1:
            losses = -np.log(rows[np.arange(len(rows)), targets])
        else:
            losses = -np.sum(targets * np.log(rows), axis=1)
        return token_losses(losses, x.shape[:-1], ignored)

    def backward(self, delta):
        self._check_forward_called(self._x)
        x, targets = self._x, self._targets
        delta = rows_delta(self, delta, self._shape[:-1], x.dtype)
        if targets.ndim == 1:
            rows = np.arange(len(x))
            delta_x = np.zeros_like(x)
            delta_x[rows, targets] = -delta / x[rows, targets]
        else:
            delta_x = -(delta[:, None] * targets) / x
        if self._ignored is not None:
            delta_x[self._ignored] = 0  # exactly, whatever delta says there
        return delta_x if len(self._shape) == 2 else delta_x.reshape(self._shape)


class SoftmaxCrossEntropy(KeepsMemory, Layer):
    """Softmax followed by cross-entropy, fused: loss_n = logsumexp(z_n) - sum_c t_nc z_nc.

    (For targets that sum to 1, as labels and one-hot rows do.) Working from the logits z through
    log-sum-exp keeps the loss finite for logits of any size, and the gradient is the famous
    dL/dz_nc = delta_n (softmax(z)_nc * sum_k t_nk - t_nc), i.e. softmax - target.

    Rows are the last axis: logits (N, T, V) with labels (N, T) give one loss per token, as a
    language model needs. A label equal to ``ignore_index`` (PyTorch's default, -100; padding) is
    ignored: the result is then a ``numpy.ma.MaskedArray`` with that token masked (0 underneath),
    and the token's gradient is exactly 0 whatever delta says. ``Mean`` averages a masked array over
    its unmasked values, so ``Sequential(SoftmaxCrossEntropy(ignore_index=i), Mean())`` equals
    PyTorch's ``CrossEntropyLoss(ignore_index=i, reduction="mean")``: the mean over the tokens that
    are not ignored. (With every token ignored, Mean gives 0.0 where PyTorch gives NaN.)

    Shape:
        z (logits): (N, C) or (N, ..., C); targets: (N,) / (N, ...) integer labels, or one-hot/soft
        rows of z's shape
        loss: (N,) / (N, ...); backward delta: the loss's shape
    """

    _caches = ("_probs", "_targets", "_ignored", "_shape")

    def __init__(self, ignore_index=-100):
        super().__init__()
        self.ignore_index = check_int("SoftmaxCrossEntropy", "ignore_index", ignore_index)
        self._probs = self._targets = self._ignored = self._shape = None

    def config(self):
        return {} if self.ignore_index == -100 else {"ignore_index": self.ignore_index}

    def output_shape(self, input_shape):
        return tuple(input_shape[:-1])

    def forward(self, x, targets=None, *args):
        z = check_scores(self, x, "logits", leading_axes=True)
        targets, ignored = class_targets(self, targets, z.shape, z.dtype, self.ignore_index)
        shape = z.shape
        z = z if z.ndim == 2 else z.reshape(-1, shape[-1])  # (N*T, V): a view when it can be
        # Subtracting the row max changes nothing mathematically and keeps exp() from overflowing.
        shifted = z - z.max(axis=1, keepdims=True)
        probs = np.exp(shifted)
        sum_exp = probs.sum(axis=1, keepdims=True)
        probs /= sum_exp
        log_probs = shifted
        log_probs -= np.log(sum_exp)
        self._probs, self._targets, self._ignored, self._shape = probs, targets, ignored, shape
        if targets.ndim == 1:
            losses = -log_probs[np.arange(len(z)), targets]
        else:
            losses = -np.sum(targets * log_probs, axis=1)
        return token_losses(losses, shape[:-1], ignored)

    def backward(self, delta):
        self._check_forward_called(self._probs)
        probs, targets = self._probs, self._targets
        delta = rows_delta(self, delta, self._shape[:-1], probs.dtype)
        if targets.ndim == 1:
            delta_z = probs.copy()
            delta_z[np.arange(len(probs)), targets] -= 1
        else:
            delta_z = probs * targets.sum(axis=1, keepdims=True) - targets
        delta_z *= delta[:, None]
        if self._ignored is not None:
            delta_z[self._ignored] = 0  # exactly, even where the logits or delta were not finite
        return delta_z if len(self._shape) == 2 else delta_z.reshape(self._shape)


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


class Hinge(KeepsMemory, Layer):
    """Multiclass SVM loss (CS231n) of scores s and integer labels y, per sample:

        loss_n = sum_{j != y_n} max(0, s_nj - s_ny + margin)

    Backward: each class j != y whose term is positive gets delta_n, and the true class gets -delta_n
    times the number of those classes (0 at a term's kink, as PyTorch). PyTorch's
    ``MultiMarginLoss(margin=margin)`` divides the same sum by C.

    Shape:
        s (scores): (N, C); labels: (N,) integers in [0, C)
        loss: (N,); backward delta: (N,)
    """

    _caches = ("_active", "_labels")

    def __init__(self, margin=1.0):
        super().__init__()
        self.margin = check_number("Hinge", "margin", margin, 0.0)
        self._active = None
        self._labels = None
        self._dtype = None

    def config(self):
        return {"margin": self.margin}

    def output_shape(self, input_shape):
        return (input_shape[0],)

    def forward(self, x, targets=None, *args):
        scores = check_scores(self, x, "scores")
        n, num_classes = scores.shape
        if targets is None:
            raise TypeError(f"{self.name}: forward needs targets: forward(scores, labels) with integer labels (N,)")
        labels = class_labels(self, targets, n, num_classes, "(Hinge takes integer class labels)")
        rows = np.arange(n)
        margins = scores - scores[rows, labels][:, None]
        margins += self.margin
        margins[rows, labels] = 0  # the true class is not in the sum
        self._active, self._labels, self._dtype = margins > 0, labels, scores.dtype
        return np.add.reduce(np.maximum(margins, 0), axis=1)

    def backward(self, delta):
        self._check_forward_called(self._active)
        active, labels = self._active, self._labels
        n = active.shape[0]
        delta = per_sample_delta(self, delta, n, self._dtype)
        delta_scores = active.astype(self._dtype)
        delta_scores[np.arange(n), labels] = -active.sum(axis=1)
        delta_scores *= delta[:, None]
        return delta_scores


class Mean(KeepsMemory, Layer):
    """Mean of all elements: y = (1 / size) sum_i x_i, a scalar. Backward: dL/dx_i = delta / size.

    A ``numpy.ma.MaskedArray`` (the per-token losses of a cross-entropy with ignored tokens) is
    averaged over its unmasked elements only: y = sum(unmasked) / count(unmasked), and backward
    gives delta / count to each unmasked element and exactly 0 to the masked ones. With every
    element masked there is nothing to average: y = 0.0 and the gradient is all zeros (PyTorch's
    ``CrossEntropyLoss`` gives NaN there), so a batch of padding alone leaves the weights as they are.

    Shape:
        x: any; y: () scalar; backward delta: () scalar (1.0 when it is the final loss)
    """

    _caches = ("_shape", "_mask")

    def __init__(self):
        super().__init__()
        self._shape = None
        self._dtype = None
        self._mask = None  # the masked elements of a masked input, None for a plain array
        self._count = 0  # the number of unmasked elements of a masked input

    def output_shape(self, input_shape):
        return ()

    def forward(self, x, *args):
        if isinstance(x, np.generic):  # a numpy scalar, e.g. another Mean's output
            x = np.asarray(x)
        self._check_input(x)
        if x.size == 0:
            raise ValueError(f"Mean: expected a non-empty input, got shape {x.shape}")
        dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float32)
        self._shape, self._dtype, self._mask = x.shape, dtype, None
        if isinstance(x, np.ma.MaskedArray) and np.ma.getmask(x) is not np.ma.nomask:
            return self._masked_mean(x, dtype)
        # What np.mean computes (a sum in dtype, then a division), without its Python-level wrapper.
        return np.add.reduce(x, axis=None, dtype=dtype) / dtype.type(x.size)

    def _masked_mean(self, x: np.ma.MaskedArray, dtype) -> np.ndarray:
        mask = np.ma.getmaskarray(x)
        count = x.size - int(np.count_nonzero(mask))
        self._mask, self._count = mask, count
        if count == 0:
            return dtype.type(0.0)
        values = np.where(mask, 0, x.data)  # whatever sits under the mask counts for nothing
        return np.add.reduce(values, axis=None, dtype=dtype) / dtype.type(count)

    def backward(self, delta=1.0):
        self._check_forward_called(self._shape)
        delta = np.asarray(delta, dtype=self._dtype)
        if delta.shape != ():
            raise ValueError(f"Mean.backward: expected a scalar delta (shape ()), got shape {delta.shape}")
        if self._mask is None:
            return np.full(self._shape, delta / math.prod(self._shape), dtype=self._dtype)
        share = delta / max(self._count, 1)
        return np.where(self._mask, self._dtype.type(0), share).astype(self._dtype, copy=False)
