"""Running a model over a data set in batches: ``predict`` its outputs, ``evaluate`` its accuracy
(and loss). Both run in eval mode and put every layer's mode back as they found it; both release the
memory their batches made the layers keep when they finish (nnscratch/kernels/memory.py).

Targets are integer labels (N,) or one-hot/soft rows (N, C); accuracy compares the argmax of the
scores with the label (the argmax of a one-hot row). For sequences, the scores are (N, T, C) and
the labels (N, T), one per token: accuracy and loss are then over tokens, and a token whose label is
the loss's ``ignore_index`` counts for neither (see ``evaluate``); any other label outside [0, C) is
refused. ``fit`` (train.py) shares the checks and the counting here.
"""

from __future__ import annotations

import math

import numpy as np

from .kernels.memory import release_memory
from .protocol import in_mode, walk
from .validation import check_int, is_int


# -- argument checks ---------------------------------------------------------------------------
def check_data(where: str, x, y=None) -> None:
    if not hasattr(x, "shape") or len(x.shape) == 0:
        raise TypeError(f"{where}: x must be an array with a batch axis (N, ...), got {type(x).__name__}")
    if len(x) == 0:
        raise ValueError(f"{where}: x is empty (shape {x.shape}), expected at least one sample")
    if y is None:
        return
    if not hasattr(y, "shape") or len(y.shape) == 0:
        raise ValueError(
            f"{where}: y must be integer labels (N,) or (N, T), or one-hot/soft targets (N, C), "
            f"got {getattr(y, 'shape', type(y).__name__)}"
        )
    if len(y) != len(x):
        raise ValueError(f"{where}: x has {len(x)} samples but y has {len(y)}; expected one target per sample")


def check_validation(where: str, validation, x, y):
    """``validation`` as ``fit`` takes it: None, or a pair (x_val, y_val) of the training data's kind,
    checked before the first step. A sample of x_val and a target of y_val have the shapes of the
    training data's, x.shape[1:] and y.shape[1:], but for the length T of sequences (inputs
    (N, T, ...) with integer token labels (N, T)), which may differ."""
    if validation is None:
        return None
    if not isinstance(validation, (tuple, list)) or len(validation) != 2:
        raise TypeError(f"{where}: validation must be a pair (x_val, y_val), got {type(validation).__name__}")
    where = f"{where} (validation data)"
    check_data(where, *validation)
    # token labels (N, T), integers, for inputs (N, T, ...): one-hot rows (N, C) are floats
    tokens = len(y.shape) == 2 and np.dtype(y.dtype).kind in "iu" and len(x.shape) >= 2 and x.shape[1] == y.shape[1]
    x_val, y_val = validation
    if tokens and len(x_val.shape) >= 2 and len(y_val.shape) >= 2 and x_val.shape[1] != y_val.shape[1]:
        raise ValueError(f"{where}: x has shape {x_val.shape} and y {y_val.shape}: sequences of {x_val.shape[1]} "
                         f"steps need a label for each, as the training data have")
    for name, given, trained in zip("xy", validation, (x, y)):
        if _sample_shape(given, tokens) != _sample_shape(trained, tokens):
            raise ValueError(f"{where}: {name} has shape {given.shape}, the training {name} {trained.shape}: each "
                             f"{'sample' if name == 'x' else 'target'} must have the training data's shape")
    return validation


def _sample_shape(data, tokens: bool) -> tuple:
    """One sample's shape, with "T" for the length of a sequence (any length matches any other)."""
    shape = tuple(data.shape)
    return ("T", *shape[2:]) if tokens and len(shape) >= 2 else shape[1:]


def ignore_index_of(loss):
    """The ``ignore_index`` of the loss's cross-entropy (None without one): its tokens count for
    nothing in accuracy, as in the loss."""
    found = [getattr(layer, "ignore_index", None) for layer in walk(loss)] if loss is not None else []
    return next((value for value in found if is_int(value)), None)


def scalar(where: str, value) -> float:
    if np.ndim(value) != 0:
        raise ValueError(
            f"{where}: the loss must return a scalar (end it with Mean()), got shape {np.shape(value)}"
        )
    return float(value)


