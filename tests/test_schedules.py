"""Learning-rate schedules: hand-computed values, PyTorch's lr_scheduler where the definitions
coincide, and bad arguments."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnscratch as nn
from nnscratch import schedules


def test_constant():
    schedule = schedules.constant(0.1)
    assert [schedule(t) for t in (0, 0.5, 3, 100)] == [0.1, 0.1, 0.1, 0.1]
    assert repr(schedule) == "constant(lr=0.1)"


def test_step_decay_hand_computed():
    schedule = schedules.step_decay(0.1, step_size=2, gamma=0.5)
    # floor(t / 2) halvings: 0.1 on [0, 2), 0.05 on [2, 4), 0.025 on [4, 6)
    assert [schedule(t) for t in (0, 1.99, 2, 3.5, 4, 5.999)] == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025, 0.025])
    half = schedules.step_decay(1.0, step_size=0.5)  # a step every half epoch, gamma 0.1 by default
    assert [half(t) for t in (0.49, 0.5, 1.0, 1.2)] == pytest.approx([1.0, 0.1, 0.01, 0.01])


def test_exponential_hand_computed():
    schedule = schedules.exponential(0.2, gamma=0.5)
    assert [schedule(t) for t in (0, 1, 2, 0.5)] == pytest.approx([0.2, 0.1, 0.05, 0.2 / math.sqrt(2)])


def test_cosine_hand_computed():
    schedule = schedules.cosine(0.2, epochs=4)
    # 0.1 * (1 + cos(pi t / 4)): 0.2, 0.1 (1 + 0.70710678), 0.1, 0.1 (1 - 0.70710678), then 0
    assert [schedule(t) for t in (0, 1, 2, 3, 4, 7)] == pytest.approx(
        [0.2, 0.17071068, 0.1, 0.02928932, 0.0, 0.0], abs=1e-8)
    floor = schedules.cosine(0.2, epochs=4, min_lr=0.02)
    # 0.02 + 0.09 (1 + cos(pi t / 4))
    assert [floor(t) for t in (0, 2, 4, 5)] == pytest.approx([0.2, 0.11, 0.02, 0.02])


def test_cosine_with_warmup_hand_computed():
    schedule = schedules.cosine(0.3, epochs=5, warmup=1)
    # linear 0 -> 0.3 over the first epoch, then 0.15 (1 + cos(pi (t - 1) / 4))
    assert [schedule(t) for t in (0, 0.25, 0.5, 1, 3, 4, 5)] == pytest.approx(
        [0.0, 0.075, 0.15, 0.3, 0.15, 0.15 * (1 - math.sqrt(0.5)), 0.0], abs=1e-12)
    values = [schedule(t / 100) for t in range(500)]
    peak = values.index(max(values))
    assert peak == 100 and all(a < b for a, b in zip(values[:peak], values[1 : peak + 1]))
    assert all(a > b for a, b in zip(values[peak:], values[peak + 1 :]))
    assert repr(schedule) == "cosine(lr=0.3, epochs=5, warmup=1)"


def test_one_cycle_hand_computed():
    schedule = schedules.one_cycle(1.0, epochs=10)  # PyTorch's defaults: pct 0.3, div 25, final div 1e4
    # up from 1/25 = 0.04 to 1 over 3 epochs (half way at 1.5: 0.52), then down to 0.04 / 1e4 at 10
    assert [schedule(t) for t in (0, 1.5, 3, 6.5, 10, 12)] == pytest.approx(
        [0.04, 0.52, 1.0, (1 + 4e-6) / 2, 4e-6, 4e-6], abs=1e-12)
    linear = schedules.one_cycle(1.0, epochs=4, pct_start=0.25, div_factor=10, final_div_factor=100, anneal="linear")
    # 0.1 -> 1 over one epoch, then 1 -> 0.001 over three, linearly
    assert [linear(t) for t in (0, 0.5, 1, 2.5, 4)] == pytest.approx([0.1, 0.55, 1.0, 0.5005, 0.001])


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: schedules.constant(0), ValueError, r"constant: lr must be > 0, got 0"),
        (lambda: schedules.constant("0.1"), TypeError, r"constant: lr must be a real number, got str"),
        (lambda: schedules.step_decay(0.1, 0), ValueError, r"step_decay: step_size must be > 0, got 0"),
        (lambda: schedules.step_decay(0.1, 1, gamma=1.5), ValueError, r"step_decay: gamma must be > 0 and <= 1, got 1.5"),
        (lambda: schedules.exponential(0.1, gamma=0), ValueError, r"exponential: gamma must be > 0 and <= 1, got 0"),
        (lambda: schedules.exponential(float("nan"), 0.9), ValueError, r"exponential: lr must be finite and > 0, got nan"),
        (lambda: schedules.cosine(0.1, 0), ValueError, r"cosine: epochs must be > 0, got 0"),
        (lambda: schedules.cosine(0.1, 5, warmup=5), ValueError, r"cosine: warmup must be >= 0 and < 5, got 5"),
        (lambda: schedules.cosine(0.1, 5, warmup=-1), ValueError, r"cosine: warmup must be >= 0 and < 5, got -1"),
        (lambda: schedules.cosine(0.1, 5, min_lr=0.2), ValueError, r"cosine: min_lr must be >= 0 and <= 0.1, got 0.2"),
        (lambda: schedules.cosine(0.1, True), TypeError, r"cosine: epochs must be a real number, got bool"),
        (lambda: schedules.one_cycle(0.1, 5, pct_start=1), ValueError, r"one_cycle: pct_start must be > 0 and < 1, got 1"),
        (lambda: schedules.one_cycle(0.1, 5, div_factor=0), ValueError, r"one_cycle: div_factor must be > 0, got 0"),
        (lambda: schedules.one_cycle(0.1, 5, final_div_factor=-1), ValueError, r"one_cycle: final_div_factor must be > 0"),
        (lambda: schedules.one_cycle(0.1, 5, anneal="exp"), ValueError, r"one_cycle: anneal must be 'cos' or 'linear', got 'exp'"),
        (lambda: schedules.cosine(0.1, 5)(-0.5), ValueError, r"cosine\(lr=0.1, epochs=5\): t \(epochs done\) must be >= 0, got -0.5"),
        (lambda: schedules.constant(0.1)(None), TypeError, r"constant\(lr=0.1\): t \(epochs done\) must be a real number, got NoneType"),
    ],
)
def test_bad_arguments(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_fit_sets_the_scheduled_rate_before_every_batch():
    import numpy as np

    layer = nn.Linear(2, 2, rng=0)
    seen = []

    class Recording(nn.SGD):
        def step(self):
            seen.append(self.lr)
            super().step()

    x, y = np.ones((8, 2), np.float32), np.zeros(8, np.int64)
    schedule = schedules.cosine(0.1, epochs=2, warmup=0.5)
    nn.fit(layer, nn.Sequential(nn.SoftmaxCrossEntropy(), nn.Mean()), Recording(layer, lr=1.0), x, y,
           epochs=2, batch_size=2, progress=False, schedule=schedule)
    assert seen == [schedule(t / 4) for t in range(8)]


# -- PyTorch's schedulers, stepped once per epoch: the same rates at whole epochs ---------------
def torch_rates(make_scheduler, lr, epochs):
    torch = pytest.importorskip("torch")
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    scheduler = make_scheduler(torch.optim.lr_scheduler, optimizer)
    rates = []
    for _ in range(epochs):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates


@pytest.mark.torch
@pytest.mark.parametrize(
    "ours, theirs",
    [
        (schedules.step_decay(0.1, step_size=3, gamma=0.3), lambda s, o: s.StepLR(o, step_size=3, gamma=0.3)),
        (schedules.exponential(0.1, gamma=0.7), lambda s, o: s.ExponentialLR(o, gamma=0.7)),
        (schedules.cosine(0.1, epochs=12), lambda s, o: s.CosineAnnealingLR(o, T_max=12)),
        (schedules.cosine(0.1, epochs=12, min_lr=0.01), lambda s, o: s.CosineAnnealingLR(o, T_max=12, eta_min=0.01)),
        (schedules.constant(0.1), lambda s, o: s.ConstantLR(o, factor=1.0)),
    ],
    ids=["step", "exponential", "cosine", "cosine-min", "constant"],
)
def test_matches_torch_at_whole_epochs(ours, theirs):
    assert [ours(t) for t in range(12)] == pytest.approx(torch_rates(theirs, 0.1, 12), rel=1e-12, abs=1e-15)


@pytest.mark.torch
@pytest.mark.parametrize("anneal", ["cos", "linear"])
def test_one_cycle_is_torch_s_shape(anneal):
    # OneCycleLR over T steps ends its warmup at step w = pct_start * T - 1 and its anneal at T - 1;
    # ours at t = pct_start * epochs and t = epochs. Mapping each phase's steps linearly onto its
    # epochs, the two give the same rate at every step.
    torch = pytest.importorskip("torch")
    total, pct, epochs = 101, 0.3, 10
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=2.0, total_steps=total, pct_start=pct,
                                                    anneal_strategy=anneal, cycle_momentum=False)
    ours = schedules.one_cycle(2.0, epochs=epochs, pct_start=pct, anneal=anneal)
    w = pct * total - 1
    for step in range(total):
        if step <= w:
            t = step / w * (pct * epochs)
        else:
            t = pct * epochs + (step - w) / (total - 1 - w) * (epochs - pct * epochs)
        assert optimizer.param_groups[0]["lr"] == pytest.approx(ours(t), rel=1e-10), step
        optimizer.step()
        scheduler.step()


# -- extreme arguments: refused where the schedule is built, or finite rates ------------------------
def test_a_tiny_div_factor_or_step_size_refuses_or_stays_finite():
    with pytest.raises(ValueError, match=r"one_cycle: max_lr / div_factor = 0\.1 / 1e-320 is not a finite rate"):
        schedules.one_cycle(0.1, 1, div_factor=1e-320)
    decay = schedules.step_decay(0.1, 1e-320)  # used to raise OverflowError at the first t > 0
    assert [decay(t) for t in (0.0, 1e-300, 0.5, 7.0)] == [0.1, 0.0, 0.0, 0.0]
    assert schedules.step_decay(0.1, 1e-320, gamma=1.0)(3.0) == 0.1


@pytest.mark.parametrize("rule, error, match", [
    (lambda t: -0.1, ValueError, r"custom at t=0\.5: the learning rate must be >= 0, got -0\.1"),
    (lambda t: math.nan, ValueError, r"custom at t=0\.5: the learning rate must be finite and >= 0, got nan"),
    (lambda t: math.inf, ValueError, "got inf"),
    (lambda t: "0.1", TypeError, r"custom at t=0\.5: the learning rate must be a real number, got str '0\.1'"),
])  # fmt: skip
def test_a_schedule_that_gives_a_bad_rate_is_an_error_where_it_is_called(rule, error, match):
    with pytest.raises(error, match=match):
        schedules.Schedule("custom", rule)(0.5)
    assert schedules.check_rate("fit", 0) == 0.0


REAL = st.floats(min_value=5e-324, max_value=1e308) | st.sampled_from([5e-324, 1e-320, 1e-300, 1e300, 1.7e308])
FRACTION = st.floats(min_value=5e-324, max_value=1.0, exclude_max=True)


@settings(max_examples=400, deadline=None)
@given(st.one_of(
    st.builds(lambda lr, s, g: ("step_decay", lr, s, g), REAL, REAL, st.floats(5e-324, 1.0)),
    st.builds(lambda lr, g: ("exponential", lr, g), REAL, st.floats(5e-324, 1.0)),
    st.builds(lambda lr, e, w, m: ("cosine", lr, e, w * e, m * lr), REAL, REAL, st.floats(0, 1.0, exclude_max=True),
              st.floats(0, 1.0)),
    st.builds(lambda lr, e, p, d, f: ("one_cycle", lr, e, p, d, f), REAL, REAL, FRACTION, REAL, REAL),
), st.lists(st.floats(0, 1e308) | st.sampled_from([0.0, 5e-324, 0.5, 1.0, 1e308]), min_size=1, max_size=6))
def test_every_schedule_refuses_or_gives_finite_non_negative_rates(arguments, times):
    name, *values = arguments
    try:
        schedule = getattr(schedules, name)(*values)
    except ValueError:
        return  # refused where it is built, with a message: fine
    for t in times:
        rate = schedule(t)
        assert math.isfinite(rate) and rate >= 0, (name, values, t, rate)
