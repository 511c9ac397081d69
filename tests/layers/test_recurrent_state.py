"""The state of RNN, LSTM and GRU (initial, final, carried by a stateful layer over a stream, and
truncated backpropagation through time checked against the same computation by hand), and numbers
that stay finite: sequences of 512 steps, exploding inputs, saturated gates, long training, and
clip_grad_norm across recurrent layers."""

from __future__ import annotations

import math

import numpy as np
import pytest

import nnscratch as nn
from helpers.recurrent_cases import EACH_CELL, make, normal, parts, random_state, twin_of, zero_state

BOTH = pytest.mark.parametrize("kind", [nn, nn.reference], ids=["fast", "reference"])


def _state(cell, values: tuple):
    return tuple(values) if cell == "LSTM" else values[0]


@BOTH
@EACH_CELL
def test_final_state_is_the_last_step_and_a_copy(kind, cell, extra):
    layer = make(kind, cell, extra, 3, 4, seed=1)
    y = layer.forward(normal((2, 5, 3), 2), initial_state=random_state(cell, 2, 4, 3))
    final = parts(layer.final_state)
    np.testing.assert_array_equal(final[0], y[:, -1])
    assert all(not np.shares_memory(part, y) for part in final)
    if cell == "LSTM":  # c_T: what starting a one-step sequence from (h_T, c_T) carries on from
        h_t, c_t = final
        again = twin_of(layer, kind)
        again.forward(np.zeros((2, 1, 3)), initial_state=(h_t, c_t))
        reference = twin_of(layer, nn.reference)
        reference.forward(np.zeros((2, 1, 3)), initial_state=(h_t.copy(), c_t.copy()))
        np.testing.assert_allclose(again.final_state[1], reference.final_state[1], rtol=1e-12)


@BOTH
@EACH_CELL
def test_no_initial_state_means_zeros(kind, cell, extra):
    layer = make(kind, cell, extra, 3, 4, seed=1)
    x = normal((2, 5, 3), 2)
    np.testing.assert_array_equal(layer.forward(x), layer.forward(x, initial_state=zero_state(cell, 2, 4)))


