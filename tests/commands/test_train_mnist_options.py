"""train-mnist's numeric options bounded before any work: no value, however large, reaches the run
as an OverflowError (nnscratch/commands/train_mnist_options.py)."""

from __future__ import annotations

import math
import re

import pytest

from nnscratch.cli import train_mnist_main
from nnscratch.commands.train_mnist_options import INT_RANGES
from nnscratch.presets import SCHEDULES, make_schedule

HUGE = "1" + "0" * 400


def options(data, *extra):
    return ["--data-dir", str(data.data_dir), "--mirror", data.url, "--quiet", *extra]


@pytest.mark.parametrize("argv, message", [
    (["--epochs", HUGE, "--schedule", "step"], r"--epochs must be at most 100,000, got 100000000000\.\.\.\(401 digits\)"),
    (["--epochs", "100001"], "--epochs must be at most 100,000, got 100001"),
    (["--batch-size", HUGE], r"--batch-size must be at most 1,000,000, got 100000000000\.\.\.\(401 digits\)"),
    (["--limit", HUGE], "--limit must be at most 1,000,000, got 100000000000"),
    (["--seed", HUGE], "--seed must be at most 18,446,744,073,709,551,615, got 100000000000"),
    (["--seed", str(2**64)], "--seed must be at most 18,446,744,073,709,551,615, got 18446744073709551616"),
    (["--shift", HUGE], "--shift must be between 0 and 8 pixels, got 100000000000"),
    (["--threads", HUGE], r"--threads must be auto or an int from 1 to 1024, got 100000000000\.\.\.\(401 digits\)"),
    (["--epochs", "9" * 5000], r"--epochs must be an int, got '9{30}"),  # beyond int()'s 4300 digits
    (["--lr", HUGE], "--lr must be a finite number > 0, got inf"),
    (["--lr", "1e-400"], "--lr must be a finite number > 0, got 0"),
    (["--weight-decay", HUGE], "--weight-decay must be a finite number >= 0, got inf"),
    (["--momentum", "nan", "--optimizer", "sgd"], r"--momentum must be in \[0, 1\), got nan"),
])  # fmt: skip
def test_every_numeric_option_is_bounded_before_any_work(synthetic_mnist, capsys, argv, message):
    assert train_mnist_main(options(synthetic_mnist, *argv)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"train-mnist: error: ") and len(err) < 300 and err.count("\n") == 1
    assert re.search(message, err), err
    assert synthetic_mnist.url.requests == [] and not synthetic_mnist.data_dir.exists()


@pytest.mark.parametrize("schedule", sorted(SCHEDULES))
@pytest.mark.parametrize("lr", [1e-300, 3e-3, 1e300])
def test_every_schedule_of_every_allowed_run_gives_finite_rates(schedule, lr):
    low, high = INT_RANGES["epochs"]
    for epochs in (low, 1, 7, high):
        rule = make_schedule(schedule, lr, epochs)
        if rule is None:
            continue
        for t in (0.0, 0.5, epochs / 2, max(epochs - 1e-9, 0.0), epochs, 2 * epochs + 1):
            rate = rule(t)
            assert math.isfinite(rate) and 0 <= rate <= lr * (1 + 1e-12), (schedule, lr, epochs, t, rate)
