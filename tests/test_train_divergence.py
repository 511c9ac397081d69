"""fit's guards beyond the per-batch loss (issue 25, points 5 and 8): weights or a validation loss
left non-finite by an epoch's last updates, a schedule's bad rate, validation data of another shape,
all said before they can spoil a record, a step or an epoch of work."""

import json
import math

import numpy as np
import pytest

import nnscratch as nn
from nnscratch.train import NonFiniteLossError, fit


def blobs(n=64, seed=0, width=2):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = (np.eye(3, width)[y] * 3 + rng.normal(size=(n, width))).astype(np.float32)
    return x, y


def network(width=2):
    net = nn.Sequential(nn.Linear(width, 8, rng=0), nn.ReLU(), nn.Linear(8, 3, rng=1), nn.SoftmaxCrossEntropy(),
                        nn.Mean())
    return net[:-2], net[-2:]


class Counting:
    """An optimizer around another that counts its steps and, at step ``at``, sets the first value of
    ``spoilt`` (an array of the model) to ``value``."""

    def __init__(self, inner, spoilt=None, at=None, value=np.nan):
        self.inner, self.spoilt, self.at, self.value, self.steps = inner, spoilt, at, value, 0

    @property
    def lr(self):
        return self.inner.lr

    @lr.setter
    def lr(self, value):
        self.inner.lr = value

    def step(self):
        self.inner.step()
        self.steps += 1
        if self.steps == self.at:
            self.spoilt.flat[0] = self.value


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_a_last_batch_that_spoils_a_weight_stops_fit_before_the_record_and_the_callback(value):
    x, y = blobs()
    model, loss = network()
    # 4 batches an epoch: step 8 is epoch 2's last, and no loss sees what it did
    optimizer = Counting(nn.SGD(model, lr=0.1), spoilt=model[2].bias, at=8, value=value)
    seen = []
    with pytest.raises(NonFiniteLossError) as caught:
        fit(model, loss, optimizer, x, y, epochs=3, batch_size=16, rng=0, progress=False,
            on_epoch_end=seen.append)
    assert str(caught.value) == ("training diverged: 1 weight value is NaN or infinite at the end of epoch 2; "
                                 "the learning rate (lr=0.1) is probably too high, try a lower one")
    assert [record["epoch"] for record in seen] == [1] and optimizer.steps == 8


def test_adam_at_lr_1e30_on_one_batch_is_said_not_recorded_as_nan():
    # train-mnist --model mlp --lr 1e30 --epochs 1 --limit 128: one batch, whose loss was finite;
    # the update made the scores overflow, so the validation loss is NaN.
    x, y = blobs(128, width=20)
    model, loss = network(20)
    optimizer = nn.Adam(nn.Sequential(*model, *loss), lr=1e30)
    with pytest.raises(NonFiniteLossError, match=r"^training diverged: (the validation loss is nan|[\d,]+ weight "
                                                 r"values are NaN or infinite) at the end of epoch 1; .*lr=1e\+30"):
        fit(model, loss, optimizer, x, y, epochs=1, batch_size=128, validation=(x, y), rng=0, progress=False)


def test_the_weights_checked_include_buffers():
    x, y = blobs()
    net = nn.Sequential(nn.Linear(2, 4, rng=0), nn.BatchNorm1D(4), nn.Linear(4, 3, rng=1))
    # a running statistic spoilt by the last step: eval mode's scores would mean nothing
    optimizer = Counting(nn.SGD(net, lr=0.01), spoilt=net[1].buffers[0], at=4, value=np.inf)
    with pytest.raises(NonFiniteLossError, match=r"^training diverged: 1 weight value is NaN or infinite at the end "
                                                 r"of epoch 1;"):
        fit(net, nn.Sequential(nn.SoftmaxCrossEntropy(), nn.Mean()), optimizer, x, y, 1, 16, rng=0, progress=False)


def test_a_finite_run_returns_finite_records_all_json():
    x, y = blobs()
    model, loss = network()
    history = fit(model, loss, nn.SGD(nn.Sequential(*model, *loss), lr=0.1), x, y, 2, 16, validation=(x, y), rng=0,
                  progress=False)

    def refuse(name):
        raise ValueError(name)

    assert json.loads(json.dumps(history), parse_constant=refuse) == history


def test_every_token_ignored_is_nan_by_rule_not_a_divergence():
    ids = np.zeros((4, 3), np.int64)
    labels = np.full((4, 3), -100)
    net = nn.Sequential(nn.Embedding(5, 4, rng=0), nn.Linear(4, 5, rng=1), nn.SoftmaxCrossEntropy(), nn.Mean())
    history = fit(net[:-2], net[-2:], nn.SGD(net, lr=0.1), ids, labels, 1, 2, validation=(ids, labels), rng=0,
                  progress=False)
    assert math.isnan(history[0]["val_loss"]) and math.isnan(history[0]["val_accuracy"])


