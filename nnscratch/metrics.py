"""Classification metrics beyond accuracy: the confusion matrix and what it says per class.

``confusion_matrix(labels, predicted, num_classes)`` counts, for every true class (row), how often
each class was predicted (column); its diagonal holds the correct answers. ``per_class_accuracy``
reads each row's share on the diagonal (the recall of that class), and ``format_confusion_matrix``
lays the matrix out as text for a terminal.
"""

from __future__ import annotations

import numpy as np

from .validation import check_int


def _check_labels(name: str, values, num_classes: int) -> np.ndarray:
    values = np.asarray(values)
    if values.dtype.kind not in "iu":
        raise TypeError(f"confusion_matrix: {name} must be integer class indices, got an array of {values.dtype}")
    if values.ndim != 1:
        raise ValueError(f"confusion_matrix: {name} must be 1-D (N,), got shape {values.shape}")
    if values.size and (values.min() < 0 or values.max() >= num_classes):
        raise ValueError(
            f"confusion_matrix: {name} must be in [0, {num_classes}), "
            f"got values from {values.min()} to {values.max()}"
        )
    return values.astype(np.int64, copy=False)


def confusion_matrix(labels, predicted, num_classes: int) -> np.ndarray:
    """Counts of (true class, predicted class) pairs: m[t, p] = #{i : labels[i] = t and predicted[i] = p}.

    Rows are the true classes, columns the predicted ones; the trace is the number of correct
    answers and each row sums to the number of samples of that class.

    Shape:
        labels (N,), predicted (N,) integers in [0, num_classes) -> (num_classes, num_classes) int64
    """
    num_classes = check_int("confusion_matrix", "num_classes", num_classes, 1)
    labels = _check_labels("labels", labels, num_classes)
    predicted = _check_labels("predicted", predicted, num_classes)
    if labels.shape != predicted.shape:
        raise ValueError(
            f"confusion_matrix: labels and predicted must have the same length, got {len(labels)} and {len(predicted)}"
        )
    # each pair (t, p) as one index t * C + p: one bincount instead of a loop over samples
    counts = np.bincount(labels * num_classes + predicted, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def per_class_accuracy(matrix) -> list:
    """The share of each true class that was predicted right: m[c, c] / sum_p m[c, p].

    None for a class with no samples (its accuracy is undefined, and JSON has no NaN).

    Shape:
        matrix (C, C) -> a list of C floats or None
    """
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"per_class_accuracy: expected a square (C, C) confusion matrix, got shape {matrix.shape}")
    totals = matrix.sum(axis=1)
    return [float(matrix[c, c] / totals[c]) if totals[c] else None for c in range(len(matrix))]


def format_confusion_matrix(matrix) -> str:
    """The matrix as aligned text: rows true classes, columns predicted, each row's accuracy at the end.

    Zeros off the diagonal print as ``.`` so that the mistakes stand out.
    """
    matrix = np.asarray(matrix)
    accuracy = per_class_accuracy(matrix)
    classes = len(matrix)
    width = max(len(str(int(matrix.max()))) if matrix.size else 1, len(str(classes - 1)))
    lines = [
        "confusion matrix (rows: true class, columns: predicted class)",
        "true\\pred " + " ".join(f"{c:>{width}}" for c in range(classes)) + "   accuracy",
    ]
    for t in range(classes):
        cells = [
            f"{'.' if matrix[t, p] == 0 and t != p else int(matrix[t, p]):>{width}}" for p in range(classes)
        ]
        shown = "-" if accuracy[t] is None else f"{100 * accuracy[t]:.1f}%"
        lines.append(f"{t:>9} " + " ".join(cells) + f"   {shown:>8}")
    return "\n".join(lines)
