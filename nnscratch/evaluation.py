"""Running a model over a data set in batches: ``predict`` its outputs, ``evaluate`` its accuracy
(and loss). Both run in eval mode and put every layer's mode back as they found it; both release the
memory their batches made the layers keep when they finish (nnscratch/kernels/memory.py).

Targets are integer labels (N,) or one-hot/soft rows (N, C); accuracy compares the argmax of the
scores with the label (the argmax of a one-hot row). ``fit`` (train.py) shares the checks here.
"""

from __future__ import annotations

import numpy as np

from .kernels.memory import release_memory
from .protocol import in_mode
from .validation import check_int


# -- argument checks ---------------------------------------------------------------------------
def check_data(where: str, x, y=None) -> None:
    if not hasattr(x, "shape") or len(x.shape) == 0:
        raise TypeError(f"{where}: x must be an array with a batch axis (N, ...), got {type(x).__name__}")
    if len(x) == 0:
        raise ValueError(f"{where}: x is empty (shape {x.shape}), expected at least one sample")
    if y is None:
        return
    if not hasattr(y, "shape") or len(y.shape) not in (1, 2):
        raise ValueError(
            f"{where}: y must be integer labels (N,) or one-hot/soft targets (N, C), "
            f"got {getattr(y, 'shape', type(y).__name__)}"
        )
    if len(y) != len(x):
        raise ValueError(f"{where}: x has {len(x)} samples but y has {len(y)}; expected one target per sample")


def labels_of(y: np.ndarray) -> np.ndarray:
    """Class labels of the targets: the labels themselves, or the argmax of one-hot/soft rows."""
    return y if y.ndim == 1 else y.argmax(axis=1)


def scalar(where: str, value) -> float:
    if np.ndim(value) != 0:
        raise ValueError(
            f"{where}: the loss must return a scalar (end it with Mean()), got shape {np.shape(value)}"
        )
    return float(value)


def count_correct(where: str, scores, labels: np.ndarray) -> int:
    if np.ndim(scores) != 2 or len(scores) != len(labels):
        raise ValueError(
            f"{where}: the model must return scores of shape (N, C) with N = {len(labels)}, "
            f"got shape {np.shape(scores)}"
        )
    return int(np.count_nonzero(scores.argmax(axis=1) == labels))


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

    Shape:
        x: (N, ...); y: (N,) labels or (N, C) one-hot/soft
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
    labels = labels_of(y)
    correct, total_loss = 0, 0.0
    with in_mode(False, model, *([] if loss is None else [loss])):
        for start in range(0, len(x), batch_size):
            stop = start + batch_size
            scores = model.forward(x[start:stop])
            correct += count_correct("evaluate", scores, labels[start:stop])
            if loss is not None:
                total_loss += scalar("evaluate", loss.forward(scores, y[start:stop])) * len(labels[start:stop])
    result = {"accuracy": correct / len(x)}
    if loss is not None:
        result["loss"] = total_loss / len(x)
    return result
