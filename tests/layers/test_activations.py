"""The activations: forward and backward against element-by-element references, hand-computed values,
sanity_check, save/load and PyTorch."""

import math
import warnings

import numpy as np
import pytest

import nnscratch as nn
from helpers.naive import elu, gelu_tanh, leaky_relu, naive_elementwise, silu, softplus


def naive_sigmoid(x):
    return np.vectorize(lambda v: 1 / (1 + math.exp(-v)) if v > -700 else 0.0)(x)


def naive_tanh(x):
    return np.vectorize(math.tanh)(x)


def naive_relu(x):
    return np.vectorize(lambda v: v if v > 0 else 0.0)(x)


# (layer, forward reference, derivative of the function at x given y)
ELEMENTWISE = [
    (nn.Sigmoid, naive_sigmoid, lambda x, y: y * (1 - y)),
    (nn.Tanh, naive_tanh, lambda x, y: 1 - y**2),
    (nn.ReLU, naive_relu, lambda x, y: (x > 0).astype(float)),
]


@pytest.mark.parametrize("cls, reference, derivative", ELEMENTWISE, ids=lambda v: getattr(v, "__name__", ""))
def test_elementwise_forward_backward(cls, reference, derivative):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 4, 5)) * 3
    delta = rng.normal(size=x.shape)
    layer = cls()
    y = layer.forward(x)
    np.testing.assert_allclose(y, reference(x), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(layer.backward(delta), delta * derivative(x, reference(x)), rtol=1e-12, atol=1e-15)
    assert layer.parameters == [] and layer.parameters_deltas == []


ALL = [nn.Sigmoid, nn.Tanh, nn.ReLU, nn.Softmax, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Softplus]


@pytest.mark.parametrize("cls", ALL)
def test_keeps_float32(cls):
    x = np.random.default_rng(0).normal(size=(4, 6)).astype(np.float32)
    layer = cls()
    y = layer.forward(x)
    d_x = layer.backward(np.ones_like(y, dtype=np.float64))
    assert y.dtype == np.float32 and d_x.dtype == np.float32


def test_sigmoid_is_finite_and_saturates_for_huge_inputs():
    y = nn.Sigmoid().forward(np.array([-1e4, -50.0, 0.0, 50.0, 1e4], np.float32))
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y, [0, 0, 0.5, 1, 1], atol=1e-7)


def test_relu_gradient_is_zero_at_the_kink():
    layer = nn.ReLU()
    layer.forward(np.array([-1.0, 0.0, 2.0]))
    np.testing.assert_array_equal(layer.backward(np.ones(3)), [0.0, 0.0, 1.0])


@pytest.mark.parametrize("cls", [nn.Sigmoid, nn.Tanh, nn.ReLU, nn.Softmax])
def test_sanity_check(cls):
    check = pytest.importorskip("nnscratch.check")
    rng = np.random.default_rng(3)
    # Keep ReLU's inputs away from its kink at 0, where the derivative is undefined.
    x = rng.uniform(0.2, 2.0, size=(3, 5)) * rng.choice([-1, 1], size=(3, 5))
    check.sanity_check(cls(), x.astype(np.float32))


@pytest.mark.parametrize("cls", ALL)
def test_bad_input(cls):
    layer = cls()
    with pytest.raises(TypeError, match=rf"{cls.__name__}: expected a numpy array as input, got list"):
        layer.forward([1.0, 2.0])
    layer.forward(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=rf"{cls.__name__}.backward: expected delta of shape \(2, 3\).*got \(3, 2\)"):
        layer.backward(np.zeros((3, 2)))


# -- LeakyReLU, ELU, GELU, SiLU, Softplus -----------------------------------------------------------
# (id, layer, the scalar twin in naive.py with the same settings)
SMOOTH = [
    ("LeakyReLU", lambda: nn.LeakyReLU(), lambda v: leaky_relu(v)),
    ("LeakyReLU 0.2", lambda: nn.LeakyReLU(0.2), lambda v: leaky_relu(v, 0.2)),
    ("LeakyReLU -0.5", lambda: nn.LeakyReLU(negative_slope=-0.5), lambda v: leaky_relu(v, -0.5)),
    ("ELU", lambda: nn.ELU(), lambda v: elu(v)),
    ("ELU 0.3", lambda: nn.ELU(alpha=0.3), lambda v: elu(v, 0.3)),
    ("GELU", lambda: nn.GELU(), gelu_tanh),
    ("SiLU", lambda: nn.SiLU(), silu),
    ("Softplus", lambda: nn.Softplus(), lambda v: softplus(v)),
    ("Softplus beta 2 threshold 3", lambda: nn.Softplus(beta=2, threshold=3), lambda v: softplus(v, 2.0, 3.0)),
    ("Softplus beta 0.5 threshold -1", lambda: nn.Softplus(0.5, -1.0), lambda v: softplus(v, 0.5, -1.0)),
]


