"""Textbook RNN, LSTM and GRU, as CS231n teaches them: a step function and its backward, then a
loop over time that calls them.

Each step's forward returns the new state and a cache holding exactly what the step's backward
reads; the layer keeps one cache per time step. Backward walks the steps in reverse: the hidden
state h_t reaches the loss through the output y_t and through step t + 1, so its gradient is the sum
of the two. The weights are PyTorch's (``weight_ih (G*H, D)``, ``weight_hh (G*H, H)``), hence the
transposes; the checks, parameters and state handling are shared with the fast layers
(nnscratch/specs/recurrent.py).
"""

from __future__ import annotations

import numpy as np

from ..specs.recurrent import GRUBase, LSTMBase, RNNBase


def sigmoid(a):
    """1 / (1 + exp(-a)), computed as 0.5 + 0.5 tanh(a / 2), which never overflows."""
    return 0.5 + 0.5 * np.tanh(0.5 * a)


# -- one step of each cell, and its backward ----------------------------------------------------------
def rnn_step_forward(x, prev_h, weight_ih, weight_hh, bias, nonlinearity="tanh"):
    """next_h = f(x W_ih^T + prev_h W_hh^T + b), f = tanh or relu; returns (next_h, cache)."""
    a = x @ weight_ih.T + prev_h @ weight_hh.T + bias
    next_h = np.tanh(a) if nonlinearity == "tanh" else np.maximum(a, 0)
    return next_h, (x, prev_h, weight_ih, weight_hh, next_h, nonlinearity)


def rnn_step_backward(dnext_h, cache):
    """(dx, dprev_h, dW_ih, dW_hh, db) of one RNN step, from dL/dnext_h."""
    x, prev_h, weight_ih, weight_hh, next_h, nonlinearity = cache
    # tanh' = 1 - tanh^2 and relu' = [a > 0], both read off the output
    da = dnext_h * (1 - next_h * next_h) if nonlinearity == "tanh" else dnext_h * (next_h > 0)
    return da @ weight_ih, da @ weight_hh, da.T @ x, da.T @ prev_h, da.sum(axis=0)


def lstm_step_forward(x, prev_h, prev_c, weight_ih, weight_hh, bias):
    """One LSTM step, gates in PyTorch's order (i, f, g, o); returns (next_h, next_c, cache).

    a = x W_ih^T + prev_h W_hh^T + b, split in four:
    i = sigmoid(a_i), f = sigmoid(a_f), g = tanh(a_g), o = sigmoid(a_o)
    next_c = f * prev_c + i * g,  next_h = o * tanh(next_c)
    """
    h = prev_h.shape[1]
    a = x @ weight_ih.T + prev_h @ weight_hh.T + bias
    i, f, g, o = sigmoid(a[:, :h]), sigmoid(a[:, h : 2 * h]), np.tanh(a[:, 2 * h : 3 * h]), sigmoid(a[:, 3 * h :])
    next_c = f * prev_c + i * g
    tanh_c = np.tanh(next_c)
    return o * tanh_c, next_c, (x, prev_h, prev_c, weight_ih, weight_hh, i, f, g, o, tanh_c)


def lstm_step_backward(dnext_h, dnext_c, cache):
    """(dx, dprev_h, dprev_c, dW_ih, dW_hh, db) of one LSTM step, from dL/dnext_h and dL/dnext_c."""
    x, prev_h, prev_c, weight_ih, weight_hh, i, f, g, o, tanh_c = cache
    dc = dnext_c + dnext_h * o * (1 - tanh_c * tanh_c)  # next_c reaches the loss directly and through next_h
    do = dnext_h * tanh_c
    di, df, dg = dc * g, dc * prev_c, dc * i
    # through the nonlinearities: sigmoid' = s (1 - s), tanh' = 1 - t^2
    da = np.concatenate([di * i * (1 - i), df * f * (1 - f), dg * (1 - g * g), do * o * (1 - o)], axis=1)
    return da @ weight_ih, da @ weight_hh, dc * f, da.T @ x, da.T @ prev_h, da.sum(axis=0)


