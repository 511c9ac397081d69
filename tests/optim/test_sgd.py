"""SGD (nnscratch/optim/sgd.py): hand-computed steps with momentum, Nesterov and weight decay, and
the textbook twin over many steps and random settings."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnscratch as nn

from helpers.textbook_optim import Param, Params, textbook_sgd


def test_plain_sgd():
    layer = Param(1.0)
    assert layer.run(nn.SGD(layer, lr=0.1), [1.0, -2.0]) == pytest.approx([0.9, 1.1])


def test_sgd_momentum():
    layer = Param(1.0)
    # v1 = 1, p = 1 - 0.1 * 1 = 0.9; v2 = 0.9 * 1 + 1 = 1.9, p = 0.9 - 0.19 = 0.71
    assert layer.run(nn.SGD(layer, lr=0.1, momentum=0.9), [1.0, 1.0]) == pytest.approx([0.9, 0.71])


def test_sgd_nesterov():
    layer = Param(1.0)
    # v1 = 1, step = 1 + 0.9 * 1 = 1.9, p = 0.81; v2 = 1.9, step = 1 + 0.9 * 1.9 = 2.71, p = 0.539
    assert layer.run(nn.SGD(layer, lr=0.1, momentum=0.9, nesterov=True), [1.0, 1.0]) == pytest.approx([0.81, 0.539])


def test_sgd_weight_decay():
    layer = Param(2.0)
    # g = 1 + 0.1 * 2 = 1.2, p = 2 - 0.5 * 1.2 = 1.4
    assert layer.run(nn.SGD(layer, lr=0.5, weight_decay=0.1), [1.0]) == pytest.approx([1.4])


# atol: a parameter that ends near zero is the difference of terms of size ~1, rounded 12 times.
@pytest.mark.parametrize("dtype, rtol, atol", [(np.float64, 1e-12, 1e-13), (np.float32, 1e-5, 1e-6)])
@pytest.mark.parametrize(
    "settings",
    [{}, {"momentum": 0.9}, {"momentum": 0.8, "nesterov": True}, {"momentum": 0.9, "weight_decay": 0.01}],
    ids=["plain", "momentum", "nesterov", "weight-decay"],
)
def test_sgd_matches_the_textbook_over_many_steps(dtype, rtol, atol, settings):
    rng = np.random.default_rng(4)
    shapes = [(5, 3), (3,), (2, 2, 2), (7,)]
    starts = [rng.normal(size=shape) for shape in shapes]
    grads = [rng.normal(size=(12, *shape)) for shape in shapes]
    layer = Params(starts, dtype)
    optimizer = nn.SGD(layer, lr=0.05, **settings)
    for t in range(12):
        for delta, g in zip(layer.parameters_deltas, grads):
            delta[...] = g[t]
        optimizer.step()
    for p, start, g in zip(layer.parameters, starts, grads):
        expected = textbook_sgd(start, g.astype(dtype), 0.05, **settings)
        assert p.dtype == dtype
        np.testing.assert_allclose(p, expected, rtol=rtol, atol=atol)


@settings(max_examples=60, deadline=None)
@given(
    lr=st.floats(1e-4, 1.0), momentum=st.sampled_from([0.0, 0.5, 0.9, 0.99]), nesterov=st.booleans(),
    weight_decay=st.sampled_from([0.0, 1e-4, 0.1]), sizes=st.lists(st.integers(1, 9), min_size=1, max_size=4),
    steps=st.integers(1, 6), seed=st.integers(0, 2**16),
)
def test_sgd_matches_the_textbook_for_random_settings(lr, momentum, nesterov, weight_decay, sizes, steps, seed):
    nesterov = nesterov and momentum > 0  # nesterov needs momentum
    rng = np.random.default_rng(seed)
    starts = [rng.normal(size=size) for size in sizes]
    grads = [rng.normal(size=(steps, size)) for size in sizes]
    layer = Params(starts, np.float64)
    optimizer = nn.SGD(layer, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)
    for t in range(steps):
        for delta, g in zip(layer.parameters_deltas, grads):
            delta[...] = g[t]
        optimizer.step()
    for p, start, g in zip(layer.parameters, starts, grads):
        expected = textbook_sgd(start, g, lr, momentum, weight_decay, nesterov)
        np.testing.assert_allclose(p, expected, rtol=1e-10, atol=1e-12)
