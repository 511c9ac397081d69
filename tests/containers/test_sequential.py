"""Sequential: chaining, args to every layer, slicing, nesting, errors with context, summary."""

import numpy as np
import pytest

import nnscratch as nn


class Scale:
    """A plain protocol class, no base class: y = a * x with one parameter a."""

    def __init__(self, a):
        self.a = np.array([a])
        self.parameters = [self.a]
        self.parameters_deltas = [np.zeros(1)]

    def forward(self, x, *args):
        self.x = x
        return self.a[0] * x

    def backward(self, delta):
        self.parameters_deltas[0][0] = np.sum(delta * self.x)
        return self.a[0] * delta


def make_net(rng=0):
    return nn.Sequential(
        nn.Linear(4, 6, dtype=np.float64, rng=rng), nn.Tanh(), nn.Linear(6, 3, dtype=np.float64, rng=rng + 1),
        nn.SoftmaxCrossEntropy(), nn.Mean(),
    )


def test_forward_backward_chain_equals_layer_by_layer():
    rng = np.random.default_rng(0)
    x, labels = rng.normal(size=(5, 4)), rng.integers(0, 3, 5)
    net = make_net()
    loss = net.forward(x, labels)

    h = x
    for layer in net.layers[:3]:
        h = layer.forward(h)
    per_sample = net.layers[3].forward(h, labels)
    assert loss == pytest.approx(per_sample.mean(), rel=1e-12)

    d_x = net.backward()
    delta = np.full(5, 1 / 5)
    for layer in reversed(net.layers[:4]):
        delta = layer.backward(delta)
    np.testing.assert_allclose(d_x, delta, rtol=1e-12)


def test_parameters_are_flattened_and_shared():
    net = make_net()
    params = net.parameters
    assert len(params) == 4 and len(net.parameters_deltas) == 4
    assert params[0] is net[0].weight and params[3] is net[2].bias


def test_indexing_and_slicing_share_layers():
    net = make_net()
    assert net[0] is net.layers[0]
    model = net[:-2]
    assert isinstance(model, nn.Sequential) and len(model) == 3
    assert all(a is b for a, b in zip(model.layers, net.layers[:3]))
    x = np.ones((2, 4))
    assert model.forward(x).shape == (2, 3)


def test_nested_sequential_and_plain_class():
    inner = nn.Sequential(Scale(2.0), Scale(3.0))
    outer = nn.Sequential(inner, Scale(0.5))
    x = np.array([1.0, -2.0])
    np.testing.assert_allclose(outer.forward(x), 3.0 * x)
    np.testing.assert_allclose(outer.backward(np.ones(2)), [3.0, 3.0])
    # d(sum(a1 a2 a3 x))/d a1 = a2 a3 sum(x)
    np.testing.assert_allclose([d[0] for d in outer.parameters_deltas], [1.5 * -1, 1.0 * -1, 6.0 * -1])
    opt = nn.SGD(outer, lr=0.1)
    opt.step()
    assert inner[0].a[0] == pytest.approx(2.0 + 0.15)


def test_sanity_check_whole_network_with_loss():
    rng = np.random.default_rng(1)
    net = make_net()
    report = nn.sanity_check(net, rng.normal(size=(5, 4)), args=(rng.integers(0, 3, 5),))
    assert report.passed
    assert [row.tensor for row in report] == ["input"] + [f"parameter {i}" for i in range(len(net.parameters))]


def test_errors_name_the_layer_index():
    net = make_net()
    with pytest.raises(ValueError, match=r"in layer 0 \(Linear\) of Sequential: Linear: expected 4 input features"):
        net.forward(np.zeros((2, 5)), np.array([0, 1]))
    with pytest.raises(ValueError, match=r"in layer 3 \(SoftmaxCrossEntropy\) of Sequential: .*labels must be in \[0, 3\)"):
        net.forward(np.zeros((2, 4)), np.array([0, 7]))
    outer = nn.Sequential(nn.Flatten(), net[:3])
    with pytest.raises(ValueError, match=r"in layer 1 \(Sequential\) of Sequential: in layer 0 \(Linear\) of Sequential"):
        outer.forward(np.zeros((2, 5)))


def test_not_a_layer_is_rejected():
    with pytest.raises(TypeError, match=r"Sequential: layer 1 \(int\) does not follow the layer protocol.*missing forward"):
        nn.Sequential(nn.ReLU(), 3)


