"""fit (nnscratch/train.py): every sample once per epoch, the right update, the history, the modes,
the guard against non-finite losses, gradient clipping (evaluate and predict: test_evaluation.py)."""

import math

import numpy as np
import pytest

import nnscratch as nn
from nnscratch.evaluation import evaluate, predict
from nnscratch.train import NonFiniteLossError, fit

from helpers.training import ModeSpy, ReleaseSpy, blobs, ce_loss, reference_loss, spy_model


class Recorder:
    """A plain protocol class (no base class) that passes x through and records the ids it saw.

    Column 0 of x holds each sample's index, so the recorded ids tell which samples each batch held.
    """

    def __init__(self):
        self.parameters, self.parameters_deltas, self.batches = [], [], []

    def forward(self, x, *args):
        self.batches.append(x[:, 0].astype(int).tolist())
        return x

    def backward(self, delta):
        return delta


class PlainLinear:
    """y = x @ W, written against the protocol only (no nnscratch base class)."""

    def __init__(self, weight):
        self.weight = weight
        self.parameters = [self.weight]
        self.parameters_deltas = [np.zeros_like(weight)]

    def forward(self, x, *args):
        self.x = x
        return x @ self.weight

    def backward(self, delta):
        self.parameters_deltas[0][...] = self.x.T @ delta
        return delta @ self.weight.T


def test_every_sample_once_per_epoch_in_shuffled_batches_with_a_partial_last_one():
    n, batch_size = 103, 10
    x = np.stack([np.arange(n), np.ones(n)], axis=1).astype(np.float32)
    y = np.arange(n) % 3
    recorder = Recorder()
    model = nn.Sequential(recorder, nn.Linear(2, 3, rng=0))
    fit(model, ce_loss(), nn.SGD(model, lr=1e-3), x, y, epochs=3, batch_size=batch_size, rng=0, progress=False)
    assert len(recorder.batches) == 3 * 11
    for epoch in range(3):
        batches = recorder.batches[epoch * 11 : (epoch + 1) * 11]
        assert [len(b) for b in batches] == [10] * 10 + [3]
        seen = [i for b in batches for i in b]
        assert sorted(seen) == list(range(n))  # each sample exactly once
        assert seen != list(range(n))  # shuffled
    first, second = (sum(recorder.batches[e * 11 : (e + 1) * 11], []) for e in (0, 1))
    assert first != second  # a fresh permutation each epoch


def test_full_batch_sgd_epoch_is_one_gradient_step():
    x, y = blobs(60, dtype=np.float64)
    layer = nn.Linear(2, 3, dtype=np.float64, rng=1)
    weight0, bias0 = layer.weight.copy(), layer.bias.copy()
    fit(layer, ce_loss(), nn.SGD(layer, lr=0.1), x, y, epochs=1, batch_size=len(x), rng=0, progress=False)
    # the same step by hand: dL/dz = (softmax(z) - onehot) / N
    z = x @ weight0 + bias0
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(y)), y] -= 1
    p /= len(y)
    np.testing.assert_allclose(layer.weight, weight0 - 0.1 * x.T @ p, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.bias, bias0 - 0.1 * p.sum(axis=0), rtol=1e-12, atol=1e-12)


