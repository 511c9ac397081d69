"""The classification losses: CrossEntropy on probabilities, the fused SoftmaxCrossEntropy on logits (per
sample, or per token with ignored targets), and the multiclass Hinge."""

from __future__ import annotations


import numpy as np

from ...kernels.memory import KeepsMemory
from ...protocol import Layer
from ...validation import check_int, check_number
from .targets import check_scores, class_labels, class_targets, per_sample_delta, rows_delta, token_losses


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
