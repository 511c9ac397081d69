"""CS231n's published reference values for its recurrent layers, reproduced with nnscratch's.

Source: Stanford CS231n, assignment 3, the notebooks RNN_Captioning.ipynb (cells "Vanilla RNN: step
forward" and "Vanilla RNN: forward") and LSTM_Captioning.ipynb ("LSTM: step forward", "LSTM:
forward"), as distributed from 2016 on (the same inputs and expected arrays appear in every year's
copy we found). The inputs are built with np.linspace exactly as there; the expected arrays are typed
in as published, to 8 decimals, so they hold to 5e-9 (an error of a few 1e-8 is what the notebooks
call a pass).

CS231n's weights are laid out for x @ Wx: Wx (D, G*H), Wh (H, G*H), one bias b, and its LSTM gates
are ordered i, f, o, g; nnscratch's are PyTorch's: weight_ih (G*H, D), two biases, gates i, f, g, o.
``load_cs231n`` maps one onto the other here, in the test, not in the layer.
"""

from __future__ import annotations

import numpy as np
import pytest

import nnscratch as nn
from nnscratch.reference import recurrent as textbook

KINDS = pytest.mark.parametrize("kind", [nn, nn.reference], ids=["fast", "reference"])


def load_cs231n(layer, wx, wh, b):
    """Copy CS231n's (Wx, Wh, b) into ``layer``: transposed, bias_hh = 0, the LSTM's gate blocks
    reordered from CS231n's (i, f, o, g) to PyTorch's (i, f, g, o)."""
    h = wh.shape[0]
    order = [0, 1, 3, 2] if wx.shape[1] == 4 * h else [0]
    rows = np.concatenate([np.arange(k * h, (k + 1) * h) for k in order])
    layer.weight_ih[...] = wx.T[rows]
    layer.weight_hh[...] = wh.T[rows]
    layer.bias_ih[...] = b[rows]
    layer.bias_hh[...] = 0.0
    return layer


# -- RNN_Captioning.ipynb --------------------------------------------------------------------------
# "Vanilla RNN: step forward"
N, D, H = 3, 10, 4
RNN_STEP = dict(
    x=np.linspace(-0.4, 0.7, num=N * D).reshape(N, D),
    prev_h=np.linspace(-0.2, 0.5, num=N * H).reshape(N, H),
    wx=np.linspace(-0.1, 0.9, num=D * H).reshape(D, H),
    wh=np.linspace(-0.3, 0.7, num=H * H).reshape(H, H),
    b=np.linspace(-0.2, 0.4, num=H),
)
EXPECTED_RNN_NEXT_H = np.asarray([
    [-0.58172089, -0.50182032, -0.41232771, -0.31410098],
    [0.66854692, 0.79562378, 0.87755553, 0.92795967],
    [0.97934501, 0.99144213, 0.99646691, 0.99854353]])

# "Vanilla RNN: forward"
N, T, D, H = 2, 3, 4, 5
RNN_FORWARD = dict(
    x=np.linspace(-0.1, 0.3, num=N * T * D).reshape(N, T, D),
    h0=np.linspace(-0.3, 0.1, num=N * H).reshape(N, H),
    wx=np.linspace(-0.2, 0.4, num=D * H).reshape(D, H),
    wh=np.linspace(-0.4, 0.1, num=H * H).reshape(H, H),
    b=np.linspace(-0.7, 0.1, num=H),
)
EXPECTED_RNN_H = np.asarray([
    [[-0.42070749, -0.27279261, -0.11074945, 0.05740409, 0.22236251],
     [-0.39525808, -0.22554661, -0.0409454, 0.14649412, 0.32397316],
     [-0.42305111, -0.24223728, -0.04287027, 0.15997045, 0.35014525]],
    [[-0.55857474, -0.39065825, -0.19198182, 0.02378408, 0.23735671],
     [-0.27150199, -0.07088804, 0.13562939, 0.33099728, 0.50158768],
     [-0.51014825, -0.30524429, -0.06755202, 0.17806392, 0.40333043]]])

# -- LSTM_Captioning.ipynb -------------------------------------------------------------------------
# "LSTM: step forward"
N, D, H = 3, 4, 5
LSTM_STEP = dict(
    x=np.linspace(-0.4, 1.2, num=N * D).reshape(N, D),
    prev_h=np.linspace(-0.3, 0.7, num=N * H).reshape(N, H),
    prev_c=np.linspace(-0.4, 0.9, num=N * H).reshape(N, H),
    wx=np.linspace(-2.1, 1.3, num=4 * D * H).reshape(D, 4 * H),
    wh=np.linspace(-0.7, 2.2, num=4 * H * H).reshape(H, 4 * H),
    b=np.linspace(0.3, 0.7, num=4 * H),
)
EXPECTED_LSTM_NEXT_H = np.asarray([
    [0.24635157, 0.28610883, 0.32240467, 0.35525807, 0.38474904],
    [0.49223563, 0.55611431, 0.61507696, 0.66844003, 0.7159181],
    [0.56735664, 0.66310127, 0.74419266, 0.80889665, 0.858299]])
EXPECTED_LSTM_NEXT_C = np.asarray([
    [0.32986176, 0.39145139, 0.451556, 0.51014116, 0.56717407],
    [0.66382255, 0.76674007, 0.87195994, 0.97902709, 1.08751345],
    [0.74192008, 0.90592151, 1.07717006, 1.25120233, 1.42395676]])

