"""What RNN, LSTM and GRU share with their textbook twins (nnscratch/specs/recurrent.py): the checked
hyperparameters, the weights' shapes in PyTorch's layout, the config, the shapes, the nonlinearity."""

from __future__ import annotations

import numpy as np
import pytest

import nnscratch as nn
from nnscratch.specs.recurrent import GRUBase, LSTMBase, RNNBase

from helpers.siblings import check_siblings

BASES = {"RNN": RNNBase, "LSTM": LSTMBase, "GRU": GRUBase}
GATES = {"RNN": 1, "LSTM": 4, "GRU": 3}


def config_of(name, bias=True, dtype="float32"):
    config = {"input_size": 3, "hidden_size": 4, "bias": bias, "stateful": False, "dtype": dtype}
    return {"input_size": 3, "hidden_size": 4, "nonlinearity": "relu", **config} if name == "RNN" else config


@pytest.mark.parametrize("bias, dtype", [(True, "float32"), (False, "float64")])
@pytest.mark.parametrize("name", BASES)
def test_recurrent_siblings(name, bias, dtype):
    x = np.random.default_rng(0).standard_normal((2, 5, 3))
    check_siblings(BASES[name], getattr(nn, name), getattr(nn.reference, name), config_of(name, bias, dtype), x, rng=2)


@pytest.mark.parametrize("name", BASES)
def test_weights_in_pytorch_s_layout(name):
    rows = GATES[name] * 4
    specs = getattr(nn, name).parameter_specs(**config_of(name))
    assert [shape for shape, _ in specs] == [(rows, 3), (rows, 4), (rows,), (rows,)]


@pytest.mark.parametrize("name", BASES)
def test_output_shape_and_its_errors(name):
    layer = getattr(nn.reference, name)(3, 4, rng=0)
    assert layer.output_shape((2, 7, 3)) == (2, 7, 4)
    with pytest.raises(ValueError, match=fr"^{name}: expected 3 input features \(x of shape \(N, T, 3\)\), "
                                         r"got x of shape \(2, 7, 5\)$"):
        layer.output_shape((2, 7, 5))
    with pytest.raises(ValueError, match=fr"^{name}: expected a sequence of at least one step, got x of shape "
                                         r"\(2, 0, 3\)$"):
        layer.output_shape((2, 0, 3))


@pytest.mark.parametrize("kwargs, error, message", [
    ({"hidden_size": 0}, ValueError, "hidden_size must be a positive int, got 0"),
    ({"stateful": "no"}, TypeError, "stateful must be True or False, got str 'no'"),
    ({"dtype": np.int32}, TypeError, "dtype must be float32 or float64, got int32"),
])
@pytest.mark.parametrize("name", BASES)
def test_bad_hyperparameters(name, kwargs, error, message):
    arguments = {"input_size": 3, "hidden_size": 4, **kwargs}
    for cls in (getattr(nn, name), getattr(nn.reference, name)):
        for call in (cls, cls.parameter_specs):
            with pytest.raises(error) as info:
                call(**arguments)
            assert str(info.value) == f"{name}: {message}"


def test_the_rnn_s_nonlinearity_is_tanh_or_relu():
    assert nn.RNN(2, 3, rng=0).nonlinearity == "tanh"
    with pytest.raises(ValueError, match=r"^RNN: nonlinearity must be 'tanh' or 'relu', got 'sigmoid'$"):
        nn.RNN.parameter_specs(2, 3, nonlinearity="sigmoid")
    with pytest.raises(TypeError, match=r"^RNN: nonlinearity must be 'tanh' or 'relu', got NoneType None$"):
        nn.reference.RNN(2, 3, nonlinearity=None)
