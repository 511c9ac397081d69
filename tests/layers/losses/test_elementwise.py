"""The element-wise losses (nnscratch/layers/losses/elementwise.py): MeanSquaredError,
BinaryCrossEntropy and SigmoidBinaryCrossEntropy against loop twins, hand-computed values, finite at
the edges, sanity_check, bad input, save/load, PyTorch and release_memory (Hinge too where the checks
are shared)."""

import math
import warnings

import numpy as np
import pytest

import nnscratch as nn
from helpers.naive import (naive_binary_cross_entropy, naive_mean_squared_error, naive_sigmoid_binary_cross_entropy)


ELEMENTWISE_LOSSES = [nn.MeanSquaredError, nn.BinaryCrossEntropy, nn.SigmoidBinaryCrossEntropy]
SHAPES = [(5,), (4, 3), (3, 2, 4), (2, 3, 2, 2)]


def elementwise_case(cls, shape, seed=0):
    """(x, targets, naive twin) for a loss whose targets have the shape of x."""
    rng = np.random.default_rng(seed)
    if cls is nn.MeanSquaredError:
        return rng.normal(size=shape), rng.normal(size=shape), naive_mean_squared_error
    targets = rng.uniform(size=shape)
    targets.flat[0] = 1.0
    if cls is nn.BinaryCrossEntropy:
        return rng.uniform(0.02, 0.98, size=shape), targets, naive_binary_cross_entropy
    return rng.normal(size=shape) * 4, targets, naive_sigmoid_binary_cross_entropy


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("cls", ELEMENTWISE_LOSSES)
def test_elementwise_losses_against_naive_twins(cls, shape):
    x, targets, naive = elementwise_case(cls, shape)
    delta = np.random.default_rng(1).normal(size=shape[0])
    expected_loss, expected_grad = naive(x, targets)
    layer = cls()
    loss = layer.forward(x, targets)
    assert loss.shape == (shape[0],) and loss.dtype == np.float64
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-12)
    dx = layer.backward(delta)
    np.testing.assert_allclose(dx, expected_grad * delta.reshape((-1,) + (1,) * (len(shape) - 1)), rtol=1e-10, atol=1e-15)
    assert layer.parameters == [] and layer.parameters_deltas == []


def test_hand_computed_values():
    x = np.array([[1.0, 2.0], [0.0, -1.0]])
    t = np.array([[0.0, 0.0], [0.0, 1.0]])
    np.testing.assert_allclose(nn.MeanSquaredError().forward(x, t), [(1 + 4) / 2, (0 + 4) / 2])
    p = np.array([[0.5, 0.25]])
    np.testing.assert_allclose(nn.BinaryCrossEntropy().forward(p, np.array([[1.0, 0.0]])),
                               [(math.log(2) + math.log(4 / 3)) / 2])
    # sigmoid(0) = 0.5 whatever the target: log 2 each
    np.testing.assert_allclose(nn.SigmoidBinaryCrossEntropy().forward(np.zeros((1, 3)), np.array([[0.0, 0.3, 1.0]])),
                               [math.log(2)])
    # CS231n's three examples: cat (label 0), car (label 1), frog (label 2)
    scores = np.array([[3.2, 5.1, -1.7], [1.3, 4.9, 2.0], [2.2, 2.5, -3.1]])
    layer = nn.Hinge()
    np.testing.assert_allclose(layer.forward(scores, np.array([0, 1, 2])), [2.9, 0.0, 12.9], rtol=1e-12)
    np.testing.assert_allclose(layer.backward(np.ones(3)), [[-1, 1, 0], [0, 0, 0], [1, 1, -2]])
    np.testing.assert_allclose(nn.Hinge(margin=0.0).forward(scores, np.array([0, 1, 2])), [1.9, 0.0, 10.9], rtol=1e-12)


def test_followed_by_mean_is_the_mean_over_every_value():
    x, targets, _ = elementwise_case(nn.MeanSquaredError, (4, 3, 2))
    net = nn.Sequential(nn.MeanSquaredError(), nn.Mean())
    assert net.forward(x, targets) == pytest.approx(np.mean((x - targets) ** 2), rel=1e-14)
    np.testing.assert_allclose(net.backward(), 2 * (x - targets) / x.size, rtol=1e-14)


