"""The classification losses (nnscratch/layers/losses/classification.py): CrossEntropy and
SoftmaxCrossEntropy against references with each kind of target, finite at the edges, sanity_check,
bad targets; Hinge against its loop twin, its checks and PyTorch."""

import math

import numpy as np
import pytest

import nnscratch as nn
from helpers.naive import naive_hinge


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


@pytest.mark.parametrize("cls", [nn.CrossEntropy, nn.SoftmaxCrossEntropy])
@pytest.mark.parametrize("kind", ["labels", "one-hot", "soft"])
def test_sanity_check_each_target_kind(cls, kind):
    rng = np.random.default_rng(4)
    x = rng.uniform(0.1, 1, size=(4, 3))
    if cls is nn.CrossEntropy:
        x /= x.sum(axis=1, keepdims=True)
    report = nn.sanity_check(cls(), x, args=(targets_of_each_kind(4, 3, rng)[kind],))
    assert report.passed and [(row.tensor, row.coords) for row in report] == [("input", 12)]


@pytest.mark.parametrize("cls", [nn.CrossEntropy, nn.SoftmaxCrossEntropy])
def test_bad_targets(cls):
    layer = cls()
    x = np.full((3, 4), 0.25, np.float32)
    with pytest.raises(ValueError, match=rf"{cls.__name__}: labels must be in \[0, 4\) for 4 classes \(or ignore_index=-100\), got 4"):
        layer.forward(x, np.array([0, 1, 4]))
    with pytest.raises(ValueError, match=rf"{cls.__name__}: labels must be in \[0, 4\) for 4 classes \(or ignore_index=-100\), got -1"):
        layer.forward(x, np.array([0, -1, 2]))
    with pytest.raises(ValueError, match=rf"{cls.__name__}: expected 3 labels \(one per sample in the batch\), got 2"):
        layer.forward(x, np.array([0, 1]))
    with pytest.raises(ValueError, match=rf"{cls.__name__}: expected one-hot/soft targets of shape \(3, 4\), got \(3, 5\)"):
        layer.forward(x, np.zeros((3, 5)))
    with pytest.raises(TypeError, match=rf"{cls.__name__}: 1-D targets must be integer class labels, got dtype float64"):
        layer.forward(x, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(TypeError, match=rf"{cls.__name__}: forward needs targets"):
        layer.forward(x)
    with pytest.raises(ValueError, match=rf"{cls.__name__}: expected a 2-D or larger input \(N, ..., C \w+\), got shape \(4,\)"):
        layer.forward(np.zeros(4, np.float32), np.array([1]))


def test_hinge_against_naive_twin_and_at_the_kink():
    rng = np.random.default_rng(2)
    scores = rng.normal(size=(6, 5))
    labels = rng.integers(0, 5, 6)
    delta = rng.normal(size=6)
    for margin in (1.0, 0.3, 0.0):
        layer = nn.Hinge(margin)
        expected_loss, expected_grad = naive_hinge(scores, labels, margin)
        np.testing.assert_allclose(layer.forward(scores, labels), expected_loss, rtol=1e-12)
        np.testing.assert_allclose(layer.backward(delta), expected_grad * delta[:, None], rtol=1e-12)
    # a term exactly at 0 contributes no gradient (the right derivative, as PyTorch)
    layer = nn.Hinge()
    layer.forward(np.array([[1.0, 0.0]]), np.array([0]))
    np.testing.assert_array_equal(layer.backward(np.ones(1)), [[0.0, 0.0]])


def test_hinge_sanity_check():
    # distinct scores, no term within eps of its kink
    scores = (np.random.default_rng(6).permutation(20).reshape(4, 5) - 10) * 0.37
    report = nn.sanity_check(nn.Hinge(), scores, args=(np.array([0, 4, 2, 1]),))
    assert report.passed and report[0].max_abs_err < 1e-8


def test_hinge_bad_input():
    layer = nn.Hinge()
    scores = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match=r"Hinge: labels must be in \[0, 4\) for 4 classes, got 4"):
        layer.forward(scores, np.array([0, 1, 4]))
    with pytest.raises(ValueError, match=r"Hinge: labels must be in \[0, 4\) for 4 classes, got -1"):
        layer.forward(scores, np.array([0, -1, 2]))
    with pytest.raises(TypeError, match=r"Hinge: 1-D targets must be integer class labels, got dtype float64 \(Hinge takes"):
        layer.forward(scores, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match=r"Hinge: expected integer labels of shape \(3,\), got shape \(3, 4\)"):
        layer.forward(scores, np.eye(4)[[0, 1, 2]])
    with pytest.raises(ValueError, match=r"Hinge: expected 3 labels \(one per sample in the batch\), got 2"):
        layer.forward(scores, np.array([0, 1]))
    with pytest.raises(TypeError, match=r"Hinge: forward needs targets"):
        layer.forward(scores)
    with pytest.raises(ValueError, match=r"Hinge: expected a 2-D input \(N, C scores\), got shape \(4,\)"):
        layer.forward(np.zeros(4), np.array([1]))


@pytest.mark.parametrize("value, error, message", [
    (-0.1, ValueError, r"Hinge: margin must be >= 0, got -0.1"),
    (math.nan, ValueError, r"Hinge: margin must be finite and >= 0, got nan"),
    ("1", TypeError, r"Hinge: margin must be a real number, got str '1'"),
    (False, TypeError, r"Hinge: margin must be a real number, got bool False"),
])
def test_hinge_bad_margin(value, error, message):
    with pytest.raises(error, match=message):
        nn.Hinge(margin=value)


@pytest.mark.torch
@pytest.mark.parametrize("margin", [1.0, 0.5, 2.0])
def test_hinge_matches_pytorch_multi_margin_loss_times_classes(margin):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(9)
    scores, labels = rng.normal(size=(7, 5)), rng.integers(0, 5, 7)
    delta = rng.normal(size=7)
    layer = nn.Hinge(margin)
    loss, d_scores = layer.forward(scores, labels), layer.backward(delta)
    ts = torch.tensor(scores, requires_grad=True)
    t_loss = torch.nn.functional.multi_margin_loss(ts, torch.tensor(labels), margin=margin, reduction="none") * 5
    t_loss.backward(torch.tensor(delta))
    np.testing.assert_allclose(loss, t_loss.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(d_scores, ts.grad.numpy(), rtol=1e-12, atol=1e-15)
