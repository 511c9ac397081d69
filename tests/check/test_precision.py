"""The precision diagnoses (nnscratch/check/precision.py), called directly: a gradient handed back in
another dtype, a forward that rounds to float32, and the float32 probe (an overflow float64 hides;
random layers and float64-only layers skipped, not failed)."""

from __future__ import annotations

import numpy as np

import nnscratch as nn
from nnscratch.check.context import Target
from nnscratch.check.precision import _off_in_float32, float32_probe, returned_dtype, rounds_to_lower_precision

from helpers.check_contexts import context_for
from helpers.gallery import Float32Tanh, OverflowingSoftmax


def test_a_gradient_returned_in_another_dtype_is_named():
    target = Target(1, "parameter 0", np.zeros(2), np.arange(2))
    diagnosis = returned_dtype(target, [np.dtype(np.float64), np.dtype(np.float32)])
    assert diagnosis.kind == "precision" and diagnosis.evidence == {"returned_dtype": "float32"}
    assert diagnosis.message.startswith("backward gave the gradient of parameter 0 as float32 for float64")
    assert returned_dtype(target, [None, np.dtype(np.float64)]) is None
    assert returned_dtype(Target(0, "input", np.zeros(2), np.arange(2)), [None]) is None  # integer ids


def test_a_forward_that_rounds_to_float32_is_named():
    x = np.random.default_rng(0).standard_normal((3, 4))
    ctx = context_for(Float32Tanh(), x)
    inputs = ctx.targets[0]
    diagnosis = rounds_to_lower_precision(ctx, inputs, ctx.compare(inputs))
    assert diagnosis.kind == "precision" and diagnosis.evidence["changed_by_1e-5"] == 12
    assert diagnosis.evidence["changed_by_1e-12"] <= 1
    np.testing.assert_array_equal(inputs.array, x)  # put back


def test_a_float64_forward_is_not_said_to_round():
    x = np.random.default_rng(0).standard_normal((3, 4))
    ctx = context_for(nn.Tanh(), x)
    inputs = ctx.targets[0]
    assert rounds_to_lower_precision(ctx, inputs, ctx.compare(inputs)) is None


def test_off_in_float32_needs_a_tenth_of_the_values_off_or_one_not_finite():
    high = np.linspace(1, 2, 20)
    low = high.copy()
    low[:1] += 0.1
    assert _off_in_float32(low, high) is None  # 1 of 20 off: rounding, not a cancellation
    low[:2] += 0.1
    assert _off_in_float32(low, high)[3] == 2
    low = high.copy()
    low[5] = np.inf
    assert _off_in_float32(low, high) == ((5,), float("inf"), float(high[5]), 1)


def test_the_float32_probe_finds_an_overflow_float64_hides():
    x = np.array([[50.0, 100.0, 0.0], [1.0, 2.0, 3.0]])
    r = np.random.default_rng(0).standard_normal((2, 3))
    status, found = float32_probe(OverflowingSoftmax(), "OverflowingSoftmax", x, (), r, False)
    assert status == "failed" and list(found) == [0]
    assert found[0].message.startswith("passes in float64 but not in float32")
    status, found = float32_probe(nn.Softmax(), "Softmax", x, (), r, False)
    assert (status, found) == ("passed", {})


def test_the_float32_probe_skips_random_layers_and_float64_only_ones():
    status, found = float32_probe(nn.Dropout(0.5, rng=0), "Dropout", np.ones((2, 3)), (), np.ones((2, 3)), False)
    assert status == "skipped: the layer draws random numbers, and its draws depend on the dtype" and found == {}

    class Float64Only(OverflowingSoftmax):
        def forward(self, x, *args):
            if x.dtype != np.float64:
                raise TypeError("float64 only")
            return super().forward(x)

    status, found = float32_probe(Float64Only(), "Float64Only", np.ones((2, 3)), (), np.ones((2, 3)), False)
    assert status == "skipped: in float32, TypeError: float64 only" and found == {}
