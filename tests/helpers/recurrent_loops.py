"""Loop twins of RNN, LSTM and GRU: every sample, time step, unit and weight an explicit Python loop
over scalars, written from the equations (PyTorch's, in its weight layout) without NumPy's matrix
products, so that they share no code and no vectorisation trick with nnscratch's two forms.

Each ``loop_<cell>(x, state, params)`` returns (y (N, T, H), final state, gradients), where
``gradients(delta)`` gives dL/dx, dL/d(initial state) and dL/d(each parameter) for dL/dy = delta,
walked back through time one sample at a time. ``state`` is h0, or (h0, c0) for the LSTM; ``params``
is [weight_ih, weight_hh, bias_ih, bias_hh] (float64 arrays). Tiny shapes only: the cost is
N * T * G * H * (D + H) Python operations.

The three walks back through time share their shape on purpose: each is written out in full from
its cell's equations, so that a reader checks one derivation at a glance, without a shared helper
to trust besides.
"""

from __future__ import annotations

import math

import numpy as np


def sigmoid(a: float) -> float:
    return 1.0 / (1.0 + math.exp(-a)) if a >= 0 else math.exp(a) / (1.0 + math.exp(a))


def _affine(w, b, v, row: int) -> float:
    """b[row] + sum_k w[row, k] * v[k], one scalar at a time."""
    total = b[row]
    for k in range(len(v)):
        total += w[row, k] * v[k]
    return total


def _back_through(w, d_rows: list, offset: int, out) -> None:
    """out[k] += sum_j w[offset + j, k] * d_rows[j]: the gradient of v in w @ v."""
    for j, d in enumerate(d_rows):
        for k in range(len(out)):
            out[k] += w[offset + j, k] * d


def _outer(dw, d_rows: list, offset: int, v) -> None:
    """dw[offset + j, k] += d_rows[j] * v[k]."""
    for j, d in enumerate(d_rows):
        for k in range(len(v)):
            dw[offset + j, k] += d * v[k]


def loop_rnn(x, h0, params, nonlinearity="tanh"):
    w_ih, w_hh, b_ih, b_hh = params
    n_samples, steps, _ = x.shape
    hidden = h0.shape[1]
    y = np.zeros((n_samples, steps, hidden))
    for n in range(n_samples):
        h = list(h0[n])
        for t in range(steps):
            a = [_affine(w_ih, b_ih, x[n, t], j) + _affine(w_hh, b_hh, h, j) for j in range(hidden)]
            h = [math.tanh(v) if nonlinearity == "tanh" else max(v, 0.0) for v in a]
            y[n, t] = h

    def gradients(delta):
        grads = [np.zeros_like(p) for p in params]
        dx, dh0 = np.zeros_like(x), np.zeros_like(h0)
        for n in range(n_samples):
            carry = [0.0] * hidden
            for t in reversed(range(steps)):
                dh = [delta[n, t, j] + carry[j] for j in range(hidden)]
                out = y[n, t]
                da = [dh[j] * (1 - out[j] ** 2) if nonlinearity == "tanh" else dh[j] * (out[j] > 0)
                      for j in range(hidden)]
                prev = y[n, t - 1] if t else h0[n]
                _outer(grads[0], da, 0, x[n, t])
                _outer(grads[1], da, 0, prev)
                for j in range(hidden):
                    grads[2][j] += da[j]
                    grads[3][j] += da[j]
                _back_through(w_ih, da, 0, dx[n, t])
                carry = [0.0] * hidden
                _back_through(w_hh, da, 0, carry)
            dh0[n] = carry
        return dx, dh0, grads

    return y, y[:, -1].copy(), gradients


