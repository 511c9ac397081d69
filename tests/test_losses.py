"""CrossEntropy, SoftmaxCrossEntropy and Mean against references, with each kind of target."""

import math

import numpy as np
import pytest

import nnscratch as nn


def naive_cross_entropy(probs, targets):
    """loss_n = -sum_c t_nc log p_nc, with integer labels expanded to one-hot by hand."""
    losses = []
    for n in range(probs.shape[0]):
        row = [0.0] * probs.shape[1]
        if np.ndim(targets) == 1:
            row[int(targets[n])] = 1.0
        else:
            row = list(targets[n])
        losses.append(-sum(t * math.log(p) for t, p in zip(row, probs[n]) if t != 0))
    return np.array(losses)


def naive_log_softmax(z):
    return np.array([[v - math.log(sum(math.exp(w) for w in row)) for v in row] for row in z])


def targets_of_each_kind(n, c, rng):
    labels = rng.integers(0, c, n)
    one_hot = np.eye(c)[labels]
    soft = rng.uniform(size=(n, c))
    soft /= soft.sum(axis=1, keepdims=True)
    return {"labels": labels, "one-hot": one_hot, "soft": soft}


@pytest.mark.parametrize("kind", ["labels", "one-hot", "soft"])
def test_cross_entropy_forward_backward(kind):
    rng = np.random.default_rng(0)
    probs = rng.uniform(0.05, 1, size=(4, 3))
    probs /= probs.sum(axis=1, keepdims=True)
    targets = targets_of_each_kind(4, 3, rng)[kind]
    delta = rng.normal(size=4)
    layer = nn.CrossEntropy()
    np.testing.assert_allclose(layer.forward(probs, targets), naive_cross_entropy(probs, targets), rtol=1e-12)
    dense = np.eye(3)[targets] if kind == "labels" else targets
    np.testing.assert_allclose(layer.backward(delta), -delta[:, None] * dense / probs, rtol=1e-12)


def test_cross_entropy_is_finite_for_zero_probability():
    loss = nn.CrossEntropy().forward(np.array([[0.0, 1.0]], np.float32), np.array([0]))
    assert np.isfinite(loss).all() and loss[0] == pytest.approx(-math.log(np.finfo(np.float32).tiny), rel=1e-6)


@pytest.mark.parametrize("kind", ["labels", "one-hot", "soft"])
def test_softmax_cross_entropy_forward_backward(kind):
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(5, 4)) * 3
    targets = targets_of_each_kind(5, 4, rng)[kind]
    dense = np.eye(4)[targets] if kind == "labels" else targets
    delta = rng.normal(size=5)
    layer = nn.SoftmaxCrossEntropy()
    expected = -(dense * naive_log_softmax(logits)).sum(axis=1)
    np.testing.assert_allclose(layer.forward(logits, targets), expected, rtol=1e-12)
    probs = np.exp(naive_log_softmax(logits))
    np.testing.assert_allclose(layer.backward(delta), delta[:, None] * (probs - dense), rtol=1e-10, atol=1e-14)


def test_fused_equals_softmax_then_cross_entropy():
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(6, 5)).astype(np.float32)
    labels = rng.integers(0, 5, 6)
    fused = nn.Sequential(nn.SoftmaxCrossEntropy(), nn.Mean())
    split = nn.Sequential(nn.Softmax(), nn.CrossEntropy(), nn.Mean())
    np.testing.assert_allclose(fused.forward(logits, labels), split.forward(logits, labels), rtol=1e-6)
    np.testing.assert_allclose(fused.backward(), split.backward(), rtol=1e-5, atol=1e-7)


def test_softmax_cross_entropy_is_finite_for_huge_logits():
    logits = np.array([[1e4, 0.0, -1e4], [0.0, 1e4, 1e4]], np.float32)
    layer = nn.SoftmaxCrossEntropy()
    loss = layer.forward(logits, np.array([1, 2]))
    np.testing.assert_allclose(loss, [1e4, math.log(2)], rtol=1e-6)
    grad = layer.backward(np.ones(2, np.float32))
    assert np.isfinite(grad).all()
    np.testing.assert_allclose(grad, [[1, -1, 0], [0, 0.5, -0.5]], atol=1e-6)


@pytest.mark.parametrize("cls", [nn.CrossEntropy, nn.SoftmaxCrossEntropy])
def test_losses_keep_float32(cls):
    x = np.full((3, 4), 0.25, np.float32)
    layer = cls()
    loss = layer.forward(x, np.eye(4)[[0, 1, 2]])  # float64 one-hot targets must not promote
    grad = layer.backward(np.ones(3))
    assert loss.dtype == np.float32 and grad.dtype == np.float32


def test_mean_forward_backward():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    layer = nn.Mean()
    y = layer.forward(x)
    assert y.shape == () and y.dtype == np.float32 and y == pytest.approx(5.5)
    grad = layer.backward()
    assert grad.dtype == np.float32
    np.testing.assert_allclose(grad, np.full((3, 4), 1 / 12))
    np.testing.assert_allclose(layer.backward(3.0), np.full((3, 4), 3 / 12))


def test_mean_bad_delta():
    layer = nn.Mean()
    layer.forward(np.ones(3))
    with pytest.raises(ValueError, match=r"Mean.backward: expected a scalar delta \(shape \(\)\), got shape \(3,\)"):
        layer.backward(np.ones(3))


@pytest.mark.parametrize("cls", [nn.CrossEntropy, nn.SoftmaxCrossEntropy])
@pytest.mark.parametrize("kind", ["labels", "one-hot", "soft"])
def test_sanity_check_each_target_kind(cls, kind):
    check = pytest.importorskip("nnscratch.check")
    rng = np.random.default_rng(4)
    x = rng.uniform(0.1, 1, size=(4, 3))
    if cls is nn.CrossEntropy:
        x /= x.sum(axis=1, keepdims=True)
    check.sanity_check(cls(), x, args=(targets_of_each_kind(4, 3, rng)[kind],))


@pytest.mark.parametrize("cls", [nn.CrossEntropy, nn.SoftmaxCrossEntropy])
def test_bad_targets(cls):
    layer = cls()
    x = np.full((3, 4), 0.25, np.float32)
    with pytest.raises(ValueError, match=rf"{cls.__name__}: labels must be in \[0, 4\) for 4 classes, got 4"):
        layer.forward(x, np.array([0, 1, 4]))
    with pytest.raises(ValueError, match=rf"{cls.__name__}: labels must be in \[0, 4\) for 4 classes, got -1"):
        layer.forward(x, np.array([0, -1, 2]))
    with pytest.raises(ValueError, match=rf"{cls.__name__}: expected 3 labels \(one per sample in the batch\), got 2"):
        layer.forward(x, np.array([0, 1]))
    with pytest.raises(ValueError, match=rf"{cls.__name__}: expected one-hot/soft targets of shape \(3, 4\), got \(3, 5\)"):
        layer.forward(x, np.zeros((3, 5)))
    with pytest.raises(TypeError, match=rf"{cls.__name__}: 1-D targets must be integer class labels, got dtype float64"):
        layer.forward(x, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(TypeError, match=rf"{cls.__name__}: forward needs targets"):
        layer.forward(x)
    with pytest.raises(ValueError, match=rf"{cls.__name__}: expected a 2-D input"):
        layer.forward(np.zeros(4, np.float32), np.array([1]))
