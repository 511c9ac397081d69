"""The layers a sequence model stacks act on the last axis of (N, T, D), as PyTorch's do: each
activation, Softmax, Dropout and LayerNorm on a sequence equals a loop over its time steps of the
same layer on (N, D), and PyTorch on the whole sequence; and each passes the gradient check there."""

import numpy as np
import pytest
from helpers.naive import elu, gelu_tanh, leaky_relu, naive_dropout_backward, naive_elementwise, naive_layernorm_backward, \
    naive_layernorm_forward, silu, softplus

import nnscratch as nn

from helpers.dtypes import each_dtype

SHAPE = (3, 5, 4)  # (N, T, D)

# (layer, its PyTorch twin); every layer here acts on the last axis of any input
LAYERS = {
    "Sigmoid": (nn.Sigmoid, lambda F, t: F.sigmoid(t)),
    "Tanh": (nn.Tanh, lambda F, t: F.tanh(t)),
    "ReLU": (nn.ReLU, lambda F, t: F.relu(t)),
    "LeakyReLU": (lambda: nn.LeakyReLU(0.2), lambda F, t: F.leaky_relu(t, 0.2)),
    "ELU": (lambda: nn.ELU(0.7), lambda F, t: F.elu(t, 0.7)),
    "GELU": (nn.GELU, lambda F, t: F.gelu(t, approximate="tanh")),
    "SiLU": (nn.SiLU, lambda F, t: F.silu(t)),
    "Softplus": (lambda: nn.Softplus(2.0, 3.0), lambda F, t: F.softplus(t, beta=2.0, threshold=3.0)),
    "Softmax": (nn.Softmax, lambda F, t: F.softmax(t, dim=-1)),
    "LayerNorm": (lambda: seeded_layer_norm(SHAPE[-1]), None),  # PyTorch's: test_layer_norm_matches_pytorch
}

# element-by-element twins of the element-wise layers (complex step for the slope)
SCALAR_TWINS = {
    "LeakyReLU": (leaky_relu, {"negative_slope": 0.2}), "ELU": (elu, {"alpha": 0.7}), "GELU": (gelu_tanh, {}),
    "SiLU": (silu, {}), "Softplus": (softplus, {"beta": 2.0, "threshold": 3.0}),
}


def seeded_layer_norm(d, seed=0, dtype=np.float64):
    """A LayerNorm over the last axis with weight and bias not 1 and 0 (which would hide a swapped term)."""
    layer = nn.LayerNorm(d, dtype=dtype)
    rng = np.random.default_rng(seed)
    layer.weight[...] = rng.uniform(0.5, 1.5, d)
    layer.bias[...] = rng.uniform(-1, 1, d)
    return layer


def sequence(seed=0, shape=SHAPE, dtype=np.float64):
    """Seeded (N, T, D) values spread over [-3, 3], none within 0.05 of ReLU's kink."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.05, 3.0, shape) * rng.choice([-1.0, 1.0], shape)
    return x.astype(dtype)


def step_by_step(make, x, delta):
    """The loop twin: a fresh layer on each time step's (N, D) slice, forward then backward."""
    y, dx = np.zeros_like(x), np.zeros_like(x)
    weight_grads = []
    for t in range(x.shape[1]):
        layer = make()
        y[:, t] = layer.forward(np.ascontiguousarray(x[:, t]))
        dx[:, t] = layer.backward(np.ascontiguousarray(delta[:, t]))
        weight_grads.append([d.copy() for d in layer.parameters_deltas])
    return y, dx, [sum(grads) for grads in zip(*weight_grads)]


