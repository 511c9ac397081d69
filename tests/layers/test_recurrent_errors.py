"""Bad input to RNN, LSTM and GRU (fast and reference): a clear TypeError or ValueError naming the
layer, what was expected and what was given; nothing deep inside NumPy."""

from __future__ import annotations

import numpy as np
import pytest

import nnscratch as nn
from helpers.recurrent_cases import EACH_CELL, normal

BOTH = pytest.mark.parametrize("kind", [nn, nn.reference], ids=["fast", "reference"])


@BOTH
@EACH_CELL
@pytest.mark.parametrize("kwargs, error, message", [
    ({"input_size": 0}, ValueError, "input_size must be a positive int, got 0"),
    ({"input_size": 2.5}, TypeError, "input_size must be an int, got float 2.5"),
    ({"hidden_size": -3}, ValueError, "hidden_size must be a positive int, got -3"),
    ({"hidden_size": True}, TypeError, "hidden_size must be an int, got bool True"),
    ({"bias": "no"}, TypeError, "bias must be True or False, got str 'no'"),
    ({"stateful": 1}, TypeError, "stateful must be True or False, got int 1"),
    ({"dtype": np.float16}, TypeError, "dtype float16 is not supported"),
    ({"dtype": "int32"}, TypeError, "dtype must be float32 or float64, got int32"),
    ({"rng": "seed"}, TypeError, "rng must be None, an int seed or a numpy Generator, got str"),
])
def test_constructor_refuses_bad_hyperparameters(kind, cell, extra, kwargs, error, message):
    arguments = {"input_size": 3, "hidden_size": 4, **extra, **kwargs}
    with pytest.raises(error, match=message):
        getattr(kind, cell)(**arguments)
    if "rng" not in kwargs:  # what load checks a checkpoint's config with
        arguments.pop("rng", None)
        with pytest.raises(error, match=message):
            getattr(kind, cell).parameter_specs(**arguments)


@BOTH
@pytest.mark.parametrize("nonlinearity, error, message", [
    ("sigmoid", ValueError, "RNN: nonlinearity must be 'tanh' or 'relu', got 'sigmoid'"),
    ("Tanh", ValueError, "got 'Tanh'"),
    (None, TypeError, "RNN: nonlinearity must be 'tanh' or 'relu', got NoneType None"),
    (np.tanh, TypeError, "got ufunc"),
])
def test_rnn_refuses_unknown_nonlinearities(kind, nonlinearity, error, message):
    with pytest.raises(error, match=message):
        kind.RNN(3, 4, nonlinearity=nonlinearity)
    with pytest.raises(error, match=message):
        kind.RNN.parameter_specs(3, 4, nonlinearity=nonlinearity)


@BOTH
@EACH_CELL
@pytest.mark.parametrize("x, error, message", [
    ([[[0.0, 1.0, 2.0]]], TypeError, "expected a numpy array as input, got list"),
    (np.ones((2, 4, 3), complex), TypeError, "the input must be real numbers .* got an array of complex128"),
    (np.ones((2, 3)), ValueError, r"expected a 3-D input \(N, T, 3\), got shape \(2, 3\)"),
    (np.ones((2, 4, 3, 1)), ValueError, r"expected a 3-D input \(N, T, 3\), got shape \(2, 4, 3, 1\)"),
    (np.ones((2, 4, 5)), ValueError, r"expected 3 input features \(x of shape \(N, T, 3\)\), got x of shape \(2, 4, 5\)"),
    (np.ones((2, 0, 3)), ValueError, r"expected a sequence of at least one step, got x of shape \(2, 0, 3\)"),
])
def test_forward_refuses_bad_input(kind, cell, extra, x, error, message):
    layer = getattr(kind, cell)(3, 4, **extra)
    with pytest.raises(error, match=f"^{cell}: {message}"):
        layer.forward(x)


@BOTH
@pytest.mark.parametrize("cell", ["RNN", "GRU"])
@pytest.mark.parametrize("state, error, message", [
    (np.zeros((2, 5)), ValueError, r"initial_state h0 must have shape \(N, 4\), got \(2, 5\)"),
    (np.zeros(4), ValueError, r"initial_state h0 must have shape \(N, 4\), got \(4,\)"),
    (np.zeros((1, 2, 4)), ValueError, r"initial_state h0 must have shape \(N, 4\), got \(1, 2, 4\); for PyTorch's \(1, N, 4\) pass h0\[0\]"),
    (np.zeros((3, 4)), ValueError, r"initial_state is for a batch of 3, x of shape \(2, 6, 3\) is a batch of 2"),
    ([[0.0] * 4] * 2, TypeError, "expected a numpy array of initial_state h0 as input, got list"),
    (np.zeros((2, 4), "U1"), TypeError, "the initial_state h0 must be real numbers"),
])
def test_initial_state_is_checked(kind, cell, state, error, message):
    layer = getattr(kind, cell)(3, 4)
    with pytest.raises(error, match=f"^{cell}: {message}"):
        layer.forward(np.ones((2, 6, 3)), initial_state=state)


