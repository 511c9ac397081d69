"""BatchNorm1D, BatchNorm2D and LayerNorm: the loop-based twins in float64 (forward, backward, running
statistics), gradient checks in both modes, layouts and dtypes, bad input, save/load of the running
statistics, and PyTorch parity."""

import copy

import numpy as np
import pytest
from helpers.naive import (
    naive_batchnorm_backward,
    naive_batchnorm_forward,
    naive_layernorm_backward,
    naive_layernorm_forward,
)

import nnscratch as nn
from nnscratch.check import sanity_check
from nnscratch.kernels.recycle import memory_order


def normal(shape, seed, scale=1.0, offset=0.0):
    return offset + scale * np.random.default_rng(seed).standard_normal(shape)


def channel_major(x):
    """The same values as x (N, C, H, W), laid out as Conv2D lays out its output: (C, N, H, W) memory."""
    return np.ascontiguousarray(x.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)


def with_parameters(layer, seed):
    """Give weight and bias values no fresh layer has (so a swapped or ignored one shows)."""
    if layer.parameters:
        layer.weight[...] = normal(layer.weight.shape, seed, 0.5, 1.0)
        layer.bias[...] = normal(layer.bias.shape, seed + 1)
    return layer


BATCH_NORMS = [  # (make, input shape)
    (lambda **kw: nn.BatchNorm1D(4, dtype=np.float64, **kw), (6, 4)),
    (lambda **kw: nn.BatchNorm1D(3, dtype=np.float64, **kw), (5, 3, 4)),
    (lambda **kw: nn.BatchNorm2D(3, dtype=np.float64, **kw), (4, 3, 2, 5)),
]


