"""The optimizers: steps against hand-computed values, textbook twins and PyTorch; no allocation per
step; state round trip; bad hyperparameters, flags and dtypes."""

import gc
import math
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnscratch as nn


class Param:
    """A one-parameter plain layer whose gradient the test sets directly."""

    def __init__(self, value, dtype=np.float64):
        self.parameters = [np.array([value], dtype=dtype)]
        self.parameters_deltas = [np.zeros(1, dtype=dtype)]

    def forward(self, x, *args):
        return x

    def backward(self, delta):
        return delta

    def run(self, optimizer, gradients):
        values = []
        for g in gradients:
            self.parameters_deltas[0][0] = g
            optimizer.step()
            values.append(float(self.parameters[0][0]))
        return values


def test_plain_sgd():
    layer = Param(1.0)
    assert layer.run(nn.SGD(layer, lr=0.1), [1.0, -2.0]) == pytest.approx([0.9, 1.1])


def test_sgd_momentum():
    layer = Param(1.0)
    # v1 = 1, p = 1 - 0.1 * 1 = 0.9; v2 = 0.9 * 1 + 1 = 1.9, p = 0.9 - 0.19 = 0.71
    assert layer.run(nn.SGD(layer, lr=0.1, momentum=0.9), [1.0, 1.0]) == pytest.approx([0.9, 0.71])


def test_sgd_nesterov():
    layer = Param(1.0)
    # v1 = 1, step = 1 + 0.9 * 1 = 1.9, p = 0.81; v2 = 1.9, step = 1 + 0.9 * 1.9 = 2.71, p = 0.539
    assert layer.run(nn.SGD(layer, lr=0.1, momentum=0.9, nesterov=True), [1.0, 1.0]) == pytest.approx([0.81, 0.539])


def test_sgd_weight_decay():
    layer = Param(2.0)
    # g = 1 + 0.1 * 2 = 1.2, p = 2 - 0.5 * 1.2 = 1.4
    assert layer.run(nn.SGD(layer, lr=0.5, weight_decay=0.1), [1.0]) == pytest.approx([1.4])


def test_adam_bias_correction_hand_computed():
    layer = Param(1.0)
    # t=1, g=0.5:  m = 0.05, v = 0.00025, m_hat = 0.05 / 0.1 = 0.5, v_hat = 0.00025 / 0.001 = 0.25
    #              p = 1 - 0.1 * 0.5 / (0.5 + 1e-8)
    p1 = 1 - 0.1 * 0.5 / (0.5 + 1e-8)
    # t=2, g=-1:   m = 0.045 - 0.1 = -0.055, v = 0.00024975 + 0.001 = 0.00124975
    #              m_hat = -0.055 / 0.19, v_hat = 0.00124975 / 0.001999
    p2 = p1 - 0.1 * (-0.055 / 0.19) / (np.sqrt(0.00124975 / 0.001999) + 1e-8)
    values = layer.run(nn.Adam(layer, lr=0.1), [0.5, -1.0])
    assert values == pytest.approx([p1, p2], rel=1e-12)
    assert values[0] == pytest.approx(0.9, abs=1e-7)  # the first step moves by lr, whatever the gradient's size
    assert values[1] == pytest.approx(0.936610, abs=1e-6)


def textbook_adam(start, grads, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
    """Adam exactly as the paper writes it, one float64 number at a time: the reference twin."""
    beta1, beta2 = betas
    p = [float(value) for value in np.ravel(start)]
    m, v = [0.0] * len(p), [0.0] * len(p)
    for t, grad in enumerate(grads, start=1):
        for i, g in enumerate(np.ravel(grad)):
            g = float(g) + weight_decay * p[i]
            m[i] = beta1 * m[i] + (1 - beta1) * g
            v[i] = beta2 * v[i] + (1 - beta2) * g * g
            m_hat, v_hat = m[i] / (1 - beta1**t), v[i] / (1 - beta2**t)
            p[i] -= lr * m_hat / (v_hat**0.5 + eps)
    return np.reshape(p, np.shape(start))


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 1e-5)])
@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_adam_matches_the_textbook_over_many_steps(dtype, rtol, weight_decay):
    rng = np.random.default_rng(3)
    start = rng.normal(size=(4, 3))
    grads = rng.normal(size=(25, 4, 3)) * np.logspace(-4, 1, 25)[:, None, None]  # small and large
    layer = Param(0.0, dtype=dtype)
    layer.parameters = [start.astype(dtype)]
    layer.parameters_deltas = [np.zeros((4, 3), dtype)]
    optimizer = nn.Adam(layer, lr=0.05, betas=(0.8, 0.99), eps=1e-6, weight_decay=weight_decay)
    for g in grads:
        layer.parameters_deltas[0][...] = g
        optimizer.step()
    expected = textbook_adam(start, grads.astype(dtype), 0.05, (0.8, 0.99), 1e-6, weight_decay)
    assert layer.parameters[0].dtype == dtype
    np.testing.assert_allclose(layer.parameters[0], expected, rtol=rtol, atol=rtol * 1e-3)


