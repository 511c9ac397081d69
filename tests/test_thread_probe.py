"""ThreadChooser's probe of waiting threads (issue 25): when one of our threads waited for a CPU for a
good share of the first step, it moves to 1 thread at once, and a try of more threads whose threads
wait more than at the count in use ends after one step; the timings undo a wrong guess. Fake clock
and fake per-thread waits, as in test_threads.py."""

import pytest

import nnscratch.thread_probe as probe_module
from nnscratch.thread_probe import longest_wait_share, thread_waits
from nnscratch.threads import ThreadChooser
from helpers.fake_machine import FOUND, FakeMachine, blas_threads, known_start  # noqa: F401 (known_start: autouse)


class LoadedMachine(FakeMachine):
    """A FakeMachine one of whose threads waits for a CPU ``share`` of every step's time (``waits()``):
    one share for every count, or ``{count: share}`` (a busy core: our extra threads wait, one
    thread alone does not)."""

    def __init__(self, seconds, share):
        super().__init__(seconds)
        self.share, self.stalled = share, 0.0

    def run_step(self, extra: float = 0.0) -> None:
        before = self.now
        super().run_step(extra)
        share = self.share[self.counts[-1]] if isinstance(self.share, dict) else self.share
        self.stalled += (self.now - before) * share

    def waits(self) -> dict:
        return {"101": self.stalled, "102": 0.0}


def probing(machine, **settings):
    return ThreadChooser(clock=machine.clock, waits=machine.waits, max_seconds=float("inf"), **settings)


def test_contended_cpus_in_the_first_step_move_to_one_thread_at_once():
    machine = LoadedMachine({FOUND: 6.0, 1: 2.0}, share={FOUND: 0.9, 1: 0.0})  # a core taken
    with probing(machine, trial_steps=5) as chooser:
        machine.train(chooser, 30)
        # 1 step at FOUND (probed), then 1: a decision, so no try before ``interval`` (100) steps
        assert chooser.choices == [(0, FOUND), (1, 1)] and chooser.chosen == 1 == blas_threads()
        assert machine.counts == [FOUND] + [1] * 29
    without = FakeMachine({FOUND: 6.0, 1: 2.0})
    with ThreadChooser(clock=without.clock, waits=None, max_seconds=float("inf")) as chooser:
        without.train(chooser, 30)
        assert chooser.choices == [(0, FOUND), (12, 1)]  # the window and the try first: 6 slow steps
    # 1 slow step instead of 6: 5 * (6 - 2) s saved of 84
    assert sum(machine.seconds[c] for c in machine.counts) == sum(without.seconds[c] for c in without.counts) - 20


@pytest.mark.parametrize("share", [0.0, 0.1, 0.24])
def test_a_quiet_or_lightly_loaded_machine_keeps_the_count_found(share):
    machine = LoadedMachine({FOUND: 1.0, 1: 2.0}, share=share)
    reference = FakeMachine({FOUND: 1.0, 1: 2.0})
    with probing(machine) as chooser, ThreadChooser(clock=reference.clock, waits=None,
                                                    max_seconds=float("inf")) as unprobed:  # fmt: skip
        for _ in range(40):
            machine.run_step()
            chooser.step()
        assert chooser.choices == [(0, FOUND)]
    # exactly what it did before the probe existed, step for step
    with unprobed:
        reference.train(unprobed, 40)
    assert machine.counts == reference.counts


def test_a_wrong_guess_is_undone_by_the_first_try_after_the_interval():
    machine = LoadedMachine({FOUND: 1.0, 1: 2.0}, share=0.0)
    machine.share = 1.0  # a moment of contention during the first step only
    with probing(machine, interval=20) as chooser:
        machine.run_step()
        chooser.step()
        assert chooser.choices == [(0, FOUND), (1, 1)]
        machine.share = 0.0
        machine.train(chooser, 40)
        # 20 steps after the guess the try comes: FOUND settles and wins after its 5 timed steps
        assert chooser.choices == [(0, FOUND), (1, 1), (26, FOUND)] and blas_threads() == FOUND
        assert machine.counts[1:20] == [1] * 19 and machine.counts[20] == FOUND  # the try, after 20 steps


