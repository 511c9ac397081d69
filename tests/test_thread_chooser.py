"""ThreadChooser (nnscratch/thread_chooser.py): the choice follows the timings, the user's choice
wins, and the thread counts found come back. Every timing here is fake: steps take what a table says
for the thread count BLAS really has at that moment (asked from threadpoolctl, not from the chooser).
"""

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from nnscratch.thread_chooser import ThreadChooser
from nnscratch.thread_probe import thread_variable

from helpers.fake_machine import FOUND, FakeMachine, blas_threads, known_start  # noqa: F401 (known_start: autouse)


def chooser_for(machine, **settings):
    """A chooser on the machine's fake clock; the probe of waiting threads off unless ``waits`` is given
    (test_thread_probe.py: the real machine's load must not reach these tests)."""
    return ThreadChooser(clock=machine.clock, **{"max_seconds": float("inf"), "waits": None, **settings})


# -- the choice follows the timings ------------------------------------------------------------
def test_it_keeps_the_faster_count_after_trying_the_other_for_a_few_steps():
    machine = FakeMachine({FOUND: 1.0, 1: 2.0})
    with chooser_for(machine, trial_steps=5) as chooser:
        assert (chooser.active, chooser.found, chooser.chosen) == (True, FOUND, FOUND)
        machine.train(chooser, 14)
        # 1 untimed + 5 timed steps at 3; then 1 settles and is dropped after its 4th timed step
        # (leaving out its slowest, 3 steps took 6 s: more than 5 steps at 3 take); then 3 again
        assert machine.counts == [FOUND] * 6 + [1] * 5 + [FOUND] * 3
        assert chooser.choices == [(0, FOUND)] and chooser.threads == blas_threads() == FOUND


def test_it_switches_when_the_timings_say_so_and_back_when_they_change():
    machine = FakeMachine({FOUND: 1.0, 1: 2.0})  # quiet: more threads are faster
    # max_overhead 0.5: the time gate after a costly try stays shorter than the intervals here
    with chooser_for(machine, interval=20, max_interval=10_000, max_overhead=0.5) as chooser:
        machine.train(chooser, 300)
        assert chooser.chosen == FOUND and chooser.choices == [(0, FOUND)]

        machine.seconds = {FOUND: 6.0, 1: 2.0}  # load arrives: the threads wait for one another
        arrived = len(machine.counts)
        machine.train(chooser, 100)
        assert chooser.chosen == 1 == blas_threads()
        switched = chooser.choices[-1][0]
        # The interval has doubled to 160 by now; the slowdown cuts the wait short. The window's mean
        # shows it at the second slow step (the first is left out as the slowest), the window
        # refills with 5 slow steps, then 1 settles and wins after its 5 timed steps.
        assert switched - arrived == 2 + 5 + 1 + 5
        assert machine.counts[switched:].count(FOUND) <= 2 * 4  # the tries of 3 since: 4 steps each

        machine.seconds = {FOUND: 1.0, 1: 2.0}  # load leaves: nothing slows down, the next try sees it
        left = len(machine.counts)
        machine.train(chooser, 100)
        assert chooser.chosen == FOUND == blas_threads()
        assert [count for _, count in chooser.choices] == [FOUND, 1, FOUND]
        assert chooser.choices[-1][0] - left <= 80 + 1 + 5  # at the next try: the interval is 80 by then


def test_load_that_arrives_just_after_a_decision_is_answered_without_waiting_for_the_interval():
    # issue 15: on a short MLP run the first try came and went before the other program started,
    # and the loop then ran 100 steps at the count that had become 3x slower before trying again
    machine = FakeMachine({FOUND: 1.0, 1: 2.0})
    with chooser_for(machine, interval=100, max_overhead=0.5) as chooser:
        # 1 untimed + 5 timed steps at 3, the try of 1 (5 steps), then back at 3: 1 untimed, 1 timed
        machine.train(chooser, 13)
        assert chooser.choices == [(0, FOUND)] and machine.counts[-2:] == [FOUND, FOUND]
        machine.seconds = {FOUND: 6.0, 1: 2.0}
        arrived = len(machine.counts)
        machine.train(chooser, 30)
    switched, count = chooser.choices[-1]
    assert count == 1
    # 4 slow steps fill the window (1 fast, 4 slow: slow, the fast one left out), which then
    # refills with 5 slow ones; the try starts 85 steps before the interval's end, and 1 settles
    # and wins after its 5 timed steps
    assert switched - arrived == 4 + 5 + 1 + 5