def textbook_sgd(start, grads, lr, momentum=0.0, weight_decay=0.0, nesterov=False):
    """SGD as PyTorch documents it, one float64 number at a time: the reference twin."""
    p = [float(value) for value in np.ravel(start)]
    v = [0.0] * len(p)
    for grad in grads:
        for i, g in enumerate(np.ravel(grad)):
            g = float(g) + weight_decay * p[i]
            v[i] = momentum * v[i] + g
            step = g + momentum * v[i] if nesterov else (v[i] if momentum else g)
            p[i] -= lr * step
    return np.reshape(p, np.shape(start))


class Params:
    """Several parameters of different shapes (they share the optimizer's scratch memory)."""

    def __init__(self, starts, dtype):
        self.parameters = [np.array(start, dtype=dtype) for start in starts]
        self.parameters_deltas = [np.zeros_like(p) for p in self.parameters]


# atol: a parameter that ends near zero is the difference of terms of size ~1, rounded 12 times.
@pytest.mark.parametrize("dtype, rtol, atol", [(np.float64, 1e-12, 1e-13), (np.float32, 1e-5, 1e-6)])
@pytest.mark.parametrize(
    "settings",
    [{}, {"momentum": 0.9}, {"momentum": 0.8, "nesterov": True}, {"momentum": 0.9, "weight_decay": 0.01}],
    ids=["plain", "momentum", "nesterov", "weight-decay"],
)
def test_sgd_matches_the_textbook_over_many_steps(dtype, rtol, atol, settings):
    rng = np.random.default_rng(4)
    shapes = [(5, 3), (3,), (2, 2, 2), (7,)]
    starts = [rng.normal(size=shape) for shape in shapes]
    grads = [rng.normal(size=(12, *shape)) for shape in shapes]
    layer = Params(starts, dtype)
    optimizer = nn.SGD(layer, lr=0.05, **settings)
    for t in range(12):
        for delta, g in zip(layer.parameters_deltas, grads):
            delta[...] = g[t]
        optimizer.step()
    for p, start, g in zip(layer.parameters, starts, grads):
        expected = textbook_sgd(start, g.astype(dtype), 0.05, **settings)
        assert p.dtype == dtype
        np.testing.assert_allclose(p, expected, rtol=rtol, atol=atol)


@settings(max_examples=60, deadline=None)
@given(
    lr=st.floats(1e-4, 1.0), momentum=st.sampled_from([0.0, 0.5, 0.9, 0.99]), nesterov=st.booleans(),
    weight_decay=st.sampled_from([0.0, 1e-4, 0.1]), sizes=st.lists(st.integers(1, 9), min_size=1, max_size=4),
    steps=st.integers(1, 6), seed=st.integers(0, 2**16),
)
def test_sgd_matches_the_textbook_for_random_settings(lr, momentum, nesterov, weight_decay, sizes, steps, seed):
    nesterov = nesterov and momentum > 0  # nesterov needs momentum
    rng = np.random.default_rng(seed)
    starts = [rng.normal(size=size) for size in sizes]
    grads = [rng.normal(size=(steps, size)) for size in sizes]
    layer = Params(starts, np.float64)
    optimizer = nn.SGD(layer, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)
    for t in range(steps):
        for delta, g in zip(layer.parameters_deltas, grads):
            delta[...] = g[t]
        optimizer.step()
    for p, start, g in zip(layer.parameters, starts, grads):
        expected = textbook_sgd(start, g, lr, momentum, weight_decay, nesterov)
        np.testing.assert_allclose(p, expected, rtol=1e-10, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    lr=st.floats(1e-4, 0.5), beta1=st.sampled_from([0.0, 0.5, 0.9]), beta2=st.sampled_from([0.9, 0.99, 0.999]),
    eps=st.sampled_from([1e-8, 1e-6, 1e-3]), weight_decay=st.sampled_from([0.0, 1e-3]),
    sizes=st.lists(st.integers(1, 9), min_size=1, max_size=4), steps=st.integers(1, 6), seed=st.integers(0, 2**16),
)
def test_adam_matches_the_textbook_for_random_settings(lr, beta1, beta2, eps, weight_decay, sizes, steps, seed):
    rng = np.random.default_rng(seed)
    starts = [rng.normal(size=size) for size in sizes]
    grads = [rng.normal(size=(steps, size)) for size in sizes]
    layer = Params(starts, np.float64)
    optimizer = nn.Adam(layer, lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay)
    for t in range(steps):
        for delta, g in zip(layer.parameters_deltas, grads):
            delta[...] = g[t]
        optimizer.step()
    for p, start, g in zip(layer.parameters, starts, grads):
        expected = textbook_adam(start, g, lr, (beta1, beta2), eps, weight_decay)
        np.testing.assert_allclose(p, expected, rtol=1e-9, atol=1e-12)


