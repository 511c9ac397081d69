"""What the losses take as targets (nnscratch/layers/losses/targets.py), checked directly: labels or
rows told apart by their axes, ignore_index, ranges, scores, deltas and element-wise pairs; each value
returned and each whole message."""

from __future__ import annotations

import re

import numpy as np
import pytest

from nnscratch import CrossEntropy, Hinge, MeanSquaredError, SoftmaxCrossEntropy
from nnscratch.layers.losses.targets import (check_scores, class_labels, class_targets, elementwise_pair,
                                             labels_in_range, per_sample_delta, rows_delta, token_losses)

LOSS = CrossEntropy()


def raises(error, message):
    return pytest.raises(error, match=f"^{re.escape(message)}$")


def test_labels_come_back_flat_and_rows_as_a_float_matrix():
    labels, ignored = class_targets(LOSS, [2, 0, 1], (3, 4), np.float32)
    assert labels.tolist() == [2, 0, 1] and ignored is None
    tokens, _ = class_targets(LOSS, np.array([[1, 2], [3, 0]]), (2, 2, 4), np.float32)
    assert tokens.tolist() == [1, 2, 3, 0]
    rows, ignored = class_targets(LOSS, np.eye(4)[[1, 2]].astype(int), (2, 4), np.float64)
    assert rows.dtype == np.float64 and rows.shape == (2, 4) and ignored is None
    rows, _ = class_targets(LOSS, np.full((2, 3, 4), 0.25), (2, 3, 4), np.float32)
    assert rows.shape == (6, 4) and rows.dtype == np.float32


def test_ignored_labels_are_masked_and_replaced_by_a_safe_index():
    labels, ignored = class_targets(LOSS, [2, -100, 1, -100], (4, 3), np.float32, ignore_index=-100)
    assert labels.tolist() == [2, 0, 1, 0] and ignored.tolist() == [False, True, False, True]
    _, none = class_targets(LOSS, [2, 1], (2, 3), np.float32, ignore_index=-100)
    assert none is None  # nothing ignored: no mask at all


@pytest.mark.parametrize("targets, shape, error, message", [
    (None, (2, 3), TypeError, "CrossEntropy: forward needs targets: forward(x, targets) with integer labels (N,) "
                              "or one-hot/soft targets (N, C)"),
    ([0.0, 1.0], (2, 3), TypeError, "CrossEntropy: 1-D targets must be integer class labels, got dtype float64 "
                                    "(pass labels as integers, or one-hot targets of shape (N, C))"),
    ([0, 1, 2], (2, 3), ValueError, "CrossEntropy: expected 2 labels (one per sample in the batch), got 3"),
    ([0, 3], (2, 3), ValueError, "CrossEntropy: labels must be in [0, 3) for 3 classes, got 3"),
    (np.zeros((2, 4)), (2, 3), ValueError, "CrossEntropy: expected one-hot/soft targets of shape (2, 3), got (2, 4)"),
    (np.zeros((2, 3, 1, 1)), (2, 3), ValueError, "CrossEntropy: expected integer labels of shape (2,) or "
                                                 "one-hot/soft targets of shape (2, 3), got shape (2, 3, 1, 1)"),
    (np.array(["a", "b"]), (2, 3), TypeError, "CrossEntropy: targets must be real numbers (bool, int or float), "
                                              "got an array of <U1"),
])
def test_class_targets_messages(targets, shape, error, message):
    with raises(error, message):
        class_targets(LOSS, targets, shape, np.float32)


def test_a_label_out_of_range_is_located_and_ignore_index_mentioned():
    with raises(ValueError, "CrossEntropy: labels must be in [0, 4) for 4 classes (or ignore_index=-100), "
                            "got 7 at index (1, 0)"):
        labels_in_range(LOSS, np.array([0, 1, 7, 2]), (2, 2), 4, -100)
    assert labels_in_range(LOSS, np.array([], int), (0,), 4, None) is None
    mask = labels_in_range(LOSS, np.array([0, 2, 1]), (3,), 3, 2)  # an ignore_index inside [0, C) is honoured
    assert mask.tolist() == [False, True, False]


def test_class_labels_of_tokens():
    labels = class_labels(LOSS, [[0, 1], [2, 0]], (2, 2), 3, "")
    assert labels.shape == (2, 2)
    with raises(ValueError, "CrossEntropy: expected integer labels of shape (2, 2) (one per row of scores: their "
                            "shape without the class axis), got shape (2, 3)"):
        class_labels(LOSS, np.zeros((2, 3), int), (2, 2), 3, "")
    with raises(ValueError, "CrossEntropy: expected integer labels of shape (2,), got shape (2, 1)"):
        class_labels(LOSS, np.zeros((2, 1), int), 2, 3, "")


