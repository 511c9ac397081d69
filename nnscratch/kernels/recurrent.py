"""The loops over time of the fast RNN, LSTM and GRU (nnscratch/layers/recurrent.py).

The layer does the big matrix products, over every time step at once: the input projections
x W_ih^T + b before the loop, the weight gradients and dL/dx after it. What cannot be batched, the
recurrence, is here: per step one product with W_hh and a few elementwise passes, each writing into
preallocated arrays. Every array is time-major, (T, N, ...), so that a step's rows are one
contiguous block (measured: elementwise passes over a step of (N, T, 4H) memory take 1.5-3 times
as long, the rows being T * 4H floats apart).

One tanh for every gate: sigmoid(a) = 0.5 + 0.5 tanh(a / 2). The layer halves the rows of the
weights and biases that feed sigmoid gates (``gate_scale``; exact, a power of two), so a step takes
one tanh over all its gates, then 0.5 s + 0.5 on the sigmoid ones. The backward loops read the
gates' values and use the true weights.

The forward loops take W_hh^T as a C-order (H, G*H) array (``weight_t``): OpenBLAS computes
h (N, H) @ W_hh^T 1.4 times as fast from that layout as from the transposed view of W_hh (measured,
N = 32, H = 256: 150-155 us against 215-230 us a step).

What the reference twins compute (nnscratch/reference/recurrent.py), step for step.

Shape (T steps, batch N, H hidden units, G gates):
    gates: (T, N, G*H), the projections, then the gates' values; h, c: (T + 1, N, H) with h[0] = h0
"""

from __future__ import annotations

import numpy as np

# The gates that are sigmoids, as (first, last) rows in units of H, in PyTorch's order.
SIGMOID_GATES = {"RNN": (), "LSTM": ((0, 2), (3, 4)), "GRU": ((0, 2),)}  # LSTM i, f, g, o; GRU r, z, n


def gate_scale(cell: str, hidden: int, dtype) -> np.ndarray:
    """(G*H,) factors for the rows of W_ih, W_hh and the biases: 0.5 where a sigmoid gate is fed."""
    gates = {"RNN": 1, "LSTM": 4, "GRU": 3}[cell]
    scale = np.ones(gates * hidden, dtype)
    for first, last in SIGMOID_GATES[cell]:
        scale[first * hidden : last * hidden] = 0.5
    return scale


def _sigmoid_from_tanh(values: np.ndarray) -> None:
    """tanh(a / 2) -> sigmoid(a), in place."""
    values *= 0.5
    values += 0.5


def sigmoid_affine(cell: str, hidden: int, dtype) -> tuple:
    """(m, k), each (G*H,): t * m + k turns the tanh of every gate of a step into the gate's value,
    0.5 t + 0.5 for a sigmoid gate and t for a tanh one, in two passes over the whole contiguous step
    (measured: 12 us for an LSTM step of 32 x 1024, against 22 us on the strided sigmoid blocks)."""
    scale = gate_scale(cell, hidden, dtype)
    return scale, np.where(scale == 0.5, scale, 0).astype(dtype)


# -- RNN ----------------------------------------------------------------------------------------------
def rnn_forward(pre, weight_t, h, relu: bool) -> None:
    """h[t + 1] = f(pre[t] + h[t] W_hh^T), f = tanh or relu; pre (T, N, H) = x W_ih^T + b."""
    for t in range(pre.shape[0]):
        out = h[t + 1]
        np.matmul(h[t], weight_t, out=out)
        out += pre[t]
        if relu:
            np.maximum(out, 0, out=out)
        else:
            np.tanh(out, out=out)


def rnn_backward(delta, h, weight_hh, d_pre, dh, relu: bool) -> None:
    """d_pre[t] = dL/da_t; delta (N, T, H) is dL/dy; dh (N, H) comes in zero and leaves as dL/dh0."""
    for t in range(d_pre.shape[0] - 1, -1, -1):
        dh += delta[:, t]
        da, out = d_pre[t], h[t + 1]
        if relu:
            np.greater(out, 0, out=da)  # relu' = [a > 0], read off the output
            da *= dh
        else:
            np.multiply(out, out, out=da)  # tanh' = 1 - tanh^2
            np.subtract(1, da, out=da)
            da *= dh
        np.matmul(da, weight_hh, out=dh)


