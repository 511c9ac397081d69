"""Positional encodings: telling a sequence model where each token sits, added to its embedding.

Attention treats its input as a set, so a Transformer adds a vector per position to the token
embeddings: a learned one (``PositionalEmbedding``, as GPT's) or a fixed pattern of sines and
cosines (``SinusoidalPositionalEncoding``, as in "Attention is all you need").
"""

from __future__ import annotations

import numpy as np

from ..kernels import aligned
from ..kernels.memory import KeepsMemory, writable_deltas
from ..protocol import Layer
from ..seeding import get_rng
from ..validation import as_dtype, check_int

INIT_STD = 0.02  # nanoGPT's (and GPT-2's token embedding's) standard deviation for the position table


class _AddsPositions(KeepsMemory, Layer):
    """What both encodings share: the checks of x (N, T, dim), T <= max_len, and the shape."""

    max_len: int
    dim: int

    def output_shape(self, input_shape):
        self._check_shape(tuple(input_shape))
        return tuple(input_shape)

    def _check_shape(self, shape: tuple) -> None:
        if len(shape) != 3 or shape[-1] != self.dim:
            raise ValueError(f"{self.name}: expected an input (N, T, {self.dim}), got shape {shape}")
        if shape[1] > self.max_len:
            raise ValueError(
                f"{self.name}: the input has T = {shape[1]} positions, longer than max_len = {self.max_len} "
                f"(the positions it can encode)"
            )

    def _input(self, x, dtype=None) -> np.ndarray:
        self._check_input(x)
        self._check_shape(x.shape)
        if dtype is not None:
            return x.astype(dtype, copy=False)
        return x if x.dtype.kind == "f" else x.astype(np.float32)


class PositionalEmbedding(_AddsPositions):
    """Learned positions, as GPT's: y[n, t] = x[n, t] + weight[t], a trained row per position.

    The weight starts N(0, 0.02^2), as nanoGPT initialises its position table (``wpe``) and GPT-2
    its embeddings. Backward: dL/dx = delta; dL/dweight[t] = sum over n of delta[n, t] for the T
    positions of the input, and 0 for the positions beyond T (the input did not reach them).

    Shape:
        x: (N, T, dim), T <= max_len; y: same as x
        weight: (max_len, dim)
    """

    _caches = ("_shape",)

    def __init__(self, max_len, dim, dtype=np.float32, rng=None):
        super().__init__()
        self.max_len, self.dim, dtype = self._hyperparameters(max_len, dim, dtype)
        self.weight = aligned.empty((self.max_len, self.dim), dtype)
        self.weight[...] = get_rng(rng).normal(0.0, INIT_STD, self.weight.shape)  # float64 draws, rounded
        self.parameters = [self.weight]
        self.parameters_deltas = [aligned.zeros_like(self.weight)]
        self._shape = None

    @staticmethod
    def _hyperparameters(max_len, dim, dtype) -> tuple:
        return (check_int("PositionalEmbedding", "max_len", max_len, 1), check_int("PositionalEmbedding", "dim", dim, 1),
                as_dtype("PositionalEmbedding", dtype))

    @classmethod
    def parameter_specs(cls, max_len, dim, dtype=np.float32) -> list:
        max_len, dim, dtype = cls._hyperparameters(max_len, dim, dtype)
        return [((max_len, dim), dtype)]

    def config(self) -> dict:
        return {"max_len": self.max_len, "dim": self.dim, "dtype": self.weight.dtype.name}

    def forward(self, x, *args):
        self._check_parameters_in_place("weight")
        x = self._input(x, self.weight.dtype)
        self._shape = x.shape
        return x + self.weight[: x.shape[1]]

    def backward(self, delta):
        self._check_forward_called(self._shape)
        delta = self._check_delta(delta, self._shape).astype(self.weight.dtype, copy=False)
        grad = writable_deltas(self)[0]
        t = self._shape[1]
        np.add.reduce(delta, axis=0, out=grad[:t])
        grad[t:] = 0
        return delta


class SinusoidalPositionalEncoding(_AddsPositions):
    """Fixed positions ("Attention is all you need", CS231n's assignment 3): y[n, t] = x[n, t] + P[t],

        P[t, 2i] = sin(t / 10000^(2i / dim)),   P[t, 2i + 1] = cos(t / 10000^(2i / dim))

    sines in the even columns and cosines in the odd ones, each pair sharing a frequency (the
    exponents run 0, 0, 2, 2, 4, 4, ...), so that P[t + k] is a rotation of P[t] for every k. No
    parameters. Backward: dL/dx = delta. The table is computed once for the longest input seen, in
    the input's dtype (integer inputs become float32); ``max_len`` only bounds T (an odd ``dim``
    ends with a sine column).

    Shape:
        x: (N, T, dim), T <= max_len; y: same as x
    """

    _caches = ("_shape",)
    _stores = ("_tables",)  # the table, per dtype: rebuilt when dropped

    def __init__(self, dim, max_len=5000):
        super().__init__()
        self.dim = check_int("SinusoidalPositionalEncoding", "dim", dim, 1)
        self.max_len = check_int("SinusoidalPositionalEncoding", "max_len", max_len, 1)
        self._shape = None
        self._tables = {}

    def config(self) -> dict:
        return {"dim": self.dim, "max_len": self.max_len}

    def table(self, length: int, dtype=np.float64) -> np.ndarray:
        """P[:length], (length, dim), in ``dtype``: the values added to the first ``length`` positions."""
        dtype = np.dtype(dtype)
        table = self._tables.get(dtype)
        if table is None or len(table) < length:
            table = self._tables[dtype] = sinusoid_table(length, self.dim).astype(dtype)
            table.flags.writeable = False
        return table[:length]

    def forward(self, x, *args):
        x = self._input(x)
        self._shape = x.shape
        return x + self.table(x.shape[1], x.dtype)

    def backward(self, delta):
        self._check_forward_called(self._shape)
        return self._check_delta(delta, self._shape)


def sinusoid_table(length: int, dim: int) -> np.ndarray:
    """The (length, dim) float64 table of ``SinusoidalPositionalEncoding``."""
    positions = np.arange(length, dtype=np.float64)[:, None]
    exponents = (np.arange(dim) // 2 * 2) / dim  # 0, 0, 2/dim, 2/dim, ...: one frequency per (sin, cos) pair
    angles = positions * 10000.0 ** -exponents
    table = np.empty((length, dim))
    table[:, 0::2] = np.sin(angles[:, 0::2])
    table[:, 1::2] = np.cos(angles[:, 1::2])
    return table
