"""Kinks (nnscratch/check/kinks.py): a mismatch where the function is not differentiable is moved off
the kink and called no bug; a smooth function's wrong gradient is not mistaken for one."""

from __future__ import annotations

import numpy as np

import nnscratch as nn
from nnscratch.check.kinks import moved_off_kinks

from helpers.check_contexts import context_for


class Hinge0:
    """y = max(x, 0), backward 1 where x > 0 (0 at 0: a subgradient). At 0 the central difference
    is the mean of the two slopes, 0.5, which no backward gives."""

    parameters, parameters_deltas = [], []

    def forward(self, x, *args):
        self.x = x
        return np.maximum(x, 0)

    def backward(self, delta):
        return delta * (self.x > 0)


def test_a_mismatch_on_a_kink_is_moved_off_it_and_passes():
    x = np.array([[0.0, 1.5, -2.0], [0.7, 0.0, -0.3]])  # two values on the kink
    ctx = context_for(Hinge0(), x)
    inputs = ctx.targets[0]
    comparison = ctx.compare(inputs)
    assert comparison.problem == "gradient is wrong"
    diagnosis, after = moved_off_kinks(ctx, inputs, comparison)
    assert diagnosis.kind == "kink" and diagnosis.bug is False
    assert diagnosis.evidence["count"] == 2 and diagnosis.evidence["checked"] == 6
    assert diagnosis.evidence["passes_when_moved"] is True and not after.problem
    assert sorted(point["index"] for point in diagnosis.evidence["points"]) == [(0, 0), (1, 1)]
    assert "with them moved off the kink by a few eps, the gradient matches" in diagnosis.message
    # each moved by a different multiple of eps (5, 8, ...), so that tied values stay apart
    np.testing.assert_allclose(sorted(inputs.array.ravel()[[0, 4]]), [5e-6, 8e-6])


def test_the_built_in_relu_at_zero_too():
    x = np.array([[0.0, 1.0], [-1.0, 0.0]])
    ctx = context_for(nn.ReLU(), x)
    inputs = ctx.targets[0]
    diagnosis, after = moved_off_kinks(ctx, inputs, ctx.compare(inputs))
    assert diagnosis is not None and diagnosis.evidence["count"] == 2 and not after.problem


def test_a_smooth_wrong_gradient_is_not_a_kink():
    x = np.random.default_rng(0).standard_normal((2, 3))
    ctx = context_for(nn.Tanh(), x)
    inputs = ctx.targets[0]
    wrong = ctx.compare_with(inputs, 2 * ctx.gradient(inputs))
    diagnosis, after = moved_off_kinks(ctx, inputs, wrong)
    assert diagnosis is None and after is wrong
    np.testing.assert_array_equal(inputs.array, x)  # nothing moved