def loop_lstm(x, state, params):
    w_ih, w_hh, b_ih, b_hh = params
    h0, c0 = state
    n_samples, steps, _ = x.shape
    hidden = h0.shape[1]
    y, cells = np.zeros((n_samples, steps, hidden)), np.zeros((n_samples, steps, hidden))
    saved = {}  # (n, t) -> gates i, f, g, o of that step
    for n in range(n_samples):
        h, c = list(h0[n]), list(c0[n])
        for t in range(steps):
            a = [_affine(w_ih, b_ih, x[n, t], j) + _affine(w_hh, b_hh, h, j) for j in range(4 * hidden)]
            i = [sigmoid(a[j]) for j in range(hidden)]
            f = [sigmoid(a[hidden + j]) for j in range(hidden)]
            g = [math.tanh(a[2 * hidden + j]) for j in range(hidden)]
            o = [sigmoid(a[3 * hidden + j]) for j in range(hidden)]
            c = [f[j] * c[j] + i[j] * g[j] for j in range(hidden)]
            h = [o[j] * math.tanh(c[j]) for j in range(hidden)]
            saved[n, t] = (i, f, g, o)
            y[n, t], cells[n, t] = h, c

    def gradients(delta):
        grads = [np.zeros_like(p) for p in params]
        dx, dh0, dc0 = np.zeros_like(x), np.zeros_like(h0), np.zeros_like(c0)
        for n in range(n_samples):
            carry_h, carry_c = [0.0] * hidden, [0.0] * hidden
            for t in reversed(range(steps)):
                i, f, g, o = saved[n, t]
                c, prev_c = cells[n, t], (cells[n, t - 1] if t else c0[n])
                prev_h = y[n, t - 1] if t else h0[n]
                dh = [delta[n, t, j] + carry_h[j] for j in range(hidden)]
                dc = [carry_c[j] + dh[j] * o[j] * (1 - math.tanh(c[j]) ** 2) for j in range(hidden)]
                da = ([dc[j] * g[j] * i[j] * (1 - i[j]) for j in range(hidden)]
                      + [dc[j] * prev_c[j] * f[j] * (1 - f[j]) for j in range(hidden)]
                      + [dc[j] * i[j] * (1 - g[j] ** 2) for j in range(hidden)]
                      + [dh[j] * math.tanh(c[j]) * o[j] * (1 - o[j]) for j in range(hidden)])
                _outer(grads[0], da, 0, x[n, t])
                _outer(grads[1], da, 0, prev_h)
                for j in range(4 * hidden):
                    grads[2][j] += da[j]
                    grads[3][j] += da[j]
                _back_through(w_ih, da, 0, dx[n, t])
                carry_h = [0.0] * hidden
                _back_through(w_hh, da, 0, carry_h)
                carry_c = [dc[j] * f[j] for j in range(hidden)]
            dh0[n], dc0[n] = carry_h, carry_c
        return dx, (dh0, dc0), grads

    return y, (y[:, -1].copy(), cells[:, -1].copy()), gradients


def loop_gru(x, h0, params):
    w_ih, w_hh, b_ih, b_hh = params
    n_samples, steps, _ = x.shape
    hidden = h0.shape[1]
    y = np.zeros((n_samples, steps, hidden))
    saved = {}  # (n, t) -> r, z, n, and the state's share of n before the reset gate
    for n in range(n_samples):
        h = list(h0[n])
        for t in range(steps):
            r = [sigmoid(_affine(w_ih, b_ih, x[n, t], j) + _affine(w_hh, b_hh, h, j)) for j in range(hidden)]
            z = [sigmoid(_affine(w_ih, b_ih, x[n, t], hidden + j) + _affine(w_hh, b_hh, h, hidden + j))
                 for j in range(hidden)]
            state_n = [_affine(w_hh, b_hh, h, 2 * hidden + j) for j in range(hidden)]
            new = [math.tanh(_affine(w_ih, b_ih, x[n, t], 2 * hidden + j) + r[j] * state_n[j]) for j in range(hidden)]
            h = [(1 - z[j]) * new[j] + z[j] * h[j] for j in range(hidden)]
            saved[n, t] = (r, z, new, state_n)
            y[n, t] = h

    def gradients(delta):
        grads = [np.zeros_like(p) for p in params]
        dx, dh0 = np.zeros_like(x), np.zeros_like(h0)
        for n in range(n_samples):
            carry = [0.0] * hidden
            for t in reversed(range(steps)):
                r, z, new, state_n = saved[n, t]
                prev = y[n, t - 1] if t else h0[n]
                dh = [delta[n, t, j] + carry[j] for j in range(hidden)]
                d_new = [dh[j] * (1 - z[j]) * (1 - new[j] ** 2) for j in range(hidden)]  # through n's tanh
                d_r = [d_new[j] * state_n[j] * r[j] * (1 - r[j]) for j in range(hidden)]
                d_z = [dh[j] * (prev[j] - new[j]) * z[j] * (1 - z[j]) for j in range(hidden)]
                d_input = d_r + d_z + d_new
                d_state = d_r + d_z + [d_new[j] * r[j] for j in range(hidden)]
                _outer(grads[0], d_input, 0, x[n, t])
                _outer(grads[1], d_state, 0, prev)
                for j in range(3 * hidden):
                    grads[2][j] += d_input[j]
                    grads[3][j] += d_state[j]
                _back_through(w_ih, d_input, 0, dx[n, t])
                carry = [dh[j] * z[j] for j in range(hidden)]
                _back_through(w_hh, d_state, 0, carry)
            dh0[n] = carry
        return dx, dh0, grads

    return y, y[:, -1].copy(), gradients


def loop_twin(cell: str, x, state, params, nonlinearity="tanh"):
    """``loop_rnn``, ``loop_lstm`` or ``loop_gru`` by the layer's class name."""
    if cell == "RNN":
        return loop_rnn(x, state, params, nonlinearity)
    return {"LSTM": loop_lstm, "GRU": loop_gru}[cell](x, state, params)
