"""nnscratch.seed: the same seed gives the same initialisation sequence."""

import numpy as np
import pytest

import nnscratch as nn


def test_same_seed_same_sequence_of_layers():
    nn.seed(5)
    first = [nn.Linear(3, 3).weight for _ in range(3)]
    nn.seed(5)
    second = [nn.Linear(3, 3).weight for _ in range(3)]
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], first[1])


def test_bad_seed():
    with pytest.raises(TypeError, match=r"seed: n must be an int, got str '3'"):
        nn.seed("3")


def test_bad_rng_argument():
    with pytest.raises(TypeError, match=r"rng must be None, an int seed or a numpy Generator, got str"):
        nn.Linear(2, 2, rng="x")
