"""How many threads numpy's BLAS uses while training: chosen by measuring, again and again.

OpenBLAS's worker threads spin and wait for one another. When another program holds a core, one
of them waits for a core it does not get, and a two-thread matrix product becomes slower than one
thread alone, several times slower at worst (issue 15: the MLP fell to 0.27 of its quiet speed).
Which count is faster depends on the network and on the load, and load comes and goes, so
``ThreadChooser`` measures rather than guesses: it times the training loop's steps at the count in
use, now and then tries the other counts for a few steps, and keeps the fastest. Counts are set
through threadpoolctl, and the counts it found come back when it exits, however it exits.

An explicit choice always wins: ``fit(..., threads=n)`` fixes the count, and a thread variable in
the environment (``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS``, ...: ``THREAD_VARIABLES``) turns the
chooser off.
"""

from __future__ import annotations

import os
import statistics
import time
from collections import deque

import numpy as np
from threadpoolctl import ThreadpoolController

# The variables through which a user sets BLAS's threads (OpenBLAS reads the first three).
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                    "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")


def thread_variable() -> str | None:
    """``"NAME=value"`` of the first of ``THREAD_VARIABLES`` set (non-empty) in the environment, else None."""
    for name in THREAD_VARIABLES:
        value = os.environ.get(name, "").strip()
        if value:
            return f"{name}={value}"
    return None


class ThreadChooser:
    """Keeps numpy's BLAS at the fastest thread count for a training loop, measuring as it runs.

    Enter it around the loop and call ``step()`` once per training step::

        with ThreadChooser() as threads:
            for x_batch, y_batch in batches:
                ...                  # forward, backward, optimizer.step()
                threads.step()

    The time between two ``step()`` calls (from entering, for the first) is one step. The chooser
    keeps the last ``trial_steps`` steps at the count in use. An exploration tries each other
    candidate count: one untimed step to settle, then up to ``trial_steps`` timed ones; a candidate
    wins when its median step is shorter than (1 - ``margin``) times the median of the count in use,
    and is dropped as soon as more than half of its steps are too slow for that. The fastest winner
    becomes the choice; without one, the count in use stays. Medians ignore a stray slow step (a
    validation pass, a preempted step), and the margin keeps two near-equal counts from flapping.

    An exploration runs first as soon as ``trial_steps`` steps are timed, then after ``interval``
    steps. That interval doubles each time the count in use is confirmed, up to ``max_interval``
    (little cost while nothing changes), and starts again at ``interval`` after a switch. It also
    runs early as soon as the median of the last ``trial_steps`` steps exceeds ``slowdown`` times the
    median at the last decision (load arrived: every step at a count that became slow costs), and,
    once ``interval`` steps have passed, when ``max_seconds`` passed (load may have left). An exploration
    that cost E seconds more than the count in use would have is followed by at least
    E / ``max_overhead`` seconds without one, so exploring costs about ``max_overhead`` of the
    training time at most, however slow the other counts are.

    Args:
        candidates: thread counts to choose from; default: 1 and the count found on entry.
        trial_steps, interval, max_interval, max_seconds, margin, slowdown, max_overhead: as above.
        clock: a function returning seconds, ``time.perf_counter``; tests pass a fake one.

    Attributes:
        active: False when there is nothing to choose (then ``step()`` does nothing); ``reason``
            says why: a thread variable in the environment, a single candidate, no BLAS found.
        found: the highest thread count of numpy's BLAS on entry (restored on exit, per library).
        chosen: the count chosen; ``threads``: the count in use now (a candidate's, while
            exploring). Both None when inactive.
        choices: ``[(step, threads), ...]``: the count in use from entry (step 0), then each change
            of choice and the number of steps done when it was made.
    """

    def __init__(self, candidates=None, *, trial_steps: int = 5, interval: int = 100,
                 max_interval: int = 1600, max_seconds: float = 10.0, margin: float = 0.1,
                 slowdown: float = 1.5, max_overhead: float = 0.05, clock=time.perf_counter):
        if candidates is not None:
            candidates = [_count("candidates", c, 1) for c in _sequence(candidates)]
            if not candidates:
                raise ValueError("ThreadChooser: candidates is empty, expected thread counts such as (1, 2)")
        self.candidates = None if candidates is None else sorted(set(candidates))
        self.trial_steps = _count("trial_steps", trial_steps, 1)
        self.interval = _count("interval", interval, 1)
        self.max_interval = _count("max_interval", max_interval, self.interval)
        self.max_seconds = _number("max_seconds", max_seconds, 0.0, np.inf)
        self.margin = _number("margin", margin, 0.0, 0.99)
        self.slowdown = _number("slowdown", slowdown, 1.0, np.inf)
        self.max_overhead = _number("max_overhead", max_overhead, 0.0, 1.0)
        if self.max_overhead == 0:
            raise ValueError("ThreadChooser: max_overhead must be > 0 (a share of the training time), got 0")
        if not callable(clock):
            raise TypeError(f"ThreadChooser: clock must be a function returning seconds, got {type(clock).__name__}")
        self.clock = clock
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
        self._steps, self._last = 0, self.clock()
        if self.active:
            self._candidates = candidates
            self.chosen = self.found if self.found in candidates else candidates[-1]
            self._use(self.chosen)
            self.choices.append((0, self.chosen))
            self._recent = deque(maxlen=self.trial_steps)  # the count in use: its latest step times
            self._settle = 1  # the first step pays for allocations and cold caches: not timed
            self._trial = None
            self._reference = None  # median step of the count in use at the last decision
            self._interval = 0  # steps from one exploration to the next: 0, so the first comes soon
            self._explored_step, self._explored_time, self._not_before = 0, self._last, self._last

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
        self._steps += 1
        if self._settle:  # the step after a change of count: threads waking up or winding down
            self._settle -= 1
        elif self._trial is not None:
            self._trial_step(seconds, now)
        else:
            self._recent.append(seconds)
            if self._due(now):
                self._start_exploring(now)

    def _due(self, now: float) -> bool:
        if len(self._recent) < self.trial_steps or now < self._not_before:
            return False
        since = self._steps - self._explored_step
        if since >= self._interval:
            return True
        # Load arrived: the count in use got slower. Waiting out ``interval`` steps at a count that
        # may now be several times slower than another would cost more than a try does.
        if statistics.median(self._recent) > self.slowdown * self._reference:
            return True
        return since >= self.interval and now - self._explored_time >= self.max_seconds

    def _start_exploring(self, now: float) -> None:
        self._trial = {"baseline": statistics.median(self._recent), "start": now, "start_step": self._steps,
                       "queue": [c for c in self._candidates if c != self.chosen], "timings": [], "winners": {}}
        self._next_candidate(now)

    def _trial_step(self, seconds: float, now: float) -> None:
        trial = self._trial
        trial["timings"].append(seconds)
        fast_enough = (1 - self.margin) * trial["baseline"]
        too_slow = sum(t >= fast_enough for t in trial["timings"])
        if too_slow > self.trial_steps // 2:  # its median can no longer beat the count in use
            self._next_candidate(now)
        elif len(trial["timings"]) == self.trial_steps:
            median = statistics.median(trial["timings"])
            if median < fast_enough:  # with an even trial_steps, half fast is not enough by itself
                trial["winners"][self.threads] = median
            self._next_candidate(now)

    def _next_candidate(self, now: float) -> None:
        trial = self._trial
        if trial["queue"]:
            self._use(trial["queue"].pop(0))
            trial["timings"] = []
            self._settle = 1
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
        self._explored_step, self._explored_time = self._steps, now

    def _use(self, count: int) -> None:
        self._controller.limit(limits=count, user_api="blas")  # sets it now; __exit__ restores all
        self.threads = count

    def __repr__(self) -> str:
        if not self.active:
            return f"ThreadChooser(inactive: {self.reason})"
        return f"ThreadChooser(chosen={self.chosen}, threads={self.threads}, found={self.found}, choices={self.choices})"