@BOTH
@pytest.mark.parametrize("state, error, message", [
    (np.zeros((2, 4)), TypeError, r"initial_state must be a pair \(h0, c0\), h0 and c0 of shape \(N, 4\), got ndarray"),
    ((np.zeros((2, 4)),), TypeError, r"initial_state must be a pair \(h0, c0\), .* got tuple of 1$"),
    ((np.zeros((2, 4)), np.zeros((3, 4))), ValueError, "initial_state: h0 and c0 differ in batch size, 2 and 3"),
    ((np.zeros((2, 4)), np.zeros((2, 2))), ValueError, r"initial_state c0 must have shape \(N, 4\), got \(2, 2\)"),
])
def test_lstm_initial_state_is_a_checked_pair(kind, state, error, message):
    layer = kind.LSTM(3, 4)
    with pytest.raises(error, match=f"^LSTM: {message}"):
        layer.forward(np.ones((2, 6, 3)), initial_state=state)
    layer.forward(np.ones((2, 6, 3)), initial_state=[np.zeros((2, 4)), np.ones((2, 4))])  # a list pair is fine


@BOTH
@EACH_CELL
def test_stateful_layer_refuses_a_batch_of_another_size_until_reset(kind, cell, extra):
    layer = getattr(kind, cell)(3, 4, stateful=True, **extra)
    layer.forward(np.ones((5, 2, 3)))
    with pytest.raises(ValueError, match=(rf"^{cell}: the state carried from the last forward \(stateful=True\) is "
                                          r"for a batch of 5, x of shape \(3, 2, 3\) is a batch of 3; call "
                                          r"reset_state\(\) before a batch of another size")):
        layer.forward(np.ones((3, 2, 3)))
    layer.reset_state()
    assert layer.forward(np.ones((3, 2, 3))).shape == (3, 2, 4)


@BOTH
@EACH_CELL
def test_reset_state_with_a_state_needs_a_stateful_layer_and_checks_it(kind, cell, extra):
    state = (np.zeros((2, 4)),) * 2 if cell == "LSTM" else np.zeros((2, 4))
    with pytest.raises(ValueError, match=f"^{cell}: reset_state\\(state\\) sets the state a stateful layer carries"):
        getattr(kind, cell)(3, 4, **extra).reset_state(state)
    layer = getattr(kind, cell)(3, 4, stateful=True, **extra)
    bad = (np.zeros((2, 4)), np.zeros((2, 5))) if cell == "LSTM" else np.zeros((2, 5))
    with pytest.raises(ValueError, match=r"reset_state (h0|c0) must have shape \(N, 4\), got \(2, 5\)"):
        layer.reset_state(bad)
    getattr(kind, cell)(3, 4, **extra).reset_state()  # forgetting nothing is fine


@BOTH
@EACH_CELL
def test_backward_before_forward_and_delta_of_the_wrong_shape(kind, cell, extra):
    layer = getattr(kind, cell)(3, 4, **extra)
    with pytest.raises(RuntimeError, match=f"{cell}.backward called before forward"):
        layer.backward(np.ones((2, 5, 4)))
    layer.forward(np.ones((2, 5, 3)))
    with pytest.raises(ValueError, match=(rf"{cell}.backward: expected delta of shape \(2, 5, 4\) \(the shape of the "
                                          r"last output\), got \(2, 4, 5\)")):
        layer.backward(np.ones((2, 4, 5)))


@BOTH
@EACH_CELL
def test_a_rebound_parameter_is_refused(kind, cell, extra):
    layer = getattr(kind, cell)(3, 4, **extra)
    layer.weight_hh = layer.weight_hh.copy()
    with pytest.raises(ValueError, match=f"^{cell}: weight_hh is not the array in parameters"):
        layer.forward(np.ones((2, 5, 3)))
    no_bias = getattr(kind, cell)(3, 4, bias=False, **extra)
    no_bias.bias_ih = np.zeros_like(layer.bias_ih)
    with pytest.raises(ValueError, match=f"^{cell}: bias_ih is set, but the layer was built without it"):
        no_bias.forward(np.ones((2, 5, 3)))


def test_errors_inside_a_sequential_say_which_layer():
    net = nn.Sequential(nn.Linear(3, 4), nn.LSTM(4, 5), nn.GRU(6, 2))
    with pytest.raises(ValueError, match=r"in layer 2 \(GRU\) of Sequential: GRU: expected 6 input features"):
        net.forward(normal((2, 3, 3), 0))
    with pytest.raises(ValueError, match=r"GRU: expected 6 input features"):
        net.output_shape((2, 3, 3))
