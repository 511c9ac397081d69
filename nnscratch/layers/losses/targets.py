"""What the losses take as targets, checked: class labels, one-hot or soft rows, element-wise
targets, and the per-sample delta their backward is given.

Each check raises a ``TypeError`` or ``ValueError`` naming the loss, what it expected and what it got.
"""

from __future__ import annotations

import numpy as np

from ...protocol import Layer
from ...validation import check_input_array, check_plain_array, check_real_array


def class_targets(layer: Layer, targets, shape: tuple, dtype, ignore_index=None) -> tuple:
    """Validate a cross-entropy's targets against scores of ``shape`` (N, ..., C).

    Two kinds, told apart by their number of axes:
    - integer labels of the scores' shape without the class axis, (N, ...), each in [0, C) or equal
      to ``ignore_index``;
    - one-hot or soft rows of the scores' own shape (N, ..., C).

    Returns ``(rows, ignored)``: the labels flattened to (M,) (ignored ones replaced by 0, a safe
    index) or the rows as an (M, C) float matrix in ``dtype``, M = N * ...; and the (M,) bool mask
    of the ignored labels, or None when no label is ignored (soft rows never are).
    """
    if targets is None:
        raise TypeError(
            f"{layer.name}: forward needs targets: forward(x, targets) with integer labels (N,) "
            "or one-hot/soft targets (N, C)"
        )
    check_plain_array(layer.name, "targets", targets)  # np.asarray would drop a mask unseen
    targets = np.asarray(targets)
    check_real_array(layer.name, "targets", targets)
    num_classes = shape[-1]
    if targets.ndim == len(shape) - 1:
        hint = "(pass labels as integers, or one-hot targets of shape (N, C))"
        labels = class_labels(layer, targets, shape[:-1], num_classes, hint, check_range=False)
        labels = labels if labels.ndim == 1 else labels.reshape(-1)
        ignored = labels_in_range(layer, labels, targets.shape, num_classes, ignore_index)
        return (labels, None) if ignored is None else (np.where(ignored, 0, labels), ignored)
    if targets.ndim == len(shape):
        if targets.shape != tuple(shape):
            raise ValueError(f"{layer.name}: expected one-hot/soft targets of shape {tuple(shape)}, got {targets.shape}")
        rows = targets.astype(dtype, copy=False)
        return (rows if rows.ndim == 2 else rows.reshape(-1, num_classes)), None
    raise ValueError(
        f"{layer.name}: expected integer labels of shape {tuple(shape[:-1])} or one-hot/soft targets of "
        f"shape {tuple(shape)}, got shape {targets.shape}"
    )


def class_labels(layer: Layer, labels, shape, num_classes: int, hint: str, check_range: bool = True) -> np.ndarray:
    """Validate integer class labels: of ``shape`` ((N,), or (N, T) for tokens; an int n means
    (n,)), an integer dtype, each in [0, num_classes) (unless ``check_range`` is False)."""
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    labels = np.asarray(labels)
    if labels.ndim != len(shape):
        raise ValueError(f"{layer.name}: expected integer labels of shape {shape}, got shape {labels.shape}")
    if labels.dtype.kind not in "iu":
        which = "1-D targets" if labels.ndim == 1 else f"targets of shape {labels.shape}"
        raise TypeError(f"{layer.name}: {which} must be integer class labels, got dtype {labels.dtype} {hint}")
    if labels.shape != shape:
        if labels.ndim == 1:
            raise ValueError(f"{layer.name}: expected {shape[0]} labels (one per sample in the batch), got {labels.shape[0]}")
        raise ValueError(
            f"{layer.name}: expected integer labels of shape {shape} (one per row of scores: their shape "
            f"without the class axis), got shape {labels.shape}"
        )
    if check_range:
        labels_in_range(layer, labels.reshape(-1), shape, num_classes, None)
    return labels


def labels_in_range(layer: Layer, labels: np.ndarray, shape: tuple, num_classes: int, ignore_index) -> np.ndarray | None:
    """Check flat ``labels`` (of an array of ``shape``) are in [0, num_classes) or ``ignore_index``;
    return the mask of the ignored ones, or None when none is (the usual case, decided by one
    min and one max when ``ignore_index`` is outside [0, num_classes), as PyTorch's -100 is)."""
    if not labels.size:
        return None
    low, high = labels.min(), labels.max()
    ignore_inside = ignore_index is not None and 0 <= ignore_index < num_classes
    if low >= 0 and high < num_classes and not ignore_inside:
        return None
    ignored = None if ignore_index is None else labels == ignore_index
    outside = (labels < 0) | (labels >= num_classes)
    if ignored is not None:
        outside &= ~ignored
    if outside.any():
        first = int(np.argmax(outside))
        index = tuple(int(i) for i in np.unravel_index(first, shape))
        where = "" if len(shape) == 1 else f" at index {index}"
        also = "" if ignore_index is None else f" (or ignore_index={ignore_index})"
        raise ValueError(
            f"{layer.name}: labels must be in [0, {num_classes}) for {num_classes} classes{also}, "
            f"got {labels[first]}{where}"
        )
    return ignored if ignored is not None and ignored.any() else None


def check_scores(layer: Layer, x, what: str, leading_axes: bool = False) -> np.ndarray:
    """Scores (N, C) in a float dtype; ``leading_axes``: (N, ..., C), any number of axes before C."""
    if leading_axes:
        layer._check_input(x)
        if x.ndim < 2:
            raise ValueError(f"{layer.name}: expected a 2-D or larger input (N, ..., C {what}), got shape {x.shape}")
    else:
        layer._check_input(x, 2, f"N, C {what}")
    if x.shape[-1] < 1:
        raise ValueError(f"{layer.name}: expected at least one class (C >= 1), got {what} of shape {x.shape}")
    if x.dtype.kind != "f":
        x = x.astype(np.float32)
    return x


def per_sample_delta(layer: Layer, delta, shape, dtype) -> np.ndarray:
    """The delta of a loss with one value per sample (or per token): of ``shape`` (an int n means
    (n,)); a scalar stands for that value everywhere."""
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    delta = np.asarray(delta, dtype=dtype)
    if delta.ndim == 0:  # a scalar weight for every sample is a convenience
        return np.full(shape, delta, dtype=dtype)
    return layer._check_delta(delta, shape)


def token_losses(losses: np.ndarray, shape: tuple, ignored) -> np.ndarray:
    """A cross-entropy's (M,) row losses shaped as ``shape`` (N, ...); with ignored rows, a
    ``numpy.ma.MaskedArray`` masking them, 0 underneath, which ``Mean`` averages without them."""
    if ignored is None:
        return losses if len(shape) == 1 else losses.reshape(shape)
    losses = losses.reshape(shape)
    mask = ignored.reshape(shape)
    losses[mask] = 0
    return np.ma.MaskedArray(losses, mask=mask)


def rows_delta(layer: Layer, delta, shape: tuple, dtype) -> np.ndarray:
    """A cross-entropy's delta, of its loss's ``shape`` (or a scalar), as the (M,) vector of its rows.

    A masked delta counts as its values (the loss zeroes the ignored rows' gradient itself)."""
    if isinstance(delta, np.ma.MaskedArray):
        delta = delta.filled(0)
    delta = per_sample_delta(layer, delta, shape, dtype)
    return delta if delta.ndim == 1 else delta.reshape(-1)


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
    check_plain_array(layer.name, "targets", targets)  # np.asarray would drop a mask unseen
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