def test_history_values_match_independent_computations():
    x, y = blobs(300)
    x_val, y_val = blobs(100, seed=1)
    model = nn.Sequential(nn.Linear(2, 16, rng=0), nn.ReLU(), nn.Linear(16, 3, rng=1))
    history = fit(model, ce_loss(), nn.Adam(model, lr=0.01), x, y, epochs=4, batch_size=32,
                  validation=(x_val, y_val), rng=0, progress=False)
    assert [r["epoch"] for r in history] == [1, 2, 3, 4]
    assert set(history[0]) == {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds"}
    assert history[-1]["loss"] < history[0]["loss"]
    assert all(r["seconds"] > 0 and r["lr"] == 0.01 for r in history)
    logits = model.forward(x_val)
    assert history[-1]["val_accuracy"] == np.mean(logits.argmax(axis=1) == y_val)
    assert history[-1]["val_accuracy"] > 0.95
    assert history[-1]["val_loss"] == pytest.approx(reference_loss(logits, y_val), rel=1e-5)


def test_one_hot_targets_and_a_probability_model():
    """Softmax -> CrossEntropy with one-hot targets: accuracy is the argmax of the probabilities."""
    x, y = blobs(300)
    targets = np.eye(3, dtype=np.float32)[y]
    model = nn.Sequential(nn.Linear(2, 3, rng=0), nn.Softmax())
    loss = nn.Sequential(nn.CrossEntropy(), nn.Mean())
    history = fit(model, loss, nn.SGD(model, lr=0.5), x, targets, epochs=3, batch_size=30, rng=0,
                  validation=(x, targets), progress=False)
    assert history[-1]["val_accuracy"] == np.mean(model.forward(x).argmax(axis=1) == y) > 0.95
    assert model[0].weight.dtype == np.float32


def test_a_plain_protocol_model_trains_and_evaluates():
    x, y = blobs(200, dtype=np.float64)
    model = PlainLinear(np.zeros((2, 3)))
    before = evaluate(model, x, y)["accuracy"]
    fit(model, ce_loss(), nn.SGD(model, lr=0.5), x, y, epochs=2, batch_size=20, rng=0, progress=False)
    assert before < 0.5 < 0.95 < evaluate(model, x, y)["accuracy"]


def test_same_rng_same_training():
    def run():
        x, y = blobs(100)
        model = nn.Sequential(nn.Linear(2, 8, rng=0), nn.Tanh(), nn.Linear(8, 3, rng=1))
        # threads fixed: at another BLAS thread count some products round differently
        history = fit(model, ce_loss(), nn.Adam(model), x, y, 2, 16, rng=np.random.default_rng(5), progress=False,
                      threads=1)
        return [(r["loss"], r["accuracy"]) for r in history], [p.copy() for p in model.parameters]

    (h1, p1), (h2, p2) = run(), run()
    assert h1 == h2
    for a, b in zip(p1, p2):
        np.testing.assert_array_equal(a, b)


def test_schedule_per_batch_initial_epoch_and_callback():
    x, y = blobs(50)
    model = nn.Linear(2, 3, rng=0)
    optimizer = nn.SGD(model, lr=1.0)
    seen, progress, rates = [], [], []

    def schedule(t):
        progress.append(t)
        return 0.1 / (1 + t)

    real_step = optimizer.step

    def step():
        rates.append(optimizer.lr)
        real_step()

    optimizer.step = step
    history = fit(model, ce_loss(), optimizer, x, y, epochs=4, batch_size=10, rng=0, progress=False,
                  initial_epoch=1, schedule=schedule, on_epoch_end=seen.append)
    assert [r["epoch"] for r in history] == [2, 3, 4]
    assert progress == pytest.approx([1 + i / 5 for i in range(15)])  # 5 batches per epoch, epochs 2-4
    assert rates == pytest.approx([0.1 / (2 + i / 5) for i in range(15)])  # set before every step
    assert [r["lr"] for r in history] == pytest.approx([0.1 / 2, 0.1 / 3, 0.1 / 4])  # each epoch's first
    assert seen == history


def test_augment_applies_to_training_batches_only():
    x, y = blobs(30)
    calls = []

    def augment(x_batch, rng):
        calls.append(len(x_batch))
        assert isinstance(rng, np.random.Generator)
        return x_batch * 0  # erase the input: the model can only learn the bias

    model = nn.Linear(2, 3, rng=0)
    history = fit(model, ce_loss(), nn.SGD(model, lr=0.1), x, y, epochs=2, batch_size=8, rng=0, progress=False,
                  validation=(x, y), augment=augment)
    assert calls == [8, 8, 8, 6] * 2
    assert np.count_nonzero(model.weight - nn.Linear(2, 3, rng=0).weight) == 0  # no gradient reached W
    # validation saw the data as it is, not augmented
    assert history[-1]["val_accuracy"] == evaluate(model, x, y, batch_size=8)["accuracy"]


def test_progress_bar_and_epoch_lines(capsys):
    x, y = blobs(40)
    model = nn.Linear(2, 3, rng=0)
    fit(model, ce_loss(), nn.SGD(model, lr=0.1), x, y, epochs=2, batch_size=10, rng=0, progress=True,
        validation=(x, y))
    err = capsys.readouterr().err
    assert "epoch 1/2: loss" in err and "epoch 2/2: loss" in err and "val_accuracy" in err


class NaNAfter:
    """A loss (plain class) that returns NaN on its k-th forward call, the mean of x otherwise."""

    def __init__(self, k):
        self.k, self.calls, self.parameters, self.parameters_deltas = k, 0, [], []

    def forward(self, x, *args):
        self.calls += 1
        self.shape = x.shape
        return np.float32(np.nan) if self.calls == self.k else np.float32(x.mean())

    def backward(self, delta):
        return np.full(self.shape, delta / np.prod(self.shape), dtype=np.float32)


def test_non_finite_loss_names_epoch_and_batch_and_skips_the_update():
    x, y = blobs(40)
    model = nn.Linear(2, 3, rng=0)
    optimizer = nn.SGD(model, lr=0.1)
    # 4 batches per epoch: call 7 is epoch 2, batch 3
    with pytest.raises(NonFiniteLossError, match=r"loss is nan at epoch 2, batch 3/4.*lr=0\.1.*lower") as info:
        fit(model, NaNAfter(7), optimizer, x, y, epochs=3, batch_size=10, rng=0, progress=False)
    assert isinstance(info.value, RuntimeError)
    assert optimizer.steps == 6  # the bad batch never reached the optimizer
    assert np.isfinite(model.weight).all()


def test_diverging_sgd_is_caught():
    x, y = blobs(100)
    model = nn.Sequential(nn.Linear(2, 64, rng=0), nn.ReLU(), nn.Linear(64, 3, rng=1))
    with pytest.raises(NonFiniteLossError, match=r"at epoch \d+, batch \d+/10"):
        fit(model, ce_loss(), nn.SGD(model, lr=1e35), x * 1e3, y, epochs=5, batch_size=10, rng=0, progress=False)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"epochs": -1}, ValueError, "epochs must be a non-negative int, got -1"),
        ({"epochs": 1.5}, TypeError, "epochs must be an int"),
        ({"batch_size": 0}, ValueError, "batch_size must be a positive int, got 0"),
        ({"y": np.zeros(9, dtype=int)}, ValueError, "x has 10 samples but y has 9"),
        ({"x": np.zeros((0, 2), np.float32), "y": np.zeros(0, int)}, ValueError, "x is empty"),
        ({"validation": ([1],)}, TypeError, "validation must be a pair"),
        ({"loss": nn.SoftmaxCrossEntropy()}, ValueError, r"scalar \(end it with Mean\(\)\), got shape \(5,\)"),
    ],
)
def test_fit_rejects_bad_arguments(kwargs, error, match):
    model = nn.Linear(2, 3, rng=0)
    args = {"x": np.zeros((10, 2), np.float32), "y": np.zeros(10, int), "epochs": 1, "batch_size": 5,
            "loss": ce_loss()}
    args.update(kwargs)
    with pytest.raises(error, match=match):
        fit(model, args.pop("loss"), nn.SGD(model, lr=0.1), progress=False, **args)


