"""What the environment and the system say about BLAS's threads: the thread variable a user set,
and how long this process's threads waited for a CPU, which ``ThreadChooser`` (thread_chooser.py)
looks at before it has timed anything.

Linux keeps, per thread, the time it spent ready to run but waiting on a run queue for a CPU
(``/proc/self/task/<tid>/schedstat``). A BLAS call ends with its slowest thread, so the largest wait
of one of our threads over a step says how much of that step went to waiting for cores that others
hold. Elsewhere (not Linux, or a kernel without these figures) the probe returns None and the
chooser times steps only.
"""

from __future__ import annotations

import os

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


# Where Linux keeps each thread's scheduling figures: "<ns run> <ns waited on a run queue> <slices>".
_TASKS = "/proc/self/task"


def thread_waits() -> dict | None:
    """{thread id: seconds it has waited, ready to run, for a CPU} for this process's threads; None
    where the system does not say (not Linux, or a kernel without these figures)."""
    try:
        tids = os.listdir(_TASKS)
    except OSError:
        return None
    waits = {}
    for tid in tids:
        try:
            with open(f"{_TASKS}/{tid}/schedstat", "rb") as f:
                waits[tid] = int(f.read().split()[1]) / 1e9
        except (OSError, IndexError, ValueError):  # a thread that ended since the listing
            continue
    return waits or None


def longest_wait_share(before: dict | None, after: dict | None, seconds: float) -> float | None:
    """The largest share of ``seconds`` that one thread spent waiting for a CPU between two
    ``thread_waits``; None when either is unknown. A BLAS call ends with its slowest thread."""
    if before is None or after is None or seconds <= 0:
        return None
    return max((after[tid] - before[tid] for tid in after.keys() & before.keys()), default=0.0) / seconds
