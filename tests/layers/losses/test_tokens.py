"""The cross-entropies over tokens: logits (N, T, V) with labels (N, T) and ignore_index, Mean of
the masked per-token losses, against a loop over the tokens, PyTorch's CrossEntropyLoss and
NLLLoss (float32 and float64), the gradient check, bad targets and fit/evaluate over tokens."""

import math
import warnings

import numpy as np
import pytest

import nnscratch as nn

from helpers.dtypes import each_dtype
from nnscratch import evaluate, fit

IGNORE = -100


def token_case(seed, shape=(3, 5, 4), ignored=0.3, ignore_index=IGNORE, dtype=np.float64):
    """Logits (N, T, V) and labels (N, T) with about ``ignored`` of them set to ``ignore_index``."""
    rng = np.random.default_rng(seed)
    logits = (rng.normal(size=shape) * 2).astype(dtype)
    labels = rng.integers(0, shape[-1], shape[:-1])
    labels[rng.uniform(size=labels.shape) < ignored] = ignore_index
    return logits, labels


def loop_losses(logits, labels, ignore_index=IGNORE):
    """(per-token losses, dL/dlogits of their mean over the kept tokens), one token at a time."""
    losses, grad = np.zeros(labels.shape), np.zeros(logits.shape)
    kept = [index for index in np.ndindex(labels.shape) if labels[index] != ignore_index]
    for index in kept:
        row = [float(v) for v in logits[index]]
        top = max(row)
        total = sum(math.exp(v - top) for v in row)
        losses[index] = top + math.log(total) - row[labels[index]]
        for c, v in enumerate(row):
            grad[index][c] = (math.exp(v - top) / total - (c == labels[index])) / len(kept)
    return losses, grad


@pytest.mark.parametrize("shape", [(3, 5, 4), (2, 1, 7), (1, 6, 3), (2, 3, 2, 5)], ids=str)
def test_per_token_losses_and_their_mean_equal_a_loop_over_the_tokens(shape):
    logits, labels = token_case(0, shape)
    labels.flat[0] = IGNORE  # at least one ignored token
    layer, mean = nn.SoftmaxCrossEntropy(), nn.Mean()
    losses = layer.forward(logits, labels)
    expected, expected_grad = loop_losses(logits, labels)
    assert isinstance(losses, np.ma.MaskedArray) and losses.shape == shape[:-1]
    np.testing.assert_array_equal(np.ma.getmaskarray(losses), labels == IGNORE)
    np.testing.assert_allclose(losses.data, expected, rtol=1e-12, atol=1e-15)  # 0 under the mask
    kept = labels != IGNORE
    assert mean.forward(losses) == pytest.approx(expected[kept].mean(), rel=1e-12)
    np.testing.assert_allclose(layer.backward(mean.backward()), expected_grad, rtol=1e-10, atol=1e-15)


def test_no_ignored_token_gives_a_plain_array_and_the_plain_mean():
    logits, labels = token_case(1, ignored=0.0)
    losses = nn.SoftmaxCrossEntropy().forward(logits, labels)
    assert type(losses) is np.ndarray
    net = nn.Sequential(nn.SoftmaxCrossEntropy(), nn.Mean())
    expected, expected_grad = loop_losses(logits, labels)
    assert net.forward(logits, labels) == pytest.approx(expected.mean(), rel=1e-12)
    np.testing.assert_allclose(net.backward(), expected_grad, rtol=1e-10, atol=1e-15)


def test_a_sequence_equals_its_rows_as_a_batch_of_samples():
    logits, labels = token_case(2, ignored=0.0)
    rows = nn.SoftmaxCrossEntropy().forward(logits.reshape(-1, 4), labels.reshape(-1))
    np.testing.assert_array_equal(nn.SoftmaxCrossEntropy().forward(logits, labels), rows.reshape(labels.shape))


