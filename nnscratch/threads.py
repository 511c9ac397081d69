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

The machinery is apart: ``ThreadChooser`` in thread_chooser.py, what the environment and Linux say
(the thread variables, the threads' waits for a CPU) in thread_probe.py. Here: ``FixedThreads`` and
``training_threads``, the choice ``fit`` makes from its ``threads`` argument.
"""

from __future__ import annotations

from threadpoolctl import ThreadpoolController

from .thread_chooser import ThreadChooser, typical_step  # noqa: F401 (typical_step: public)
from .thread_probe import THREAD_VARIABLES, thread_variable  # noqa: F401 (re-exported)
from .validation import check_int, is_int


class FixedThreads:
    """numpy's BLAS at ``threads`` threads inside a ``with`` block, the counts found restored after.

    What ``fit(..., threads=n)`` trains in; ``step()`` and ``skip()`` do nothing, so a loop can call
    them as it calls ``ThreadChooser``'s.
    """

    def __init__(self, threads: int):
        self.threads = self.chosen = check_int("FixedThreads", "threads", threads, 1)
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

    def skip(self) -> None:
        pass


def training_threads(threads, where: str = "fit"):
    """The BLAS thread policy of a training run, from ``threads`` as ``fit`` takes it.

    ``"auto"`` or None: a new ``ThreadChooser`` (which stays inactive under a thread variable);
    an int n >= 1: ``FixedThreads(n)``, whatever the environment says; a ``ThreadChooser`` or
    ``FixedThreads``: that one. Enter what it returns around the loop and call its ``step()`` (and ``skip()``).
    """
    if threads is None or (isinstance(threads, str) and threads == "auto"):
        return ThreadChooser()
    if isinstance(threads, (ThreadChooser, FixedThreads)):
        return threads
    if isinstance(threads, str):
        raise ValueError(f"{where}: threads must be 'auto', None or a thread count >= 1, got {threads!r}")
    if not is_int(threads):
        raise TypeError(f"{where}: threads must be 'auto', None, an int >= 1 or a ThreadChooser, got "
                        f"{type(threads).__name__} {threads!r:.100}")
    return FixedThreads(check_int(where, "threads", threads, 1))