def spread_input(seed=0):
    """N(0, 3^2) values, with the kinks and thresholds used above (0, 1.5, 20, -2), and both sides of them."""
    x = np.random.default_rng(seed).normal(size=(3, 4, 5)) * 3
    x.flat[:10] = [0.0, 1.49, 1.5, 1.51, 19.9, 20.0, 20.1, -2.1, -2.0, -1.9]
    return x


@pytest.mark.parametrize("make, function", [c[1:] for c in SMOOTH], ids=[c[0] for c in SMOOTH])
def test_new_activations_against_the_scalar_twins(make, function):
    x = spread_input()
    delta = np.random.default_rng(1).normal(size=x.shape)
    expected_y, expected_slope = naive_elementwise(function, x)
    layer = make()
    y = layer.forward(x)
    assert y.dtype == np.float64
    np.testing.assert_allclose(y, expected_y, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(layer.backward(delta), delta * expected_slope, rtol=1e-12, atol=1e-15)
    assert layer.parameters == [] and layer.parameters_deltas == []


def test_hand_computed_values():
    x = np.array([-2.0, 0.0, 3.0])
    np.testing.assert_allclose(nn.LeakyReLU(0.1).forward(x), [-0.2, 0.0, 3.0])
    np.testing.assert_allclose(nn.ELU(2.0).forward(x), [2 * (math.exp(-2) - 1), 0.0, 3.0])
    # GELU(1) = 0.5 (1 + tanh(sqrt(2/pi) * 1.044715)), by hand: 0.841191990...
    np.testing.assert_allclose(nn.GELU().forward(np.array([1.0])), [0.8411919906082768], rtol=1e-15)
    np.testing.assert_allclose(nn.SiLU().forward(x), [-2 / (1 + math.exp(2)), 0.0, 3 / (1 + math.exp(-3))])
    np.testing.assert_allclose(nn.Softplus().forward(x), [math.log1p(math.exp(-2)), math.log(2), math.log1p(math.exp(3))])
    # linear above the threshold: beta x = 2 * 3 = 6 > 5, so y = x exactly, slope exactly 1
    layer = nn.Softplus(beta=2.0, threshold=5.0)
    assert layer.forward(np.array([3.0]))[0] == 3.0 and layer.backward(np.array([1.0]))[0] == 1.0
    # the kinks take the left derivative, as PyTorch does
    layer = nn.LeakyReLU(0.1)
    layer.forward(np.array([0.0]))
    assert layer.backward(np.array([1.0]))[0] == pytest.approx(0.1)


@pytest.mark.parametrize("make", [c[1] for c in SMOOTH], ids=[c[0] for c in SMOOTH])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_huge_inputs_give_finite_values_and_gradients_without_warnings(make, dtype):
    finfo = np.finfo(dtype)
    x = np.array([-finfo.max, -1e30, -1e4, -100.0, -30.0, 30.0, 100.0, 1e4, 1e30, finfo.max], dtype)
    layer = make()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow in exp or x**3 would be a RuntimeWarning
        y = layer.forward(x)
        slope = layer.backward(np.ones_like(x))
    assert y.dtype == dtype and slope.dtype == dtype
    assert np.isfinite(y).all() and np.isfinite(slope).all()
    # far from 0 each is the identity on the right (slope 1)...
    np.testing.assert_array_equal(y[-3:], x[-3:])
    np.testing.assert_array_equal(slope[-3:], 1.0)


def test_huge_negative_inputs_saturate():
    x = np.array([-1e30, -1e4], np.float32)
    for layer, expected_y, expected_slope in [
        (nn.LeakyReLU(0.5), x * 0.5, 0.5), (nn.ELU(1.5), -1.5, 0.0), (nn.GELU(), 0.0, 0.0),
        (nn.SiLU(), 0.0, 0.0), (nn.Softplus(), 0.0, 0.0),
    ]:
        np.testing.assert_array_equal(layer.forward(x), np.broadcast_to(expected_y, x.shape))
        np.testing.assert_array_equal(layer.backward(np.ones_like(x)), expected_slope)


def test_integer_input_is_computed_in_float32():
    y = nn.GELU().forward(np.array([[1, 2], [3, 4]]))
    assert y.dtype == np.float32


@pytest.mark.parametrize("make", [c[1] for c in SMOOTH], ids=[c[0] for c in SMOOTH])
def test_new_activations_sanity_check(make):
    rng = np.random.default_rng(3)
    # |x| in [0.2, 4] keeps eps away from the kinks at 0 and the Softplus thresholds (at 1.5, -2)
    x = rng.uniform(0.2, 4.0, size=(3, 5)) * rng.choice([-1, 1], size=(3, 5))
    x[np.abs(np.abs(x) - 1.75) < 0.3] = 1.0
    report = nn.sanity_check(make(), x)
    assert report.passed and [row.tensor for row in report] == ["input"]


@pytest.mark.parametrize("cls, name, value, error, message", [
    (nn.LeakyReLU, "negative_slope", "0.1", TypeError, r"LeakyReLU: negative_slope must be a real number, got str '0.1'"),
    (nn.LeakyReLU, "negative_slope", True, TypeError, r"LeakyReLU: negative_slope must be a real number, got bool True"),
    (nn.LeakyReLU, "negative_slope", math.nan, ValueError, r"LeakyReLU: negative_slope must be finite, got nan"),
    (nn.ELU, "alpha", None, TypeError, r"ELU: alpha must be a real number, got NoneType None"),
    (nn.ELU, "alpha", math.inf, ValueError, r"ELU: alpha must be finite, got inf"),
    (nn.Softplus, "beta", 0, ValueError, r"Softplus: beta must be > 0, got 0$"),
    (nn.Softplus, "beta", -1.0, ValueError, r"Softplus: beta must be > 0, got -1.0"),
    (nn.Softplus, "threshold", [20], TypeError, r"Softplus: threshold must be a real number, got list \[20\]"),
    (nn.Softplus, "threshold", -math.inf, ValueError, r"Softplus: threshold must be finite, got -inf"),
])
def test_bad_hyperparameters(cls, name, value, error, message):
    with pytest.raises(error, match=message):
        cls(**{name: value})


def test_numpy_hyperparameters_become_floats_and_keep_float32():
    layer = nn.ELU(np.float64(0.5))
    assert type(layer.alpha) is float
    assert layer.forward(np.full(3, -1.0, np.float32)).dtype == np.float32


@pytest.mark.parametrize("make", [c[1] for c in SMOOTH], ids=[c[0] for c in SMOOTH])
def test_save_load_round_trip(make, tmp_path):
    net = nn.Sequential(nn.Linear(4, 4, rng=0), make())
    loaded = nn.load(nn.save(net, tmp_path / "net.npz"))
    assert repr(loaded) == repr(net) and loaded[1].config() == net[1].config()
    x = spread_input().reshape(-1, 4)[:6].astype(np.float32)
    np.testing.assert_array_equal(loaded.forward(x), net.forward(x))


# (layer, the same function in PyTorch)
TORCH = [
    (lambda: nn.LeakyReLU(0.2), lambda F, t: F.leaky_relu(t, 0.2)),
    (lambda: nn.ELU(0.7), lambda F, t: F.elu(t, 0.7)),
    (lambda: nn.GELU(), lambda F, t: F.gelu(t, approximate="tanh")),
    (lambda: nn.SiLU(), lambda F, t: F.silu(t)),
    (lambda: nn.Softplus(), lambda F, t: F.softplus(t)),
    (lambda: nn.Softplus(beta=2.0, threshold=3.0), lambda F, t: F.softplus(t, beta=2.0, threshold=3.0)),
]


@pytest.mark.torch
@pytest.mark.parametrize("make, reference", TORCH, ids=["LeakyReLU", "ELU", "GELU", "SiLU", "Softplus", "Softplus b2 t3"])
@pytest.mark.parametrize("dtype, tolerance", [(np.float64, 1e-12), (np.float32, 1e-6)], ids=["float64", "float32"])
def test_matches_pytorch(make, reference, dtype, tolerance):
    torch = pytest.importorskip("torch")
    x = np.concatenate([spread_input().ravel(), [-1e4, -60.0, 0.0, 60.0, 1e4]]).astype(dtype)
    delta = np.random.default_rng(2).normal(size=x.shape).astype(dtype)
    layer = make()
    y = layer.forward(x)
    dx = layer.backward(delta)
    tx = torch.tensor(x, requires_grad=True)
    ty = reference(torch.nn.functional, tx)
    ty.backward(torch.tensor(delta))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=tolerance, atol=tolerance)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=tolerance, atol=tolerance)


