"""What the check reads from a layer besides the protocol (nnscratch/check/traits.py): integer-id
input and sample independence, declared or by the built-in layers' rule, through containers."""

from __future__ import annotations

import types

import nnscratch as nn
from nnscratch.check.traits import independent_samples, takes_integer_ids


def plain(**attributes):
    return types.SimpleNamespace(**attributes)


def test_integer_ids_are_declared_or_taken_from_a_container_s_first_layer():
    ids, floats = plain(integer_input=True), plain()
    assert takes_integer_ids(ids) and not takes_integer_ids(floats)
    assert takes_integer_ids(plain(layers=[ids, floats])) and not takes_integer_ids(plain(layers=[floats, ids]))
    assert not takes_integer_ids(plain(integer_input="yes"))  # only a real bool counts
    assert not takes_integer_ids(plain(layers=[]))
    assert takes_integer_ids(nn.Sequential(nn.Embedding(5, 2, rng=0), nn.Flatten()))


def test_a_declared_independence_wins():
    assert independent_samples(plain(independent_samples=True)) is True
    assert independent_samples(plain(independent_samples=False)) is False
    assert independent_samples(plain()) is None  # a plain class that does not say: not probed


def test_the_built_in_layers_rule():
    assert independent_samples(nn.Linear(2, 3, rng=0)) is True
    assert independent_samples(nn.Mean()) is False  # one value for the whole batch
    norm = nn.BatchNorm1D(3)
    assert independent_samples(norm) is False  # batch statistics in training mode
    norm.eval()
    assert independent_samples(norm) is True
    reference_norm = nn.reference.BatchNorm2D(2)
    assert independent_samples(reference_norm) is False

    class MyLinear(nn.Linear):  # derived from a built-in layer: its rule
        pass

    assert independent_samples(MyLinear(2, 2, rng=0)) is True


def test_a_container_is_independent_when_all_its_layers_are():
    assert independent_samples(nn.Sequential(nn.Linear(2, 3, rng=0), nn.ReLU())) is True
    assert independent_samples(nn.Sequential(nn.Linear(2, 3, rng=0), nn.BatchNorm1D(3))) is False
    assert independent_samples(plain(layers=[nn.ReLU(), plain()])) is None  # one layer does not say
    assert independent_samples(plain(layers=[plain(), nn.Mean()])) is False  # one is not: not