def test_binary_cross_entropy_is_finite_at_zero_and_one():
    p = np.array([[0.0, 1.0, 0.0, 1.0]], np.float32)
    t = np.array([[0.0, 1.0, 1.0, 0.0]], np.float32)
    layer = nn.BinaryCrossEntropy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = layer.forward(p, t)
        grad = layer.backward(np.ones(1, np.float32))
    # right: 0 each; wrong: the log floored at -100, so 100 each; the mean of the four is 50
    np.testing.assert_allclose(loss, [50.0])
    assert loss.dtype == np.float32 and grad.dtype == np.float32 and np.isfinite(grad).all()
    np.testing.assert_allclose(grad, [[0.0, 0.0, -1e12 / 4, 1e12 / 4]], rtol=1e-6)


def test_sigmoid_binary_cross_entropy_is_finite_for_huge_logits():
    z = np.array([[1e4, -1e4, 1e4, -1e4, 0.0]], np.float32)
    t = np.array([[1.0, 0.0, 0.0, 1.0, 0.5]], np.float32)
    layer = nn.SigmoidBinaryCrossEntropy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = layer.forward(z, t)
        grad = layer.backward(np.ones(1, np.float32))
    np.testing.assert_allclose(loss, [(0 + 0 + 1e4 + 1e4 + math.log(2)) / 5], rtol=1e-6)
    np.testing.assert_allclose(grad, [[0.0, 0.0, 0.2, -0.2, 0.0]], atol=1e-7)


def test_fused_equals_sigmoid_then_binary_cross_entropy():
    rng = np.random.default_rng(3)
    z, t = rng.normal(size=(4, 6)), rng.uniform(size=(4, 6))
    fused = nn.Sequential(nn.SigmoidBinaryCrossEntropy(), nn.Mean())
    split = nn.Sequential(nn.Sigmoid(), nn.BinaryCrossEntropy(), nn.Mean())
    np.testing.assert_allclose(fused.forward(z, t), split.forward(z, t), rtol=1e-12)
    np.testing.assert_allclose(fused.backward(), split.backward(), rtol=1e-10)


