"""fit's threads (nnscratch/threads.py): a ThreadChooser by default, a count given fixes it whatever
the environment says, FixedThreads sets and restores, and the counts found come back when fit
returns or raises. Every timing here is fake, as in test_thread_chooser.py.
"""

import numpy as np
import pytest

import nnscratch as nn
import nnscratch.threads as threads_module
from nnscratch.threads import FixedThreads, ThreadChooser, thread_variable

from helpers.fake_machine import FOUND, FakeMachine, blas_threads, known_start  # noqa: F401 (known_start: autouse)


def chooser_for(machine, **settings):
    """A chooser on the machine's fake clock; the probe of waiting threads off unless ``waits`` is given
    (test_thread_probe.py: the real machine's load must not reach these tests)."""
    return ThreadChooser(clock=machine.clock, **{"max_seconds": float("inf"), "waits": None, **settings})


class FakeWork:
    """A parameterless layer: each forward is a fake step of ``machine``; it raises at ``fail_at``."""

    def __init__(self, machine, fail_at=None):
        self.machine, self.fail_at = machine, fail_at
        self.parameters, self.parameters_deltas = [], []

    def forward(self, x, *args):
        if len(self.machine.counts) == self.fail_at:
            raise FloatingPointError("fake failure")
        self.machine.run_step()
        return x

    def backward(self, delta):
        return delta


def fit_on(machine, threads, fail_at=None, epochs=2):
    x = np.random.default_rng(0).normal(size=(200, 4)).astype(np.float32)
    y = np.arange(200) % 3
    model = nn.Sequential(FakeWork(machine, fail_at), nn.Linear(4, 3, rng=0))
    loss = nn.Sequential(nn.SoftmaxCrossEntropy(), nn.Mean())
    # batches of 4: 50 steps per epoch; no validation, so every forward of FakeWork is one step
    return nn.fit(model, loss, nn.SGD(model, lr=0.01), x, y, epochs=epochs, batch_size=4, rng=0,
                  progress=False, threads=threads)


def test_fit_trains_with_the_chooser_and_restores_the_count_when_it_returns_or_raises():
    machine = FakeMachine({FOUND: 2.0, 1: 1.0})
    chooser = chooser_for(machine)
    fit_on(machine, chooser)
    assert chooser.choices == [(0, FOUND), (12, 1)] and machine.counts[-1] == 1
    assert blas_threads() == FOUND

    machine = FakeMachine({FOUND: 2.0, 1: 1.0})
    chooser = chooser_for(machine)
    with pytest.raises(FloatingPointError):
        fit_on(machine, chooser, fail_at=30)
    assert machine.counts[-1] == 1 and blas_threads() == FOUND


def test_fit_leaves_what_comes_between_epochs_untimed():
    # fit calls skip() before each epoch: a validation pass of 500 s after each epoch changes nothing
    def run(pause):
        machine = FakeMachine({FOUND: 1.0, 1: 1.5})
        chooser = chooser_for(machine, interval=10, max_overhead=0.2)
        x = np.random.default_rng(0).normal(size=(200, 4)).astype(np.float32)
        y = np.arange(200) % 3
        model = nn.Sequential(FakeWork(machine), nn.Linear(4, 3, rng=0))
        loss = nn.Sequential(nn.SoftmaxCrossEntropy(), nn.Mean())

        def validation_pass(record):
            machine.now += pause

        # epochs of 4 steps: windows and tries span epochs, so the pauses would be in them
        nn.fit(model, loss, nn.SGD(model, lr=0.01), x, y, epochs=60, batch_size=50, rng=0, progress=False,
               threads=chooser, on_epoch_end=validation_pass)
        return machine.counts, chooser.choices

    counts, choices = run(pause=0.0)
    assert choices == [(0, FOUND)] and counts.count(1) >= 5 * 6  # it kept trying, 6 steps a try
    assert run(pause=500.0) == (counts, choices)


def test_fit_uses_a_chooser_by_default(monkeypatch):
    machine = FakeMachine({FOUND: 2.0, 1: 1.0})
    made = []

    class Recorded(ThreadChooser):
        def __init__(self, **settings):
            super().__init__(clock=machine.clock, **settings)
            made.append(self)

    monkeypatch.setattr(threads_module, "ThreadChooser", Recorded)
    fit_on(machine, "auto")
    fit_on(machine, None)
    assert len(made) == 2 and all(c.choices[-1][1] == 1 for c in made)
    assert blas_threads() == FOUND


@pytest.mark.parametrize("with_variable", [False, True])
def test_fit_with_a_thread_count_uses_it_whatever_the_environment(monkeypatch, with_variable):
    if with_variable:
        monkeypatch.setenv("OPENBLAS_NUM_THREADS", "3")
    machine = FakeMachine({FOUND: 1.0, 2: 5.0})
    fit_on(machine, 2)
    assert set(machine.counts) == {2}
    assert blas_threads() == FOUND
    with pytest.raises(FloatingPointError):
        fit_on(machine, 2, fail_at=len(machine.counts) + 5)
    assert blas_threads() == FOUND


def test_fit_leaves_the_count_alone_under_a_thread_variable(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    machine = FakeMachine({FOUND: 10.0, 1: 1.0})
    fit_on(machine, "auto")
    assert set(machine.counts) == {FOUND}


def test_fixed_threads_sets_and_restores():
    with FixedThreads(2) as fixed:
        assert blas_threads() == 2 == fixed.threads
        fixed.step()  # does nothing, as a loop written for the chooser calls it
    assert blas_threads() == FOUND


# -- bad arguments -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "threads, error, message",
    [
        (0, ValueError, "fit: threads must be a positive int, got 0"),
        ("fast", ValueError, "fit: threads must be 'auto', None or a thread count >= 1, got 'fast'"),
        (1.5, TypeError, "fit: threads must be 'auto', None, an int >= 1 or a ThreadChooser, got float 1.5"),
        (True, TypeError, "fit: threads must be 'auto', None, an int >= 1 or a ThreadChooser, got bool True"),
    ],
)
def test_fit_refuses_a_bad_threads_before_any_work(threads, error, message):
    machine = FakeMachine({FOUND: 1.0})
    with pytest.raises(error, match=message):
        fit_on(machine, threads)
    assert machine.counts == []