@pytest.mark.parametrize("start", [True, False])
def test_fit_trains_in_train_mode_validates_in_eval_mode_and_puts_the_mode_back(start):
    x, y = blobs(40)
    spy, model = spy_model()
    loss_spy = ModeSpy()
    loss = nn.Sequential(loss_spy, nn.SoftmaxCrossEntropy(), nn.Mean())
    model.train(start)
    loss.train(start)
    fit(model, loss, nn.SGD(model, lr=0.1), x, y, epochs=2, batch_size=20, validation=(x[:10], y[:10]),
        progress=False)
    # per epoch: two training batches in train mode, then one validation batch in eval mode
    assert spy.seen == [True, True, False] * 2
    assert loss_spy.seen == [True, True, False] * 2
    assert [layer.training for layer in (model, model[0], spy, loss, loss_spy)] == [start] * 5


@pytest.mark.parametrize("run", ["fit", "evaluate", "predict", "validation"])
def test_the_mode_is_put_back_when_the_run_raises(run):
    x, y = blobs(40)
    spy, model = spy_model(fail_after=2 if run == "validation" else 0)
    model.eval() if run == "fit" else model.train()
    found = model.training
    with pytest.raises(RuntimeError, match="boom"):
        if run in ("fit", "validation"):
            fit(model, ce_loss(), nn.SGD(model, lr=0.1), x, y, epochs=1, batch_size=20,
                validation=(x, y), progress=False)
        elif run == "evaluate":
            evaluate(model, x, y)
        else:
            predict(model, x)
    assert spy.seen[-1] is (run == "fit")  # it failed in the mode the run had put it in
    assert model.training is found and spy.training is found and model[0].training is found


def test_a_plain_model_without_modes_is_left_alone():
    x, y = blobs(20)
    model = PlainLinear(np.zeros((2, 3), np.float32))
    fit(model, ce_loss(), nn.SGD(model, lr=0.1), x, y, epochs=1, batch_size=10, validation=(x, y), progress=False)
    predict(model, x)
    assert not hasattr(model, "training")