def gru_step_forward(x, prev_h, weight_ih, weight_hh, bias_ih, bias_hh):
    """One GRU step, gates in PyTorch's order (r, z, n); returns (next_h, cache).

    a_x = x W_ih^T + b_ih, a_h = prev_h W_hh^T + b_hh, each split in three:
    r = sigmoid(a_x,r + a_h,r), z = sigmoid(a_x,z + a_h,z), n = tanh(a_x,n + r * a_h,n)
    next_h = (1 - z) * n + z * prev_h
    The reset gate scales the state's whole share a_h,n (its bias included), as in PyTorch.
    """
    h = prev_h.shape[1]
    a_x, a_h = x @ weight_ih.T + bias_ih, prev_h @ weight_hh.T + bias_hh
    r = sigmoid(a_x[:, :h] + a_h[:, :h])
    z = sigmoid(a_x[:, h : 2 * h] + a_h[:, h : 2 * h])
    n = np.tanh(a_x[:, 2 * h :] + r * a_h[:, 2 * h :])
    next_h = (1 - z) * n + z * prev_h
    return next_h, (x, prev_h, weight_ih, weight_hh, r, z, n, a_h[:, 2 * h :])


def gru_step_backward(dnext_h, cache):
    """(dx, dprev_h, dW_ih, dW_hh, db_ih, db_hh) of one GRU step, from dL/dnext_h."""
    x, prev_h, weight_ih, weight_hh, r, z, n, a_hn = cache
    da_n = dnext_h * (1 - z) * (1 - n * n)
    da_r = da_n * a_hn * r * (1 - r)
    da_z = dnext_h * (prev_h - n) * z * (1 - z)
    da_x = np.concatenate([da_r, da_z, da_n], axis=1)
    da_h = np.concatenate([da_r, da_z, da_n * r], axis=1)  # a_h,n enters n multiplied by r
    dprev_h = dnext_h * z + da_h @ weight_hh
    return da_x @ weight_ih, dprev_h, da_x.T @ x, da_h.T @ prev_h, da_x.sum(axis=0), da_h.sum(axis=0)


# -- the loop over time, shared by the three layers -----------------------------------------------------
class _OverTime:
    """forward: the step function at t = 1..T, each step's cache kept; backward: its backward at
    t = T..1. A layer supplies ``_step(x_t, state) -> (state, cache)`` and ``_step_backward(dstate,
    cache) -> (dx_t, dstate, (dW_ih, dW_hh, db_ih, db_hh))``, a state being a tuple ((h,) or (h, c))."""

    _caches = ("_steps",)  # what release_memory() drops
    _steps = None  # one cache per time step, from the last forward

    def forward(self, x, *args, initial_state=None):
        x, state = self._begin(x, initial_state)
        outputs, self._steps = [], []
        for t in range(x.shape[1]):
            state, cache = self._step(x[:, t], state)
            outputs.append(state[0])
            self._steps.append(cache)
        self._end(state)
        return np.stack(outputs, axis=1)

    def backward(self, delta):
        self._check_forward_called(self._steps)
        first = self._steps[0][0]  # x_1: (N, D), in the layer's dtype
        n, steps, dtype = first.shape[0], len(self._steps), first.dtype
        delta = self._check_delta(delta, (n, steps, self.hidden_size)).astype(dtype, copy=False)
        dstate = tuple(np.zeros((n, self.hidden_size), dtype) for _ in self.state_names)
        dx, gradients = [None] * steps, [0, 0, 0, 0]
        for t in reversed(range(steps)):
            # h_t reaches the loss through y_t and through step t + 1: the two gradients add
            dstate = (delta[:, t] + dstate[0], *dstate[1:])
            dx[t], dstate, step_gradients = self._step_backward(dstate, self._steps[t])
            gradients = [total + part for total, part in zip(gradients, step_gradients)]
        self.parameters_deltas[:] = gradients[: len(self.parameters)]  # set, never accumulate
        self.initial_state_delta = self._public(dstate)
        return np.stack(dx, axis=1)

    def _bias(self):
        """b_ih + b_hh: PyTorch keeps two biases where the formulas have their sum (0 without bias)."""
        return 0.0 if self.bias_ih is None else self.bias_ih + self.bias_hh


