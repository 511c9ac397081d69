"""Two cores for the work numpy does on one: a helper thread that takes half of the first axis.

numpy's BLAS spreads a large matrix product over its threads, but every other numpy operation (the
element-wise passes of GELU and LayerNorm, a softmax, the many small per-head products of attention)
runs on the calling thread alone. ``halves(function, *arrays)`` runs ``function`` on the first half
of every array (along axis 0) in a helper thread and on the second half in the caller, at the same
time: numpy lets go of the interpreter lock inside its loops and products, so both halves run.

- When: numpy's BLAS uses two threads or more (``--threads``, ``fit(threads=...)``, the
  ``ThreadChooser`` or ``OPENBLAS_NUM_THREADS`` set that count: the number of cores this process
  may use), one of the arrays is large enough to pay for the hand-off (``MIN_SIZE`` elements; a
  hand-off costs ~5 us) and they have at least two rows. Otherwise ``function(*arrays)`` runs as it is.
- The same numbers either way: ``function`` must compute each row from that row alone (element-wise
  passes, reductions along other axes, a product per row), so splitting the rows changes no result.
- One hand-off at a time: a second thread calling meanwhile runs its work whole. An error in either
  half is raised in the caller once both halves are done, and Ctrl-C waits for the helper's half, so
  no work is ever left running behind the caller's back.
"""

from __future__ import annotations

import functools
import os
import queue
import threading

# When no array has this many elements, one thread does the work: measured, the hand-off (~5 us) and
# the halved loops' start-up outweigh the gain.
MIN_SIZE = 1 << 15


@functools.lru_cache(maxsize=1)
def _numpy_blas():
    """threadpoolctl's controller of numpy's BLAS (numpy's own copy, not one torch brought), or None."""
    from threadpoolctl import ThreadpoolController

    libraries = ThreadpoolController().select(user_api="blas").lib_controllers
    libraries.sort(key=lambda library: not any(name in library.filepath for name in ("numpy", "scipy_openblas")))
    return libraries[0] if libraries else None


def cores() -> int:
    """How many threads numpy's BLAS uses right now (1 when it cannot be told): the cores this process
    may use, which ``halves`` follows."""
    library = _numpy_blas()
    return max(1, int(library.num_threads)) if library is not None else 1


class _Helper:
    """The helper thread and the two queues that hand it work and hand back its outcome."""

    def __init__(self):
        self.jobs, self.done = queue.SimpleQueue(), queue.SimpleQueue()
        self.busy = threading.Lock()
        self.pid = os.getpid()
        threading.Thread(target=self._serve, name="nnscratch-halves", daemon=True).start()

    def _serve(self):
        while True:
            function, arrays = self.jobs.get()
            try:
                function(*arrays)
                self.done.put(None)
            except BaseException as error:  # handed to the caller, which raises it
                self.done.put(error)

    def wait(self):
        """The helper's outcome (None or its error), waited for even through Ctrl-C, which is raised after."""
        interrupted = None
        while True:
            try:
                outcome = self.done.get()
                break
            except KeyboardInterrupt as interrupt:
                interrupted = interrupt
        if interrupted is not None:
            raise interrupted
        return outcome


_helper = None
_start_lock = threading.Lock()


def _get_helper() -> _Helper:
    global _helper
    with _start_lock:
        if _helper is None or _helper.pid != os.getpid():  # none yet, or this is a forked child
            _helper = _Helper()
        return _helper


def halves(function, *arrays) -> None:
    """``function(*arrays)``, on two cores when it pays: ``function(*first halves)`` in the helper
    thread and ``function(*second halves)`` here, each array split along axis 0 at the same row."""
    rows = arrays[0].shape[0] if arrays[0].ndim else 0
    if rows < 2 or max(a.size for a in arrays) < MIN_SIZE or cores() < 2:
        function(*arrays)
        return
    helper = _get_helper()
    if not helper.busy.acquire(blocking=False):  # another thread is using the helper: work alone
        function(*arrays)
        return
    try:
        middle = rows // 2
        helper.jobs.put((function, tuple(a[:middle] for a in arrays)))
        try:
            function(*(a[middle:] for a in arrays))
        finally:
            error = helper.wait()
        if error is not None:
            raise error
    finally:
        helper.busy.release()