def test_a_slowdown_below_the_factor_waits_for_the_interval_one_above_it_does_not():
    machine = FakeMachine({FOUND: 1.0, 1: 2.0})
    with chooser_for(machine, interval=100, max_overhead=0.5) as chooser:
        machine.train(chooser, 13)  # as above: the first try is over
        machine.seconds = {FOUND: 1.4, 1: 2.0}  # slower, but by less than slowdown (1.5): no early try
        machine.train(chooser, 40)
        assert machine.counts.count(1) == 5  # the first try only
        machine.seconds = {FOUND: 1.6, 1: 2.0}  # now by more: tried well before the interval's end
        machine.train(chooser, 12)  # 4 steps until the window's mean shows it, 5 to refill it
    assert machine.counts.count(1) > 5


def test_a_stray_slow_step_changes_nothing_the_slowest_step_is_left_out():
    def run(seconds, spike_at):
        machine = FakeMachine(seconds)
        with chooser_for(machine) as chooser:
            for step in range(40):
                machine.run_step(extra=500.0 if step == spike_at else 0.0)
                chooser.step()
        return chooser.choices

    assert run({FOUND: 1.0, 1: 1.5}, spike_at=3) == [(0, FOUND)]  # in the steps at 3 before the try
    assert run({FOUND: 2.0, 1: 1.0}, spike_at=7) == [(0, FOUND), (12, 1)]  # in the try of 1


class StallingMachine(FakeMachine):
    """Issue 15's busy machine: at ``stalling`` threads most steps take ``fast`` seconds, and every
    ``every``-th one ``stall`` seconds more (the BLAS thread that shares a core with another
    program waits for its time slice); other counts take ``seconds[count]``."""

    def __init__(self, seconds, stalling, fast, stall, every):
        super().__init__(seconds)
        self.stalling, self.fast, self.stall, self.every, self.at_stalling = stalling, fast, stall, every, 0

    def run_step(self, extra: float = 0.0) -> None:
        count = blas_threads()
        self.counts.append(count)
        if count != self.stalling:
            self.now += self.seconds[count] + extra
            return
        self.at_stalling += 1
        self.now += self.fast + (self.stall if self.at_stalling % self.every == 0 else 0.0) + extra


def test_steps_are_compared_by_their_mean_so_stalls_that_come_again_and_again_count():
    # at 3: 0.8 s, and every 5th step 4.8 s (a mean of 1.6); at 1: 1.2 s. The median step at 3 is
    # the shorter one (0.8), yet 1 trains faster, and a chooser comparing medians would stay at 3.
    # (The window of 20 steps at 3 holds 4 stalls; without the slowest, its mean is 1.43.)
    machine = StallingMachine({1: 1.2}, stalling=FOUND, fast=0.8, stall=4.0, every=5)
    with chooser_for(machine, trial_steps=20) as chooser:
        machine.train(chooser, 300)
        assert chooser.choices[:2] == [(0, FOUND), (42, 1)]  # 1 + 20 steps at 3, 1 + 20 at 1
        assert chooser.chosen == 1
    at_three = machine.counts[42:].count(FOUND)
    assert at_three <= 0.1 * len(machine.counts[42:])  # only its short tries since


class WakingMachine(FakeMachine):
    """Steps take ``seconds[count]``, and the first step after BLAS's count changed ``wake`` more."""

    def __init__(self, seconds, wake):
        super().__init__(seconds)
        self.wake = wake

    def run_step(self, extra: float = 0.0) -> None:
        changed = bool(self.counts) and blas_threads() != self.counts[-1]
        super().run_step(extra + (self.wake if changed else 0.0))


def test_a_try_whose_first_step_alone_took_trial_steps_steps_ends_at_once():
    # 1 would be faster, but waking it up took 10 s: more than 5 steps at 3. Under load that is
    # what two threads waiting for each other look like, and the try is not worth more steps.
    machine = WakingMachine({FOUND: 1.0, 1: 0.5}, wake=10.0)
    with chooser_for(machine) as chooser:
        machine.train(chooser, 20)
    assert chooser.choices == [(0, FOUND)]
    assert machine.counts[:8] == [FOUND] * 6 + [1] + [FOUND]  # one step at 1, then back at once
    # a first step of under 5 steps' time is only left untimed: 1 runs its 5 timed steps and wins
    machine = WakingMachine({FOUND: 1.0, 1: 0.5}, wake=3.0)
    with chooser_for(machine) as chooser:
        machine.train(chooser, 20)
    assert chooser.choices == [(0, FOUND), (12, 1)]