@pytest.mark.parametrize("name", LAYERS)
def test_a_sequence_equals_a_loop_over_its_time_steps(name):
    make = LAYERS[name][0]
    x = sequence(1)
    delta = np.random.default_rng(2).normal(size=x.shape)
    layer = make()
    y = layer.forward(x)
    dx = layer.backward(delta)
    expected_y, expected_dx, expected_deltas = step_by_step(make, x, delta)
    assert y.shape == dx.shape == SHAPE
    np.testing.assert_allclose(y, expected_y, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(dx, expected_dx, rtol=1e-12, atol=1e-15)
    for got, expected in zip(layer.parameters_deltas, expected_deltas, strict=True):  # LayerNorm: summed over steps
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", SCALAR_TWINS)
def test_element_wise_layers_on_a_sequence_equal_their_scalar_twins(name):
    function, kwargs = SCALAR_TWINS[name]
    x = sequence(3)
    delta = np.random.default_rng(4).normal(size=x.shape)
    layer = LAYERS[name][0]()
    expected_y, slope = naive_elementwise(function, x, **kwargs)
    np.testing.assert_allclose(layer.forward(x), expected_y, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(layer.backward(delta), delta * slope, rtol=1e-10, atol=1e-14)


def test_layer_norm_on_a_sequence_equals_its_loop_twin():
    layer = seeded_layer_norm(SHAPE[-1], seed=5)
    x, delta = sequence(5), np.random.default_rng(6).normal(size=SHAPE)
    np.testing.assert_allclose(layer.forward(x), naive_layernorm_forward(x, layer.weight, layer.bias, 1), rtol=1e-12)
    dx, dweight, dbias = naive_layernorm_backward(x, layer.weight, delta, 1)
    np.testing.assert_allclose(layer.backward(delta), dx, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(layer.parameters_deltas[0], dweight, rtol=1e-12)
    np.testing.assert_allclose(layer.parameters_deltas[1], dbias, rtol=1e-12)


def test_dropout_on_a_sequence_uses_one_draw_per_element_and_its_backward_the_same_mask():
    x, delta = sequence(7), np.random.default_rng(8).normal(size=SHAPE)
    layer = nn.Dropout(0.4, rng=9)
    y = layer.forward(x)
    uniform = np.random.default_rng(9).random(SHAPE)
    np.testing.assert_array_equal(y == 0, uniform < 0.4)
    np.testing.assert_allclose(y, np.where(uniform >= 0.4, x / 0.6, 0.0), rtol=1e-15)
    np.testing.assert_allclose(layer.backward(delta), naive_dropout_backward(delta, uniform, 0.4), rtol=1e-15)


@pytest.mark.parametrize("name", [*LAYERS, "Dropout"])
def test_gradient_check_on_a_sequence(name):
    layer = nn.Dropout(0.3, rng=1) if name == "Dropout" else LAYERS[name][0]()
    report = nn.sanity_check(layer, sequence(10, (2, 3, 4)))
    assert report.passed and report[0].shape == (2, 3, 4) and report[0].coords == 24


@pytest.mark.torch
@pytest.mark.parametrize("name", [name for name, (_, reference) in LAYERS.items() if reference is not None])
@each_dtype(float64=1e-12, float32=2e-6)
def test_a_sequence_matches_pytorch(torch, name, dtype, tolerance):
    make, reference = LAYERS[name]
    for seed, shape in enumerate([(2, 7, 5), (4, 1, 3), (1, 9, 16)]):
        x = sequence(seed, shape, dtype)
        delta = np.random.default_rng(seed + 10).normal(size=shape).astype(dtype)
        layer = make()
        y, dx = layer.forward(x), layer.backward(delta)
        tx = torch.tensor(x, requires_grad=True)
        ty = reference(torch.nn.functional, tx)
        ty.backward(torch.tensor(delta))
        assert y.dtype == dx.dtype == dtype
        np.testing.assert_allclose(y, ty.detach().numpy(), rtol=tolerance, atol=tolerance)
        np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=tolerance, atol=tolerance)


@pytest.mark.torch
@each_dtype(float64=1e-10, float32=2e-5)
def test_layer_norm_on_a_sequence_matches_pytorch(torch, dtype, tolerance):
    for seed, shape in enumerate([(2, 7, 5), (3, 1, 8), (1, 64, 32)]):
        layer = seeded_layer_norm(shape[-1], seed, dtype)
        x = sequence(seed, shape, dtype)
        delta = np.random.default_rng(seed + 20).normal(size=shape).astype(dtype)
        y, dx = layer.forward(x), layer.backward(delta)
        tx = torch.tensor(x, requires_grad=True)
        tw, tb = (torch.tensor(p.copy(), requires_grad=True) for p in (layer.weight, layer.bias))
        ty = torch.nn.functional.layer_norm(tx, (shape[-1],), tw, tb, eps=1e-5)
        ty.backward(torch.tensor(delta))
        for ours, theirs in ((y, ty.detach()), (dx, tx.grad), *zip(layer.parameters_deltas, (tw.grad, tb.grad))):
            assert ours.dtype == dtype
            np.testing.assert_allclose(ours, theirs.numpy(), rtol=tolerance, atol=tolerance)