def test_fit_keeps_its_buffers_through_training_and_validation():
    spy = ReleaseSpy()
    model = nn.Sequential(spy, nn.Linear(2, 3, rng=0))
    x, y = blobs(40)
    fit(model, ce_loss(), nn.SGD(model, lr=0.1), x, y, epochs=2, batch_size=10, validation=(x, y), rng=0,
        progress=False)
    assert spy.forwards == 16 and spy.releases == []  # 4 training + 4 validation batches a epoch


# -- fit(max_grad_norm=...) -------------------------------------------------------------------
def _clip_data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(40, 6)).astype(np.float32) * 20, rng.integers(0, 3, 40)


def test_fit_clips_the_gradient_after_backward_before_every_step():
    x, y = _clip_data()
    norms = []

    class Recording(nn.SGD):
        def step(self):
            norms.append(math.sqrt(sum(float(np.sum(d.astype(np.float64) ** 2)) for d in model.parameters_deltas)))
            super().step()

    model = nn.Sequential(nn.Linear(6, 8, rng=0), nn.ReLU(), nn.Linear(8, 3, rng=1))
    loss = nn.Sequential(nn.SoftmaxCrossEntropy(), nn.Mean())
    nn.fit(model, loss, Recording(model, lr=0.01), x, y, epochs=2, batch_size=8, rng=0, progress=False,
           max_grad_norm=0.5, threads=1)
    assert len(norms) == 10 and max(norms) <= 0.5 * (1 + 1e-6)
    unclipped = []
    model = nn.Sequential(nn.Linear(6, 8, rng=0), nn.ReLU(), nn.Linear(8, 3, rng=1))
    norms = unclipped
    nn.fit(model, loss, Recording(model, lr=0.01), x, y, epochs=1, batch_size=8, rng=0, progress=False, threads=1)
    assert unclipped[0] > 0.5  # so the clipped run did clip (the first step's gradients are the same)


def test_fit_with_clip_equals_clipping_by_hand():
    x, y = _clip_data()
    loss = nn.Sequential(nn.SoftmaxCrossEntropy(), nn.Mean())
    model = nn.Sequential(nn.Linear(6, 3, rng=0))
    nn.fit(model, loss, nn.Adam(model, lr=0.01), x, y, epochs=1, batch_size=10, rng=np.random.default_rng(5),
           progress=False, max_grad_norm=1.0, threads=1)
    by_hand = nn.Sequential(nn.Linear(6, 3, rng=0))
    optimizer = nn.Adam(by_hand, lr=0.01)
    order = np.random.default_rng(5).permutation(40)
    for start in range(0, 40, 10):
        index = order[start : start + 10]
        loss.forward(by_hand.forward(x[index]), y[index])
        by_hand.backward(loss.backward(1.0))
        nn.clip_grad_norm(by_hand, 1.0)
        optimizer.step()
    np.testing.assert_array_equal(model.parameters[0], by_hand.parameters[0])


def test_fit_stops_on_a_non_finite_gradient_norm_before_the_step():
    class InfiniteGradient(nn.Layer):
        def forward(self, scores, *args):
            self._shape = scores.shape
            return np.float32(1.0)

        def backward(self, delta):
            return np.full(self._shape, np.inf, np.float32)

    x, y = _clip_data()
    model = nn.Sequential(nn.Linear(6, 3, rng=0))
    before = model.parameters[0].copy()
    with pytest.raises(NonFiniteLossError, match=r"the gradient norm is (inf|nan) at epoch 1, batch 1/5"):
        nn.fit(model, InfiniteGradient(), nn.SGD(model, lr=0.1), x, y, epochs=1, batch_size=8, progress=False,
               max_grad_norm=1.0, threads=1)
    np.testing.assert_array_equal(model.parameters[0], before)


@pytest.mark.parametrize("value, error, match", [
    (0, ValueError, r"fit: max_grad_norm must be > 0 \(the largest gradient norm\), got 0"),
    (float("nan"), ValueError, r"fit: max_grad_norm must be > 0"),
    ("1", TypeError, r"fit: max_grad_norm must be a number or None, got str"),
    (True, TypeError, r"fit: max_grad_norm must be a number or None, got bool"),
])
def test_fit_refuses_a_bad_max_grad_norm(value, error, match):
    x, y = _clip_data()
    model = nn.Sequential(nn.Linear(6, 3, rng=0))
    with pytest.raises(error, match=match):
        nn.fit(model, nn.Sequential(nn.SoftmaxCrossEntropy(), nn.Mean()), nn.SGD(model, lr=0.1), x, y, epochs=1,
               batch_size=8, progress=False, max_grad_norm=value)
