"""clip_grad_norm: hand-computed scaling, the norm it returns, non-finite norms, bad arguments, PyTorch."""

import math

import numpy as np
import pytest

import nnscratch as nn


class Deltas:
    """A plain layer whose deltas the test sets."""

    def __init__(self, *deltas, dtype=np.float64):
        self.parameters_deltas = [np.array(d, dtype=dtype) for d in deltas]
        self.parameters = [np.zeros_like(d) for d in self.parameters_deltas]

    def forward(self, x, *args):
        return x

    def backward(self, delta):
        return delta


def test_scales_every_delta_by_one_factor_hand_computed():
    a, b = Deltas([3.0, 4.0]), Deltas([[12.0]])  # global norm sqrt(9 + 16 + 144) = 13
    norm = nn.clip_grad_norm([a, b], 6.5)
    assert norm == 13.0
    scale = 6.5 / (13.0 + 1e-6)  # a hair under 0.5
    np.testing.assert_array_equal(a.parameters_deltas[0], np.array([3.0, 4.0]) * scale)
    np.testing.assert_array_equal(b.parameters_deltas[0], np.array([[12.0]]) * scale)
    assert math.sqrt(sum(float((d**2).sum()) for d in a.parameters_deltas + b.parameters_deltas)) == pytest.approx(6.5)


def test_a_norm_within_the_bound_is_left_alone():
    layer = Deltas([3.0, 4.0], [0.0])
    assert nn.clip_grad_norm(layer, 5.000001) == 5.0  # 5.000001 / (5 + 1e-6) = 1: nothing to do
    np.testing.assert_array_equal(layer.parameters_deltas[0], [3.0, 4.0])
    # a norm of exactly max_norm is scaled by max_norm / (max_norm + 1e-6), a hair, as PyTorch's is
    assert nn.clip_grad_norm(layer, 5.0) == 5.0
    np.testing.assert_array_equal(layer.parameters_deltas[0], np.array([3.0, 4.0]) * (5.0 / 5.000001))
    zero = Deltas([0.0, 0.0])
    assert nn.clip_grad_norm(zero, 1.0) == 0.0 and not zero.parameters_deltas[0].any()
    assert nn.clip_grad_norm(Deltas([1e30]), math.inf) == 1e30  # inf: only measures