@pytest.mark.parametrize("cls", [*ELEMENTWISE_LOSSES, nn.Hinge])
def test_new_losses_keep_float32(cls):
    x, targets, _ = elementwise_case(cls, (3, 4)) if cls is not nn.Hinge else (np.ones((3, 4)), np.array([0, 1, 3]), None)
    layer = cls()
    loss = layer.forward(x.astype(np.float32), targets)  # float64 targets must not promote
    grad = layer.backward(np.ones(3))
    assert loss.dtype == np.float32 and grad.dtype == np.float32
    assert cls().forward(np.ones((3, 4), np.int64) // 2, targets).dtype == np.float32  # integers: float32


@pytest.mark.parametrize("shape", [(4,), (3, 5), (2, 2, 3)], ids=str)
@pytest.mark.parametrize("cls", ELEMENTWISE_LOSSES)
def test_elementwise_losses_sanity_check(cls, shape):
    x, targets, _ = elementwise_case(cls, shape, seed=5)
    report = nn.sanity_check(cls(), x, args=(targets,))
    assert report.passed and [row.tensor for row in report] == ["input"]


@pytest.mark.parametrize("cls", ELEMENTWISE_LOSSES)
def test_elementwise_losses_bad_input(cls):
    name = cls.__name__
    layer = cls()
    x = np.full((3, 4), 0.5, np.float32)
    with pytest.raises(TypeError, match=rf"{name}: forward needs targets"):
        layer.forward(x)
    with pytest.raises(ValueError, match=rf"{name}: expected targets of the same shape as the \w+ \(3, 4\), got \(3,\)"):
        layer.forward(x, np.array([0, 1, 1]))
    with pytest.raises(TypeError, match=rf"{name}: targets must be real numbers \(bool, int or float\), got an array of <U1"):
        layer.forward(x, np.full((3, 4), "a"))
    with pytest.raises(TypeError, match=rf"{name}: expected a numpy array of \w+ as input, got list"):
        layer.forward([[0.5]], np.ones((1, 1)))
    with pytest.raises(ValueError, match=rf"{name}: expected \w+ with a batch axis \(N, ...\), got a scalar"):
        layer.forward(np.array(0.5), np.ones(()))
    layer.forward(x, np.zeros((3, 4)))
    with pytest.raises(ValueError, match=rf"{name}.backward: expected delta of shape \(3,\)"):
        layer.backward(np.ones(4))
    if cls is not nn.MeanSquaredError:
        with pytest.raises(ValueError, match=rf"{name}: targets must be in \[0, 1\], got 1.5"):
            layer.forward(x, np.full((3, 4), 1.5))
        with pytest.raises(ValueError, match=rf"{name}: targets must be in \[0, 1\], got nan"):
            layer.forward(x, np.full((3, 4), np.nan))
    with pytest.raises(RuntimeError, match=rf"{name}.backward called before forward"):
        cls().backward(np.ones(3))


def test_binary_cross_entropy_refuses_values_that_are_not_probabilities():
    layer = nn.BinaryCrossEntropy()
    with pytest.raises(ValueError, match=r"BinaryCrossEntropy: probabilities must be in \[0, 1\], got -0.5"):
        layer.forward(np.array([[0.5, -0.5]]), np.zeros((1, 2)))
    with pytest.raises(ValueError, match=r"BinaryCrossEntropy: probabilities must be in \[0, 1\], got nan"):
        layer.forward(np.array([[np.nan]]), np.zeros((1, 1)))


def test_save_load_round_trip(tmp_path):
    for loss in (nn.MeanSquaredError(), nn.BinaryCrossEntropy(), nn.SigmoidBinaryCrossEntropy(), nn.Hinge(0.25)):
        net = nn.Sequential(nn.Linear(3, 4, rng=0), nn.Sigmoid(), loss, nn.Mean())
        loaded = nn.load(nn.save(net, tmp_path / "net.npz"))
        assert repr(loaded) == repr(net) and loaded[2].config() == loss.config()
        x = np.random.default_rng(1).normal(size=(5, 3)).astype(np.float32)
        targets = np.array([0, 1, 2, 3, 0]) if isinstance(loss, nn.Hinge) else np.full((5, 4), 0.25)
        assert loaded.forward(x, targets) == net.forward(x, targets)


# (layer, PyTorch's loss with mean reduction, targets: "same" (shape of x) or "labels")
TORCH_LOSSES = {
    "MeanSquaredError": (nn.MeanSquaredError, lambda F, x, t: F.mse_loss(x, t)),
    "BinaryCrossEntropy": (nn.BinaryCrossEntropy, lambda F, x, t: F.binary_cross_entropy(x, t)),
    "SigmoidBinaryCrossEntropy": (nn.SigmoidBinaryCrossEntropy, lambda F, x, t: F.binary_cross_entropy_with_logits(x, t)),
}


@pytest.mark.torch
@pytest.mark.parametrize("shape", [(6,), (4, 3), (3, 2, 2, 3)], ids=str)
@pytest.mark.parametrize("name", TORCH_LOSSES)
def test_elementwise_losses_match_pytorch_mean_reduction(name, shape):
    torch = pytest.importorskip("torch")
    cls, reference = TORCH_LOSSES[name]
    x, targets, _ = elementwise_case(cls, shape, seed=7)
    if cls is nn.BinaryCrossEntropy:
        x.flat[:2] = [0.0, 1.0]  # PyTorch's clamp of the log at -100
        targets.flat[:2] = [1.0, 0.0]
    net = nn.Sequential(cls(), nn.Mean())
    loss, dx = net.forward(x, targets), net.backward()
    tx = torch.tensor(x, requires_grad=True)
    t_loss = reference(torch.nn.functional, tx, torch.tensor(targets))
    t_loss.backward()
    assert float(loss) == pytest.approx(t_loss.item(), rel=1e-12)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-10, atol=1e-16)


@pytest.mark.torch
def test_sigmoid_binary_cross_entropy_matches_pytorch_for_huge_logits_in_float32():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(8)
    z = (rng.choice([-1, 1], size=(8, 5)) * 10.0 ** rng.uniform(-2, 4, size=(8, 5))).astype(np.float32)
    t = rng.uniform(size=(8, 5)).astype(np.float32)
    net = nn.Sequential(nn.SigmoidBinaryCrossEntropy(), nn.Mean())
    loss, dz = net.forward(z, t), net.backward()
    tz = torch.tensor(z, requires_grad=True)
    t_loss = torch.nn.functional.binary_cross_entropy_with_logits(tz, torch.tensor(t))
    t_loss.backward()
    assert loss.dtype == np.float32 and float(loss) == pytest.approx(t_loss.item(), rel=1e-5)
    np.testing.assert_allclose(dz, tz.grad.numpy(), rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("cls", [*ELEMENTWISE_LOSSES, nn.Hinge])
def test_release_memory_drops_what_forward_kept(cls):
    x, targets, _ = elementwise_case(cls, (3, 4)) if cls is not nn.Hinge else (np.ones((3, 4)), np.array([0, 1, 3]), None)
    layer = cls()
    layer.forward(x, targets)
    layer.release_memory()
    assert all(getattr(layer, name) is None for name in layer._caches)
    with pytest.raises(RuntimeError, match=rf"{cls.__name__}.backward called before forward"):
        layer.backward(np.ones(3))
