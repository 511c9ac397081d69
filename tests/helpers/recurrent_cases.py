"""What the recurrent layers' tests share: the cells (RNN tanh and relu, LSTM, GRU) and seeded
layers, inputs and states for them."""

from __future__ import annotations

import numpy as np
import pytest


# (class name, extra constructor arguments): every configuration a cell has
CELLS = [("RNN", {}), ("RNN", {"nonlinearity": "relu"}), ("LSTM", {}), ("GRU", {})]
CELL_IDS = ["RNN-tanh", "RNN-relu", "LSTM", "GRU"]
EACH_CELL = pytest.mark.parametrize("cell, extra", CELLS, ids=CELL_IDS)


def make(kind, cell: str, extra: dict, input_size=3, hidden_size=4, dtype=np.float64, bias=True, seed=0,
         stateful=False):
    """``kind.<cell>`` (kind: nnscratch or nnscratch.reference), its weights drawn from N(0, 0.5^2)
    so that every gate sees pre-activations of both signs and several sizes."""
    layer = getattr(kind, cell)(input_size, hidden_size, bias=bias, stateful=stateful, dtype=dtype, rng=seed, **extra)
    rng = np.random.default_rng(seed + 100)
    for p in layer.parameters:
        p[...] = rng.normal(0.0, 0.5, p.shape)
    return layer


def twin_of(layer, kind):
    """The same layer (config and parameters) from ``kind`` (nnscratch or nnscratch.reference)."""
    twin = getattr(kind, type(layer).__name__)(**layer.config())
    for mine, theirs in zip(layer.parameters, twin.parameters):
        theirs[...] = mine
    return twin


def random_state(cell: str, n: int, hidden: int, seed: int = 1, dtype=np.float64):
    """A seeded initial state: h0, or (h0, c0) for an LSTM."""
    rng = np.random.default_rng(seed)
    h0 = rng.normal(0.0, 0.7, (n, hidden)).astype(dtype)
    return (h0, rng.normal(0.0, 0.7, (n, hidden)).astype(dtype)) if cell == "LSTM" else h0


def zero_state(cell: str, n: int, hidden: int):
    """What a layer starts from when given no state: zeros, h0 or (h0, c0)."""
    return (np.zeros((n, hidden)),) * 2 if cell == "LSTM" else np.zeros((n, hidden))


def parts(state) -> tuple:
    """A state as a tuple of arrays: (h,) or (h, c)."""
    return tuple(state) if isinstance(state, tuple) else (state,)


def normal(shape, seed: int, scale: float = 1.0, dtype=np.float64) -> np.ndarray:
    return (scale * np.random.default_rng(seed).standard_normal(shape)).astype(dtype)


def full_parameters(layer) -> list:
    """[weight_ih, weight_hh, bias_ih, bias_hh] in float64, zeros for the biases of a layer without."""
    params = [np.asarray(p, dtype=np.float64) for p in layer.parameters]
    if len(params) == 2:
        params += [np.zeros(layer.weight_hh.shape[0]), np.zeros(layer.weight_hh.shape[0])]
    return params
