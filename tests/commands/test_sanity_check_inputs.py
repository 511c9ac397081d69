"""The building blocks of sanity-check's cases (nnscratch/commands/sanity_check_inputs.py): seeded
inputs kept away from kinks, ties and small probabilities, each kind of --input and of targets, and
normalization layers with statistics that are not their defaults."""

from __future__ import annotations

import numpy as np
import pytest

import nnscratch as nn
from nnscratch.commands.sanity_check_inputs import (INPUT_KINDS, TARGET_KINDS, Case, away_from_zero, distributions,
                                                    make_input, make_targets, normal_input, separated,
                                                    with_statistics)


def test_inputs_are_seeded():
    np.testing.assert_array_equal(normal_input((3, 4), 7), normal_input((3, 4), 7))
    assert not np.array_equal(normal_input((3, 4), 7), normal_input((3, 4), 8))
    np.testing.assert_allclose(normal_input((2,), 7, scale=2.0, offset=1.0), 1 + 2 * normal_input((2,), 7))


def test_away_from_zero_keeps_every_value_out_of_reach_of_a_kink():
    x = away_from_zero((50, 20), 0)
    assert (np.abs(x) >= 0.1).all() and (np.abs(x) <= 2.0).all()
    assert (x < 0).any() and (x > 0).any()


def test_separated_values_have_no_near_ties():
    x = separated((4, 3, 5), 1)
    gaps = np.diff(np.sort(x.ravel()))
    np.testing.assert_allclose(gaps, 0.1)


def test_distributions_are_rows_of_tame_probabilities():
    p = distributions((40, 5), 2)
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, rtol=1e-15)
    assert p.min() >= 0.2 / (0.2 + 5 - 1) - 1e-15


@pytest.mark.parametrize("kind", ["normal", "away-from-zero", "positive", "probabilities", "ids:7"])
def test_every_input_kind(kind):
    assert kind.split(":")[0] + (":V" if ":" in kind else "") in INPUT_KINDS
    x = make_input(kind, (6, 5), 3)
    assert x.shape == (6, 5)
    if kind == "ids:7":
        assert x.dtype.kind == "i" and x.min() >= 0 and x.max() < 7
    elif kind == "positive":
        assert x.min() >= 0.5 and x.max() <= 2.0
    elif kind == "probabilities":
        np.testing.assert_allclose(x.sum(axis=-1), 1.0)
    elif kind == "away-from-zero":
        assert np.abs(x).min() >= 0.1


def test_every_target_kind():
    assert TARGET_KINDS == ("integer", "one-hot", "soft")
    labels = make_targets("integer", 8, 3, 4)
    assert labels.shape == (8,) and labels.min() >= 0 and labels.max() < 3
    one_hot = make_targets("one-hot", 8, 3, 4)
    np.testing.assert_array_equal(one_hot.argmax(axis=1), labels)  # the same labels, as rows
    np.testing.assert_array_equal(one_hot.sum(axis=1), 1)
    soft = make_targets("soft", 8, 3, 4)
    assert soft.shape == (8, 3) and (soft > 0).all()
    np.testing.assert_allclose(soft.sum(axis=1), 1.0)


@pytest.mark.parametrize("training", [True, False])
def test_with_statistics_seeds_what_a_new_layer_starts_at(training):
    layer = with_statistics(nn.BatchNorm1D(4), 5, training=training)
    assert layer.training is training
    weight, bias = layer.parameters
    mean, var = layer.buffers
    assert (0.5 <= weight).all() and (weight <= 1.5).all() and (-1 <= bias).all() and (bias <= 1).all()
    assert (-0.5 <= mean).all() and (mean <= 0.5).all() and (var >= 0.5).all()
    assert not np.allclose(weight, 1) and not np.allclose(var, 1)  # not the defaults that would hide a swap
    again = with_statistics(nn.BatchNorm1D(4), 5)
    np.testing.assert_array_equal(again.parameters[0], weight)


def test_a_case_builds_its_layer_when_asked():
    built = []
    case = Case("Linear", "2 -> 3", lambda: built.append(1) or (nn.Linear(2, 3, rng=0), np.ones((1, 2)), ()))
    assert built == [] and case.hint == ""
    layer, x, args = case.build()
    assert built == [1] and isinstance(layer, nn.Linear) and args == ()