def test_sequential_and_dtype():
    net = nn.Sequential(nn.Linear(4, 3, rng=0), nn.ReLU(), nn.Linear(3, 2, rng=1))
    net.forward(np.ones((5, 4), np.float32))
    net.backward(np.full((5, 2), 10.0, np.float32))
    before = [d.copy() for d in net.parameters_deltas]
    norm = nn.clip_grad_norm(net, 0.1)
    assert norm == pytest.approx(math.sqrt(sum(float(np.sum(d.astype(np.float64) ** 2)) for d in before)), rel=1e-6)
    for d, old in zip(net.parameters_deltas, before):
        assert d.dtype == np.float32
        np.testing.assert_allclose(d, old * (0.1 / (norm + 1e-6)), rtol=1e-6)


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_a_non_finite_norm_leaves_the_deltas_and_is_returned(bad):
    layer = Deltas([1.0, bad], [5.0])
    norm = nn.clip_grad_norm(layer, 1.0)
    assert not math.isfinite(norm)
    np.testing.assert_array_equal(layer.parameters_deltas[1], [5.0])
    with pytest.raises(FloatingPointError, match=r"clip_grad_norm: the gradient norm is (inf|nan) .*the deltas are unchanged"):
        nn.clip_grad_norm(layer, 1.0, error_if_nonfinite=True)
    np.testing.assert_array_equal(layer.parameters_deltas[1], [5.0])


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"max_norm": 0}, ValueError, r"clip_grad_norm: max_norm must be > 0 \(inf allowed, not NaN\), got 0"),
        ({"max_norm": -1.0}, ValueError, r"clip_grad_norm: max_norm must be > 0 \(inf allowed, not NaN\), got -1.0"),
        ({"max_norm": float("nan")}, ValueError, r"clip_grad_norm: max_norm must be > 0 \(inf allowed, not NaN\), got nan"),
        ({"max_norm": "1"}, TypeError, r"clip_grad_norm: max_norm must be a real number, got str '1'"),
        ({"max_norm": True}, TypeError, r"clip_grad_norm: max_norm must be a real number, got bool"),
        ({"max_norm": 1.0, "error_if_nonfinite": "yes"}, TypeError, r"error_if_nonfinite must be True or False"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    layer = Deltas([3.0, 4.0])
    with pytest.raises(error, match=match):
        nn.clip_grad_norm(layer, **kwargs)
    np.testing.assert_array_equal(layer.parameters_deltas[0], [3.0, 4.0])
    with pytest.raises(TypeError, match=r"clip_grad_norm: expected a layer, a Sequential or a list of layers"):
        nn.clip_grad_norm(3, 1.0)


@pytest.mark.torch
@pytest.mark.parametrize("max_norm", [0.01, 1.0, 7.0, 1e6])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_torch(max_norm, dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(int(max_norm * 100))
    deltas = [rng.normal(size=shape).astype(dtype) for shape in [(6, 5), (5,), (3, 2, 2)]]
    layer = Deltas(*deltas, dtype=dtype)
    tensors = [torch.zeros(d.shape, dtype=torch.float64 if dtype == np.float64 else torch.float32, requires_grad=True)
               for d in deltas]
    for t, d in zip(tensors, deltas):
        t.grad = torch.tensor(d.copy())
    theirs = float(torch.nn.utils.clip_grad_norm_(tensors, max_norm))
    ours = nn.clip_grad_norm(layer, max_norm)
    rtol = 1e-6 if dtype == np.float32 else 1e-12
    assert ours == pytest.approx(theirs, rel=rtol)
    for d, t in zip(layer.parameters_deltas, tensors):
        np.testing.assert_allclose(d, t.grad.numpy(), rtol=rtol, atol=0)


def test_float32_deltas_near_1e20_give_a_finite_norm_summed_in_float64():
    # 1e20 squared is 1e40, beyond float32's 3.4e38: summed in float32 the norm would be inf and
    # clipping would zero every delta
    values = np.array([1e20, -2e20, 3e19], dtype=np.float32)
    big = np.random.default_rng(0).standard_normal(200_003).astype(np.float32) * np.float32(1e19)  # > one chunk
    layer = Deltas(values, big, dtype=np.float32)
    exact = math.sqrt(float(np.sum(values.astype(np.float64) ** 2)) + float(np.sum(big.astype(np.float64) ** 2)))
    norm = nn.clip_grad_norm(layer, 1.0)
    assert math.isfinite(norm) and norm == pytest.approx(exact, rel=1e-12)
    scaled = layer.parameters_deltas[0]
    assert scaled.dtype == np.float32 and np.all(scaled != 0)
    np.testing.assert_allclose(scaled, values * (1.0 / (exact + 1e-6)), rtol=1e-6)


def test_float32_deltas_near_1e_minus_20_are_summed_again_in_float64():
    # (1e-20)^2 = 1e-40 is below float32's smallest normal numbers (1.2e-38): summed in float32 the
    # squares lose their digits or vanish, and the norm would be 0 or wrong
    tiny = (np.random.default_rng(1).standard_normal(1000) * 1e-20).astype(np.float32)
    layer = Deltas(tiny, dtype=np.float32)
    exact = math.sqrt(float(np.sum(tiny.astype(np.float64) ** 2)))
    assert float(np.dot(tiny, tiny)) < 1e-30  # the float32 sum is what the fast path must not keep
    assert nn.clip_grad_norm(layer, math.inf) == pytest.approx(exact, rel=1e-12)


def test_float32_sum_of_squares_matches_float64_on_ordinary_deltas():
    rng = np.random.default_rng(2)
    deltas = [rng.standard_normal(shape).astype(np.float32) for shape in [(384, 128), (128,), (65, 128)]]
    layer = Deltas(*deltas, dtype=np.float32)
    exact = math.sqrt(sum(float(np.sum(d.astype(np.float64) ** 2)) for d in deltas))
    assert nn.clip_grad_norm(layer, math.inf) == pytest.approx(exact, rel=1e-6)