@BOTH
@EACH_CELL
def test_stateful_forwards_continue_the_sequence(kind, cell, extra):
    stateful = make(kind, cell, extra, 3, 4, seed=1, stateful=True)
    whole = twin_of(stateful, kind)
    whole.stateful = False
    x = normal((2, 9, 3), 2)
    pieces = [stateful.forward(x[:, :4]), stateful.forward(x[:, 4:5]), stateful.forward(x[:, 5:])]
    np.testing.assert_allclose(np.concatenate(pieces, axis=1), whole.forward(x), rtol=1e-12, atol=1e-14)
    for a, b in zip(parts(stateful.final_state), parts(whole.final_state), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    # an explicit initial_state wins over the carried one, and is carried on from
    given = random_state(cell, 2, 4, 5)
    np.testing.assert_array_equal(stateful.forward(x[:, :3], initial_state=given),
                                  whole.forward(x[:, :3], initial_state=given))
    np.testing.assert_array_equal(stateful.forward(x[:, 3:]), whole.forward(x[:, 3:], initial_state=whole.final_state))
    stateful.reset_state()  # forgets: zeros again
    np.testing.assert_array_equal(stateful.forward(x), whole.forward(x))
    stateful.reset_state(given)  # or sets the state a new stream starts from
    np.testing.assert_array_equal(stateful.forward(x), whole.forward(x, initial_state=given))


@BOTH
@EACH_CELL
def test_the_carried_state_is_the_layer_s_own_copy(kind, cell, extra):
    layer = make(kind, cell, extra, 3, 4, seed=1, stateful=True)
    x = normal((2, 3, 3), 2)
    layer.forward(x)
    for part in parts(layer.final_state):
        part[...] = 99.0  # what the caller does with final_state does not change the stream
    twin = twin_of(layer, kind)
    twin.stateful = False
    twin.forward(x)
    y = layer.forward(x)
    np.testing.assert_array_equal(y, twin.forward(x, initial_state=twin.final_state))
    assert not np.allclose(y, twin.forward(x, initial_state=_state(cell, (np.full((2, 4), 99.0),) * 2)))


@BOTH
@EACH_CELL
def test_truncated_backpropagation_over_a_stream_equals_the_computation_by_hand(kind, cell, extra):
    """A stateful layer trained window after window on a stream: each window starts from the last
    one's final state as a constant. By hand: a plain layer given that state as initial_state."""
    stream, targets = normal((3, 40, 2), 1), normal((3, 40, 3), 2)
    nets, optimizers = [], []
    for stateful in (True, False):
        net = nn.Sequential(make(kind, cell, extra, 2, 4, seed=3, stateful=stateful),
                            nn.Linear(4, 3, dtype=np.float64, rng=4), nn.MeanSquaredError(), nn.Mean())
        nets.append(net)
        optimizers.append(nn.SGD(net, lr=0.1, momentum=0.9))
    carried, gradients = None, []
    for start in range(0, 40, 8):
        window = slice(start, start + 8)
        loss = nets[0].forward(stream[:, window], targets[:, window])
        nets[0].backward()
        gradients.append(parts(nets[0].layers[0].initial_state_delta)[0].copy())
        optimizers[0].step()
        by_hand = nets[1].layers[0]
        y = by_hand.forward(stream[:, window], initial_state=carried)
        hand_loss = nets[1].layers[3].forward(nets[1].layers[2].forward(nets[1].layers[1].forward(y), targets[:, window]))
        delta = nets[1].layers[1].backward(nets[1].layers[2].backward(nets[1].layers[3].backward(1.0)))
        by_hand.backward(delta)
        optimizers[1].step()
        carried = by_hand.final_state  # a constant: no gradient reaches the window before
        np.testing.assert_array_equal(loss, hand_loss)
        np.testing.assert_array_equal(gradients[-1], parts(by_hand.initial_state_delta)[0])
    for a, b in zip(nets[0].parameters, nets[1].parameters, strict=True):
        np.testing.assert_array_equal(a, b)
    assert np.abs(gradients[-1]).max() > 0  # the carried state does receive a gradient, which is dropped


# -- numbers that stay finite ---------------------------------------------------------------------
@EACH_CELL
def test_512_steps_match_the_reference_in_float32(cell, extra):
    layer = make(nn, cell, extra, 4, 8, dtype=np.float32, seed=5)
    for p in layer.parameters:
        p *= 0.5  # PyTorch's init scale, where long sequences neither vanish at once nor explode
    twin = twin_of(layer, nn.reference)
    x, delta = normal((2, 512, 4), 6, dtype=np.float32), normal((2, 512, 8), 7, dtype=np.float32)
    with np.errstate(all="raise"):
        y, dx = layer.forward(x), layer.backward(delta)
        y_twin, dx_twin = twin.forward(x), twin.backward(delta)
    np.testing.assert_allclose(y, y_twin, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(dx, dx_twin, rtol=1e-3, atol=1e-4 * np.abs(dx_twin).max())
    for a, b in zip(layer.parameters_deltas, twin.parameters_deltas):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4 * np.abs(b).max())
    assert np.abs(y[:, -100:]).max() > 1e-3  # the state still carries something at the end


@BOTH
@pytest.mark.parametrize("cell", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("scale", [1e3, 1e8, 1e15])
def test_exploding_inputs_saturate_without_overflow_or_nan(kind, cell, scale):
    layer = make(kind, cell, {}, 4, 6, dtype=np.float32, seed=8)
    x = normal((3, 512, 4), 9, scale, np.float32)
    with np.errstate(all="raise"):  # no overflow, no invalid operation, anywhere
        y = layer.forward(x)
        dx = layer.backward(normal(y.shape, 10, dtype=np.float32))
    assert np.isfinite(y).all() and np.abs(y).max() <= 1.0  # tanh-bounded: saturated, never inf
    assert np.isfinite(dx).all() and all(np.isfinite(d).all() for d in layer.parameters_deltas)
    assert all(np.isfinite(p).all() for p in parts(layer.initial_state_delta) + parts(layer.final_state))


@BOTH
@pytest.mark.parametrize("cell", ["LSTM", "GRU"])
def test_saturated_gates_keep_the_state_finite_over_512_steps(kind, cell):
    layer = make(kind, cell, {}, 3, 5, dtype=np.float32, seed=11)
    for p in layer.parameters:
        p *= 60.0  # every gate at 0 or 1: the cell is a counter, the gradients vanish
    with np.errstate(all="raise"):
        y = layer.forward(normal((2, 512, 3), 12, dtype=np.float32))
        layer.backward(normal(y.shape, 13, dtype=np.float32))
    assert np.isfinite(y).all() and all(np.isfinite(d).all() for d in layer.parameters_deltas)
    if cell == "LSTM":
        c_t = layer.final_state[1]
        assert np.isfinite(c_t).all() and np.abs(c_t).max() <= 512  # |c| grows by at most 1 a step


def test_relu_rnn_over_512_steps_at_pytorch_s_initialisation_stays_finite():
    layer = nn.RNN(8, 16, nonlinearity="relu", rng=14)  # relu's state is unbounded: it rests on the weights
    with np.errstate(all="raise"):
        y = layer.forward(normal((4, 512, 8), 15, dtype=np.float32))
        layer.backward(np.ones_like(y))
    assert np.isfinite(y).all() and all(np.isfinite(d).all() for d in layer.parameters_deltas)


@pytest.mark.parametrize("cell", ["LSTM", "GRU", "RNN"])
def test_long_training_on_a_stream_stays_finite_and_learns(cell):
    # Predict the next value of a noisy sine stream, window after window (stateful, truncated BPTT),
    # 600 Adam steps at a high learning rate, gradients clipped as char-rnn does.
    t = np.arange(600 * 16 + 1) + np.array([[0], [7], [19]])  # three streams, three phases
    noise = 0.1 * np.random.default_rng(0).standard_normal(t.shape)
    stream = (np.sin(t * 0.3) + noise).astype(np.float32)[:, :, None]
    net = nn.Sequential(getattr(nn, cell)(1, 32, stateful=True, rng=1), nn.Linear(32, 1, rng=2),
                        nn.MeanSquaredError(), nn.Mean())
    optimizer, losses = nn.Adam(net, lr=0.02), []
    with np.errstate(over="raise", invalid="raise"):
        for start in range(0, 600 * 16, 16):
            loss = net.forward(stream[:, start : start + 16], stream[:, start + 1 : start + 17])
            net.backward()
            nn.clip_grad_norm(net, 1.0)
            optimizer.step()
            losses.append(float(loss))
    assert all(math.isfinite(v) for v in losses) and all(np.isfinite(p).all() for p in net.parameters)
    assert np.mean(losses[-50:]) < 0.3 * np.mean(losses[:20])


def test_clip_grad_norm_works_across_recurrent_layers():
    net = nn.Sequential(make(nn, "LSTM", {}, 3, 5, dtype=np.float32, seed=1), make(nn, "GRU", {}, 5, 4, seed=2),
                        make(nn, "RNN", {"nonlinearity": "relu"}, 4, 3, dtype=np.float32, seed=3))
    for p in net.layers[2].parameters:
        p *= 3.0  # a relu RNN whose gradients explode over the sequence
    y = net.forward(normal((2, 40, 3), 4, dtype=np.float32))
    net.backward(np.ones_like(y))
    before = [d.copy() for d in net.parameters_deltas]
    norm = math.sqrt(sum(float(np.sum(d.astype(np.float64) ** 2)) for d in before))
    assert norm > 10.0 and math.isfinite(norm)
    assert nn.clip_grad_norm(net, 1.0) == pytest.approx(norm, rel=1e-6)
    after = net.parameters_deltas
    assert math.sqrt(sum(float(np.sum(d.astype(np.float64) ** 2)) for d in after)) == pytest.approx(1.0, rel=1e-5)
    for a, b in zip(after, before, strict=True):  # one scale for all: the direction is kept
        assert a.dtype == b.dtype
        np.testing.assert_allclose(a, b * (1.0 / (norm + 1e-6)), rtol=1e-5, atol=1e-12)