# "LSTM: forward" (c0 = 0, as CS231n's lstm_forward starts the cell)
N, D, H, T = 2, 5, 4, 3
LSTM_FORWARD = dict(
    x=np.linspace(-0.4, 0.6, num=N * T * D).reshape(N, T, D),
    h0=np.linspace(-0.4, 0.8, num=N * H).reshape(N, H),
    wx=np.linspace(-0.2, 0.9, num=4 * D * H).reshape(D, 4 * H),
    wh=np.linspace(-0.3, 0.6, num=4 * H * H).reshape(H, 4 * H),
    b=np.linspace(0.2, 0.7, num=4 * H),
)
EXPECTED_LSTM_H = np.asarray([
    [[0.01764008, 0.01823233, 0.01882671, 0.0194232],
     [0.11287491, 0.12146228, 0.13018446, 0.13902939],
     [0.31358768, 0.33338627, 0.35304453, 0.37250975]],
    [[0.45767879, 0.4761092, 0.4936887, 0.51041945],
     [0.6704845, 0.69350089, 0.71486014, 0.7346449],
     [0.81733511, 0.83677871, 0.85403753, 0.86935314]]])


def published(got, expected, dtype=np.float64):
    assert got.dtype == dtype
    np.testing.assert_allclose(got, expected, rtol=0, atol=5e-9 if dtype == np.float64 else 1e-6)


@KINDS
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_rnn_step_forward(kind, dtype):
    case = RNN_STEP
    layer = load_cs231n(kind.RNN(10, 4, dtype=dtype), case["wx"], case["wh"], case["b"])
    y = layer.forward(case["x"][:, None], initial_state=case["prev_h"])  # one time step
    published(y[:, 0], EXPECTED_RNN_NEXT_H, dtype)
    published(layer.final_state, EXPECTED_RNN_NEXT_H, dtype)


@KINDS
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_rnn_forward(kind, dtype):
    case = RNN_FORWARD
    layer = load_cs231n(kind.RNN(4, 5, dtype=dtype), case["wx"], case["wh"], case["b"])
    published(layer.forward(case["x"], initial_state=case["h0"]), EXPECTED_RNN_H, dtype)


@KINDS
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_lstm_step_forward(kind, dtype):
    case = LSTM_STEP
    layer = load_cs231n(kind.LSTM(4, 5, dtype=dtype), case["wx"], case["wh"], case["b"])
    y = layer.forward(case["x"][:, None], initial_state=(case["prev_h"], case["prev_c"]))
    published(y[:, 0], EXPECTED_LSTM_NEXT_H, dtype)
    next_h, next_c = layer.final_state
    published(next_h, EXPECTED_LSTM_NEXT_H, dtype)
    published(next_c, EXPECTED_LSTM_NEXT_C, dtype)


@KINDS
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_lstm_forward(kind, dtype):
    case = LSTM_FORWARD
    layer = load_cs231n(kind.LSTM(5, 4, dtype=dtype), case["wx"], case["wh"], case["b"])
    published(layer.forward(case["x"], initial_state=(case["h0"], np.zeros_like(case["h0"]))), EXPECTED_LSTM_H, dtype)
    published(layer.final_state[0], EXPECTED_LSTM_H[:, -1], dtype)


def test_the_textbook_step_functions_reproduce_the_step_values():
    # The step functions take PyTorch's layout too: the same mapping, then one call each.
    rnn = load_cs231n(nn.reference.RNN(10, 4, dtype=np.float64), RNN_STEP["wx"], RNN_STEP["wh"], RNN_STEP["b"])
    next_h, _ = textbook.rnn_step_forward(RNN_STEP["x"], RNN_STEP["prev_h"], rnn.weight_ih, rnn.weight_hh,
                                          rnn.bias_ih + rnn.bias_hh)
    published(next_h, EXPECTED_RNN_NEXT_H)
    lstm = load_cs231n(nn.reference.LSTM(4, 5, dtype=np.float64), LSTM_STEP["wx"], LSTM_STEP["wh"], LSTM_STEP["b"])
    next_h, next_c, _ = textbook.lstm_step_forward(LSTM_STEP["x"], LSTM_STEP["prev_h"], LSTM_STEP["prev_c"],
                                                   lstm.weight_ih, lstm.weight_hh, lstm.bias_ih + lstm.bias_hh)
    published(next_h, EXPECTED_LSTM_NEXT_H)
    published(next_c, EXPECTED_LSTM_NEXT_C)


def test_the_gate_mapping_matters():
    # Loaded without reordering CS231n's (i, f, o, g) blocks, the LSTM gives other numbers: the test
    # above would catch a layer whose gate order is CS231n's instead of PyTorch's.
    case = LSTM_FORWARD
    layer = nn.LSTM(5, 4, dtype=np.float64)
    layer.weight_ih[...], layer.weight_hh[...] = case["wx"].T, case["wh"].T
    layer.bias_ih[...], layer.bias_hh[...] = case["b"], 0.0
    y = layer.forward(case["x"], initial_state=(case["h0"], np.zeros_like(case["h0"])))
    assert np.abs(y - EXPECTED_LSTM_H).max() > 0.01