def test_adam_weight_decay():
    layer = Param(1.0)
    # g = 0 + 0.5 * 1 = 0.5, so the first step is again lr * 0.5 / 0.5
    assert layer.run(nn.Adam(layer, lr=0.01, weight_decay=0.5), [0.0]) == pytest.approx([0.99], abs=1e-7)


def test_float32_stays_float32():
    layer = Param(1.0, dtype=np.float32)
    for opt in (nn.SGD(layer, lr=0.1, momentum=0.9, weight_decay=0.1), nn.Adam(layer)):
        layer.run(opt, [1.0])
        assert layer.parameters[0].dtype == np.float32
    assert all(b.dtype == np.float32 for b in opt.m + opt.v)


def test_updates_in_place_for_all_layer_sources():
    net = nn.Sequential(nn.Linear(3, 2, rng=0), nn.ReLU(), nn.Linear(2, 1, rng=1))
    weight = net[0].weight
    before = weight.copy()
    net.forward(np.ones((4, 3), np.float32))
    net.backward(np.ones((4, 1), np.float32))
    nn.SGD([net[0], net[2]], lr=0.1).step()
    assert net[0].weight is weight
    np.testing.assert_allclose(weight, before - 0.1 * net[0].parameters_deltas[0])


def test_state_dict_round_trip_resumes_identically():
    a, b = Param(1.0), Param(1.0)
    opt_a = nn.Adam(a, lr=0.1)
    a.run(opt_a, [0.5, -1.0])
    state = opt_a.state_dict()
    b.parameters[0][...] = a.parameters[0]
    opt_b = nn.Adam(b, lr=0.1)
    opt_b.load_state_dict(state)
    assert a.run(opt_a, [0.3]) == b.run(opt_b, [0.3])
    assert state["steps"] == 2 and set(state) == {"steps", "m.0", "v.0"}


def test_load_state_dict_checks_shapes():
    layer = Param(1.0)
    opt = nn.SGD(layer, lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match=r"SGD: optimizer state 'velocity.0' has shape \(2,\), expected \(1,\)"):
        opt.load_state_dict({"steps": 1, "velocity.0": np.zeros(2)})


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda s: nn.SGD(s, lr=0), r"SGD: lr must be > 0, got 0"),
        (lambda s: nn.SGD(s, lr=-0.1), r"SGD: lr must be > 0, got -0.1"),
        (lambda s: nn.SGD(s, lr=0.1, momentum=-0.5), r"SGD: momentum must be >= 0 and < 1, got -0.5"),
        (lambda s: nn.SGD(s, lr=0.1, nesterov=True), r"SGD: nesterov=True needs momentum > 0"),
        (lambda s: nn.SGD(s, lr=0.1, weight_decay=-1), r"SGD: weight_decay must be >= 0, got -1"),
        (lambda s: nn.Adam(s, lr=0), r"Adam: lr must be > 0, got 0"),
        (lambda s: nn.Adam(s, betas=(0.9, 1.0)), r"Adam: beta2 must be >= 0 and < 1, got 1"),
        (lambda s: nn.Adam(s, betas=0.9), r"Adam: betas must be a pair"),
        (lambda s: nn.Adam(s, eps=0), r"Adam: eps must be > 0, got 0"),
    ],
)
def test_bad_hyperparameters(make, match):
    with pytest.raises(ValueError, match=match):
        make(Param(1.0))


def test_bad_source_and_types():
    with pytest.raises(TypeError, match=r"SGD: expected a layer, a Sequential or a list of layers.*got int"):
        nn.SGD(3, lr=0.1)
    with pytest.raises(TypeError, match=r"SGD: lr must be a real number, got str"):
        nn.SGD(Param(1.0), lr="0.1")


