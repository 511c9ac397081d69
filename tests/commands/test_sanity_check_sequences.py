"""What sanity-check checks the sequence layers on (nnscratch/commands/sanity_check_sequences.py): the
cases' lists, token targets with padding, a recurrent layer checked from a given or carried state
(the state as its last parameters), and attention run with a fixed key padding mask."""

from __future__ import annotations

import numpy as np
import pytest

import nnscratch as nn
from nnscratch.check import sanity_check
from nnscratch.commands.sanity_check_sequences import (KeyPaddingMasked, StartingFrom, _token_targets,
                                                       attention_cases, recurrent_cases, sequence_cases)


def test_token_targets_pad_the_positions_given():
    labels = _token_targets(2, 4, 5, 0)
    assert labels.shape == (2, 4) and labels[0, 0] == labels[1, 2] == -100
    rest = np.delete(labels.ravel(), [0, 6])
    assert rest.min() >= 0 and rest.max() < 5
    assert (_token_targets(2, 4, 5, 0, ignored=()) >= 0).all()


def test_the_case_lists():
    recurrent = recurrent_cases()
    # fast cells from a given state, a carried one and in eval mode; textbook cells from a given state
    assert len(recurrent) == 4 * 3 + 4
    assert sum(case.layer.startswith("reference.") for case in recurrent) == 4
    attention = attention_cases()
    assert {case.layer for case in attention} == {"MultiHeadAttention", "reference.MultiHeadAttention",
                                                   "TransformerBlock"}
    assert {case.layer for case in sequence_cases()} >= {"Embedding"}
    for case in (*recurrent, *attention, *sequence_cases()):
        assert case.config and callable(case.build)


@pytest.mark.parametrize("cell", ["RNN", "LSTM"])
@pytest.mark.parametrize("stateful", [False, True])
def test_starting_from_a_state_checks_the_state_s_gradient_too(cell, stateful):
    layer = getattr(nn, cell)(3, 4, stateful=stateful, dtype=np.float64, rng=0)
    rng = np.random.default_rng(1)
    state = tuple(rng.standard_normal((2, 4)) for _ in range(1 + (cell == "LSTM")))
    wrapped = StartingFrom(layer, state, stateful=stateful)
    assert wrapped.name == cell and len(wrapped.parameters) == len(layer.parameters) + len(state)
    x = rng.standard_normal((2, 5, 3))
    given = layer.forward(x, initial_state=state if cell == "LSTM" else state[0])
    np.testing.assert_allclose(wrapped.forward(x), given, rtol=1e-14)  # the same run, either way
    wrapped.backward(np.ones_like(given))
    assert len(wrapped.parameters_deltas) == len(wrapped.parameters)
    report = sanity_check(wrapped, x)
    assert [row.tensor for row in report][-len(state):] == [f"parameter {len(layer.parameters) + i}"
                                                            for i in range(len(state))]


def test_key_padding_masked_passes_its_mask_on_every_forward():
    layer = nn.MultiHeadAttention(4, 2, dtype=np.float64, rng=0)
    mask = np.array([[False, False, True], [True, False, False]])
    wrapped = KeyPaddingMasked(layer, mask)
    x = np.random.default_rng(2).standard_normal((2, 3, 4))
    np.testing.assert_array_equal(wrapped.forward(x), layer.forward(x, key_padding_mask=mask))
    assert wrapped.name == "MultiHeadAttention" and wrapped.parameters is layer.parameters
    assert sanity_check(wrapped, x).passed