class FixedThreads:
    """numpy's BLAS at ``threads`` threads inside a ``with`` block, the counts found restored after.

    What ``fit(..., threads=n)`` trains in; ``step()`` does nothing, so a loop can call it as it
    calls ``ThreadChooser.step()``.
    """

    def __init__(self, threads: int):
        self.threads = self.chosen = _count("threads", threads, 1, where="FixedThreads")
        self._limiter = None

    def __enter__(self) -> FixedThreads:
        self._limiter = ThreadpoolController().select(user_api="blas").limit(limits=self.threads, user_api="blas")
        self._limiter.__enter__()
        return self

    def __exit__(self, *exc_info) -> bool:
        limiter, self._limiter = self._limiter, None
        if limiter is not None:
            limiter.__exit__(*exc_info)
        return False

    def step(self) -> None:
        pass


def training_threads(threads, where: str = "fit"):
    """The BLAS thread policy of a training run, from ``threads`` as ``fit`` takes it.

    ``"auto"`` or None: a new ``ThreadChooser`` (which stays inactive under a thread variable);
    an int n >= 1: ``FixedThreads(n)``, whatever the environment says; a ``ThreadChooser`` or
    ``FixedThreads``: that one. Enter what it returns around the loop and call its ``step()``.
    """
    if threads is None or (isinstance(threads, str) and threads == "auto"):
        return ThreadChooser()
    if isinstance(threads, (ThreadChooser, FixedThreads)):
        return threads
    if isinstance(threads, str):
        raise ValueError(f"{where}: threads must be 'auto', None or a thread count >= 1, got {threads!r}")
    return FixedThreads(_count("threads", threads, 1, where=where,
                               expected="'auto', None, an int >= 1 or a ThreadChooser"))


# -- argument checks ---------------------------------------------------------------------------
def _sequence(value):
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError(f"ThreadChooser: candidates must be thread counts such as (1, 2), got {value!r}")
    return list(value)


def _count(name, value, minimum, where="ThreadChooser", expected=None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{where}: {name} must be {expected or 'an int'}, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{where}: {name} must be >= {minimum}, got {value}")
    return int(value)


def _number(name, value, low, high) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"ThreadChooser: {name} must be a number, got {type(value).__name__} {value!r}")
    if not low <= value <= high or np.isnan(value):
        raise ValueError(f"ThreadChooser: {name} must be in [{low:g}, {high:g}], got {value}")
    return float(value)