def test_skip_leaves_time_that_is_no_step_out():
    machine = FakeMachine({FOUND: 1.0, 1: 1.5})
    with chooser_for(machine, interval=1000) as chooser:
        machine.train(chooser, 20)  # the first try is over: the next is 1000 steps away
        tried = machine.counts.count(1)
        for _ in range(5):  # five epochs, each followed by a validation pass of 300 s
            machine.train(chooser, 30)
            machine.now += 300.0
            chooser.skip()
        assert machine.counts.count(1) == tried  # no step looked slow: no early try
    machine = FakeMachine({FOUND: 1.0, 1: 1.5})
    with chooser_for(machine, interval=1000) as chooser:
        machine.train(chooser, 20)
        for _ in range(5):  # without skip() the pause is one slow step, and the window shows it
            machine.train(chooser, 3)
            machine.now += 300.0
        machine.train(chooser, 10)
        assert machine.counts.count(1) > tried


def test_a_count_faster_by_less_than_the_margin_does_not_take_over():
    machine = FakeMachine({FOUND: 1.0, 1: 0.95})
    with chooser_for(machine, interval=10, margin=0.1) as chooser:
        machine.train(chooser, 500)
        assert chooser.choices == [(0, FOUND)]
        assert machine.counts.count(1) > 20  # it did keep trying
    machine = FakeMachine({FOUND: 1.0, 1: 0.85})
    with chooser_for(machine, interval=10, margin=0.1) as chooser:
        machine.train(chooser, 30)
        assert chooser.choices == [(0, FOUND), (12, 1)]  # 6 steps at 3, 1 untimed and 5 timed at 1


def test_exploring_costs_a_small_share_of_the_steps_while_nothing_changes():
    machine = FakeMachine({FOUND: 1.0, 1: 1.5})
    with chooser_for(machine) as chooser:  # the defaults: from 100 steps, doubling to 1600
        machine.train(chooser, 5000)
    # 7 tries: at step 6, then 100, 200, 400, 800, 1600 and 1600 steps after the end of each; 6 steps
    # at 1 each (1 untimed, then dropped after 5 timed: 4 of them, the slowest left out, took 6 s,
    # more than 5 steps at 3 take)
    assert machine.counts.count(1) == 7 * 6


def test_a_very_slow_candidate_costs_at_most_about_max_overhead_of_the_time():
    machine = FakeMachine({FOUND: 1.0, 1: 100.0})  # each step at 1 takes 100 steps' time
    with chooser_for(machine, interval=10, max_interval=10, max_overhead=0.05) as chooser:
        machine.train(chooser, 20_000)
    at_one = 100.0 * machine.counts.count(1)
    first_try = 4 * 100.0
    assert chooser.choices == [(0, FOUND)]
    assert at_one <= 0.05 * machine.now + first_try
    assert machine.counts.count(1) >= 8  # yet it still tries now and then


def test_max_seconds_brings_a_try_before_the_interval():
    machine = FakeMachine({FOUND: 1.0, 1: 2.0})
    with chooser_for(machine, interval=10, max_interval=1000, max_seconds=50.0, max_overhead=0.5) as chooser:
        machine.train(chooser, 600)
    tries = [i for i in range(1, len(machine.counts)) if machine.counts[i] == 1 and machine.counts[i - 1] == FOUND]
    gaps = np.diff(tries)
    # intervals of 10, 20, 40 steps, then 50 s (the 80-step interval is cut short), and each try
    # itself adds 5 steps (10 s) between the two
    assert list(gaps[:3]) == [10 + 5, 20 + 5, 40 + 5] and len(gaps) >= 10
    assert all(50 + 5 - 10 <= gap <= 50 + 5 for gap in gaps[3:])


def test_of_several_counts_faster_than_the_one_in_use_the_fastest_wins():
    machine = FakeMachine({FOUND: 3.0, 2: 1.0, 1: 2.0})
    with chooser_for(machine, candidates=(1, 2, 3)) as chooser:
        machine.train(chooser, 20)
        # 6 steps at 3; 1 and then 2 each get 1 untimed and 5 timed steps; 2 stays
        assert machine.counts == [FOUND] * 6 + [1] * 6 + [2] * 8
        assert chooser.choices == [(0, FOUND), (18, 2)]


