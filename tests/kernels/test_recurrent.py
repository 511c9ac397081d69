"""The loops over time of the fast RNN, LSTM and GRU (nnscratch/kernels/recurrent.py), without the
layer: the halved sigmoid rows, the gate views, each forward loop against the cell's equations
written plainly, and each backward loop against central differences of those equations (float64)."""

from __future__ import annotations

import numpy as np
import pytest

from nnscratch.kernels.recurrent import (gate_scale, gate_views, gru_backward, gru_forward, lstm_backward, lstm_forward,
                                         rnn_backward, rnn_forward, sigmoid_affine)

from helpers.differences import central_differences

T, N, H = 3, 2, 4


def sigmoid(a):
    return 1 / (1 + np.exp(-a))


# -- the cells' equations, plainly: pre (T, N, G*H) = x W_ih^T + b_ih ---------------------------------
def plain_rnn(pre, w_hh, h0, relu):
    h, out = h0, []
    for t in range(len(pre)):
        a = pre[t] + h @ w_hh.T
        h = np.maximum(a, 0) if relu else np.tanh(a)
        out.append(h)
    return np.stack(out)


def plain_lstm(pre, w_hh, h0, c0):
    h, c, out = h0, c0, []
    for t in range(len(pre)):
        a_i, a_f, a_g, a_o = np.split(pre[t] + h @ w_hh.T, 4, axis=1)
        c = sigmoid(a_f) * c + sigmoid(a_i) * np.tanh(a_g)
        h = sigmoid(a_o) * np.tanh(c)
        out.append(h)
    return np.stack(out)


def plain_gru(pre, w_hh, b_hh, h0):
    h, out = h0, []
    for t in range(len(pre)):
        x_r, x_z, x_n = np.split(pre[t], 3, axis=1)
        h_r, h_z, h_n = np.split(h @ w_hh.T + b_hh, 3, axis=1)
        r, z = sigmoid(x_r + h_r), sigmoid(x_z + h_z)
        n = np.tanh(x_n + r * h_n)
        h = (1 - z) * n + z * h
        out.append(h)
    return np.stack(out)


def case(gates, seed=0):
    rng = np.random.default_rng(seed)
    pre = rng.standard_normal((T, N, gates * H))
    w_hh = rng.standard_normal((gates * H, H)) * 0.5
    h0, c0 = rng.standard_normal((N, H)), rng.standard_normal((N, H))
    delta = rng.standard_normal((N, T, H))  # dL/dy, batch-major as the layer hands it over
    return pre, w_hh, h0, c0, delta


def test_gate_scale_halves_the_rows_that_feed_sigmoids():
    assert gate_scale("RNN", 2, np.float32).tolist() == [1, 1]
    assert gate_scale("LSTM", 2, np.float64).tolist() == [0.5, 0.5, 0.5, 0.5, 1, 1, 0.5, 0.5]  # i f g o
    assert gate_scale("GRU", 1, np.float64).tolist() == [0.5, 0.5, 1]  # r z n
    m, k = sigmoid_affine("LSTM", 1, np.float64)
    t = np.tanh(np.array([0.3, -1.2, 0.7, 2.0]))
    np.testing.assert_allclose(t * m + k, [*(0.5 * t[:2] + 0.5), t[2], 0.5 * t[3] + 0.5])


def test_gate_views_are_views_of_each_block():
    gates = np.arange(T * N * 3 * H, dtype=float).reshape(T, N, 3 * H)
    views = gate_views(gates, 3)
    for k, view in enumerate(views):
        assert view.shape == (T, N, H) and np.shares_memory(view, gates)
        np.testing.assert_array_equal(view, gates[:, :, k * H : (k + 1) * H])


@pytest.mark.parametrize("relu", [False, True], ids=["tanh", "relu"])
def test_rnn_loops(relu):
    pre, w_hh, h0, _, delta = case(1)
    h = np.empty((T + 1, N, H))
    h[0] = h0
    rnn_forward(pre, np.ascontiguousarray(w_hh.T), h, relu)
    np.testing.assert_allclose(h[1:], plain_rnn(pre, w_hh, h0, relu), rtol=1e-13)
    d_pre, dh = np.empty_like(pre), np.zeros((N, H))
    rnn_backward(delta, h, w_hh, d_pre, dh, relu)
    loss = lambda: np.sum(plain_rnn(pre, w_hh, h0, relu) * delta.transpose(1, 0, 2))  # noqa: E731
    np.testing.assert_allclose(d_pre, central_differences(loss, pre), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dh, central_differences(loss, h0), rtol=1e-6, atol=1e-8)


def test_lstm_loops():
    pre, w_hh, h0, c0, delta = case(4)
    scale = gate_scale("LSTM", H, np.float64)
    gates = pre * scale  # the layer halves the rows feeding sigmoid gates
    h, c, tanh_c = np.empty((T + 1, N, H)), np.empty((T + 1, N, H)), np.empty((T, N, H))
    h[0], c[0] = h0, c0
    lstm_forward(gates, np.ascontiguousarray((w_hh * scale[:, None]).T), h, c, tanh_c)
    np.testing.assert_allclose(h[1:], plain_lstm(pre, w_hh, h0, c0), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(tanh_c, np.tanh(c[1:]), rtol=1e-14)
    d_gates, dh, dc = np.empty_like(gates), np.zeros((N, H)), np.zeros((N, H))
    lstm_backward(delta, gates, c, tanh_c, w_hh, d_gates, dh, dc)
    loss = lambda: np.sum(plain_lstm(pre, w_hh, h0, c0) * delta.transpose(1, 0, 2))  # noqa: E731
    np.testing.assert_allclose(d_gates, central_differences(loss, pre), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dh, central_differences(loss, h0), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dc, central_differences(loss, c0), rtol=1e-6, atol=1e-8)


def test_gru_loops():
    pre, w_hh, h0, _, delta = case(3)
    b_hh = np.random.default_rng(5).standard_normal(3 * H)
    scale = gate_scale("GRU", H, np.float64)
    gates = pre * scale
    h, hidden_n = np.empty((T + 1, N, H)), np.empty((T, N, H))
    h[0] = h0
    gru_forward(gates, np.ascontiguousarray((w_hh * scale[:, None]).T), b_hh * scale, h, hidden_n)
    np.testing.assert_allclose(h[1:], plain_gru(pre, w_hh, b_hh, h0), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(hidden_n, [h[t] @ w_hh[2 * H :].T + b_hh[2 * H :] for t in range(T)], rtol=1e-13)
    d_input, d_hidden, dh = np.empty_like(gates), np.empty_like(gates), np.zeros((N, H))
    gru_backward(delta, gates, h, hidden_n, w_hh, d_input, d_hidden, dh)
    loss = lambda: np.sum(plain_gru(pre, w_hh, b_hh, h0) * delta.transpose(1, 0, 2))  # noqa: E731
    np.testing.assert_allclose(d_input, central_differences(loss, pre), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(d_hidden.sum(axis=(0, 1)), central_differences(loss, b_hh), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dh, central_differences(loss, h0), rtol=1e-6, atol=1e-8)
