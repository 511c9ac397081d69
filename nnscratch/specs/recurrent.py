"""RNN, LSTM and GRU: the hyperparameters, parameters, shapes and state handling that the fast
layers (layers/recurrent.py) and their textbook twins (reference/recurrent.py) share.

PyTorch's layout, so that weights copy across one to one: G gates of H units each, stacked in
PyTorch's order (RNN: 1; LSTM: i, f, g, o; GRU: r, z, n), ``weight_ih (G*H, D)``, ``weight_hh
(G*H, H)``, ``bias_ih (G*H,)``, ``bias_hh (G*H,)``, all drawn from U(-1/sqrt(H), 1/sqrt(H)).

The state: ``forward(x, *args, initial_state=None)`` starts from ``initial_state`` (h0, or the pair
(h0, c0) of an LSTM; zeros when None). Keyword-only, because ``Sequential`` hands its extra
arguments (loss targets) to every layer positionally. After forward, ``final_state`` holds copies
of the last state; after backward, ``initial_state_delta`` holds dL/dh0 (and dL/dc0). A
``stateful`` layer carries each forward's final state into the next forward as a constant, so
that a long stream is learnt in windows (truncated backpropagation through time);
``reset_state()`` forgets it.
"""

from __future__ import annotations

import math

import numpy as np

from ..kernels import aligned
from ..kernels.memory import KeepsMemory
from ..protocol import Layer
from ..seeding import get_rng
from ..validation import as_dtype, check_bool, check_input_array, check_int

NONLINEARITIES = ("tanh", "relu")