# -- the user's choice wins --------------------------------------------------------------------
@pytest.mark.parametrize("variable", ["OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"])
def test_a_thread_variable_in_the_environment_turns_the_chooser_off(monkeypatch, variable):
    monkeypatch.setenv(variable, "3")
    assert thread_variable() == f"{variable}=3"
    machine = FakeMachine({FOUND: 10.0, 1: 1.0})
    with chooser_for(machine) as chooser:
        assert not chooser.active and chooser.threads is None
        assert chooser.reason == f"{variable}=3 is set in the environment: the user's choice"
        machine.train(chooser, 200)
    assert machine.counts == [FOUND] * 200 and blas_threads() == FOUND


def test_an_empty_variable_is_not_a_choice(monkeypatch):
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", " ")
    assert thread_variable() is None


def test_nothing_to_choose_from_a_single_count():
    with threadpool_limits(limits=1, user_api="blas"):
        with ThreadChooser() as chooser:
            assert not chooser.active
            assert chooser.reason == "a single candidate thread count (1): nothing to choose"
    machine = FakeMachine({2: 1.0, 4: 2.0})
    with chooser_for(machine, candidates=(4, 2, 4)) as chooser:  # counts of the user's own
        assert chooser.chosen == 4 == blas_threads()  # FOUND is not among them: the highest first
        machine.train(chooser, 30)
        assert chooser.choices == [(0, 4), (12, 2)]
    assert blas_threads() == FOUND


# -- the counts found come back ----------------------------------------------------------------
def test_exit_restores_the_count_found_also_on_an_error():
    machine = FakeMachine({FOUND: 2.0, 1: 1.0})
    with pytest.raises(KeyError):
        with chooser_for(machine) as chooser:
            machine.train(chooser, 30)
            assert blas_threads() == 1
            raise KeyError("in the loop")
    assert blas_threads() == FOUND and not chooser.active
    with chooser:  # a chooser can be used again, from scratch
        assert chooser.choices == [(0, FOUND)]
        with pytest.raises(RuntimeError, match="ThreadChooser: already entered"):
            chooser.__enter__()


# -- bad settings ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "settings, error, message",
    [
        ({"candidates": []}, ValueError, r"ThreadChooser: candidates is empty, expected thread counts such as \(1, 2\)"),
        ({"candidates": 2}, TypeError, r"ThreadChooser: candidates must be thread counts such as \(1, 2\), got 2"),
        ({"candidates": (0, 2)}, ValueError, "ThreadChooser: candidates must be a positive int, got 0"),
        ({"candidates": (1, 2.0)}, TypeError, "ThreadChooser: candidates must be an int, got float 2.0"),
        ({"trial_steps": 0}, ValueError, "ThreadChooser: trial_steps must be a positive int, got 0"),
        ({"interval": 50, "max_interval": 10}, ValueError, "ThreadChooser: max_interval must be an int >= 50, got 10"),
        ({"margin": 1.0}, ValueError, "ThreadChooser: margin must be >= 0 and <= 0.99, got 1.0"),
        ({"slowdown": 0.5}, ValueError, r"ThreadChooser: slowdown must be >= 1 \(inf allowed, not NaN\), got 0.5"),
        ({"trial_seconds": -0.1}, ValueError, r"ThreadChooser: trial_seconds must be >= 0 \(inf allowed, not NaN\), got -0.1"),
        ({"trial_seconds": "0.05"}, TypeError, r"ThreadChooser: trial_seconds must be a real number, got str"),
        ({"max_seconds": float("nan")}, ValueError, r"ThreadChooser: max_seconds must be >= 0 \(inf allowed, not NaN\), got nan"),
        ({"max_overhead": 0}, ValueError, r"ThreadChooser: max_overhead must be > 0 and <= 1, got 0"),
        ({"max_overhead": "5%"}, TypeError, "ThreadChooser: max_overhead must be a real number, got str '5%'"),
        ({"clock": 3.0}, TypeError, "ThreadChooser: clock must be a function returning seconds, got float"),
        ({"waits": 0.5}, TypeError, "ThreadChooser: waits must be a function returning seconds or None, got float"),
        ({"busy_share": 1.5}, ValueError, "ThreadChooser: busy_share must be >= 0 and <= 1, got 1.5"),
    ],
)
def test_chooser_refuses_bad_settings(settings, error, message):
    with pytest.raises(error, match=message):
        ThreadChooser(**settings)
