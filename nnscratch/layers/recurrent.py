"""Recurrent layers over (N, T, D) sequences: RNN, LSTM and GRU, in PyTorch's layout.

The textbook versions are ``nnscratch.reference.RNN``, ``LSTM`` and ``GRU``: a step function and its
backward, and a loop over time (read them first; the formulas are there). These compute the same
numbers faster: the input projections of all T steps are one matrix product before the loop, the
weight gradients and dL/dx one product each after it, the gates of a step are computed together in
preallocated arrays, and only the recurrence loops over time (nnscratch/kernels/recurrent.py).
The constructor, parameters, checks and state handling are shared with the twins (nnscratch/specs/).

Not here: several layers in one object (PyTorch's num_layers; stack layers in a ``Sequential``),
bidirectional layers (run a second layer on ``x[:, ::-1]`` and flip its output back), dropout between
layers (a ``Dropout`` layer in the ``Sequential``), LSTM projections (proj_size).
"""

from __future__ import annotations

import numpy as np

from ..kernels import recurrent as scan
from ..kernels.memory import writable_deltas
from ..kernels.recycle import recycled_empty
from ..specs.recurrent import GRUBase, LSTMBase, RNNBase


class _FastRecurrent:
    """The matrix products over all time steps that the three layers share, and their arrays.

    Arrays are recycled from call to call (``kernels/recycle.py``); what forward keeps for backward
    is ``_cache`` (``release_memory()`` drops it, and the recycled arrays with it)."""

    cell = ""  # "RNN", "LSTM" or "GRU": which gates are sigmoids (kernels/recurrent.py)
    _caches = ("_cache", "_ones")
    _stores = ("_arrays",)
    _cache = None
    _ones = None

    def _array(self, key: str, shape: tuple, dtype) -> np.ndarray:
        return recycled_empty(self.__dict__.setdefault("_arrays", {}), key, shape, dtype)

    def _scaled(self, key: str, array, transposed: bool = False) -> np.ndarray:
        """A weight or bias with its rows that feed sigmoid gates halved (see kernels/recurrent.py);
        a weight transposed to C order (G*H columns) with ``transposed``. Recycled under ``key``."""
        scale = scan.gate_scale(self.cell, self.hidden_size, array.dtype)
        if transposed:
            array, scale = array.T, scale[None, :]
        elif array.ndim == 2:
            scale = scale[:, None]
        scaled = self._array(key, array.shape, array.dtype)
        np.multiply(array, scale, out=scaled)
        return scaled

    def _project(self, x, with_bias_hh: bool) -> tuple:
        """xs (T, N, D), x time-major, and gates (T, N, G*H) = xs W_ih^T + b_ih (+ b_hh), scaled."""
        n, steps, d = x.shape
        self._cache = None  # the last forward's arrays go back to the store before new ones are taken
        xs = self._array("x", (steps, n, d), x.dtype)
        xs[...] = x.transpose(1, 0, 2)
        gates = self._array("gates", (steps, n, self.weight_ih.shape[0]), x.dtype)
        weight_t = self._scaled("weight_ih_t", self.weight_ih, transposed=True)
        np.matmul(xs.reshape(steps * n, d), weight_t, out=gates.reshape(steps * n, gates.shape[-1]))
        if self.bias_ih is not None:
            gates += self._scaled("bias", self.bias_ih + self.bias_hh if with_bias_hh else self.bias_ih)
        return xs, gates

    def _states(self, key: str, initial, steps: int) -> np.ndarray:
        """(T + 1, N, H) for a state over time, [0] the initial one."""
        states = self._array(key, (steps + 1, *initial.shape), initial.dtype)
        states[0] = initial
        return states

    def _output(self, h) -> np.ndarray:
        """y (N, T, H), C order, from h (T + 1, N, H)."""
        steps, n, hidden = h.shape[0] - 1, h.shape[1], h.shape[2]
        y = self._array("y", (n, steps, hidden), h.dtype)
        y[...] = h[1:].transpose(1, 0, 2)
        return y

    def _delta(self, delta, h) -> np.ndarray:
        self._check_forward_called(self._cache)
        steps, n, hidden = h.shape[0] - 1, h.shape[1], h.shape[2]
        return self._check_delta(delta, (n, steps, hidden)).astype(h.dtype, copy=False)

    def _finish_backward(self, xs, h, d_input, d_hidden) -> np.ndarray:
        """Set dW_ih, dW_hh, db_ih, db_hh from dL/d(pre-activations) of all steps; return dL/dx.

        d_input is the gradient of the input's share of the pre-activations, d_hidden of the state's
        (the same array but for a GRU); both (T, N, G*H)."""
        steps, n, d = xs.shape
        rows = steps * n
        one_share = d_hidden is d_input  # RNN, LSTM: the biases enter as their sum, with one gradient
        # explicit widths, not -1, which numpy cannot infer for an empty batch (rows = 0)
        d_input, d_hidden = d_input.reshape(rows, d_input.shape[-1]), d_hidden.reshape(rows, d_hidden.shape[-1])
        deltas = writable_deltas(self)
        np.matmul(d_input.T, xs.reshape(rows, d), out=deltas[0])
        np.matmul(d_hidden.T, h[:-1].reshape(rows, h.shape[-1]), out=deltas[1])  # h_{t-1} for every step t
        if self.bias_ih is not None:
            # the sums over all rows as one matrix-vector product each (see Linear.backward)
            ones = self._ones
            if ones is None or ones.shape != (rows,) or ones.dtype != xs.dtype:
                ones = self._ones = np.ones(rows, xs.dtype)
            np.matmul(ones, d_input, out=deltas[2])
            if one_share:
                np.copyto(deltas[3], deltas[2])
            else:
                np.matmul(ones, d_hidden, out=deltas[3])
        rows_dx = self._array("dx_rows", (rows, d), xs.dtype)
        np.matmul(d_input, self.weight_ih, out=rows_dx)
        dx = self._array("dx", (n, steps, d), xs.dtype)
        dx[...] = rows_dx.reshape(steps, n, d).transpose(1, 0, 2)
        return dx