def test_cross_entropy_on_probabilities_over_tokens_equals_softmax_then_cross_entropy():
    logits, labels = token_case(3)
    fused = nn.Sequential(nn.SoftmaxCrossEntropy(), nn.Mean())
    split = nn.Sequential(nn.Softmax(), nn.CrossEntropy(), nn.Mean())
    assert split.forward(logits, labels) == pytest.approx(fused.forward(logits, labels), rel=1e-12)
    np.testing.assert_allclose(split.backward(), fused.backward(), rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("cls", [nn.SoftmaxCrossEntropy, nn.CrossEntropy])
def test_an_ignored_token_gets_exactly_zero_gradient_whatever_delta_says(cls):
    logits, labels = token_case(4)
    x = nn.Softmax().forward(logits) if cls is nn.CrossEntropy else logits
    layer = cls()
    layer.forward(x, labels)
    delta = np.random.default_rng(5).normal(size=labels.shape)
    delta[labels == IGNORE] = np.array([np.inf, -np.inf, np.nan, 1e300])[np.arange((labels == IGNORE).sum()) % 4]
    grad = layer.backward(delta)
    assert np.all(grad[labels == IGNORE] == 0) and np.isfinite(grad).all()


def test_ignored_positions_never_give_nan_even_with_extreme_logits():
    logits, labels = token_case(6, dtype=np.float32)
    labels[0] = IGNORE  # a whole sequence of padding
    logits[labels == IGNORE] = np.float32(1e30) * np.sign(logits[labels == IGNORE])
    net = nn.Sequential(nn.SoftmaxCrossEntropy(), nn.Mean())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow or invalid-value warning either
        value = net.forward(logits, labels)
        grad = net.backward()
    expected, _ = loop_losses(logits, labels)
    assert value == pytest.approx(expected[labels != IGNORE].mean(), rel=1e-6)
    assert np.isfinite(grad).all() and np.all(grad[labels == IGNORE] == 0)


def test_mean_of_a_masked_array_and_a_fully_masked_one():
    values = np.ma.MaskedArray(np.array([[1.0, 99.0, 3.0], [5.0, 7.0, -4.0]], np.float32),
                               mask=[[False, True, False], [False, False, True]])
    mean = nn.Mean()
    y = mean.forward(values)
    assert y.dtype == np.float32 and y == pytest.approx((1 + 3 + 5 + 7) / 4)  # 99 and -4 count for nothing
    grad = mean.backward(2.0)
    np.testing.assert_array_equal(grad, np.where(values.mask, 0, np.float32(0.5)))
    assert type(grad) is np.ndarray and grad.dtype == np.float32
    nothing = np.ma.MaskedArray(np.ones((2, 3)), mask=True)
    assert mean.forward(nothing) == 0.0
    np.testing.assert_array_equal(mean.backward(), np.zeros((2, 3)))
    # a masked array whose mask masks nothing is a plain mean
    assert mean.forward(np.ma.MaskedArray(np.arange(4.0), mask=False)) == 1.5


def test_a_batch_of_padding_alone_gives_zero_loss_and_zero_gradient():
    logits, labels = token_case(7)
    labels[...] = IGNORE
    net = nn.Sequential(nn.SoftmaxCrossEntropy(), nn.Mean())
    assert net.forward(logits, labels) == 0.0
    np.testing.assert_array_equal(net.backward(), np.zeros_like(logits))


def test_labels_per_sample_take_ignore_index_too_and_ignore_index_may_be_a_class():
    logits = np.random.default_rng(8).normal(size=(5, 3))
    labels = np.array([0, -100, 2, 1, -100])
    net = nn.Sequential(nn.SoftmaxCrossEntropy(), nn.Mean())
    expected, _ = loop_losses(logits, labels)
    assert net.forward(logits, labels) == pytest.approx(expected[labels != IGNORE].mean(), rel=1e-12)
    padded = nn.Sequential(nn.SoftmaxCrossEntropy(ignore_index=0), nn.Mean())  # class 0 is padding
    expected, _ = loop_losses(logits, np.array([0, 1, 2, 1, 0]), ignore_index=0)
    assert padded.forward(logits, np.array([0, 1, 2, 1, 0])) == pytest.approx(expected[[1, 2, 3]].mean(), rel=1e-12)
    assert padded[0].config() == {"ignore_index": 0} and nn.SoftmaxCrossEntropy().config() == {}


def test_gradient_check_over_tokens_with_ignored_ones():
    logits, labels = token_case(9, (2, 4, 3))
    labels[0, 0], labels[1, 2] = IGNORE, 1
    for layer, x in ((nn.SoftmaxCrossEntropy(), logits), (nn.CrossEntropy(), nn.Softmax().forward(logits))):
        assert nn.sanity_check(layer, x, args=(labels,)).passed
        assert nn.sanity_check(nn.Sequential(layer, nn.Mean()), x, args=(labels,)).passed


@pytest.mark.parametrize("cls", [nn.SoftmaxCrossEntropy, nn.CrossEntropy])
def test_bad_token_targets(cls):
    name, x = cls.__name__, np.full((2, 3, 4), 0.25)
    layer = cls()
    with pytest.raises(ValueError, match=rf"{name}: expected integer labels of shape \(2, 3\) \(one per row of scores"):
        layer.forward(x, np.zeros((2, 4), int))
    with pytest.raises(TypeError, match=rf"{name}: targets of shape \(2, 3\) must be integer class labels, got dtype float64"):
        layer.forward(x, np.zeros((2, 3)))
    with pytest.raises(ValueError, match=rf"{name}: labels must be in \[0, 4\) for 4 classes \(or ignore_index=-100\), "
                                         r"got -1 at index \(1, 2\)"):
        layer.forward(x, np.array([[0, 1, 2], [3, 0, -1]]))
    with pytest.raises(ValueError, match=rf"{name}: expected one-hot/soft targets of shape \(2, 3, 4\), got \(2, 3, 5\)"):
        layer.forward(x, np.zeros((2, 3, 5)))
    with pytest.raises(ValueError, match=rf"{name}: expected integer labels of shape \(2, 3\) or one-hot/soft targets of "
                                         r"shape \(2, 3, 4\), got shape \(2,\)"):
        layer.forward(x, np.zeros(2, int))
    with pytest.raises(TypeError, match=rf"{name}: ignore_index must be an int, got float -100.0"):
        cls(ignore_index=-100.0)
    with pytest.raises(TypeError, match=rf"{name}: ignore_index must be an int, got bool True"):
        cls(ignore_index=True)
    layer.forward(x, np.zeros((2, 3), int))
    with pytest.raises(ValueError, match=rf"{name}.backward: expected delta of shape \(2, 3\)"):
        layer.backward(np.ones(6))


@pytest.mark.parametrize("cls", [nn.SoftmaxCrossEntropy, nn.CrossEntropy])
def test_soft_targets_over_tokens(cls):
    rng = np.random.default_rng(10)
    logits = rng.normal(size=(2, 3, 4))
    soft = rng.uniform(size=(2, 3, 4))
    soft /= soft.sum(axis=-1, keepdims=True)
    x = nn.Softmax().forward(logits) if cls is nn.CrossEntropy else logits
    losses = cls().forward(x, soft)
    log_probs = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
    np.testing.assert_allclose(losses, -(soft * log_probs).sum(axis=-1), rtol=1e-12)


def test_save_and_load_keep_ignore_index(tmp_path):
    net = nn.Sequential(nn.Linear(4, 3, rng=0), nn.SoftmaxCrossEntropy(ignore_index=2), nn.Mean())
    loaded = nn.load(nn.save(net, tmp_path / "net.npz"))
    assert loaded[1].ignore_index == 2 and repr(loaded) == repr(net)
    crossed = nn.load(nn.save(nn.Sequential(nn.Softmax(), nn.CrossEntropy(ignore_index=-1)), tmp_path / "ce.npz"))
    assert crossed[1].ignore_index == -1


# -- PyTorch ---------------------------------------------------------------------------------------
def torch_parity_cases():
    """(shape, labels rule) over random shapes: some rows fully ignored, one batch fully ignored."""
    rng = np.random.default_rng(11)
    shapes = [tuple(int(v) for v in rng.integers(1, 7, 2)) + (int(rng.integers(2, 9)),) for _ in range(5)]
    return [(shape, "some") for shape in shapes] + [((3, 4, 5), "rows"), ((2, 3, 4), "all"), ((6, 5), "some")]


@pytest.mark.torch
@pytest.mark.parametrize("shape, ignored", torch_parity_cases(), ids=str)
@each_dtype(float64=1e-12, float32=2e-6)
@pytest.mark.parametrize("ignore_index", [-100, 1])
def test_mean_of_the_token_losses_matches_pytorch(torch, shape, ignored, dtype, tolerance, ignore_index):
    logits, labels = token_case(sum(shape), shape, 0.3, ignore_index, dtype)
    labels.flat[-1] = 0  # a class (ignore_index is never 0 here): at least one token counts
    if ignored == "rows":
        labels[0], labels[2] = ignore_index, ignore_index  # whole sequences of padding
    elif ignored == "all":
        labels[...] = ignore_index
    for cls in (nn.SoftmaxCrossEntropy, nn.CrossEntropy):
        x = nn.Softmax().forward(logits) if cls is nn.CrossEntropy else logits
        net = nn.Sequential(cls(ignore_index=ignore_index), nn.Mean())
        value, grad = net.forward(x, labels), net.backward()
        tx = torch.tensor(x, requires_grad=True)
        scores = tx if cls is nn.SoftmaxCrossEntropy else torch.log(tx)  # CrossEntropy: NLLLoss of log p
        loss_fn = torch.nn.CrossEntropyLoss if cls is nn.SoftmaxCrossEntropy else torch.nn.NLLLoss
        t_loss = loss_fn(ignore_index=ignore_index, reduction="mean")(
            scores.reshape(-1, shape[-1]), torch.tensor(labels).reshape(-1))
        t_loss.backward()
        assert value.dtype == grad.dtype == dtype
        if ignored == "all":  # nothing to average: PyTorch says NaN (0 / 0), nnscratch 0 with no gradient
            assert math.isnan(t_loss.item()) and value == 0.0 and not grad.any()
            continue
        assert float(value) == pytest.approx(t_loss.item(), rel=tolerance, abs=tolerance)
        np.testing.assert_allclose(grad, tx.grad.numpy(), rtol=tolerance, atol=tolerance)


# -- fit and evaluate over tokens ------------------------------------------------------------------
def copy_task(n=64, t=6, v=5, seed=12):
    """One-hot tokens (N, T, V) whose target is the token itself, a tenth of them padding (-100)."""
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, v, (n, t))
    x = np.eye(v, dtype=np.float32)[tokens]
    y = tokens.copy()
    y[rng.uniform(size=y.shape) < 0.1] = IGNORE
    return x, y