def test_misaligned_deltas():
    layer = Param(1.0)
    layer.parameters_deltas = []
    with pytest.raises(ValueError, match=r"SGD: 1 parameters but 0 parameters_deltas"):
        nn.SGD(layer, lr=0.1).step()


@pytest.mark.parametrize("make", [lambda net: nn.SGD(net, lr=0.1, momentum=0.9, weight_decay=0.01),
                                  lambda net: nn.Adam(net, lr=0.1, weight_decay=0.01)])
def test_optimizers_never_touch_buffers(make):
    class WithState(nn.Layer):
        def __init__(self):
            super().__init__()
            self.parameters = [np.ones(3)]
            self.parameters_deltas = [np.full(3, 0.5)]
            self.buffers = [np.full(3, 2.0), np.arange(4.0)]

        def forward(self, x, *args):
            return x

        def backward(self, delta):
            return delta

    layer = WithState()
    net = nn.Sequential(layer)
    optimizer = make(net)
    for _ in range(3):
        optimizer.step()
    assert not np.allclose(layer.parameters[0], 1.0)  # the parameter moved
    np.testing.assert_array_equal(layer.buffers[0], np.full(3, 2.0))
    np.testing.assert_array_equal(layer.buffers[1], np.arange(4.0))
    assert not any(np.shares_memory(b, s) for b in layer.buffers for s in optimizer.state_dict().values()
                   if isinstance(s, np.ndarray))


# -- RMSprop, Adagrad, AdamW: hand-computed steps ----------------------------------------------
def test_rmsprop_hand_computed():
    layer = Param(1.0)
    # t=1, g=1:  v = 0.1 * 1 = 0.1,              p = 1 - 0.1 * 1 / sqrt(0.1) = 0.68377223
    # t=2, g=-2: v = 0.09 + 0.1 * 4 = 0.49,      p = 0.68377223 + 0.1 * 2 / 0.7 = 0.96948652
    values = layer.run(nn.RMSprop(layer, lr=0.1, alpha=0.9, eps=1e-12), [1.0, -2.0])
    assert values == pytest.approx([0.68377223, 0.96948652], abs=1e-8)


def test_rmsprop_momentum_hand_computed():
    layer = Param(1.0)
    # t=1: u = 1 / sqrt(0.1) = 3.16227766, b = u,                          p = 0.68377223
    # t=2: u = -2 / 0.7 = -2.85714286, b = 0.5 * 3.16227766 + u = -1.27600403, p = 0.81137264
    values = layer.run(nn.RMSprop(layer, lr=0.1, alpha=0.9, eps=1e-12, momentum=0.5), [1.0, -2.0])
    assert values == pytest.approx([0.68377223, 0.81137264], abs=1e-8)


def test_rmsprop_centered_hand_computed():
    layer = Param(1.0)
    # t=1: a = 0.1, v = 0.1, v - a^2 = 0.09, u = 1 / 0.3,            p = 1 - 0.01 / 0.3 = 0.96666667
    # t=2: a = 0.09 - 0.2 = -0.11, v = 0.49, v - a^2 = 0.4779, u = -2 / sqrt(0.4779) = -2.89308691,
    #      p = 0.96666667 + 0.01 * 2.89308691 = 0.99559754
    values = layer.run(nn.RMSprop(layer, lr=0.01, alpha=0.9, eps=1e-12, centered=True), [1.0, -2.0])
    assert values == pytest.approx([1 - 0.01 / 0.3, 1 - 0.01 / 0.3 + 0.01 * 2 / math.sqrt(0.4779)], abs=1e-10)
    assert values[1] == pytest.approx(0.99559754, abs=1e-8)


def test_rmsprop_weight_decay_hand_computed():
    layer = Param(2.0)
    # g = 1 + 0.5 * 2 = 2, v = 0.01 * 4 = 0.04, p = 2 - 0.1 * 2 / 0.2 = 1
    assert layer.run(nn.RMSprop(layer, lr=0.1, eps=1e-12, weight_decay=0.5), [1.0]) == pytest.approx([1.0], abs=1e-9)