class RNN(_FastRecurrent, RNNBase):
    """Elman RNN over a sequence: h_t = f(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh), f = tanh or relu.

    The textbook version, with the backward formulas, is ``nnscratch.reference.RNN``; this one
    computes the same numbers (see the module docstring). ``layer(x, initial_state=h0)``, then
    ``layer.final_state`` (h_T); after backward, ``layer.initial_state_delta`` (dL/dh0). With
    ``stateful=True`` each forward starts from the last one's final state, a constant (truncated
    backpropagation through time); ``reset_state()`` forgets it. Parameters as PyTorch's ``nn.RNN``
    (``batch_first=True``), initialised as it does: U(-1/sqrt(H), 1/sqrt(H)).

    Shape:
        x: (N, T, input_size); y: (N, T, hidden_size); initial_state, final_state: (N, hidden_size)
        weight_ih: (H, input_size), weight_hh: (H, H), bias_ih, bias_hh: (H,)
    """

    cell = "RNN"

    def forward(self, x, *args, initial_state=None):
        x, (h0,) = self._begin(x, initial_state)
        xs, pre = self._project(x, with_bias_hh=True)
        h = self._states("h", h0, x.shape[1])
        scan.rnn_forward(pre, self._scaled("weight_hh_t", self.weight_hh, transposed=True), h,
                         self.nonlinearity == "relu")
        self._cache = (xs, pre, h)
        self._end((h[-1],))
        return self._output(h)

    def backward(self, delta):
        xs, pre, h = self._cache or (None, None, None)
        delta = self._delta(delta, h)
        d_pre, dh = self._array("d_gates", pre.shape, pre.dtype), np.zeros(h.shape[1:], h.dtype)
        scan.rnn_backward(delta, h, self.weight_hh, d_pre, dh, self.nonlinearity == "relu")
        self.initial_state_delta = dh
        return self._finish_backward(xs, h, d_pre, d_pre)