# -- the schedule's rates ------------------------------------------------------------------------
@pytest.mark.parametrize("rate, shown", [(-0.1, "-0.1"), (math.nan, "nan"), (math.inf, "inf"), (-math.inf, "-inf")])
def test_a_schedule_giving_a_bad_rate_stops_before_the_step_and_names_it(rate, shown):
    x, y = blobs()
    model, loss = network()
    optimizer = Counting(nn.SGD(nn.Sequential(*model, *loss), lr=0.1))
    weights = [p.copy() for p in model.parameters]
    schedule = lambda t: 0.1 if t < 1.5 else rate  # noqa: E731: epoch 2's batch 3 (t = 1.5) is the first bad one
    with pytest.raises(ValueError) as caught:
        fit(model, loss, optimizer, x, y, epochs=3, batch_size=16, rng=0, progress=False, schedule=schedule)
    expected = ">= 0" if math.isfinite(rate) else "finite and >= 0"
    assert str(caught.value) == (f"fit: the schedule at epoch 2, batch 3/4 (t=1.5): the learning rate must be "
                                 f"{expected}, got {shown}")
    assert optimizer.steps == 6 and optimizer.lr == 0.1 and not any(np.array_equal(a, b) for a, b in
                                                                     zip(weights, model.parameters))


def test_a_schedule_giving_no_number_is_a_type_error():
    x, y = blobs()
    model, loss = network()
    with pytest.raises(TypeError, match=r"^fit: the schedule at epoch 1, batch 1/4 \(t=0\): the learning rate must "
                                        r"be a real number, got str '0.1'"):
        fit(model, loss, nn.SGD(nn.Sequential(*model, *loss), lr=0.1), x, y, 1, 16, progress=False,
            schedule=lambda t: "0.1")


@pytest.mark.parametrize("rate", [np.float32(0.05), np.array(0.05), 1])
def test_a_schedule_may_give_numpy_scalars_and_ints(rate):
    x, y = blobs()
    model, loss = network()
    optimizer = nn.SGD(nn.Sequential(*model, *loss), lr=0.1)
    history = fit(model, loss, optimizer, x, y, 1, 16, progress=False, schedule=lambda t: rate)
    assert history[0]["lr"] == optimizer.lr == float(rate) and type(optimizer.lr) is float


def test_a_zero_rate_is_allowed():
    x, y = blobs()
    model, loss = network()
    before = [p.copy() for p in model.parameters]
    fit(model, loss, nn.SGD(nn.Sequential(*model, *loss), lr=0.1), x, y, 1, 16, progress=False, schedule=lambda t: 0)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.parameters))


# -- the validation data, checked before the first step ------------------------------------------
@pytest.mark.parametrize("validation, message", [
    (lambda x, y: (x[:, :1], y), r"x has shape \(64, 1\), the training x \(64, 2\): each sample must have the "
                                 r"training data's shape"),
    (lambda x, y: (x, np.eye(3)[y]), r"y has shape \(64, 3\), the training y \(64,\): each target must have"),
    (lambda x, y: (x[:5], y[:4]), r"x has 5 samples but y has 4"),
    (lambda x, y: (x[:0], y[:0]), r"x is empty"),
])
def test_validation_data_of_another_kind_is_refused_before_the_first_step(validation, message):
    x, y = blobs()
    model, loss = network()
    optimizer = Counting(nn.SGD(nn.Sequential(*model, *loss), lr=0.1))
    with pytest.raises(ValueError, match=r"^fit \(validation data\): " + message):
        fit(model, loss, optimizer, x, y, 1, 16, validation=validation(x, y), progress=False)
    assert optimizer.steps == 0


def test_one_hot_rows_as_wide_as_the_samples_are_no_sequences():
    x, y = blobs(width=3)
    targets = np.eye(3)[y]  # (64, 3), as x: the widths agree, and still no token is in sight
    model, _ = network(3)
    with pytest.raises(ValueError, match=r"^fit \(validation data\): x has shape \(64, 1\), the training x \(64, 3\)"):
        fit(model, nn.Sequential(nn.CrossEntropy(), nn.Mean()), nn.SGD(model, lr=0.1), x, targets, 1, 16,
            validation=(x[:, :1], targets[:, :1]), progress=False)


def test_sequences_of_another_length_validate():
    rng = np.random.default_rng(0)
    ids, labels = rng.integers(0, 5, (8, 6)), rng.integers(0, 5, (8, 6))
    net = nn.Sequential(nn.Embedding(5, 4, rng=0), nn.Linear(4, 5, rng=1), nn.SoftmaxCrossEntropy(), nn.Mean())
    history = fit(net[:-2], net[-2:], nn.SGD(net, lr=0.1), ids, labels, 1, 4, rng=0, progress=False,
                  validation=(ids[:, :3], labels[:, :3]))
    expected = nn.evaluate(net[:-2], ids[:, :3], labels[:, :3], loss=net[-2:])
    assert history[0]["val_accuracy"] == expected["accuracy"]
    assert history[0]["val_loss"] == pytest.approx(expected["loss"], rel=1e-6)  # float32 sums in other batches
    with pytest.raises(ValueError, match=r"^fit \(validation data\): x has shape \(8, 6, 1\), the training x \(8, 6\)"):
        fit(net[:-2], net[-2:], nn.SGD(net, lr=0.1), ids, labels, 1, 4, validation=(ids[..., None], labels),
            progress=False)
    with pytest.raises(ValueError, match=r"^fit \(validation data\): x has shape \(8, 3\) and y \(8, 2\): sequences of "
                                         r"3 steps need a label for each, as the training data have$"):
        fit(net[:-2], net[-2:], nn.SGD(net, lr=0.1), ids, labels, 1, 4, validation=(ids[:, :3], labels[:, :2]),
            progress=False)
