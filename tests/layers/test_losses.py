"""The losses and Mean against references (with each kind of target), hand-computed values,
sanity_check, save/load and PyTorch."""

import math
import warnings

import numpy as np
import pytest

import nnscratch as nn
from helpers.naive import naive_binary_cross_entropy, naive_hinge, naive_mean_squared_error, naive_sigmoid_binary_cross_entropy


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


# -- MeanSquaredError, BinaryCrossEntropy, SigmoidBinaryCrossEntropy, Hinge --------------------------
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


def test_hinge_sanity_check():
    # distinct scores, no term within eps of its kink
    scores = (np.random.default_rng(6).permutation(20).reshape(4, 5) - 10) * 0.37
    report = nn.sanity_check(nn.Hinge(), scores, args=(np.array([0, 4, 2, 1]),))
    assert report.passed and report[0].max_abs_err < 1e-8


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


@pytest.mark.parametrize("cls", [*ELEMENTWISE_LOSSES, nn.Hinge])
def test_release_memory_drops_what_forward_kept(cls):
    x, targets, _ = elementwise_case(cls, (3, 4)) if cls is not nn.Hinge else (np.ones((3, 4)), np.array([0, 1, 3]), None)
    layer = cls()
    layer.forward(x, targets)
    layer.release_memory()
    assert all(getattr(layer, name) is None for name in layer._caches)
    with pytest.raises(RuntimeError, match=rf"{cls.__name__}.backward called before forward"):
        layer.backward(np.ones(3))