def test_evaluate_over_tokens_is_the_mean_over_every_token_not_ignored():
    x, y = copy_task()
    model = nn.Sequential(nn.Linear(5, 5, rng=0))
    loss = nn.Sequential(nn.SoftmaxCrossEntropy(), nn.Mean())
    result = evaluate(model, x, y, batch_size=10, loss=loss)  # 7 batches of unequal token counts
    scores = model.forward(x)
    kept = y != IGNORE
    expected_loss, _ = loop_losses(scores.astype(np.float64), y)
    assert result["loss"] == pytest.approx(expected_loss[kept].mean(), rel=1e-5)
    assert result["accuracy"] == pytest.approx(np.mean(scores.argmax(-1)[kept] == y[kept]))


def test_fit_learns_tokens_and_reports_loss_and_accuracy_over_the_tokens_counted():
    x, y = copy_task()
    model = nn.Sequential(nn.Linear(5, 5, rng=1))
    loss = nn.Sequential(nn.SoftmaxCrossEntropy(), nn.Mean())
    history = fit(model, loss, nn.Adam(model, lr=0.1), x, y, epochs=15, batch_size=16, rng=0, progress=False,
                  validation=(x, y))
    assert history[-1]["accuracy"] > 0.99 and history[-1]["val_accuracy"] == 1.0
    assert history[-1]["val_loss"] < history[0]["val_loss"] / 5
    # a padding token predicted "wrong" would cost accuracy if it were counted: it is not
    assert evaluate(model, x, np.full_like(y, IGNORE), loss=loss) == {"accuracy": pytest.approx(math.nan, nan_ok=True),
                                                                      "loss": pytest.approx(math.nan, nan_ok=True)}
