"""``ThreadChooser``: numpy's BLAS threads chosen by timing the training loop's steps, again and
again (the policy fit applies, and why it measures rather than guesses: threads.py).
"""

from __future__ import annotations

import math
import time
from collections import deque

from threadpoolctl import ThreadpoolController

from .thread_probe import longest_wait_share, thread_variable, thread_waits
from .validation import check_int, check_number

OWNER = "ThreadChooser"  # the name its messages start with


class ThreadChooser:
    """Keeps numpy's BLAS at the fastest thread count for a training loop, measuring as it runs.

    Enter it around the loop and call ``step()`` once per training step::

        with ThreadChooser() as threads:
            for epoch in range(epochs):
                threads.skip()           # what came since the last step (a validation pass) is no step
                for x_batch, y_batch in batches:
                    ...                  # forward, backward, optimizer.step()
                    threads.step()

    The time between two ``step()`` calls (from entering or ``skip()``, for the first) is one step.
    Counts are compared by their mean step, the throughput a loop gets, not by a median: with one
    core taken, two OpenBLAS threads make most steps as fast as on a quiet machine and one in five
    or so 5-30 ms slower, which a median does not see. Each mean leaves out its slowest step
    (``typical_step``), so that one stray slow step does not decide.

    - The window: the latest steps at the count in use, at least ``trial_steps`` of them and at
      least ``trial_seconds`` long. Its mean is the count in use's pace.
    - An exploration tries each other candidate count in turn: one untimed step to settle, then
      timed steps. A candidate wins when, after as many steps as a window needs (at least
      ``trial_steps``, and ``trial_seconds`` at the count in use's pace), its mean is under (1 -
      ``margin``) times that pace. It is dropped as soon as its steps (its slowest left out) took
      as long as max(its steps, ``trial_steps``) steps at that pace, or as soon as its untimed
      first step alone took ``trial_steps`` steps' time: slower counts cost a few steps only. The
      fastest winner becomes the choice; without one, the count in use stays. The margin
      keeps two near-equal counts from flapping.
    - Waiting, looked at on the first step and on the first step of each try of more threads: the
      largest share of the step's time that one of our threads spent ready to run but waiting for
      a CPU (``waits``, Linux's per-thread scheduling figures). After the first step, a share of
      at least ``busy_share`` means our threads wait for cores others hold, and more threads would
      only wait more (a BLAS call ends with its slowest thread): the chooser moves to 1 thread at
      once, before anything is timed, and takes that as a decision: the next try comes after
      ``interval`` steps or a slowdown, as after any other. A try of more threads ends after its first step when that
      step's share exceeds the window's (at the count in use) by ``busy_share``: the extra threads
      made the waiting. Waiting that is there at every count stops nothing, and the timings decide,
      as they undo a wrong first guess. On a quiet machine nothing waits and the chooser runs as if
      there were no probe; where the figures are unknown (not Linux), so it does.
    - When: first as soon as the window is full, then after ``interval`` steps. That interval
      doubles each time the count in use is confirmed, up to ``max_interval`` (little cost while
      nothing changes), and starts again at ``interval`` after a switch. A slowdown brings it
      early: when the window's mean exceeds ``slowdown`` times the pace at the last decision (load
      arrived, and every step at a count that became slow costs), the window is refilled with
      steps from after the change and the exploration runs at once. Once ``interval`` steps have
      passed, ``max_seconds`` without one brings it too (load may have left).
    - Cost: an exploration that cost E seconds more than the count in use would have is followed
      by at least E / ``max_overhead`` seconds without one, so exploring costs about
      ``max_overhead`` of the training time at most, however slow the other counts are.

    Time that is not a step (a validation pass, a checkpoint, the end of an epoch) would count as
    one slow step: call ``skip()`` after it. ``fit`` does, before every epoch.

    Args:
        candidates: thread counts to choose from; default: 1 and the count found on entry.
        trial_steps, trial_seconds, interval, max_interval, max_seconds, margin, slowdown,
            max_overhead: as above.
        clock: a function returning seconds, ``time.perf_counter``; tests pass a fake one.
        waits: a function returning {thread id: seconds waited for a CPU} for this process, or None
            where that is unknown (``thread_waits``); None turns the probe off.
        busy_share: the share of a probed step's time one of our threads must have waited for a CPU
            (beyond the window's share, for a try) to count as waiting for cores others hold.

    Attributes:
        active: False when there is nothing to choose (then ``step()`` does nothing); ``reason``
            says why: a thread variable in the environment, a single candidate, no BLAS found.
        found: the highest thread count of numpy's BLAS on entry (restored on exit, per library).
        chosen: the count chosen; ``threads``: the count in use now (a candidate's, while
            exploring). Both None when inactive.
        choices: ``[(step, threads), ...]``: the count in use from entry (step 0), then each change
            of choice and the number of steps done when it was made.
    """

    def __init__(self, candidates=None, *, trial_steps: int = 5, trial_seconds: float = 0.05, interval: int = 100,
                 max_interval: int = 1600, max_seconds: float = 10.0, margin: float = 0.1,
                 slowdown: float = 1.5, max_overhead: float = 0.03, clock=time.perf_counter,
                 waits=thread_waits, busy_share: float = 0.25):
        if candidates is not None:
            candidates = [check_int(OWNER, "candidates", c, 1) for c in _sequence(candidates)]
            if not candidates:
                raise ValueError("ThreadChooser: candidates is empty, expected thread counts such as (1, 2)")
        self.candidates = None if candidates is None else sorted(set(candidates))
        self.trial_steps = check_int(OWNER, "trial_steps", trial_steps, 1)
        self.trial_seconds = check_number(OWNER, "trial_seconds", trial_seconds, 0.0, allow_infinite=True)
        self.interval = check_int(OWNER, "interval", interval, 1)
        self.max_interval = check_int(OWNER, "max_interval", max_interval, self.interval)
        self.max_seconds = check_number(OWNER, "max_seconds", max_seconds, 0.0, allow_infinite=True)
        self.margin = check_number(OWNER, "margin", margin, 0.0, 0.99, high_inclusive=True)
        self.slowdown = check_number(OWNER, "slowdown", slowdown, 1.0, allow_infinite=True)
        self.max_overhead = check_number(OWNER, "max_overhead", max_overhead, 0.0, 1.0, low_inclusive=False,
                                         high_inclusive=True)  # a share of the training time
        if not callable(clock):
            raise TypeError(f"ThreadChooser: clock must be a function returning seconds, got {type(clock).__name__}")
        if waits is not None and not callable(waits):
            raise TypeError(f"ThreadChooser: waits must be a function returning seconds or None, got "
                            f"{type(waits).__name__}")
        self.clock, self.waits = clock, waits
        self.busy_share = check_number(OWNER, "busy_share", busy_share, 0.0, 1.0, high_inclusive=True)
        self._original = None
        self.active, self.reason, self.found, self.chosen, self.threads, self.choices = False, "not entered", None, None, None, []

    # -- entering and leaving ---------------------------------------------------------------------
    def __enter__(self) -> ThreadChooser:
        if self._original is not None:
            raise RuntimeError("ThreadChooser: already entered; use one chooser per loop at a time")
        self._controller = ThreadpoolController().select(user_api="blas")
        # A limiter with no limits sets nothing: it remembers each library's count, and gives them
        # back in __exit__, whatever the chooser set in between.
        self._original = self._controller.limit(limits=None, user_api="blas").__enter__()
        try:
            self._start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _start(self) -> None:
        counts = [lib.num_threads for lib in self._controller.lib_controllers]
        self.found = max(counts) if counts else None
        candidates = self.candidates or sorted({1, self.found or 1})
        variable = thread_variable()
        if variable is not None:
            self.reason = f"{variable} is set in the environment: the user's choice"
        elif self.found is None:
            self.reason = "threadpoolctl finds no BLAS library it can set in this process"
        elif len(candidates) < 2:
            self.reason = f"a single candidate thread count ({candidates[0]}): nothing to choose"
        else:
            self.reason = None
        self.active = self.reason is None
        self.chosen = self.threads = None
        self.choices = []
        self._steps, self._last, self._skipped = 0, self.clock(), 0.0
        if self.active:
            self._candidates = candidates
            self.chosen = self.found if self.found in candidates else candidates[-1]
            self._use(self.chosen)
            self.choices.append((0, self.chosen))
            self._recent, self._recent_total = deque(), 0.0  # the window: the count in use's latest steps
            self._refill = False  # a slowdown was seen: try once the window is full again
            self._settle = 1  # the first step pays for allocations and cold caches: not timed
            self._trial = None
            self._reference = None  # the pace (typical_step) of the count in use at the last decision
            self._interval = 0  # steps from one exploration to the next: 0, so the first comes soon
            self._explored_step, self._explored_time, self._not_before = 0, self._last, self._last
            self._waited = self._waits_now() if self.chosen > 1 and 1 in candidates else None
            self._mark = None  # (thread waits, clock) when the window began: see _calm_share

    def __exit__(self, *exc_info) -> bool:
        original, self._original = self._original, None
        self.active, self.threads = False, None
        if original is not None:
            original.__exit__(*exc_info)
        return False

    # -- once per step ------------------------------------------------------------------------------
    def step(self) -> None:
        """Mark the end of one training step: time it and, when it is time, try or keep a count."""
        if not self.active:
            return
        now = self.clock()
        seconds, self._last = now - self._last, now
        now -= self._skipped  # from here on, time is training time: what skip() left out is not in it
        self._steps += 1
        share = self._probed_share(seconds)
        if self._settle:  # the step after a change of count: threads waking up or winding down
            self._settle -= 1
            trial = self._trial
            # contended: a thread waited for a core for busy_share more of the step than at the count in use
            contended = share is not None and share - (trial["calm"] if trial else 0.0) >= self.busy_share
            if trial is not None and (contended or seconds >= trial["baseline"] * self.trial_steps):
                # Not timed, but a candidate whose first step alone took as long as trial_steps
                # steps at the count in use is not worth more: under load, waking two threads
                # that wait for each other can take 20-30 ms, several steps of a small network.
                # Nor is one whose threads waited for cores others hold.
                self._next_candidate(now)
            elif trial is None and contended:  # the first step: start where waiting is least
                self.chosen = 1
                self._use(1)
                self._settle = 1
                self.choices.append((self._steps, 1))
                # as after a decision: the next try after ``interval`` steps (or a slowdown), not at
                # once. Under load a try of more threads costs several slow steps, a good share of a
                # short fit; a wrong guess costs at most ``interval`` steps at one thread.
                self._interval = self.interval
        elif self._trial is not None:
            self._trial_step(seconds, now)
        else:
            self._record(seconds)
            if self._due(now):
                self._start_exploring(now)

    def _probed_share(self, seconds: float) -> float | None:
        """The largest share of the step just ended that one of our threads waited for a CPU, when
        that step was probed (the first step, the first step of a try of more threads); else None."""
        before, self._waited = self._waited, None
        return None if before is None else longest_wait_share(before, self._waits_now(), seconds)

    def _calm_share(self) -> float:
        """The largest share of the time since the window began that one of our threads waited for a
        CPU, at the count in use: what a try of more threads is compared with (0 when unknown)."""
        mark, self._mark = self._mark, None
        if mark is None:
            return 0.0
        return longest_wait_share(mark[0], self._waits_now(), self.clock() - mark[1]) or 0.0

    def skip(self) -> None:
        """The time since the last ``step()`` was not a training step: it counts for nothing, neither
        as a step nor in the chooser's waits (``max_seconds``, the cost of a try)."""
        if self.active:
            now = self.clock()
            self._skipped += now - self._last
            self._last = now
            if self._waited is not None:  # a probed step is timed alone, without what was skipped
                self._waited = self._waits_now()

    def _record(self, seconds: float) -> None:
        """Add a step to the window, and drop its oldest steps while it stays full without them."""
        recent = self._recent
        if not recent and self.waits is not None:  # a new window: how much do its threads wait?
            self._mark = (self.waits(), self.clock())
        recent.append(seconds)
        self._recent_total += seconds
        while len(recent) > self.trial_steps and self._recent_total - recent[0] >= self.trial_seconds:
            self._recent_total -= recent.popleft()

    def _window_mean(self) -> float | None:
        """The window's typical step (see ``typical_step``), None until the window is full."""
        if len(self._recent) < self.trial_steps or self._recent_total < self.trial_seconds:
            return None
        return typical_step(self._recent_total, len(self._recent), max(self._recent))

    def _due(self, now: float) -> bool:
        mean = self._window_mean()
        if mean is None or now < self._not_before:
            return False
        if self._refill:  # the window holds only steps since the slowdown: measure against it now
            self._refill = False
            return True
        if self._reference is None:  # a first guess, not a decision: its first window sets the pace
            self._reference = mean
        since = self._steps - self._explored_step
        if since >= self._interval:
            return True
        if mean > self.slowdown * self._reference:
            # Load arrived: the count in use got slower, and waiting out ``interval`` steps at a
            # count that may now be several times slower than another would cost more than a try.
            # The window mixes steps from before and after: refill it first, then try.
            self._refill = True
            self._recent.clear()
            self._recent_total = 0.0
            return False
        return since >= self.interval and now - self._explored_time >= self.max_seconds

    def _start_exploring(self, now: float) -> None:
        baseline = self._window_mean()
        # steps a winner must run: trial_steps, and trial_seconds at the pace of the count in use
        need = self.trial_steps if baseline <= 0 else max(self.trial_steps, math.ceil(self.trial_seconds / baseline))
        self._trial = {"baseline": baseline, "need": need, "start": now, "start_step": self._steps,
                       "queue": [c for c in self._candidates if c != self.chosen], "winners": {},
                       "calm": self._calm_share()}
        self._next_candidate(now)

    def _trial_step(self, seconds: float, now: float) -> None:
        trial = self._trial
        trial["seconds"] += seconds
        trial["steps"] += 1
        trial["slowest"] = max(trial["slowest"], seconds)
        taken, steps, baseline = trial["seconds"] - trial["slowest"], trial["steps"], trial["baseline"]
        if taken >= baseline * max(steps, self.trial_steps):  # slower than the count in use: it cannot win
            self._next_candidate(now)
        elif steps >= trial["need"]:
            mean = typical_step(trial["seconds"], steps, trial["slowest"])
            if mean < (1 - self.margin) * baseline:
                trial["winners"][self.threads] = mean
            self._next_candidate(now)

    def _next_candidate(self, now: float) -> None:
        trial = self._trial
        if trial["queue"]:
            self._use(trial["queue"].pop(0))
            trial["seconds"], trial["steps"], trial["slowest"] = 0.0, 0, 0.0
            self._settle = 1
            if self.threads > self.chosen:  # its first step is probed: do more threads wait for cores?
                self._waited = self._waits_now()
            return
        self._trial = None
        winners = trial["winners"]
        if winners:
            best = min(winners, key=winners.get)
            self.chosen, self._reference, self._interval = best, winners[best], self.interval
            self._not_before = now  # a better count: no reason to wait
            self.choices.append((self._steps, best))
        else:
            self._reference = trial["baseline"]
            self._interval = min(max(2 * self._interval, self.interval), self.max_interval)
            extra = (now - trial["start"]) - (self._steps - trial["start_step"]) * trial["baseline"]
            self._not_before = now + max(extra, 0.0) / self.max_overhead
        if self.threads != self.chosen:
            self._use(self.chosen)
            self._settle = 1
        self._recent.clear()
        self._recent_total = 0.0
        self._explored_step, self._explored_time = self._steps, now

    def _waits_now(self) -> dict | None:
        return None if self.waits is None else self.waits()

    def _use(self, count: int) -> None:
        self._controller.limit(limits=count, user_api="blas")  # sets it now; __exit__ restores all
        self.threads = count

    def __repr__(self) -> str:
        if not self.active:
            return f"ThreadChooser(inactive: {self.reason})"
        return f"ThreadChooser(chosen={self.chosen}, threads={self.threads}, found={self.found}, choices={self.choices})"


def typical_step(seconds: float, steps: int, slowest: float) -> float:
    """The mean of ``steps`` steps that took ``seconds`` in all, leaving out the slowest one when
    there are more than two: one stray slow step (a page fault, a moment of another program) says
    nothing about a thread count, while stalls that come again and again stay in the mean."""
    if steps > 2:
        return (seconds - slowest) / (steps - 1)
    return seconds / steps


# -- argument checks ---------------------------------------------------------------------------
def _sequence(value):
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError(f"{OWNER}: candidates must be thread counts such as (1, 2), got {value!r}")
    return list(value)