def test_the_probe_times_the_first_step_alone_and_needs_a_figure():
    machine = LoadedMachine({FOUND: 1.0, 1: 2.0}, share=0.0)
    with probing(machine) as chooser:
        machine.now += 50.0  # between entering and the first step, contended: shuffling, say
        machine.stalled += 50.0
        chooser.skip()  # as fit does before every epoch: the probe starts here
        machine.run_step()
        chooser.step()
        assert chooser.choices == [(0, FOUND)]
    unknown = LoadedMachine({FOUND: 6.0, 1: 2.0}, share=1.0)
    with ThreadChooser(clock=unknown.clock, waits=lambda: None, max_seconds=float("inf")) as chooser:
        unknown.train(chooser, 3)
        assert chooser.choices == [(0, FOUND)]  # no figures (not Linux): no guess


def test_thread_waits_reads_each_thread_s_scheduling_figures(tmp_path, monkeypatch):
    for tid, text in (("7", "123 2500000000 9\n"), ("8", "5 1000 2\n"), ("9", "odd\n")):
        (tmp_path / tid).mkdir()
        (tmp_path / tid / "schedstat").write_text(text)
    (tmp_path / "10").mkdir()  # a thread that ended between the listing and the read
    monkeypatch.setattr(probe_module, "_TASKS", str(tmp_path))
    assert thread_waits() == {"7": 2.5, "8": 1e-6}
    monkeypatch.setattr(probe_module, "_TASKS", str(tmp_path / "missing"))
    assert thread_waits() is None
    monkeypatch.undo()
    waits = thread_waits()
    assert waits is None or (all(v >= 0 for v in waits.values()) and len(waits) >= 1)


def test_the_longest_wait_is_the_share_that_counts():
    before, after = {"1": 1.0, "2": 5.0}, {"1": 1.5, "2": 5.1, "3": 9.0}  # "3" is new: not compared
    assert longest_wait_share(before, after, 2.0) == 0.25
    assert longest_wait_share(None, after, 2.0) is None and longest_wait_share(before, None, 2.0) is None
    assert longest_wait_share(before, after, 0.0) is None and longest_wait_share({}, {}, 1.0) == 0.0


def test_every_later_try_of_more_threads_under_contention_costs_one_step():
    machine = LoadedMachine({FOUND: 6.0, 1: 2.0}, share={FOUND: 0.9, 1: 0.1})
    with probing(machine, interval=20, max_overhead=0.5) as chooser:
        machine.train(chooser, 200)
    tries = [i for i in range(1, len(machine.counts)) if machine.counts[i] == FOUND and machine.counts[i - 1] == 1]
    assert len(tries) >= 3  # the interval doubles: 20, 40, 80 steps
    for start in tries:
        assert machine.counts[start + 1] == 1  # each try: its one probed step, then back to 1
    assert chooser.choices == [(0, FOUND), (1, 1)]


def test_a_contended_first_step_changes_nothing_when_one_thread_is_no_candidate():
    machine = LoadedMachine({FOUND: 6.0, 2: 2.0}, share=1.0)
    with probing(machine, candidates=(2, FOUND)) as chooser:
        machine.train(chooser, 3)
        assert chooser.choices == [(0, FOUND)]  # the probe moves to 1 thread or not at all


def test_waiting_at_every_count_stops_nothing_the_timings_decide():
    # a niced background job that always waits for a CPU: contention that more threads do not cause
    machine = LoadedMachine({FOUND: 1.0, 1: 2.0}, share=1.0)
    with probing(machine, interval=20) as chooser:
        machine.train(chooser, 40)
        # the first step's share sends it to 1 thread; the try of FOUND, 20 steps later, waits no more
        # than 1 did, so it is timed in full and wins after its settling step and 5 timed ones
        assert chooser.choices == [(0, FOUND), (1, 1), (26, FOUND)] and blas_threads() == FOUND
