"""Central differences on sampled coordinates (nnscratch/check/numerical.py): the sample is seeded and
bounded, and exactly the sampled coordinates are differenced."""

from __future__ import annotations

import numpy as np
import pytest

from nnscratch.check import GradientCheckError, sample_coords, sanity_check

from helpers.check_layers import PlainLinear, WrongWeightGradient, run_check


# -- coordinate sampling ---------------------------------------------------------------------
def test_sampling_is_seeded_respects_the_count_and_differs_across_seeds():
    first = sample_coords(1000, 50, seed=3, tensor_index=1)
    assert len(first) == 50 == len(np.unique(first)) and first.min() >= 0 and first.max() < 1000
    np.testing.assert_array_equal(first, sample_coords(1000, 50, seed=3, tensor_index=1))
    assert not np.array_equal(first, sample_coords(1000, 50, seed=4, tensor_index=1))
    np.testing.assert_array_equal(sample_coords(30, 50, seed=0, tensor_index=0), np.arange(30))
    np.testing.assert_array_equal(sample_coords(30, None, seed=0, tensor_index=0), np.arange(30))


def test_the_check_differences_exactly_the_sampled_coordinates():
    class Counting(PlainLinear):
        forwards = 0
        perturbed = []

        def forward(self, x, *args):
            Counting.forwards += 1
            Counting.perturbed.append(x.copy())
            return super().forward(x)

    x = np.random.default_rng(5).standard_normal((10, 4))
    report = sanity_check(Counting(), x, max_coords=7, seed=11, diagnose="never")
    assert [row.coords for row in report] == [7, 7, 3]
    # forward, backward twice, then two forwards per coordinate
    assert Counting.forwards == 2 + 2 * (7 + 7 + 3)
    # by default, a passing check adds the float32 probe: one forward in float32, one in float64
    Counting.forwards = 0
    assert sanity_check(Counting(), x, max_coords=7, seed=11).float32 == "passed"
    assert Counting.forwards == 2 + 2 * (7 + 7 + 3) + 2
    moved = {int(np.flatnonzero(xp != x)[0]) for xp in Counting.perturbed[2 : 2 + 14]}
    assert moved == set(sample_coords(40, 7, seed=11, tensor_index=0).tolist())


def test_a_wrong_coordinate_outside_the_sample_is_not_seen_and_inside_it_is():
    # WrongWeightGradient is wrong only at flat index 1 * 3 + 2 = 5 of parameter 0
    seeds = {s: 5 in sample_coords(12, 3, seed=s, tensor_index=1) for s in range(20)}
    missing = next(s for s, hit in seeds.items() if not hit)
    hitting = next(s for s, hit in seeds.items() if hit)
    assert run_check(WrongWeightGradient(), max_coords=3, seed=missing).passed
    with pytest.raises(GradientCheckError, match=r"parameter 0 .* at index \(1, 2\)"):
        run_check(WrongWeightGradient(), max_coords=3, seed=hitting)