def test_relu_forward_equals_np_maximum_on_special_values_and_strided_views():
    special = np.array([-np.inf, -2.0, -0.0, 0.0, 1e-45, 3.0, np.inf, np.nan], np.float32)
    layer = nn.ReLU()
    y = layer.forward(special)
    np.testing.assert_array_equal(y, np.array([0, 0, 0, 0, 1e-45, 3, np.inf, np.nan], np.float32))
    np.testing.assert_array_equal(layer.backward(np.ones(8, np.float32)), [0, 0, 0, 0, 1, 1, 1, 0])
    # A strided, transposed view, as Conv2D hands out: same values as the plain formula.
    memory = np.random.default_rng(0).normal(size=(3, 2, 6, 6)).astype(np.float32)
    x = memory[:, :, :5, :5].transpose(1, 0, 2, 3)
    y = layer.forward(x)
    assert y.dtype == np.float32 and not np.shares_memory(y, x)
    np.testing.assert_array_equal(y, np.maximum(x, 0))
    delta = np.random.default_rng(1).normal(size=x.shape).astype(np.float32)
    np.testing.assert_array_equal(layer.backward(delta), delta * (x > 0))


def test_relu_reuses_only_its_private_mask_never_an_output():
    rng = np.random.default_rng(0)
    layer = nn.ReLU()
    first_x, second_x = rng.normal(size=(2, 4, 5, 5)).astype(np.float32), rng.normal(size=(2, 4, 5, 5)).astype(np.float32)
    first = layer.forward(first_x)
    kept = first.copy()
    second = layer.forward(second_x)
    assert not np.shares_memory(first, second)
    np.testing.assert_array_equal(first, kept)  # a caller's earlier output is left alone
    delta = np.ones_like(second_x)
    np.testing.assert_array_equal(layer.backward(delta), (second_x > 0).astype(np.float32))  # the latest mask
    # Other shapes, orders and a 0-d input each get a mask of their own.
    for x in (first_x[:1], first_x.transpose(1, 0, 2, 3), np.array(-1.0, np.float32), np.array(2.0, np.float32)):
        y = layer.forward(x)
        np.testing.assert_array_equal(y, np.maximum(x, 0))
        np.testing.assert_array_equal(layer.backward(np.ones_like(x)), (x > 0).astype(np.float32))