def count_correct(where: str, scores, y: np.ndarray, ignore_index=None) -> tuple[int, int]:
    """(correct, counted): the argmax of the scores' last axis against the labels of the batch's
    targets ``y``, over the rows counted: all, but for labels equal to ``ignore_index``. A label
    outside [0, C) that is not ``ignore_index`` is a ValueError: no class could ever match it."""
    shape = np.shape(scores)
    if len(shape) == y.ndim + 1 and shape[:-1] == y.shape:  # integer labels, (N,) or (N, T)
        if y.dtype.kind not in "iu":
            raise TypeError(f"{where}: labels of shape {y.shape} must be integers, got dtype {y.dtype}")
        hits = scores.argmax(axis=-1) == y
        classes, low, high = shape[-1], y.min(), y.max()
        ignore_inside = ignore_index is not None and 0 <= ignore_index < classes
        if low >= 0 and high < classes and not ignore_inside:
            return int(np.count_nonzero(hits)), y.size  # every label counts: the usual case
        counted = np.ones(y.shape, bool) if ignore_index is None else y != ignore_index
        if not ((y >= 0) & (y < classes) | ~counted).all():
            ignored = "" if ignore_index is None else f" (or the loss's ignore_index, {ignore_index})"
            raise ValueError(f"{where}: labels must be in [0, {classes}){ignored} for the {classes} classes the model "
                             f"scores, got labels from {low} to {high}")
        return int(np.count_nonzero(hits & counted)), int(np.count_nonzero(counted))
    if len(shape) >= 2 and shape == y.shape:  # one-hot or soft rows
        return int(np.count_nonzero(scores.argmax(axis=-1) == y.argmax(axis=-1))), math.prod(shape[:-1])
    raise ValueError(
        f"{where}: the model must return scores of shape (N, C) with N = {len(y)} (or (N, T, C) for "
        f"labels (N, T)), got shape {shape}"
    )


def ratio(total, count: int) -> float:
    """total / count, NaN when nothing was counted (every target ignored)."""
    return total / count if count else math.nan


# -- evaluate and predict ----------------------------------------------------------------------
def predict(model, x, batch_size: int = 1000) -> np.ndarray:
    """The model's outputs for every sample, computed ``batch_size`` samples at a time.

    When it returns, every layer's ``release_memory()`` has dropped what the batches made it keep
    (see nnscratch/kernels/memory.py): only the result holds memory.

    Shape:
        x: (N, ...) whatever the model takes; returns (N, ...) whatever the model gives per sample
    """
    check_data("predict", x)
    batch_size = check_int("predict", "batch_size", batch_size, 1)
    try:
        with in_mode(False, model):
            return _predict(model, x, batch_size)
    finally:  # _predict has returned: none of its batches' arrays is still held
        release_memory(model)


def _predict(model, x, batch_size: int) -> np.ndarray:
    out = None
    for start in range(0, len(x), batch_size):
        scores = model.forward(x[start : start + batch_size])
        if out is None:  # the output shape and dtype are known after the first batch
            out = np.empty((len(x), *np.shape(scores)[1:]), dtype=np.asarray(scores).dtype)
        out[start : start + batch_size] = scores
    return out


def evaluate(model, x, y, batch_size: int = 1000, loss=None) -> dict:
    """Accuracy (and the mean loss when ``loss`` is given) over a data set, in batches.

    accuracy = mean(argmax(model(x)) == label); loss = sum over batches of loss(batch) * |batch| / N,
    which is the mean over all samples for a loss ending in ``Mean()``.

    Token labels (N, T) with scores (N, T, C): both are over tokens, |batch| the batch's tokens
    counted. A token whose label is the loss's ``ignore_index`` (found on its layers: the
    cross-entropies' -100 by default) counts for neither, so the loss is the mean over every counted
    token of the data set, what ``CrossEntropyLoss(ignore_index=...)`` gives for the whole set at
    once; with every token ignored, both are NaN.

    Shape:
        x: (N, ...); y: (N,) labels, (N, C) one-hot/soft, or (N, T) token labels
    Returns:
        {"accuracy": float, "loss": float} (no "loss" key without ``loss``)

    When it returns, every layer's ``release_memory()`` has dropped what the batches made it keep,
    as in ``predict``.
    """
    check_data("evaluate", x, y)
    batch_size = check_int("evaluate", "batch_size", batch_size, 1)
    try:
        return evaluate_in_batches(model, x, y, batch_size, loss)
    finally:
        release_memory(model)
        if loss is not None:
            release_memory(loss)


def evaluate_in_batches(model, x, y, batch_size: int, loss) -> dict:
    """``evaluate`` without releasing memory: fit's validation, whose batches have the size of the
    training batches, so the layers' buffers serve the next epoch as they are."""
    ignore_index = ignore_index_of(loss)
    correct, counted, total_loss = 0, 0, 0.0
    with in_mode(False, model, *([] if loss is None else [loss])):
        for start in range(0, len(x), batch_size):
            stop = start + batch_size
            scores = model.forward(x[start:stop])
            hits, count = count_correct("evaluate", scores, y[start:stop], ignore_index)
            correct, counted = correct + hits, counted + count
            if loss is not None:
                total_loss += scalar("evaluate", loss.forward(scores, y[start:stop])) * count
    result = {"accuracy": ratio(correct, counted)}
    if loss is not None:
        result["loss"] = ratio(total_loss, counted)
    return result