def test_adagrad_hand_computed():
    layer = Param(1.0)
    # t=1, g=3: G = 9,  p = 1 - 0.1 * 3 / 3 = 0.9;   t=2, g=4: G = 25, p = 0.9 - 0.1 * 4 / 5 = 0.82
    assert layer.run(nn.Adagrad(layer, lr=0.1, eps=1e-12), [3.0, 4.0]) == pytest.approx([0.9, 0.82], abs=1e-10)
    layer = Param(2.0)
    # g = 1 + 0.25 * 2 = 1.5, G = 2.25, p = 2 - 0.1 * 1.5 / 1.5 = 1.9
    assert layer.run(nn.Adagrad(layer, lr=0.1, weight_decay=0.25), [1.0]) == pytest.approx([1.9], abs=1e-9)


def test_adamw_decays_the_weight_not_the_gradient():
    layer = Param(1.0)
    # t=1: p = 1 * (1 - 0.1 * 0.5) = 0.95, then Adam's first step moves it by lr: 0.85. (Adam with
    # L2 decay would see g = 0.5 + 0.5 * 1 and also move by lr, from 1: 0.9.)
    # t=2, g=-1: p = 0.85 * 0.95 = 0.8075, then the same Adam step as in the Adam test above:
    #      + 0.1 * (0.055 / 0.19) / sqrt(0.00124975 / 0.001999) = + 0.03661035
    step2 = 0.1 * (0.055 / 0.19) / (np.sqrt(0.00124975 / 0.001999) + 1e-8)
    values = layer.run(nn.AdamW(layer, lr=0.1, weight_decay=0.5), [0.5, -1.0])
    assert values == pytest.approx([0.95 - 0.1 * 0.5 / (0.5 + 1e-8), 0.85 * 0.95 + step2], abs=1e-8)
    assert values[1] == pytest.approx(0.84411035, abs=1e-8)
    assert nn.AdamW(Param(1.0)).weight_decay == 0.01  # PyTorch's default


# -- textbook twins: the rules as PyTorch documents them, one float64 number at a time ---------
def textbook_rmsprop(start, grads, lr, alpha=0.99, eps=1e-8, momentum=0.0, weight_decay=0.0, centered=False):
    p = [float(value) for value in np.ravel(start)]
    v, b, a = [0.0] * len(p), [0.0] * len(p), [0.0] * len(p)
    for grad in grads:
        for i, g in enumerate(np.ravel(grad)):
            g = float(g) + weight_decay * p[i]
            v[i] = alpha * v[i] + (1 - alpha) * g * g
            square = v[i]
            if centered:
                a[i] = alpha * a[i] + (1 - alpha) * g
                square = v[i] - a[i] * a[i]
            u = g / (square**0.5 + eps)
            if momentum:
                b[i] = momentum * b[i] + u
                u = b[i]
            p[i] -= lr * u
    return np.reshape(p, np.shape(start))


def textbook_adagrad(start, grads, lr, eps=1e-10, weight_decay=0.0):
    p = [float(value) for value in np.ravel(start)]
    total = [0.0] * len(p)
    for grad in grads:
        for i, g in enumerate(np.ravel(grad)):
            g = float(g) + weight_decay * p[i]
            total[i] += g * g
            p[i] -= lr * g / (total[i] ** 0.5 + eps)
    return np.reshape(p, np.shape(start))