def test_scores_must_be_two_d_or_have_leading_axes_and_become_float():
    assert check_scores(LOSS, np.zeros((2, 3), np.int64), "scores").dtype == np.float32
    assert check_scores(LOSS, np.zeros((2, 3, 4)), "logits", leading_axes=True).shape == (2, 3, 4)
    with raises(ValueError, "CrossEntropy: expected a 2-D or larger input (N, ..., C logits), got shape (3,)"):
        check_scores(LOSS, np.zeros(3), "logits", leading_axes=True)
    with pytest.raises(ValueError, match=r"^CrossEntropy: expected .*\(N, C scores\)"):
        check_scores(LOSS, np.zeros(3), "scores")
    # no classes: there is no distribution to score (a max over nothing was numpy's own error)
    with raises(ValueError, "CrossEntropy: expected at least one class (C >= 1), got logits of shape (2, 3, 0)"):
        check_scores(LOSS, np.zeros((2, 3, 0)), "logits", leading_axes=True)
    with raises(ValueError, "CrossEntropy: expected at least one class (C >= 1), got scores of shape (0, 0)"):
        check_scores(LOSS, np.zeros((0, 0)), "scores")


@pytest.mark.parametrize("cls", [SoftmaxCrossEntropy, CrossEntropy, Hinge])
def test_each_classification_loss_refuses_no_classes_even_with_every_target_ignored(cls):
    targets = np.full((2, 3), -100) if cls is not Hinge else np.zeros(2, int)
    x = np.zeros((2, 3, 0)) if cls is not Hinge else np.zeros((2, 0))
    with pytest.raises(ValueError, match=rf"^{cls.__name__}: expected at least one class \(C >= 1\)"):
        cls().forward(x, targets)


def test_deltas_per_sample_a_scalar_spread_and_masked_values_filled():
    np.testing.assert_array_equal(per_sample_delta(LOSS, 2.0, 3, np.float32), [2, 2, 2])
    assert per_sample_delta(LOSS, np.ones(3), (3,), np.float64).dtype == np.float64
    with pytest.raises(ValueError):
        per_sample_delta(LOSS, np.ones(4), 3, np.float32)
    masked = np.ma.MaskedArray(np.array([[1.0, 5.0], [2.0, 3.0]]), mask=[[False, True], [False, False]])
    np.testing.assert_array_equal(rows_delta(LOSS, masked, (2, 2), np.float64), [1, 0, 2, 3])


def test_token_losses_mask_the_ignored_rows_with_zeros_underneath():
    losses = token_losses(np.array([1.0, 2.0, 3.0, 4.0]), (2, 2), np.array([False, True, False, False]))
    assert isinstance(losses, np.ma.MaskedArray) and losses.mean() == pytest.approx(8 / 3)
    assert losses.data.tolist() == [[1.0, 0.0], [3.0, 4.0]]
    assert token_losses(np.arange(4.0), (4,), None).shape == (4,)
    assert token_losses(np.arange(4.0), (2, 2), None).shape == (2, 2)


def test_elementwise_pairs():
    mse = MeanSquaredError()
    x, t = elementwise_pair(mse, np.array([[1, 2]]), [[0.5, 0.5]], "predictions")
    assert x.dtype == t.dtype == np.float32
    with raises(ValueError, "MeanSquaredError: expected targets of the same shape as the predictions (1, 2), "
                            "got (2,)"):
        elementwise_pair(mse, np.zeros((1, 2)), np.zeros(2), "predictions")
    with raises(ValueError, "MeanSquaredError: expected predictions with a batch axis (N, ...), got a scalar"):
        elementwise_pair(mse, np.array(1.0), 1.0, "predictions")
    with raises(TypeError, "MeanSquaredError: forward needs targets: forward(x, targets), targets of the shape of x"):
        elementwise_pair(mse, np.zeros(2), None, "predictions")
    with raises(ValueError, "MeanSquaredError: probabilities must be in [0, 1], got nan"):
        elementwise_pair(mse, np.array([0.5, np.nan]), np.zeros(2), "probabilities", unit_interval=True)
    with raises(ValueError, "MeanSquaredError: targets must be in [0, 1], got 2.0"):
        elementwise_pair(mse, np.array([0.5, 0.5]), np.array([0.0, 2.0]), "probabilities", unit_interval=True)


def test_masked_targets_are_refused_not_stripped_of_their_mask():
    # np.asarray drops a mask without a word: the masked labels would count as real ones
    labels = np.ma.masked_array([2, 0, 1], mask=[False, True, False])
    with raises(TypeError, "SoftmaxCrossEntropy: targets must be a plain numpy array, got a masked array (its mask "
                           "would be ignored); fill the masked values first: array.filled(value)"):
        SoftmaxCrossEntropy().forward(np.zeros((3, 4), np.float32), labels)
    with raises(TypeError, "MeanSquaredError: targets must be a plain numpy array, got a masked array (its mask "
                           "would be ignored); fill the masked values first: array.filled(value)"):
        MeanSquaredError().forward(np.zeros(3, np.float32), np.ma.masked_array([1.0, 2.0, 3.0], mask=[0, 1, 0]))
    # filled, with the ignored ones marked, it works as documented
    loss = SoftmaxCrossEntropy().forward(np.zeros((3, 4), np.float32), labels.filled(-100))
    np.testing.assert_allclose(loss, [np.log(4), 0.0, np.log(4)], rtol=1e-6)