class RecurrentBase(KeepsMemory, Layer):
    """What RNN, LSTM and GRU share: parameters, checks, shapes and the state between calls.

    A subclass sets ``gates`` (G) and ``state_names`` (``("h0",)``, or ``("h0", "c0")`` for an
    LSTM). Inside, a state is always a tuple of (N, H) arrays; users see one array, or a pair.

    Shape:
        x: (N, T, input_size); y: (N, T, hidden_size)
        weight_ih: (G*H, input_size), weight_hh: (G*H, H), bias_ih, bias_hh: (G*H,)
    """

    gates: int = 1
    state_names: tuple = ("h0",)

    def __init__(self, input_size, hidden_size, bias=True, stateful=False, dtype=np.float32, rng=None):
        super().__init__()
        specs = self._specs(input_size, hidden_size, bias, dtype)  # checks every argument
        self.input_size, self.hidden_size = int(input_size), int(hidden_size)
        self.stateful = check_bool(self.name, "stateful", stateful)
        rng = get_rng(rng)
        bound = 1.0 / math.sqrt(self.hidden_size)
        self.parameters = []
        for shape, dtype in specs:  # as PyTorch: every parameter from U(-1/sqrt(H), 1/sqrt(H))
            array = aligned.empty(shape, dtype)
            array[...] = rng.uniform(-bound, bound, shape)
            self.parameters.append(array)
        self.weight_ih, self.weight_hh = self.parameters[:2]
        self.bias_ih, self.bias_hh = self.parameters[2:] if bias else (None, None)
        self.parameters_deltas = [aligned.zeros_like(p) for p in self.parameters]
        self.final_state = None  # copies of h_T (and c_T) after a forward
        self.initial_state_delta = None  # dL/dh0 (and dL/dc0) after a backward
        self._carried = None  # the state a stateful layer starts its next forward from

    @classmethod
    def _specs(cls, input_size, hidden_size, bias, dtype) -> list:
        name = cls.__name__
        d, h = check_int(name, "input_size", input_size, 1), check_int(name, "hidden_size", hidden_size, 1)
        dtype, rows = as_dtype(name, dtype), cls.gates * h
        specs = [((rows, d), dtype), ((rows, h), dtype)]
        return specs + [((rows,), dtype), ((rows,), dtype)] if check_bool(name, "bias", bias) else specs

    @classmethod
    def parameter_specs(cls, input_size, hidden_size, bias=True, stateful=False, dtype=np.float32) -> list:
        """[(shape, dtype)] of the parameters of ``cls(...)``, without building it (for ``load``)."""
        check_bool(cls.__name__, "stateful", stateful)
        return cls._specs(input_size, hidden_size, bias, dtype)

    def config(self) -> dict:
        return {"input_size": self.input_size, "hidden_size": self.hidden_size, "bias": self.bias_ih is not None,
                "stateful": self.stateful, "dtype": self.weight_ih.dtype.name}

    def __call__(self, x, *args, initial_state=None):
        return self.forward(x, *args, initial_state=initial_state)

    def output_shape(self, input_shape):
        shape = tuple(input_shape)
        self._check_ndim(shape, 3, f"N, T, {self.input_size}")
        if shape[2] != self.input_size:
            raise ValueError(f"{self.name}: expected {self.input_size} input features (x of shape "
                             f"(N, T, {self.input_size})), got x of shape {shape}")
        if shape[1] < 1:
            raise ValueError(f"{self.name}: expected a sequence of at least one step, got x of shape {shape}")
        return (shape[0], shape[1], self.hidden_size)

    # -- the state -------------------------------------------------------------------------------
    def reset_state(self, state=None) -> None:
        """Forget the state a stateful layer carries (its next forward starts from zeros), or set it
        to ``state`` (h0, or (h0, c0) for an LSTM, each (N, H)), as at the start of a new stream."""
        if state is None:
            self._carried = None
            return
        if not self.stateful:
            raise ValueError(f"{self.name}: reset_state(state) sets the state a stateful layer carries, and this "
                             "one was built with stateful=False; pass initial_state= to forward instead")
        self._carried = tuple(np.array(part) for part in self._state_parts(state, "reset_state"))

    def _state_parts(self, state, what: str) -> tuple:
        """``state`` as a tuple of arrays of shape (N, H), checked."""
        names, h = self.state_names, self.hidden_size
        expected = f"{' and '.join(names)} of shape (N, {h})"
        if len(names) == 1:
            parts = (state,)
        elif isinstance(state, (tuple, list)) and len(state) == len(names):
            parts = tuple(state)
        else:
            given = f" of {len(state)}" if isinstance(state, (tuple, list)) else ""
            raise TypeError(f"{self.name}: {what} must be a pair ({', '.join(names)}), {expected}, "
                            f"got {type(state).__name__}{given}")
        for name, part in zip(names, parts):
            check_input_array(self.name, part, f"{what} {name}")
            if part.ndim != 2 or part.shape[1] != h:
                hint = f"; for PyTorch's (1, N, {h}) pass {name}[0]" if part.ndim == 3 and part.shape[0] == 1 else ""
                raise ValueError(f"{self.name}: {what} {name} must have shape (N, {h}), got {part.shape}{hint}")
            if part.shape[0] != parts[0].shape[0]:
                raise ValueError(f"{self.name}: {what}: {names[0]} and {name} differ in batch size, "
                                 f"{parts[0].shape[0]} and {part.shape[0]}")
        return parts

    def _begin(self, x, initial_state) -> tuple:
        """The checks before a forward: x (N, T, D) in the parameters' dtype, and the state it
        starts from (a tuple of (N, H) arrays: the one given, the carried one, or zeros)."""
        self._check_parameters_in_place("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        self._check_input(x)
        n = self.output_shape(x.shape)[0]
        dtype = self.weight_ih.dtype
        if initial_state is not None:
            parts = self._state_parts(initial_state, "initial_state")
            if parts[0].shape[0] != n:
                raise ValueError(f"{self.name}: initial_state is for a batch of {parts[0].shape[0]}, "
                                 f"x of shape {x.shape} is a batch of {n}")
        elif self.stateful and self._carried is not None:
            parts = self._carried
            if parts[0].shape[0] != n:
                raise ValueError(f"{self.name}: the state carried from the last forward (stateful=True) is for a batch "
                                 f"of {parts[0].shape[0]}, x of shape {x.shape} is a batch of {n}; call reset_state() "
                                 "before a batch of another size (the start of a new stream)")
        else:
            parts = tuple(np.zeros((n, self.hidden_size), dtype) for _ in self.state_names)
        return x.astype(dtype, copy=False), tuple(part.astype(dtype, copy=False) for part in parts)

    def _end(self, final: tuple) -> None:
        """After a forward: keep copies of the final state (and carry them, if stateful)."""
        self.final_state = self._public(tuple(np.array(part) for part in final))
        if self.stateful:
            self._carried = tuple(np.array(part) for part in final)

    def _public(self, state: tuple):
        """A state as users see it: one array, or a pair for an LSTM."""
        return state[0] if len(state) == 1 else state


class RNNBase(RecurrentBase):
    """An Elman RNN's hyperparameters and parameters (the formulas are in ``reference.RNN``)."""

    gates = 1

    def __init__(self, input_size, hidden_size, nonlinearity="tanh", bias=True, stateful=False, dtype=np.float32,
                 rng=None):
        self.nonlinearity = _check_nonlinearity(type(self).__name__, nonlinearity)
        super().__init__(input_size, hidden_size, bias, stateful, dtype, rng)

    @classmethod
    def parameter_specs(cls, input_size, hidden_size, nonlinearity="tanh", bias=True, stateful=False,
                        dtype=np.float32) -> list:
        _check_nonlinearity(cls.__name__, nonlinearity)
        return super().parameter_specs(input_size, hidden_size, bias, stateful, dtype)

    def config(self) -> dict:
        config = super().config()
        return {"input_size": config.pop("input_size"), "hidden_size": config.pop("hidden_size"),
                "nonlinearity": self.nonlinearity, **config}


class LSTMBase(RecurrentBase):
    """An LSTM's hyperparameters and parameters (the formulas are in ``reference.LSTM``)."""

    gates = 4
    state_names = ("h0", "c0")


class GRUBase(RecurrentBase):
    """A GRU's hyperparameters and parameters (the formulas are in ``reference.GRU``)."""

    gates = 3


def _check_nonlinearity(owner: str, nonlinearity) -> str:
    if not isinstance(nonlinearity, str):
        raise TypeError(f"{owner}: nonlinearity must be 'tanh' or 'relu', got {type(nonlinearity).__name__} "
                        f"{nonlinearity!r:.100}")
    if nonlinearity not in NONLINEARITIES:
        raise ValueError(f"{owner}: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r:.100}")
    return nonlinearity
