"""nnscratch.reference.RNN, LSTM and GRU, the textbook twins, against the loop twins of
tests/helpers/recurrent_loops.py (themselves checked against central differences here): outputs,
final states and every gradient, the initial state's included. The fast layers are checked against
these in tests/layers/test_recurrent.py."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnscratch as nn
from helpers.recurrent_cases import (CELLS, EACH_CELL, full_parameters, make, normal, parts, random_state,
                                     zero_state)
from helpers.differences import central_differences
from helpers.recurrent_loops import loop_twin
from nnscratch.reference import recurrent as textbook


def against_loops(layer, x, state, delta, rtol=1e-10, atol=1e-12):
    """Forward, final state, dL/dx, dL/d(initial state) and every parameter gradient of ``layer``
    against the loop twin with the same parameters."""
    cell = type(layer).__name__
    nonlinearity = getattr(layer, "nonlinearity", "tanh")
    params = full_parameters(layer)
    start = state if state is not None else zero_state(cell, x.shape[0], layer.hidden_size)
    y_loop, final_loop, gradients = loop_twin(cell, x, start, params, nonlinearity)
    y = layer.forward(x, initial_state=state)
    np.testing.assert_allclose(y, y_loop, rtol=rtol, atol=atol)
    for got, want in zip(parts(layer.final_state), parts(final_loop), strict=True):
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)
    dx_loop, dstate_loop, grads_loop = gradients(delta)
    np.testing.assert_allclose(layer.backward(delta), dx_loop, rtol=rtol, atol=atol)
    for got, want in zip(parts(layer.initial_state_delta), parts(dstate_loop), strict=True):
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)
    for index, (got, want) in enumerate(zip(layer.parameters_deltas, grads_loop)):
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=f"parameter {index}")
    return y


# -- the loop twins themselves ----------------------------------------------------------------------
@EACH_CELL
def test_loop_twins_gradients_match_central_differences(cell, extra):
    # The loop twins' backward against their own forward: the ground truth is right before it judges.
    x, state = normal((2, 3, 2), 0), random_state(cell, 2, 3, 1)
    params = [normal(shape, 2 + i, 0.6) for i, (shape, _) in enumerate(getattr(nn, cell).parameter_specs(2, 3, **extra))]
    nonlinearity = extra.get("nonlinearity", "tanh")
    delta = normal((2, 3, 3), 9)
    dx, dstate, grads = loop_twin(cell, x, state, params, nonlinearity)[2](delta)

    def loss():
        return float(np.sum(loop_twin(cell, x, state, params, nonlinearity)[0] * delta))

    for target, analytic in [(x, dx), *zip(parts(state), parts(dstate)), *zip(params, grads)]:
        numerical = central_differences(loss, target)
        for index in np.ndindex(target.shape):
            assert abs(numerical[index] - analytic[index]) < 1e-7, (index, target.shape)


# -- the reference layers against the loops -----------------------------------------------------------
@EACH_CELL
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("given_state", [True, False])
def test_reference_matches_loop_twin(cell, extra, bias, given_state):
    layer = make(nn.reference, cell, extra, 3, 4, bias=bias, seed=3)
    x = normal((2, 5, 3), 4)
    state = random_state(cell, 2, 4, 5) if given_state else None
    y = against_loops(layer, x, state, normal((2, 5, 4), 6))
    assert y.shape == (2, 5, 4) == layer.output_shape(x.shape)


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(range(len(CELLS))), st.integers(1, 3), st.integers(1, 5), st.integers(1, 4),
       st.integers(1, 4), st.booleans(), st.integers(0, 2**16))
def test_reference_random_shapes_match_loop_twin(which, n, steps, d, h, bias, seed):
    cell, extra = CELLS[which]
    layer = make(nn.reference, cell, extra, d, h, bias=bias, seed=seed)
    against_loops(layer, normal((n, steps, d), seed + 1), random_state(cell, n, h, seed + 2),
                  normal((n, steps, h), seed + 3))


# -- the step functions, as CS231n teaches them ----------------------------------------------------
def test_step_functions_are_one_step_of_the_layers():
    x, h, c = normal((3, 4), 0), normal((3, 5), 1), normal((3, 5), 2)
    lstm = make(nn.reference, "LSTM", {}, 4, 5, seed=3)
    next_h, next_c, _ = textbook.lstm_step_forward(x, h, c, lstm.weight_ih, lstm.weight_hh, lstm.bias_ih + lstm.bias_hh)
    np.testing.assert_allclose(lstm.forward(x[:, None], initial_state=(h, c))[:, 0], next_h, rtol=1e-14)
    np.testing.assert_allclose(lstm.final_state[1], next_c, rtol=1e-14)
    gru = make(nn.reference, "GRU", {}, 4, 5, seed=4)
    next_h, _ = textbook.gru_step_forward(x, h, *gru.parameters)
    np.testing.assert_allclose(gru.forward(x[:, None], initial_state=h)[:, 0], next_h, rtol=1e-14)
    rnn = make(nn.reference, "RNN", {"nonlinearity": "relu"}, 4, 5, seed=5)
    next_h, _ = textbook.rnn_step_forward(x, h, rnn.weight_ih, rnn.weight_hh, rnn.bias_ih + rnn.bias_hh, "relu")
    np.testing.assert_allclose(rnn.forward(x[:, None], initial_state=h)[:, 0], next_h, rtol=1e-14)


def test_the_cache_holds_what_the_step_backward_reads():
    # CS231n's rule: forward's cache is exactly the backward's input, so backward needs nothing else.
    x, h, c = normal((2, 3), 0), normal((2, 4), 1), normal((2, 4), 2)
    w_ih, w_hh, b = normal((16, 3), 3), normal((16, 4), 4), normal(16, 5)
    _, _, cache = textbook.lstm_step_forward(x, h, c, w_ih, w_hh, b)
    assert len(cache) == 10 and cache[0] is x and cache[1] is h and cache[2] is c
    dx, dh, dc, dw_ih, dw_hh, db = textbook.lstm_step_backward(np.ones((2, 4)), np.zeros((2, 4)), cache)
    assert (dx.shape, dh.shape, dc.shape, dw_ih.shape, dw_hh.shape, db.shape) == ((2, 3), (2, 4), (2, 4), (16, 3),
                                                                                   (16, 4), (16,))


def test_sigmoid_never_overflows_and_is_the_logistic_function():
    a = np.array([-1e4, -50.0, -1.0, 0.0, 2.0, 1e4])
    with np.errstate(all="raise"):
        s = textbook.sigmoid(a)
    # to float64 rounding in absolute terms (0.5 + 0.5 tanh cannot hold 1e-22 beside 0.5), which is what
    # a gate's value multiplying a state of order 1 needs
    np.testing.assert_allclose(s, [0.0, 1 / (1 + np.exp(50.0)), 1 / (1 + np.e), 0.5, 1 / (1 + np.exp(-2.0)), 1.0],
                               rtol=1e-15, atol=2e-16)


# -- a stand-in for the fast layer ------------------------------------------------------------------
@EACH_CELL
def test_same_constructor_parameters_and_initialisation_as_the_fast_layer(cell, extra):
    for kwargs in ({}, {"bias": False, "dtype": "float64"}, {"stateful": True}):
        reference = getattr(nn.reference, cell)(3, 5, rng=7, **extra, **kwargs)
        fast = getattr(nn, cell)(3, 5, rng=7, **extra, **kwargs)
        assert reference.config() == fast.config() and repr(reference) == repr(fast)
        assert [(p.shape, p.dtype) for p in reference.parameters] == [(p.shape, p.dtype) for p in fast.parameters]
        for a, b in zip(reference.parameters, fast.parameters, strict=True):
            np.testing.assert_array_equal(a, b)


@EACH_CELL
def test_reference_sanity_check_on_the_input_and_every_parameter(cell, extra):
    layer = make(nn.reference, cell, extra, 3, 4, dtype=np.float32, seed=8)
    report = nn.sanity_check(layer, normal((2, 4, 3), 9), max_coords=40)
    assert report.passed and [row.tensor for row in report] == ["input"] + [f"parameter {i}" for i in range(4)]


def test_reference_release_memory_drops_the_steps():
    layer = make(nn.reference, "LSTM", {}, 3, 4)
    y = layer.forward(normal((2, 3, 3), 0))
    layer.release_memory()
    assert layer._steps is None
    with pytest.raises(RuntimeError, match="LSTM.backward called before forward"):
        layer.backward(np.ones_like(y))
