"""What the losses take as targets, checked: class labels, one-hot or soft rows, element-wise
targets, and the per-sample delta their backward is given.

Each check raises a ``TypeError`` or ``ValueError`` naming the loss, what it expected and what it got.
"""

from __future__ import annotations

import numpy as np

from ..protocol import Layer
from ..validation import check_input_array, check_real_array


def class_targets(layer: Layer, targets, n: int, num_classes: int, dtype) -> np.ndarray:
    """Validate targets against a batch of ``n`` rows of ``num_classes``; return labels or a float matrix."""
    if targets is None:
        raise TypeError(
            f"{layer.name}: forward needs targets: forward(x, targets) with integer labels (N,) "
            "or one-hot/soft targets (N, C)"
        )
    targets = np.asarray(targets)
    check_real_array(layer.name, "targets", targets)
    if targets.ndim == 1:
        return class_labels(layer, targets, n, num_classes, "(pass labels as integers, or one-hot targets of shape (N, C))")
    if targets.ndim == 2:
        if targets.shape != (n, num_classes):
            raise ValueError(
                f"{layer.name}: expected one-hot/soft targets of shape {(n, num_classes)}, got {targets.shape}"
            )
        return targets.astype(dtype, copy=False)
    raise ValueError(
        f"{layer.name}: expected integer labels (N,) or one-hot/soft targets (N, C), got shape {targets.shape}"
    )


def class_labels(layer: Layer, labels, n: int, num_classes: int, hint: str) -> np.ndarray:
    """Validate integer class labels: shape (n,), an integer dtype, each in [0, num_classes)."""
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"{layer.name}: expected integer labels of shape ({n},), got shape {labels.shape}")
    if labels.dtype.kind not in "iu":
        raise TypeError(f"{layer.name}: 1-D targets must be integer class labels, got dtype {labels.dtype} {hint}")
    if labels.shape[0] != n:
        raise ValueError(f"{layer.name}: expected {n} labels (one per sample in the batch), got {labels.shape[0]}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        bad = labels[(labels < 0) | (labels >= num_classes)][0]
        raise ValueError(f"{layer.name}: labels must be in [0, {num_classes}) for {num_classes} classes, got {bad}")
    return labels


def check_scores(layer: Layer, x, what: str) -> np.ndarray:
    layer._check_input(x, 2, f"N, C {what}")
    if x.dtype.kind != "f":
        x = x.astype(np.float32)
    return x


def per_sample_delta(layer: Layer, delta, n: int, dtype) -> np.ndarray:
    delta = np.asarray(delta, dtype=dtype)
    if delta.ndim == 0:  # a scalar weight for every sample is a convenience
        return np.full(n, delta, dtype=dtype)
    return layer._check_delta(delta, (n,))


def elementwise_pair(layer: Layer, x, targets, what: str, unit_interval: bool = False) -> tuple:
    """Check predictions (N, ...) and targets of the same shape; return both in x's float dtype.

    ``unit_interval``: x and targets must lie in [0, 1] (probabilities), as PyTorch's BCELoss demands.
    """
    check_input_array(layer.name, x, of=what)
    if x.ndim == 0:
        raise ValueError(f"{layer.name}: expected {what} with a batch axis (N, ...), got a scalar")
    if x.dtype.kind != "f":
        x = x.astype(np.float32)
    if targets is None:
        raise TypeError(f"{layer.name}: forward needs targets: forward(x, targets), targets of the shape of x")
    targets = np.asarray(targets)
    check_real_array(layer.name, "targets", targets)
    if targets.shape != x.shape:
        raise ValueError(
            f"{layer.name}: expected targets of the same shape as the {what} {x.shape}, got {targets.shape}"
        )
    if unit_interval:
        for name, values in ((what, x), ("targets", targets)):
            outside = ~((values >= 0) & (values <= 1))  # NaN is outside too
            if outside.any():
                raise ValueError(f"{layer.name}: {name} must be in [0, 1], got {values[outside].flat[0]}")
    return x, targets.astype(x.dtype, copy=False)