class LSTM(_FastRecurrent, LSTMBase):
    """LSTM over a sequence, gates i, f, g, o as PyTorch's ``nn.LSTM``:
    i, f, o = sigmoid(.), g = tanh(.) of x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh (split in four),
    c_t = f c_{t-1} + i g,  h_t = o tanh(c_t),  y = (h_1, ..., h_T).

    The textbook version, with the backward formulas, is ``nnscratch.reference.LSTM``; this one
    computes the same numbers (see the module docstring). The state is the pair (h, c):
    ``layer(x, initial_state=(h0, c0))``, ``layer.final_state`` (h_T, c_T), and after backward
    ``layer.initial_state_delta`` (dL/dh0, dL/dc0). ``stateful`` and ``reset_state()`` as in ``RNN``.

    Shape:
        x: (N, T, input_size); y: (N, T, hidden_size)
        initial_state, final_state: a pair (h, c), each (N, hidden_size)
        weight_ih: (4H, input_size), weight_hh: (4H, H), bias_ih, bias_hh: (4H,)
    """

    cell = "LSTM"

    def forward(self, x, *args, initial_state=None):
        x, (h0, c0) = self._begin(x, initial_state)
        xs, gates = self._project(x, with_bias_hh=True)
        steps = x.shape[1]
        h, c = self._states("h", h0, steps), self._states("c", c0, steps)
        tanh_c = self._array("tanh_c", (steps, *h0.shape), h0.dtype)
        scan.lstm_forward(gates, self._scaled("weight_hh_t", self.weight_hh, transposed=True), h, c, tanh_c)
        self._cache = (xs, gates, h, c, tanh_c)
        self._end((h[-1], c[-1]))
        return self._output(h)

    def backward(self, delta):
        xs, gates, h, c, tanh_c = self._cache or (None,) * 5
        delta = self._delta(delta, h)
        d_gates = self._array("d_gates", gates.shape, gates.dtype)
        dh, dc = np.zeros(h.shape[1:], h.dtype), np.zeros(h.shape[1:], h.dtype)
        scan.lstm_backward(delta, gates, c, tanh_c, self.weight_hh, d_gates, dh, dc)
        self.initial_state_delta = (dh, dc)
        return self._finish_backward(xs, h, d_gates, d_gates)


class GRU(_FastRecurrent, GRUBase):
    """GRU over a sequence, gates r, z, n as PyTorch's ``nn.GRU``:
    r = sigmoid(x_t W_ir^T + b_ir + h_{t-1} W_hr^T + b_hr), z likewise,
    n = tanh(x_t W_in^T + b_in + r * (h_{t-1} W_hn^T + b_hn)),  h_t = (1 - z) n + z h_{t-1}.

    The textbook version, with the backward formulas, is ``nnscratch.reference.GRU``; this one
    computes the same numbers (see the module docstring). State, ``stateful`` and ``reset_state()``
    as in ``RNN``.

    Shape:
        x: (N, T, input_size); y: (N, T, hidden_size); initial_state, final_state: (N, hidden_size)
        weight_ih: (3H, input_size), weight_hh: (3H, H), bias_ih, bias_hh: (3H,)
    """

    cell = "GRU"

    def forward(self, x, *args, initial_state=None):
        x, (h0,) = self._begin(x, initial_state)
        xs, gates = self._project(x, with_bias_hh=False)  # b_hn sits inside the reset gate
        steps = x.shape[1]
        h = self._states("h", h0, steps)
        hidden_n = self._array("hidden_n", (steps, *h0.shape), h0.dtype)
        bias_hh = None if self.bias_hh is None else self._scaled("bias_hh", self.bias_hh)
        scan.gru_forward(gates, self._scaled("weight_hh_t", self.weight_hh, transposed=True), bias_hh, h, hidden_n)
        self._cache = (xs, gates, h, hidden_n)
        self._end((h[-1],))
        return self._output(h)

    def backward(self, delta):
        xs, gates, h, hidden_n = self._cache or (None,) * 4
        delta = self._delta(delta, h)
        d_input = self._array("d_gates", gates.shape, gates.dtype)
        d_hidden = self._array("d_hidden", gates.shape, gates.dtype)
        dh = np.zeros(h.shape[1:], h.dtype)
        scan.gru_backward(delta, gates, h, hidden_n, self.weight_hh, d_input, d_hidden, dh)
        self.initial_state_delta = dh
        return self._finish_backward(xs, h, d_input, d_hidden)