def test_repr_and_summary():
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 5), nn.ReLU(), nn.Linear(5, 2), nn.SoftmaxCrossEntropy(), nn.Mean())
    text = repr(net)
    assert text.startswith("Sequential(\n  (0): Flatten()\n  (1): Linear(in_features=12, out_features=5")
    summary = net.summary((3, 4))
    lines = summary.splitlines()
    assert "(N, 12)" in lines[2] and "0" in lines[2]
    assert "(N, 5)" in lines[3] and lines[3].rstrip().endswith("65")
    assert "(N,)" in lines[6] and "()" in lines[7]
    assert lines[-1] == f"Total parameters: {12 * 5 + 5 + 5 * 2 + 2:,}"


def test_summary_runs_a_plain_class_to_find_its_output_shape():
    net = nn.Sequential(nn.Linear(3, 4, dtype=np.float64), Scale(2.0))
    lines = net.summary((3,)).splitlines()
    assert "(N, 4)" in lines[3] and lines[3].rstrip().endswith("1")
    assert net.output_shape((5, 3)) == (5, 4)


# -- modes and buffers -------------------------------------------------------------------------
def test_train_and_eval_reach_every_nested_layer_and_leave_plain_layers_alone():
    plain = Scale(2.0)
    inner = nn.Sequential(nn.Tanh(), plain)
    net = nn.Sequential(nn.Linear(2, 2, rng=0), inner, nn.ReLU())
    assert net.training is True
    assert net.eval() is net
    assert [layer.training for layer in (net, net[0], inner, inner[0], net[2])] == [False] * 5
    assert not hasattr(plain, "training") and not hasattr(plain, "train")
    assert net.train() is net
    assert [layer.training for layer in (net, net[0], inner, inner[0], net[2])] == [True] * 5
    # the plain layer keeps working in either mode
    x = np.ones((3, 2))
    np.testing.assert_array_equal(nn.Sequential(plain).eval().forward(x), 2.0 * x)


def test_a_slice_keeps_the_mode():
    net = nn.Sequential(nn.Linear(2, 2), nn.ReLU()).eval()
    assert net[:1].training is False and net[:1][0] is net[0]


def test_buffers_are_the_layers_buffers_in_order():
    class Counting(nn.Layer):
        def __init__(self, *shapes):
            super().__init__()
            self.buffers = [np.zeros(s) for s in shapes]

    a, b = Counting(2, 3), Counting(4)
    net = nn.Sequential(a, nn.Sequential(Scale(1.0), b), nn.ReLU())
    assert len(net.buffers) == 3
    assert all(x is y for x, y in zip(net.buffers, a.buffers + b.buffers))
    assert nn.Sequential(Scale(1.0)).buffers == []


class Spy:
    """A parameterless plain layer recording whether its backward ran."""

    def __init__(self):
        self.parameters, self.parameters_deltas, self.backward_calls = [], [], 0

    def forward(self, x, *args):
        return x

    def backward(self, delta):
        self.backward_calls += 1
        return delta


def test_skipping_the_data_gradient_leaves_every_parameter_delta_unchanged():
    rng = np.random.default_rng(0)
    x, labels = rng.normal(size=(6, 5)), rng.integers(0, 3, 6)

    def make():
        inner = nn.Sequential(nn.Linear(5, 4, dtype=np.float64, rng=1), nn.ReLU())
        spy = Spy()
        net = nn.Sequential(spy, inner, nn.Linear(4, 3, dtype=np.float64, rng=2), nn.SoftmaxCrossEntropy(), nn.Mean())
        return net, spy

    full, _ = make()
    full.forward(x, labels)
    d_x = full.backward()
    assert d_x.shape == x.shape

    fast, spy = make()
    fast.forward(x, labels)
    assert fast.backward(1.0, input_delta=False) is None
    assert spy.backward_calls == 0  # nothing in front of the first layer with parameters runs
    for a, b in zip(full.parameters_deltas, fast.parameters_deltas):
        np.testing.assert_array_equal(a, b)
    assert fast[1][0].needs_input_delta is True  # switched off for that call only

    # ... so the next plain backward, and a gradient check, get dL/dx again.
    np.testing.assert_array_equal(fast.backward(), d_x)
    assert spy.backward_calls == 1
