"""The batch axis (nnscratch/check/samples.py): a gradient that leaks from one sample to another in a
layer that says its samples are independent, and an error that is the same for every sample."""

from __future__ import annotations

import numpy as np

import nnscratch as nn
from nnscratch.check.samples import _position, batch_constant, leaks

from helpers.check_contexts import Dense, context_for


class LeakyCentering:
    """y = x - mean over the batch, with backward leaving the mean's term out; declared per-sample."""

    parameters, parameters_deltas = [], []
    independent_samples = True

    def forward(self, x, *args):
        return x - x.mean(axis=0)

    def backward(self, delta):
        return delta - delta.mean(axis=0)  # right for this function, and mixes the samples


class ForgetsTheMean(LeakyCentering):
    """y = x - mean over the batch, backward as if the mean were a constant: off by mean(delta)."""

    independent_samples = False

    def backward(self, delta):
        return delta.copy()


def test_a_gradient_that_mixes_samples_leaks_in_a_layer_declared_independent():
    x = np.random.default_rng(0).standard_normal((4, 3))
    ctx = context_for(LeakyCentering(), x)
    inputs = ctx.targets[0]
    (diagnosis,) = leaks(ctx, inputs, ctx.compare(inputs))
    assert diagnosis.kind == "leaks-across-batch" and diagnosis.evidence["changed_sample"] == 3
    assert diagnosis.evidence["index"][0] in (0, 1, 2)
    assert diagnosis.message.startswith("changing sample 3 (its input and its upstream gradient) changed the "
                                        "input gradient of sample")


def test_no_leak_in_a_per_sample_layer_and_no_probe_of_one_that_does_not_say():
    x = np.random.default_rng(1).standard_normal((4, 3))
    ctx = context_for(Dense(), x)
    assert leaks(ctx, ctx.targets[0], ctx.compare(ctx.targets[0])) is None
    ctx = context_for(ForgetsTheMean(), x)  # declared not independent: never told it leaks
    assert leaks(ctx, ctx.targets[0], ctx.compare(ctx.targets[0])) is None
    ctx = context_for(Dense(), x[:1])  # one sample: nothing to leak to
    assert leaks(ctx, ctx.targets[0], ctx.compare(ctx.targets[0])) is None


def test_an_error_the_same_for_every_sample_is_batch_constant():
    x = np.random.default_rng(2).standard_normal((5, 3))
    ctx = context_for(ForgetsTheMean(), x)
    inputs = ctx.targets[0]
    comparison = ctx.compare(inputs)
    assert comparison.problem
    (diagnosis,) = batch_constant(ctx, inputs, comparison)
    assert diagnosis.kind == "batch-constant" and diagnosis.evidence["samples"] == 5
    # the missing term is mean(R) over the batch, per column
    expected = ctx.r.mean(axis=0)
    for offset in diagnosis.evidence["offsets"]:
        column = offset["index"][1]
        np.testing.assert_allclose(offset["offset"], expected[column], rtol=1e-6)
    assert "a term computed over the whole batch is missing or wrong" in diagnosis.message


def test_an_error_that_differs_between_samples_is_not_batch_constant():
    x = np.random.default_rng(3).standard_normal((4, 3))
    ctx = context_for(nn.Tanh(), x)
    inputs = ctx.targets[0]
    wrong = ctx.compare_with(inputs, 2 * ctx.gradient(inputs))
    assert batch_constant(ctx, inputs, wrong) is None


def test_position_prints_the_batch_axis_as_a_colon():
    assert _position((slice(None), 2, 0)) == "(:, 2, 0)"