# -- LSTM ---------------------------------------------------------------------------------------------
def gate_views(gates: np.ndarray, count: int) -> list:
    """The ``count`` gate blocks of (T, N, count * H) ``gates``, each (T, N, H): views, for all steps."""
    steps, n, width = gates.shape
    blocks = gates.reshape(steps, n, count, width // count)
    return [blocks[:, :, k] for k in range(count)]


def lstm_forward(gates, weight_t, h, c, tanh_c) -> None:
    """gates[t] (i, f, g, o) from the projections plus h[t] W_hh^T; c[t + 1] = f c[t] + i g,
    h[t + 1] = o tanh(c[t + 1]). weight_t is W_hh^T with its sigmoid columns halved (``gate_scale``)."""
    work, product = np.empty(gates.shape[1:], gates.dtype), np.empty(h.shape[1:], h.dtype)
    i, f, g, o = gate_views(gates, 4)
    m, k = sigmoid_affine("LSTM", h.shape[2], gates.dtype)
    for t in range(gates.shape[0]):
        a = gates[t]
        np.matmul(h[t], weight_t, out=work)
        a += work
        np.tanh(a, out=a)
        a *= m  # i, f, o: 0.5 t + 0.5; g: t, exactly
        a += k
        np.multiply(f[t], c[t], out=c[t + 1])
        np.multiply(i[t], g[t], out=product)
        c[t + 1] += product
        np.tanh(c[t + 1], out=tanh_c[t])
        np.multiply(o[t], tanh_c[t], out=h[t + 1])


def lstm_backward(delta, gates, c, tanh_c, weight_hh, d_gates, dh, dc) -> None:
    """d_gates[t] = dL/da_t (a the pre-activations, i f g o); dh, dc (N, H) come in zero and leave as
    dL/dh0 and dL/dc0; delta (N, T, H) is dL/dy."""
    work, deriv = np.empty_like(dh), np.empty(gates.shape[1:], gates.dtype)
    i, f, g, o = gate_views(gates, 4)
    di, df, dg, do = gate_views(d_gates, 4)
    _, shift = sigmoid_affine("LSTM", dh.shape[1], gates.dtype)
    shift = 1 - 2 * shift  # 0 for the sigmoid gates, 1 for g
    for t in range(gates.shape[0] - 1, -1, -1):
        dh += delta[:, t]
        # c reaches the loss through the next step and through h: dc += dh o (1 - tanh(c)^2)
        np.multiply(tanh_c[t], tanh_c[t], out=work)
        np.subtract(1, work, out=work)
        work *= o[t]
        work *= dh
        dc += work
        np.multiply(dh, tanh_c[t], out=do[t])
        np.multiply(dc, g[t], out=di[t])
        np.multiply(dc, c[t], out=df[t])
        np.multiply(dc, i[t], out=dg[t])
        # through the nonlinearities: (1 - v) (v + shift) is s (1 - s) for i, f, o and 1 - g^2 for g
        np.subtract(1, gates[t], out=deriv)
        d_gates[t] *= deriv
        np.add(gates[t], shift, out=deriv)
        d_gates[t] *= deriv
        dc *= f[t]
        np.matmul(d_gates[t], weight_hh, out=dh)


# -- GRU ----------------------------------------------------------------------------------------------
def gru_forward(gates, weight_t, bias_hh, h, hidden_n) -> None:
    """gates[t] (r, z, n): r, z = sigmoid(x and h shares), n = tanh(x share + r * hidden_n[t]),
    hidden_n[t] = h[t] W_hn^T + b_hn kept for backward; h[t + 1] = n + z (h[t] - n). weight_t is
    W_hh^T and bias_hh b_hh (or None), their r and z parts halved (``gate_scale``)."""
    hidden = h.shape[2]
    work, product = np.empty(gates.shape[1:], gates.dtype), np.empty(h.shape[1:], h.dtype)
    r_and_z = gates[:, :, : 2 * hidden]
    r, z, n = gate_views(gates, 3)
    for t in range(gates.shape[0]):
        np.matmul(h[t], weight_t, out=work)
        if bias_hh is not None:
            work += bias_hh
        rz = r_and_z[t]
        rz += work[:, : 2 * hidden]
        np.tanh(rz, out=rz)
        _sigmoid_from_tanh(rz)
        hidden_n[t] = work[:, 2 * hidden :]
        np.multiply(r[t], hidden_n[t], out=product)
        n[t] += product
        np.tanh(n[t], out=n[t])
        np.subtract(h[t], n[t], out=product)
        product *= z[t]
        np.add(n[t], product, out=h[t + 1])


def gru_backward(delta, gates, h, hidden_n, weight_hh, d_input, d_hidden, dh) -> None:
    """d_input[t] = dL/d(x share), d_hidden[t] = dL/d(h share) of the pre-activations (r, z, n): they
    differ in n, whose h share is scaled by r. dh (N, H) comes in zero and leaves as dL/dh0."""
    hidden = dh.shape[1]
    work, product = np.empty_like(dh), np.empty_like(dh)
    r, z, n = gate_views(gates, 3)
    da_r, da_z, da_n = gate_views(d_input, 3)
    for t in range(gates.shape[0] - 1, -1, -1):
        dh += delta[:, t]
        # da_n = dh (1 - z) (1 - n^2)
        np.multiply(n[t], n[t], out=work)
        np.subtract(1, work, out=work)
        work *= dh
        np.multiply(work, z[t], out=product)
        np.subtract(work, product, out=da_n[t])
        # da_z = dh (h[t] - n) z (1 - z)
        np.subtract(h[t], n[t], out=work)
        work *= dh
        np.subtract(1, z[t], out=product)
        product *= z[t]
        np.multiply(work, product, out=da_z[t])
        # da_r = da_n hidden_n r (1 - r)
        np.subtract(1, r[t], out=product)
        product *= r[t]
        np.multiply(da_n[t], hidden_n[t], out=da_r[t])
        da_r[t] *= product
        d_hidden[t, :, : 2 * hidden] = d_input[t, :, : 2 * hidden]
        np.multiply(da_n[t], r[t], out=d_hidden[t, :, 2 * hidden :])
        # h[t] reaches h[t + 1] directly (times z) and through the three gates
        dh *= z[t]
        np.matmul(d_hidden[t], weight_hh, out=work)
        dh += work
