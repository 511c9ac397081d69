"""SGD and Adam: steps against hand-computed values, state round trip, bad hyperparameters."""

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


@pytest.mark.parametrize(
    "make",
    [
        lambda src: nn.SGD(src, lr=0.05, momentum=0.9, weight_decay=1e-3),
        lambda src: nn.SGD(src, lr=0.05, momentum=0.9, nesterov=True),
        lambda src: nn.Adam(src, lr=0.01, weight_decay=1e-3),
    ],
)
@pytest.mark.torch
def test_matches_torch(make):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    start = rng.normal(size=(3, 2))
    grads = rng.normal(size=(4, 3, 2))
    layer = Param(0.0)
    layer.parameters = [start.copy()]
    layer.parameters_deltas = [np.zeros((3, 2))]
    ours = make(layer)
    p = torch.tensor(start.copy(), requires_grad=True)
    theirs_cls = torch.optim.SGD if isinstance(ours, nn.SGD) else torch.optim.Adam
    kwargs = {"lr": ours.lr, "weight_decay": ours.weight_decay}
    if isinstance(ours, nn.SGD):
        kwargs.update(momentum=ours.momentum, nesterov=ours.nesterov)
    theirs = theirs_cls([p], **kwargs)
    for g in grads:
        layer.parameters_deltas[0][...] = g
        ours.step()
        p.grad = torch.tensor(g)
        theirs.step()
    np.testing.assert_allclose(layer.parameters[0], p.detach().numpy(), rtol=1e-10, atol=1e-12)


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
    with pytest.raises(TypeError, match=r"SGD: lr must be a number, got str"):
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
