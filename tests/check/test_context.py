"""What the diagnoses work with (nnscratch/check/context.py): each target's gradient in a backward's
result, fresh gradients (of one backward, or what one adds), comparisons, and how numbers and the
worst coordinates are put in messages."""

from __future__ import annotations

import numpy as np

from nnscratch.check.context import Target, at, fmt, fmt_pair, worst_first
from nnscratch.check.numerical import Comparison

from helpers.check_contexts import Dense, context_for


def test_a_target_reads_its_gradient_from_a_backward_s_result():
    result = ("dx", ["d0", "d1"])
    assert Target(0, "input", np.zeros(1), np.arange(1)).gradient(result) == "dx"
    assert Target(2, "parameter 1", np.zeros(1), np.arange(1)).gradient(result) == "d1"


def test_gradients_are_those_of_a_fresh_forward_and_backward():
    x = np.random.default_rng(0).standard_normal((4, 3))
    layer = Dense()
    ctx = context_for(layer, x)
    assert ctx.x_shape == (4, 3)
    np.testing.assert_allclose(ctx.gradient(ctx.targets[0]), ctx.r @ layer.W.T, rtol=1e-14)
    np.testing.assert_allclose(ctx.gradient(ctx.targets[1]), x.T @ ctx.r, rtol=1e-14)
    delta = np.ones((4, 3))
    np.testing.assert_allclose(ctx.gradient(ctx.targets[1], delta=delta, x=2 * x), 2 * x.T @ delta, rtol=1e-14)
    comparison = ctx.compare(ctx.targets[1])
    assert comparison.problem == "" and len(comparison.coords) == 9


def test_an_accumulating_tensor_s_gradient_is_what_one_backward_adds():
    class Accumulates(Dense):
        def backward(self, delta):
            self.parameters_deltas[0] += self.x.T @ delta
            return delta @ self.W.T

    x = np.random.default_rng(1).standard_normal((4, 3))
    ctx = context_for(Accumulates(), x)
    weight = ctx.targets[1]
    assert not ctx.compare(weight).problem  # the first backward adds to zeros: right by luck
    assert ctx.compare(weight).problem  # each one after adds to the last: wrong
    ctx.accumulating.add(weight.index)
    assert ctx.compare(weight).problem == ""  # the increment of two backwards is the gradient


def test_numbers_in_messages():
    assert fmt(-0.0) == "0" and fmt(1234567.0) == "1.235e+06" and fmt(0.5) == "0.5"
    assert fmt_pair(1.0, 1.0000001) == ("1", "1.0000001")  # as many digits as tell them apart
    assert fmt_pair(2.0, 3.0) == ("2", "3")


def test_worst_first_orders_the_failing_coordinates_by_how_far_beyond_their_tolerance():
    full = np.array([[1.0, 2.0], [3.0, 4.0]])
    numerical = np.array([1.0, 2.5, 3.0, 4.1])
    comparison = Comparison.of(np.arange(4), numerical, np.zeros(4), full, atol=1e-3, rtol=0.0)
    assert worst_first(comparison).tolist() == [1, 3]
    assert at(comparison, 1) == "(0, 1): numerical 2.5, analytical 2"
