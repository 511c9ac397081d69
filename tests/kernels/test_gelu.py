"""GELU's element-wise work (nnscratch/kernels/gelu.py), without the layer: forward and backward in
place against the tanh approximation written out in float64, finite where the cubic would overflow,
the same numbers whatever the memory layout and however the rows are split into blocks."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from nnscratch.kernels import gelu
from nnscratch.kernels.gelu import backward_into, forward_into


def gelu_formula(x):
    """0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) and its derivative, in float64."""
    k = math.sqrt(2 / math.pi)
    t = np.tanh(k * (x + 0.044715 * x**3))
    return 0.5 * x * (1 + t), 0.5 * (1 + t) + 0.5 * x * (1 - t**2) * k * (1 + 3 * 0.044715 * x**2)


def test_the_constants_are_the_approximation_s():
    assert gelu.SCALE == pytest.approx(math.sqrt(2 / math.pi), rel=1e-15) and gelu.CUBIC == 0.044715
    # past the clip the tanh is exactly 1 (its argument is beyond 43): clipping changes nothing
    assert np.tanh(gelu.SCALE * (gelu.CLIP + gelu.CUBIC * gelu.CLIP**3)) == 1.0


@pytest.mark.parametrize("shape", [(7,), (3, 5), (2, 3, 4)])
def test_forward_and_backward_against_the_formula(shape):
    rng = np.random.default_rng(0)
    x, delta = rng.standard_normal(shape) * 3, rng.standard_normal(shape)
    y, dx = np.empty_like(x), np.empty_like(x)
    forward_into(x, y)
    backward_into(x, delta, dx)
    value, slope = gelu_formula(x)
    np.testing.assert_allclose(y, value, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(dx, delta * slope, rtol=1e-12, atol=1e-15)


def test_float32_stays_float32_and_close_to_float64():
    x = np.linspace(-6, 6, 101, dtype=np.float32).reshape(1, 101)
    y, dx = np.empty_like(x), np.empty_like(x)
    forward_into(x, y)
    backward_into(x, np.ones_like(x), dx)
    value, slope = gelu_formula(x.astype(np.float64))
    assert y.dtype == dx.dtype == np.float32
    np.testing.assert_allclose(y, value, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dx, slope, rtol=1e-5, atol=2e-6)  # s (1 - s) cancels in the tails


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_huge_inputs_are_finite_without_warnings(dtype):
    x = np.array([[-1e30, -50.0, -10.0, 10.0, 50.0, 1e30]], dtype)
    y, dx = np.empty_like(x), np.empty_like(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow in u^3 would warn
        forward_into(x, y)
        backward_into(x, np.ones_like(x), dx)
    np.testing.assert_array_equal(y, np.array([[0.0, 0.0, 0.0, 10.0, 50.0, 1e30]], dtype))
    np.testing.assert_array_equal(dx, [[0, 0, 0, 1, 1, 1]])


def test_any_memory_layout_gives_the_same_numbers():
    x = np.random.default_rng(1).standard_normal((6, 8))
    delta = np.random.default_rng(2).standard_normal((6, 8))
    expected_y, expected_dx = np.empty_like(x), np.empty_like(x)
    forward_into(x, expected_y)
    backward_into(x, delta, expected_dx)
    for xs, ds in [(np.asfortranarray(x), np.asfortranarray(delta)), (x.T.copy().T, delta), (x[:, ::1], delta)]:
        y, dx = np.empty_like(xs), np.empty_like(xs)
        forward_into(xs, y)
        backward_into(xs, ds, dx)
        np.testing.assert_array_equal(y, expected_y)
        np.testing.assert_array_equal(dx, expected_dx)


def test_large_inputs_split_into_blocks_give_the_numbers_of_small_ones():
    x = np.random.default_rng(3).standard_normal((512, 768)).astype(np.float32)  # several cache-sized blocks
    y, dx = np.empty_like(x), np.empty_like(x)
    forward_into(x, y)
    backward_into(x, np.ones_like(x), dx)
    for rows in (slice(0, 1), slice(255, 257), slice(511, 512)):  # one row at a time: no splitting
        small_y, small_dx = np.empty_like(x[rows]), np.empty_like(x[rows])
        forward_into(x[rows].copy(), small_y)
        backward_into(x[rows].copy(), np.ones_like(small_y), small_dx)
        np.testing.assert_array_equal(y[rows], small_y)
        np.testing.assert_array_equal(dx[rows], small_dx)