# -- against the loop-based twins --------------------------------------------------------------
@pytest.mark.parametrize("make, shape", BATCH_NORMS)
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_training_steps_equal_the_twin(make, shape, affine):
    layer = with_parameters(make(momentum=0.3, affine=affine), 1)
    weight = layer.weight.copy() if affine else np.ones(shape[1])
    bias = layer.bias.copy() if affine else np.zeros(shape[1])
    running_mean, running_var = np.zeros(shape[1]), np.ones(shape[1])
    for step in range(3):
        x, delta = normal(shape, 10 + step, 2.0, 1.5), normal(shape, 20 + step)
        if len(shape) == 4 and step == 1:
            x = channel_major(x)
        y, running_mean, running_var = naive_batchnorm_forward(
            x, weight, bias, running_mean, running_var, momentum=0.3)
        dx, dweight, dbias = naive_batchnorm_backward(x, weight, delta)
        np.testing.assert_allclose(layer.forward(x), y, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(layer.backward(delta), dx, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(layer.running_mean, running_mean, rtol=1e-12)
        np.testing.assert_allclose(layer.running_var, running_var, rtol=1e-12)
        if affine:
            np.testing.assert_allclose(layer.parameters_deltas[0], dweight, rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(layer.parameters_deltas[1], dbias, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("make, shape", BATCH_NORMS)
def test_batch_norm_eval_mode_uses_the_running_statistics_as_the_twin_does(make, shape):
    layer = with_parameters(make(), 2)
    layer.running_mean[...] = normal(shape[1], 3)
    layer.running_var[...] = normal(shape[1], 4) ** 2 + 0.5
    stats = layer.running_mean.copy(), layer.running_var.copy()
    x, delta = normal(shape, 5, 2.0), normal(shape, 6)
    y, _, _ = naive_batchnorm_forward(x, layer.weight, layer.bias, *stats, training=False)
    dx, dweight, dbias = naive_batchnorm_backward(x, layer.weight, delta, *stats, training=False)
    layer.eval()
    np.testing.assert_allclose(layer.forward(x), y, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.backward(delta), dx, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.parameters_deltas[0], dweight, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.parameters_deltas[1], dbias, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(layer.running_mean, stats[0])  # eval mode never updates them
    np.testing.assert_array_equal(layer.running_var, stats[1])


@pytest.mark.parametrize("normalized_shape, shape", [(5, (4, 5)), ((3, 4), (2, 3, 3, 4)), ((2, 3, 4), (3, 2, 3, 4))])
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_equals_the_twin(normalized_shape, shape, affine):
    layer = with_parameters(nn.LayerNorm(normalized_shape, elementwise_affine=affine, dtype=np.float64), 7)
    trailing = shape[len(shape) - (1 if isinstance(normalized_shape, int) else len(normalized_shape)):]
    weight = layer.weight if affine else np.ones(trailing)
    bias = layer.bias if affine else np.zeros(trailing)
    x, delta = normal(shape, 8, 3.0, -2.0), normal(shape, 9)
    ndim = len(trailing)
    dx, dweight, dbias = naive_layernorm_backward(x, weight, delta, ndim)
    for mode in (True, False):  # no running statistics: the same function in both modes
        layer.train(mode)
        np.testing.assert_allclose(layer.forward(x), naive_layernorm_forward(x, weight, bias, ndim), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(layer.backward(delta), dx, rtol=1e-10, atol=1e-12)
        if affine:
            np.testing.assert_allclose(layer.parameters_deltas[0], dweight, rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(layer.parameters_deltas[1], dbias, rtol=1e-12, atol=1e-12)


# -- gradient checks ---------------------------------------------------------------------------
@pytest.mark.parametrize("layer, shape", [
    (nn.BatchNorm1D(4), (5, 4)),
    (nn.BatchNorm1D(3), (4, 3, 2)),
    (nn.BatchNorm2D(3), (2, 3, 3, 3)),
    (nn.BatchNorm2D(2), (1, 2, 2, 3)),  # one image: the statistics over H and W alone
])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_gradient_check_in_both_modes(layer, shape, affine, training):
    layer = type(layer)(layer.num_features, affine=affine)  # float32, as trained; the check runs in float64
    with_parameters(layer, 11)
    layer.running_mean[...] = normal(layer.num_features, 12, 0.3)
    layer.running_var[...] = 1.0 + normal(layer.num_features, 13, 0.1) ** 2
    stats = [b.copy() for b in layer.buffers]
    layer.train(training)
    report = sanity_check(layer, normal(shape, 14, 1.5, 0.5), max_coords=None)
    assert report.passed and len(report) == (3 if affine else 1)
    for before, after in zip(stats, layer.buffers):  # the check ran on a copy
        np.testing.assert_array_equal(after, before)
        assert after.dtype == np.float32


@pytest.mark.parametrize("normalized_shape, shape", [(6, (3, 6)), ((3, 4), (2, 3, 4)), ((4, 3), (2, 2, 4, 3))])
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_gradient_check(normalized_shape, shape, affine):
    layer = with_parameters(nn.LayerNorm(normalized_shape, elementwise_affine=affine), 15)
    assert sanity_check(layer, normal(shape, 16, 2.0), max_coords=None).passed


class FrozenStatisticsBatchNorm(nn.BatchNorm1D):
    """The wrong training gradient: dx as if the batch statistics were constants."""

    def backward(self, delta):
        super().backward(delta)
        _, _, inv_std, _, _ = self._cache
        return delta * (inv_std[0, :, 0] * self.weight)


def test_the_frozen_statistics_gradient_fails_the_check_in_training():
    with pytest.raises(nn.GradientCheckError, match="FrozenStatisticsBatchNorm: gradient is wrong for input"):
        sanity_check(FrozenStatisticsBatchNorm(3, dtype=np.float64), normal((5, 3), 17))


def test_a_network_with_every_normalization_checks_with_its_loss():
    net = nn.Sequential(
        nn.Conv2D(2, 3, 3, padding=1, rng=0), nn.BatchNorm2D(3), nn.Tanh(), nn.Flatten(),
        nn.Linear(48, 6, rng=1), nn.BatchNorm1D(6), nn.Tanh(), nn.Dropout(0.3, rng=2),
        nn.LayerNorm(6), nn.Linear(6, 3, rng=3), nn.SoftmaxCrossEntropy(), nn.Mean())
    with_parameters(net[1], 1), with_parameters(net[5], 2), with_parameters(net[8], 3)
    x, labels = normal((3, 2, 4, 4), 18), np.array([0, 2, 1])
    assert sanity_check(net, x, (labels,)).passed
    assert sanity_check(net.eval(), x, (labels,)).passed


# -- dtype, layout, statistics -----------------------------------------------------------------
@pytest.mark.parametrize("layout", ["C", "channel-major"])
def test_batch_norm_2d_keeps_dtype_and_layout_and_takes_either_delta_layout(layout):
    x = normal((3, 4, 5, 6), 19, 2.0, 1.0).astype(np.float32)
    x = channel_major(x) if layout == "channel-major" else x
    delta = normal(x.shape, 20).astype(np.float32)
    reference = nn.BatchNorm2D(4, dtype=np.float64)
    expected_y, expected_dx = reference.forward(x.astype(np.float64)), reference.backward(delta.astype(np.float64))
    layer = nn.BatchNorm2D(4)
    y = layer.forward(x)
    assert y.dtype == np.float32 and memory_order(y) == memory_order(x)
    np.testing.assert_allclose(y, expected_y, atol=2e-6)
    for d in (delta, channel_major(delta), delta[:, :, ::-1, :]):  # C order, channel-major, strided
        dx = layer.backward(d)
        assert dx.dtype == np.float32 and memory_order(dx) == memory_order(x)
        np.testing.assert_allclose(dx, expected_dx if d is delta else reference.backward(np.asarray(d, np.float64)),
                                   atol=5e-6)


def test_batch_norm_output_has_zero_mean_unit_variance_and_float32_input_is_kept():
    layer = nn.BatchNorm1D(5)
    x = normal((200, 5), 21, 10.0, 100.0).astype(np.float32)
    y = layer.forward(x)
    assert y.dtype == np.float32 and layer.running_mean.dtype == np.float32
    np.testing.assert_allclose(y.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(y.var(axis=0), 1.0, rtol=1e-4)
    assert nn.BatchNorm1D(2).forward(np.arange(6).reshape(3, 2)).dtype == np.float32  # ints computed in float32


def test_starting_values_parameters_and_buffers():
    layer = nn.BatchNorm2D(3)
    assert layer.parameters == [layer.weight, layer.bias] and layer.buffers == [layer.running_mean, layer.running_var]
    assert layer.parameters[0] is layer.weight and layer.buffers[1] is layer.running_var
    np.testing.assert_array_equal(layer.weight, 1.0), np.testing.assert_array_equal(layer.bias, 0.0)
    np.testing.assert_array_equal(layer.running_mean, 0.0), np.testing.assert_array_equal(layer.running_var, 1.0)
    assert all(a.dtype == np.float32 for a in layer.parameters + layer.buffers)
    bare = nn.BatchNorm1D(3, affine=False, dtype=np.float64)
    assert bare.parameters == [] and bare.weight is None and bare.running_mean.dtype == np.float64
    ln = nn.LayerNorm((2, 3))
    assert [p.shape for p in ln.parameters] == [(2, 3), (2, 3)] and ln.buffers == []
    assert repr(nn.BatchNorm1D(4)) == "BatchNorm1D(num_features=4, eps=1e-05, momentum=0.1, affine=True, dtype='float32')"
    assert nn.LayerNorm([4, 5]).config()["normalized_shape"] == [4, 5] and nn.LayerNorm(4).config()["normalized_shape"] == 4


def test_momentum_zero_and_one():
    x = normal((4, 2), 22, 3.0, 2.0)
    frozen, latest = nn.BatchNorm1D(2, momentum=0.0, dtype=np.float64), nn.BatchNorm1D(2, momentum=1, dtype=np.float64)
    frozen.forward(x), latest.forward(x)
    np.testing.assert_array_equal(frozen.running_mean, 0.0), np.testing.assert_array_equal(frozen.running_var, 1.0)
    np.testing.assert_allclose(latest.running_mean, x.mean(axis=0)), np.testing.assert_allclose(latest.running_var, x.var(axis=0, ddof=1))


# -- bad input ---------------------------------------------------------------------------------
@pytest.mark.parametrize("layer, x, match", [
    (nn.BatchNorm1D(4), np.ones((3, 5)), r"BatchNorm1D: expected input of shape \(N, 4\) or \(N, 4, L\) \(4 features\), got shape \(3, 5\)"),
    (nn.BatchNorm1D(4), np.ones((3, 4, 2, 2)), r"BatchNorm1D: expected input of shape \(N, 4\).*got shape \(3, 4, 2, 2\)"),
    (nn.BatchNorm2D(3), np.ones((2, 4, 5, 5)), r"BatchNorm2D: expected input of shape \(N, 3, H, W\) \(3 channels\), got shape \(2, 4, 5, 5\)"),
    (nn.BatchNorm2D(3), np.ones((2, 3, 5)), r"BatchNorm2D: expected input of shape \(N, 3, H, W\).*got shape \(2, 3, 5\)"),
    (nn.LayerNorm((3, 4)), np.ones((2, 4, 3)), r"LayerNorm: expected input whose trailing axes are \(3, 4\) \(shape \(\*, 3, 4\)\), got shape \(2, 4, 3\)"),
    (nn.LayerNorm(5), np.ones(()), r"LayerNorm: expected input whose trailing axes are \(5,\).*got shape \(\)"),
])
def test_wrong_feature_or_channel_count(layer, x, match):
    with pytest.raises(ValueError, match=match):
        layer.forward(x)


@pytest.mark.parametrize("layer, x, detail", [
    (nn.BatchNorm1D(3), np.ones((1, 3)), r"\(N, or N\*L\).*\(input of shape \(1, 3\)\)"),
    (nn.BatchNorm1D(3), np.ones((1, 3, 1)), r"\(N, or N\*L\).*\(input of shape \(1, 3, 1\)\)"),
    (nn.BatchNorm2D(2), np.ones((1, 2, 1, 1)), r"\(N\*H\*W\).*\(input of shape \(1, 2, 1, 1\)\)"),
])
def test_a_batch_of_one_in_training_is_refused_because_its_variance_is_undefined(layer, x, detail):
    name = type(layer).__name__
    with pytest.raises(ValueError, match=rf"{name}: in training mode each feature needs at least 2 values {detail}: "
                                         "the variance of a single value is undefined; use a larger batch, or eval mode"):
        layer.forward(x)
    np.testing.assert_array_equal(layer.running_var, 1.0)  # nothing was updated
    assert layer.eval().forward(x).shape == x.shape  # eval mode uses the running statistics: fine
    assert nn.BatchNorm2D(2).forward(np.ones((1, 2, 2, 1))).shape == (1, 2, 2, 1)  # one image, two pixels: fine


@pytest.mark.parametrize("make, error, match", [
    (lambda: nn.BatchNorm1D(0), ValueError, "BatchNorm1D: num_features must be a positive int, got 0"),
    (lambda: nn.BatchNorm2D(2.0), TypeError, "BatchNorm2D: num_features must be an int, got float 2.0"),
    (lambda: nn.BatchNorm1D(2, eps=0), ValueError, "BatchNorm1D: eps must be > 0, got 0"),
    (lambda: nn.BatchNorm1D(2, momentum=1.5), ValueError, r"BatchNorm1D: momentum must be >= 0 and <= 1, got 1.5"),
    (lambda: nn.BatchNorm1D(2, momentum=-0.1), ValueError, "BatchNorm1D: momentum must be >= 0 and <= 1, got -0.1"),
    (lambda: nn.BatchNorm1D(2, momentum=None), TypeError, "BatchNorm1D: momentum must be a real number, got NoneType"),
    (lambda: nn.BatchNorm2D(2, affine="yes"), TypeError, "BatchNorm2D: affine must be True or False, got str 'yes'"),
    (lambda: nn.BatchNorm2D(2, dtype=np.int32), TypeError, "BatchNorm2D: dtype must be float32 or float64, got int32"),
    (lambda: nn.LayerNorm(()), ValueError, r"LayerNorm: normalized_shape must name at least one axis, got \(\)"),
    (lambda: nn.LayerNorm((3, 0)), ValueError, "LayerNorm: normalized_shape must be a positive int, got 0"),
    (lambda: nn.LayerNorm(2, eps=-1.0), ValueError, "LayerNorm: eps must be > 0, got -1.0"),
    (lambda: nn.LayerNorm(2, elementwise_affine=1), TypeError, "LayerNorm: elementwise_affine must be True or False, got int 1"),
])
def test_bad_hyperparameters(make, error, match):
    with pytest.raises(error, match=match):
        make()


@pytest.mark.parametrize("layer, shape", [(nn.BatchNorm1D(2), (3, 2)), (nn.BatchNorm2D(2), (2, 2, 2, 2)), (nn.LayerNorm(2), (3, 2))])
def test_bad_input_delta_and_order_of_calls(layer, shape):
    name = type(layer).__name__
    with pytest.raises(TypeError, match=f"{name}: expected a numpy array as input, got list"):
        layer.forward([[1.0, 2.0]])
    with pytest.raises(RuntimeError, match=f"{name}.backward called before forward"):
        layer.backward(np.ones(shape))
    layer.forward(normal(shape, 23))
    with pytest.raises(ValueError, match=rf"{name}.backward: expected delta of shape {re_shape(shape)}"):
        layer.backward(np.ones((7, *shape[1:])))
    layer.weight = layer.weight.copy()
    with pytest.raises(ValueError, match=f"{name}: weight is not the array in parameters"):
        layer.forward(normal(shape, 23))
    if name.startswith("BatchNorm"):
        layer = type(layer)(layer.num_features)
        layer.running_var = np.ones(layer.num_features, np.float32)
        with pytest.raises(ValueError, match=rf"{name}: running_var is not the array in buffers .*layer.running_var\[...\] = new_values"):
            layer.forward(normal(shape, 23))


def re_shape(shape):
    return str(tuple(shape)).replace("(", r"\(").replace(")", r"\)")


# -- buffers: save/load, optimizers, fit ---------------------------------------------------------
def bn_net():
    return nn.Sequential(nn.Conv2D(1, 2, 3, rng=0), nn.BatchNorm2D(2), nn.ReLU(), nn.Flatten(),
                         nn.Linear(8, 4, rng=1), nn.BatchNorm1D(4, affine=False), nn.LayerNorm(4), nn.Linear(4, 3, rng=2))


def test_save_and_load_round_trip_the_running_statistics_exactly(tmp_path):
    net = bn_net()
    loss = nn.Sequential(nn.SoftmaxCrossEntropy(), nn.Mean())
    x, y = normal((16, 1, 4, 4), 24).astype(np.float32), np.arange(16) % 3
    nn.fit(net, loss, nn.Adam(net, lr=0.01), x, y, epochs=2, batch_size=4, progress=False)
    assert not np.allclose(net[1].running_var, 1.0)
    loaded = nn.load(nn.save(net, tmp_path / "bn.npz"))
    assert len(loaded.buffers) == 4
    for ours, theirs in zip(net.buffers, loaded.buffers):
        assert theirs.dtype == ours.dtype
        np.testing.assert_array_equal(theirs, ours)
    assert loaded[1].buffers[0] is loaded[1].running_mean  # copied in place
    np.testing.assert_array_equal(nn.predict(loaded, x), nn.predict(net, x))


def test_optimizers_leave_the_running_statistics_alone_and_evaluate_uses_them():
    net = bn_net()
    x = normal((8, 1, 4, 4), 25).astype(np.float32)
    net.forward(x)
    net.backward(np.ones((8, 3), np.float32))
    stats = [b.copy() for b in net.buffers]
    for optimizer in (nn.SGD(net, lr=0.1, momentum=0.9, weight_decay=0.1), nn.Adam(net, lr=0.1, weight_decay=0.1)):
        optimizer.step()
    for before, after in zip(stats, net.buffers):
        np.testing.assert_array_equal(after, before)
    # evaluate and predict run in eval mode: the running statistics, not the batch's, and no update
    expected = net.eval().forward(x).copy()
    net.train()
    np.testing.assert_array_equal(nn.predict(net, x, batch_size=3), expected)
    for before, after in zip(stats, net.buffers):
        np.testing.assert_array_equal(after, before)
    assert net.training and net[1].training


# -- PyTorch -----------------------------------------------------------------------------------
@pytest.mark.torch
@pytest.mark.parametrize("ours, shape", [
    (lambda: nn.BatchNorm1D(5, momentum=0.2), (8, 5)),
    (lambda: nn.BatchNorm1D(3), (6, 3, 4)),
    (lambda: nn.BatchNorm2D(4, eps=1e-3), (3, 4, 5, 6)),
    (lambda: nn.BatchNorm2D(4, affine=False), (3, 4, 5, 6)),
])
def test_batch_norm_matches_torch_over_several_training_steps_then_in_eval(ours, shape):
    torch = pytest.importorskip("torch")
    layer = ours()
    cls = {2: torch.nn.BatchNorm1d, 3: torch.nn.BatchNorm1d, 4: torch.nn.BatchNorm2d}[len(shape)]
    theirs = cls(layer.num_features, eps=layer.eps, momentum=layer.momentum, affine=layer.affine)
    if layer.affine:
        with_parameters(layer, 26)
        with torch.no_grad():
            theirs.weight.copy_(torch.from_numpy(layer.weight)), theirs.bias.copy_(torch.from_numpy(layer.bias))
    for step in range(5):
        x, delta = normal(shape, 30 + step, 2.0, 0.5).astype(np.float32), normal(shape, 40 + step).astype(np.float32)
        if len(shape) == 4 and step % 2:
            x = channel_major(x)
        t = torch.tensor(x, requires_grad=True)
        out = theirs(t)
        out.backward(torch.from_numpy(delta))
        np.testing.assert_allclose(layer.forward(x), out.detach().numpy(), atol=2e-5)
        np.testing.assert_allclose(layer.backward(delta), t.grad.numpy(), atol=2e-5)
        if layer.affine:
            np.testing.assert_allclose(layer.parameters_deltas[0], theirs.weight.grad.numpy(), rtol=1e-4, atol=1e-4)
            np.testing.assert_allclose(layer.parameters_deltas[1], theirs.bias.grad.numpy(), rtol=1e-4, atol=1e-4)
            theirs.zero_grad()
    np.testing.assert_allclose(layer.running_mean, theirs.running_mean.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer.running_var, theirs.running_var.numpy(), rtol=1e-5, atol=1e-6)
    layer.eval(), theirs.eval()
    x = normal(shape, 50, 2.0).astype(np.float32)
    t = torch.tensor(x, requires_grad=True)
    out = theirs(t)
    out.backward(torch.ones_like(out))
    np.testing.assert_allclose(layer.forward(x), out.detach().numpy(), atol=2e-5)
    np.testing.assert_allclose(layer.backward(np.ones(shape, np.float32)), t.grad.numpy(), atol=2e-5)


@pytest.mark.torch
@pytest.mark.parametrize("normalized_shape, shape, affine", [(6, (4, 6), True), ((3, 5), (2, 4, 3, 5), True), ((3, 5), (2, 3, 5), False)])
def test_layer_norm_matches_torch(normalized_shape, shape, affine):
    torch = pytest.importorskip("torch")
    layer = nn.LayerNorm(normalized_shape, elementwise_affine=affine)
    theirs = torch.nn.LayerNorm(normalized_shape, elementwise_affine=affine)
    if affine:
        with_parameters(layer, 27)
        with torch.no_grad():
            theirs.weight.copy_(torch.from_numpy(layer.weight)), theirs.bias.copy_(torch.from_numpy(layer.bias))
    x, delta = normal(shape, 28, 3.0, 1.0).astype(np.float32), normal(shape, 29).astype(np.float32)
    t = torch.tensor(x, requires_grad=True)
    out = theirs(t)
    out.backward(torch.from_numpy(delta))
    np.testing.assert_allclose(layer.forward(x), out.detach().numpy(), atol=2e-5)
    np.testing.assert_allclose(layer.backward(delta), t.grad.numpy(), atol=2e-5)
    if affine:
        np.testing.assert_allclose(layer.parameters_deltas[0], theirs.weight.grad.numpy(), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(layer.parameters_deltas[1], theirs.bias.grad.numpy(), rtol=1e-4, atol=1e-4)


# -- memory ------------------------------------------------------------------------------------
@pytest.mark.parametrize("layer, shape", [(nn.BatchNorm1D(3), (4, 3)), (nn.BatchNorm2D(2), (2, 2, 3, 3)), (nn.LayerNorm(3), (4, 3))])
def test_release_memory_drops_what_forward_kept_and_a_copy_still_runs_backward(layer, shape):
    x = normal(shape, 60).astype(np.float32)
    layer.forward(x)
    twin = copy.deepcopy(layer)
    assert getattr(twin, "_store", {}) == {}  # a copy leaves the recycled buffers behind
    np.testing.assert_array_equal(twin.backward(np.ones(shape, np.float32)), layer.backward(np.ones(shape, np.float32)))
    layer.release_memory()
    assert layer._cache is None and getattr(layer, "_store", {}) == {}
    with pytest.raises(RuntimeError, match="backward called before forward"):
        layer.backward(np.ones(shape, np.float32))
    assert layer.forward(x).shape == shape  # and it works again


def test_layernorm_never_overwrites_a_result_a_caller_holds():
    # (12, 64, 128) is large enough for its arrays to be recycled from call to call (a GPT block's)
    rng = np.random.default_rng(0)
    layer = nn.LayerNorm(128)
    layer.weight[...] = rng.uniform(0.5, 1.5, 128)
    xs = [rng.normal(size=(12, 64, 128)).astype(np.float32) for _ in range(3)]
    results = [(layer.forward(x), layer.backward(np.ones_like(x))) for x in xs]
    for x, (y, dx) in zip(xs, results):
        twin = nn.LayerNorm(128)
        twin.weight[...] = layer.weight
        np.testing.assert_array_equal(y, twin.forward(x))
        np.testing.assert_array_equal(dx, twin.backward(np.ones_like(x)))
    assert not np.shares_memory(results[0][0], results[1][0])
