"""confusion_matrix against a loop over the samples; per_class_accuracy and the text layout by hand."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnscratch.metrics import confusion_matrix, format_confusion_matrix, per_class_accuracy


def confusion_matrix_loop(labels, predicted, num_classes):
    """The definition, one sample at a time."""
    matrix = [[0] * num_classes for _ in range(num_classes)]
    for t, p in zip(labels, predicted):
        matrix[t][p] += 1
    return np.array(matrix)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 12).flatmap(lambda c: st.tuples(
    st.just(c),
    st.lists(st.tuples(st.integers(0, c - 1), st.integers(0, c - 1)), max_size=200),
)))  # fmt: skip
def test_confusion_matrix_equals_the_loop(case):
    num_classes, pairs = case
    labels = np.array([t for t, _ in pairs], dtype=np.int64)
    predicted = np.array([p for _, p in pairs], dtype=np.uint8)
    matrix = confusion_matrix(labels, predicted, num_classes)
    assert matrix.shape == (num_classes, num_classes) and matrix.dtype == np.int64
    np.testing.assert_array_equal(matrix, confusion_matrix_loop(labels, predicted, num_classes))


def test_confusion_matrix_rows_are_true_classes():
    matrix = confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 2, 0], 3)
    np.testing.assert_array_equal(matrix, [[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    assert per_class_accuracy(matrix) == [0.5, 1.0, pytest.approx(2 / 3)]


def test_per_class_accuracy_is_none_for_an_absent_class():
    matrix = confusion_matrix([0, 0, 2], [0, 2, 2], 3)
    assert per_class_accuracy(matrix) == [0.5, None, 1.0]


@pytest.mark.parametrize("labels, predicted, num_classes, kind, message", [
    ([0, 1], [0, 1.0], 2, TypeError, "predicted must be integer class indices, got an array of float64"),
    ([[0, 1]], [[0, 1]], 2, ValueError, r"labels must be 1-D \(N,\), got shape \(1, 2\)"),
    ([0, 3], [0, 1], 3, ValueError, r"labels must be in \[0, 3\), got values from 0 to 3"),
    ([0, 1], [0, -1], 3, ValueError, r"predicted must be in \[0, 3\), got values from -1 to 0"),
    ([0, 1], [0], 3, ValueError, "labels and predicted must have the same length, got 2 and 1"),
    ([0], [0], 0, ValueError, "num_classes must be a positive int, got 0"),
    ([0], [0], True, TypeError, "num_classes must be an int, got bool True"),
])  # fmt: skip
def test_bad_input_is_refused_clearly(labels, predicted, num_classes, kind, message):
    with pytest.raises(kind, match=f"confusion_matrix: {message}"):
        confusion_matrix(np.array(labels), np.array(predicted), num_classes)


def test_per_class_accuracy_refuses_a_non_square_matrix():
    with pytest.raises(ValueError, match=r"per_class_accuracy: expected a square \(C, C\) confusion matrix, got shape \(2, 3\)"):
        per_class_accuracy(np.zeros((2, 3)))


def test_format_shows_counts_dots_for_off_diagonal_zeros_and_row_accuracy():
    text = format_confusion_matrix(confusion_matrix([0, 0, 1, 2, 2, 2, 2], [0, 1, 1, 2, 2, 2, 0], 3))
    assert text.splitlines() == [
        "confusion matrix (rows: true class, columns: predicted class)",
        "true\\pred 0 1 2   accuracy",
        "        0 1 1 .      50.0%",
        "        1 . 1 .     100.0%",
        "        2 1 . 3      75.0%",
    ]