def _gelu_formula(x):
    """GELU's tanh form, vectorised in float64 (naive.gelu_tanh is the scalar twin)."""
    x = x.astype(np.float64)
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))


@pytest.mark.parametrize("shape", [(3, 5), (12, 64, 512)], ids=["fresh arrays", "recycled arrays"])
def test_gelu_never_overwrites_a_result_a_caller_holds_and_keeps_the_memory_layout(shape):
    # Large arrays are recycled from call to call (an MLP's (N, T, 4 dim) activations); what a caller
    # still holds must never change, and Conv2D's channel-major views keep their layout.
    rng = np.random.default_rng(0)
    layer = nn.GELU()
    xs = [rng.normal(size=shape).astype(np.float32) * 3 for _ in range(3)]
    ys, dxs = [], []
    for x in xs:
        ys.append(layer.forward(x))
        dxs.append(layer.backward(np.ones_like(x)))
    for x, y, dx in zip(xs, ys, dxs):
        np.testing.assert_allclose(y, _gelu_formula(x), rtol=2e-6, atol=1e-6)
        assert y.dtype == dx.dtype == np.float32
    assert not np.shares_memory(ys[0], ys[1]) and not np.shares_memory(dxs[1], dxs[2])
    memory = rng.normal(size=(8, 64, 16, 16)).astype(np.float32)
    channel_major = memory.transpose(1, 0, 2, 3)
    y = layer.forward(channel_major)
    assert y.transpose(1, 0, 2, 3).flags.c_contiguous  # laid out as its input
    np.testing.assert_allclose(y, _gelu_formula(channel_major), rtol=2e-6, atol=1e-6)