class RNN(_OverTime, RNNBase):
    """Elman RNN over a sequence: h_t = f(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh), t = 1..T,
    f = tanh (default) or relu; y = (h_1, ..., h_T).

    Backward through time, with dh_t = delta_t + (what step t + 1 sent back):
        da_t = dh_t * f'(a_t),  dx_t = da_t W_ih,  dh_{t-1} = da_t W_hh
        dW_ih = sum_t da_t^T x_t,  dW_hh = sum_t da_t^T h_{t-1},  db_ih = db_hh = sum_t sum_n da_t
    and ``initial_state_delta`` = dh_0. One layer, one direction: stack layers in a ``Sequential``
    for depth (PyTorch's num_layers), run a second layer on the reversed sequence for the other
    direction. The textbook twin of ``nnscratch.RNN``: the same constructor, parameters and numbers.

    Shape:
        x: (N, T, input_size); y: (N, T, hidden_size); initial_state, final_state: (N, hidden_size)
        weight_ih: (H, input_size), weight_hh: (H, H), bias_ih, bias_hh: (H,)
    """

    def _step(self, x, state):
        next_h, cache = rnn_step_forward(x, state[0], self.weight_ih, self.weight_hh, self._bias(), self.nonlinearity)
        return (next_h,), cache

    def _step_backward(self, dstate, cache):
        dx, dprev_h, dweight_ih, dweight_hh, dbias = rnn_step_backward(dstate[0], cache)
        return dx, (dprev_h,), (dweight_ih, dweight_hh, dbias, dbias)


class LSTM(_OverTime, LSTMBase):
    """LSTM over a sequence (``lstm_step_forward`` gives the step, gates i, f, g, o as PyTorch);
    y = (h_1, ..., h_T), and the state is the pair (h, c).

    Backward through time (``lstm_step_backward``): both h_t and c_t carry gradient back to step
    t - 1; dL/dh_0 and dL/dc_0 end in ``initial_state_delta``. One layer, one direction (see
    ``RNN``). The textbook twin of ``nnscratch.LSTM``.

    Shape:
        x: (N, T, input_size); y: (N, T, hidden_size)
        initial_state, final_state: a pair (h, c), each (N, hidden_size)
        weight_ih: (4H, input_size), weight_hh: (4H, H), bias_ih, bias_hh: (4H,)
    """

    def _step(self, x, state):
        next_h, next_c, cache = lstm_step_forward(x, *state, self.weight_ih, self.weight_hh, self._bias())
        return (next_h, next_c), cache

    def _step_backward(self, dstate, cache):
        dx, dprev_h, dprev_c, dweight_ih, dweight_hh, dbias = lstm_step_backward(*dstate, cache)
        return dx, (dprev_h, dprev_c), (dweight_ih, dweight_hh, dbias, dbias)


class GRU(_OverTime, GRUBase):
    """GRU over a sequence (``gru_step_forward`` gives the step, gates r, z, n as PyTorch, the reset
    gate applied to W_hn h + b_hn); y = (h_1, ..., h_T).

    Backward through time (``gru_step_backward``); b_ih and b_hh get different gradients here, since
    only b_hn sits inside the reset gate. One layer, one direction (see ``RNN``). The textbook twin
    of ``nnscratch.GRU``.

    Shape:
        x: (N, T, input_size); y: (N, T, hidden_size); initial_state, final_state: (N, hidden_size)
        weight_ih: (3H, input_size), weight_hh: (3H, H), bias_ih, bias_hh: (3H,)
    """

    def _step(self, x, state):
        biases = (self.bias_ih, self.bias_hh) if self.bias_ih is not None else (0.0, 0.0)
        next_h, cache = gru_step_forward(x, state[0], self.weight_ih, self.weight_hh, *biases)
        return (next_h,), cache

    def _step_backward(self, dstate, cache):
        dx, dprev_h, dweight_ih, dweight_hh, dbias_ih, dbias_hh = gru_step_backward(dstate[0], cache)
        return dx, (dprev_h,), (dweight_ih, dweight_hh, dbias_ih, dbias_hh)