def textbook_adamw(start, grads, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
    beta1, beta2 = betas
    p = [float(value) for value in np.ravel(start)]
    m, v = [0.0] * len(p), [0.0] * len(p)
    for t, grad in enumerate(grads, start=1):
        for i, g in enumerate(np.ravel(grad)):
            g = float(g)
            p[i] *= 1 - lr * weight_decay
            m[i] = beta1 * m[i] + (1 - beta1) * g
            v[i] = beta2 * v[i] + (1 - beta2) * g * g
            m_hat, v_hat = m[i] / (1 - beta1**t), v[i] / (1 - beta2**t)
            p[i] -= lr * m_hat / (v_hat**0.5 + eps)
    return np.reshape(p, np.shape(start))


ADAPTIVE = [
    (nn.RMSprop, textbook_rmsprop, {"lr": 0.01}),
    (nn.RMSprop, textbook_rmsprop, {"lr": 0.01, "alpha": 0.9, "momentum": 0.9, "weight_decay": 0.01}),
    (nn.RMSprop, textbook_rmsprop, {"lr": 0.003, "centered": True, "momentum": 0.5, "eps": 1e-6}),
    (nn.Adagrad, textbook_adagrad, {"lr": 0.1}),
    (nn.Adagrad, textbook_adagrad, {"lr": 0.05, "eps": 1e-6, "weight_decay": 0.1}),
    (nn.AdamW, textbook_adamw, {"lr": 0.01}),
    (nn.AdamW, textbook_adamw, {"lr": 0.05, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.3}),
]
ADAPTIVE_IDS = ["rmsprop", "rmsprop-momentum-wd", "rmsprop-centered", "adagrad", "adagrad-wd", "adamw",
                "adamw-settings"]


@pytest.mark.parametrize("dtype, rtol, atol", [(np.float64, 1e-11, 1e-13), (np.float32, 2e-5, 2e-6)])
@pytest.mark.parametrize("cls, twin, settings", ADAPTIVE, ids=ADAPTIVE_IDS)
def test_adaptive_optimizers_match_their_textbook_twins_over_many_steps(dtype, rtol, atol, cls, twin, settings):
    rng = np.random.default_rng(5)
    shapes = [(5, 3), (3,), (2, 2, 2)]
    starts = [rng.normal(size=shape) for shape in shapes]
    # gradients of very different sizes from step to step, as in training
    grads = [rng.normal(size=(30, *shape)) * np.logspace(-3, 1, 30).reshape(-1, *[1] * len(shape))
             for shape in shapes]
    layer = Params(starts, dtype)
    optimizer = cls(layer, **settings)
    for t in range(30):
        for delta, g in zip(layer.parameters_deltas, grads):
            delta[...] = g[t]
        optimizer.step()
    for p, start, g in zip(layer.parameters, starts, grads):
        assert p.dtype == dtype
        np.testing.assert_allclose(p, twin(start.astype(dtype), g.astype(dtype), **settings), rtol=rtol, atol=atol)
    for name in optimizer._state_names:
        assert all(b.dtype == dtype for b in getattr(optimizer, name) or [])


@settings(max_examples=40, deadline=None)
@given(
    which=st.sampled_from(["rmsprop", "adagrad", "adamw"]), lr=st.floats(1e-4, 0.5),
    decay=st.sampled_from([0.0, 0.5, 0.9, 0.99]), momentum=st.sampled_from([0.0, 0.5, 0.9]),
    centered=st.booleans(), eps=st.sampled_from([1e-10, 1e-8, 1e-3]), weight_decay=st.sampled_from([0.0, 1e-3, 0.1]),
    sizes=st.lists(st.integers(1, 9), min_size=1, max_size=4), steps=st.integers(1, 6), seed=st.integers(0, 2**16),
)
def test_adaptive_optimizers_match_the_textbook_for_random_settings(
    which, lr, decay, momentum, centered, eps, weight_decay, sizes, steps, seed
):
    if which == "rmsprop":
        cls, twin = nn.RMSprop, textbook_rmsprop
        settings = {"alpha": decay, "momentum": momentum, "centered": centered}
    elif which == "adagrad":
        cls, twin, settings = nn.Adagrad, textbook_adagrad, {}
    else:
        cls, twin, settings = nn.AdamW, textbook_adamw, {"betas": (decay, 0.999)}
    settings.update(lr=lr, eps=eps, weight_decay=weight_decay)
    rng = np.random.default_rng(seed)
    starts = [rng.normal(size=size) for size in sizes]
    grads = [rng.normal(size=(steps, size)) for size in sizes]
    layer = Params(starts, np.float64)
    optimizer = cls(layer, **settings)
    for t in range(steps):
        for delta, g in zip(layer.parameters_deltas, grads):
            delta[...] = g[t]
        optimizer.step()
    for p, start, g in zip(layer.parameters, starts, grads):
        # centered RMSprop's sqrt(v - a^2) loses digits when v ~ a^2 (one step, alpha 0): looser there
        np.testing.assert_allclose(p, twin(start, g, **settings), rtol=1e-7 if centered else 1e-9, atol=1e-12)


# -- PyTorch parity ----------------------------------------------------------------------------
TORCH_CASES = [
    ("SGD", {"lr": 0.05, "momentum": 0.9, "weight_decay": 1e-3}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    ("Adam", {"lr": 0.01, "weight_decay": 1e-3}),
    ("Adam", {"lr": 0.003, "betas": (0.8, 0.99), "eps": 1e-6}),
    ("AdamW", {}),
    ("AdamW", {"lr": 0.01, "betas": (0.85, 0.995), "eps": 1e-7, "weight_decay": 0.2}),
    ("RMSprop", {}),
    ("RMSprop", {"lr": 0.001, "alpha": 0.9, "eps": 1e-6, "momentum": 0.9, "weight_decay": 0.01}),
    ("RMSprop", {"lr": 0.001, "momentum": 0.5, "centered": True}),
    ("Adagrad", {}),
    ("Adagrad", {"lr": 0.1, "eps": 1e-6, "weight_decay": 0.05}),
]


@pytest.mark.torch
@pytest.mark.parametrize("dtype, rtol, atol", [(np.float64, 1e-10, 1e-12), (np.float32, 1e-4, 1e-5)])
@pytest.mark.parametrize("name, settings", TORCH_CASES)
def test_matches_torch_over_many_steps(name, settings, dtype, rtol, atol):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    shapes = [(6, 4), (4,)]
    starts = [rng.normal(size=shape).astype(dtype) for shape in shapes]
    steps = 100
    layer = Params(starts, dtype)
    ours = getattr(nn, name)(layer, **settings)
    tensors = [torch.tensor(start.copy(), requires_grad=True) for start in starts]
    theirs = getattr(torch.optim, name)(tensors, **settings)
    for t in range(steps):
        scale = 10.0 ** rng.uniform(-3, 1)  # gradients of changing sizes
        for delta, tensor in zip(layer.parameters_deltas, tensors):
            delta[...] = rng.normal(size=delta.shape) * scale
            tensor.grad = torch.tensor(delta.copy())
        ours.step()
        theirs.step()
    for p, tensor in zip(layer.parameters, tensors):
        assert p.dtype == dtype
        np.testing.assert_allclose(p, tensor.detach().numpy(), rtol=rtol, atol=atol)


# -- no allocation per step --------------------------------------------------------------------
def traced_peak_during(step, steps=4) -> int:
    """The most memory (bytes, NumPy arrays included) held at once during ``steps`` calls beyond what
    was held before them."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(steps):
            step()
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


ALL_OPTIMIZERS = [
    lambda s: nn.SGD(s, lr=0.1),
    lambda s: nn.SGD(s, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    lambda s: nn.Adam(s, weight_decay=0.01),
    lambda s: nn.AdamW(s),
    lambda s: nn.RMSprop(s, momentum=0.9, weight_decay=0.01, centered=True),
    lambda s: nn.RMSprop(s),
    lambda s: nn.Adagrad(s, weight_decay=0.01),
]
ALL_IDS = ["sgd", "sgd-nesterov-wd", "adam-wd", "adamw", "rmsprop-all", "rmsprop", "adagrad-wd"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("make", ALL_OPTIMIZERS, ids=ALL_IDS)
def test_a_step_allocates_nothing(make, dtype):
    layer = Params([np.ones((200, 100)), np.ones(100)], dtype)  # the weight: 80 or 160 kB
    for delta in layer.parameters_deltas:
        delta[...] = 0.01
    optimizer = make(layer)
    optimizer.step()  # the first step makes the state and the scratch arrays
    weight_bytes = layer.parameters[0].nbytes
    # One temporary the weight's size would show as weight_bytes; Python's own small objects stay
    # far below a tenth of that.
    assert traced_peak_during(optimizer.step) < weight_bytes / 10
    # and the measure sees one: the same optimizer plus a temporary per step
    assert traced_peak_during(lambda: optimizer.step() or layer.parameters[0] * 2.0) >= weight_bytes


# -- flags and dtypes (issue 17) ---------------------------------------------------------------
@pytest.mark.parametrize(
    "make, match",
    [
        (lambda s: nn.SGD(s, lr=0.1, momentum=0.9, nesterov="false"), r"SGD: nesterov must be True or False, got str 'false'"),
        (lambda s: nn.SGD(s, lr=0.1, momentum=0.9, nesterov=1), r"SGD: nesterov must be True or False, got int 1"),
        (lambda s: nn.SGD(s, lr=0.1, momentum=0.9, nesterov=None), r"SGD: nesterov must be True or False, got NoneType"),
        (lambda s: nn.RMSprop(s, centered="no"), r"RMSprop: centered must be True or False, got str 'no'"),
        (lambda s: nn.RMSprop(s, centered=0), r"RMSprop: centered must be True or False, got int 0"),
    ],
)
def test_flags_must_be_real_bools(make, match):
    with pytest.raises(TypeError, match=match):
        make(Param(1.0))


def test_numpy_bools_are_bools():
    optimizer = nn.SGD(Param(1.0), lr=0.1, momentum=0.9, nesterov=np.bool_(True))
    assert optimizer.nesterov is True
    assert nn.RMSprop(Param(1.0), centered=np.bool_(False)).centered is False


OPTIMIZER_CLASSES = [
    (nn.SGD, {"lr": 0.1}), (nn.Adam, {}), (nn.AdamW, {}), (nn.RMSprop, {}), (nn.Adagrad, {}),
]


@pytest.mark.parametrize("cls, kwargs", OPTIMIZER_CLASSES, ids=lambda v: getattr(v, "__name__", ""))
@pytest.mark.parametrize("dtype", [np.float16, np.int64, np.complex128, np.longdouble])
def test_parameters_other_than_float32_or_float64_are_refused(cls, kwargs, dtype):
    if np.dtype(dtype) == np.float64:  # longdouble is float64 on some platforms
        pytest.skip("longdouble is float64 here")
    layer = Params([np.ones(3), np.ones(2)], np.float32)
    layer.parameters[1] = layer.parameters[1].astype(dtype)
    name = cls.__name__
    match = rf"{name}: parameter 1 is {np.dtype(dtype)}, expected float32 or float64"
    with pytest.raises(TypeError, match=match):
        cls(layer, **kwargs)
    # ... and when a parameter is swapped for one after construction
    layer = Params([np.ones(3), np.ones(2)], np.float32)
    optimizer = cls(layer, **kwargs)
    layer.parameters[1] = np.ones(2, dtype)
    with pytest.raises(TypeError, match=match):
        optimizer.step()
    assert not np.any(np.isnan(layer.parameters[0]))


def test_float16_would_break_adam():
    # Why the refusal: Adam's eps is 0 in float16, and the first zero gradient divides 0 by 0.
    assert np.float16(1e-8) == 0
    with pytest.raises(TypeError, match=r"Adam: parameter 0 is float16.*float16 eps rounds to zero"):
        nn.Adam(Param(1.0, np.float16))


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda s: nn.RMSprop(s, lr=0), r"RMSprop: lr must be > 0, got 0"),
        (lambda s: nn.RMSprop(s, alpha=1.0), r"RMSprop: alpha must be >= 0 and < 1, got 1"),
        (lambda s: nn.RMSprop(s, alpha=-0.1), r"RMSprop: alpha must be >= 0 and < 1, got -0.1"),
        (lambda s: nn.RMSprop(s, eps=0), r"RMSprop: eps must be > 0, got 0"),
        (lambda s: nn.RMSprop(s, momentum=1.0), r"RMSprop: momentum must be >= 0 and < 1, got 1"),
        (lambda s: nn.RMSprop(s, weight_decay=-1), r"RMSprop: weight_decay must be >= 0, got -1"),
        (lambda s: nn.Adagrad(s, lr=float("nan")), r"Adagrad: lr must be finite and > 0, got nan"),
        (lambda s: nn.Adagrad(s, eps=-1e-10), r"Adagrad: eps must be > 0, got -1e-10"),
        (lambda s: nn.Adagrad(s, weight_decay=float("inf")), r"Adagrad: weight_decay must be finite and >= 0, got inf"),
        (lambda s: nn.AdamW(s, lr=-1), r"AdamW: lr must be > 0, got -1"),
        (lambda s: nn.AdamW(s, betas=(1.0, 0.9)), r"AdamW: beta1 must be >= 0 and < 1, got 1"),
        (lambda s: nn.AdamW(s, betas=(0.9,)), r"AdamW: betas must be a pair"),
        (lambda s: nn.AdamW(s, weight_decay=-0.01), r"AdamW: weight_decay must be >= 0, got -0.01"),
    ],
)
def test_bad_hyperparameters_of_the_adaptive_optimizers(make, match):
    with pytest.raises(ValueError, match=match):
        make(Param(1.0))
    with pytest.raises(TypeError, match=r"RMSprop: alpha must be a real number, got str"):
        nn.RMSprop(Param(1.0), alpha="0.9")


@pytest.mark.parametrize("make", ALL_OPTIMIZERS, ids=ALL_IDS)
def test_state_dict_round_trip_resumes_bit_identically(make):
    rng = np.random.default_rng(8)
    grads = rng.normal(size=(6, 4, 3))
    a = Params([np.ones((4, 3))], np.float32)
    opt_a = make(a)
    for g in grads[:3]:
        a.parameters_deltas[0][...] = g
        opt_a.step()
    b = Params([a.parameters[0]], np.float32)
    opt_b = make(b)
    opt_b.load_state_dict(opt_a.state_dict())
    for g in grads[3:]:
        for layer, opt in ((a, opt_a), (b, opt_b)):
            layer.parameters_deltas[0][...] = g
            opt.step()
    np.testing.assert_array_equal(a.parameters[0], b.parameters[0])
    assert opt_b.steps == opt_a.steps == 6
