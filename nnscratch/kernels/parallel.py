"""Row by row: the element-wise work of a layer done in cache-sized blocks of rows, on two cores.

``by_rows(function, *arrays)`` runs ``function`` on blocks of rows of every array (along axis 0)
instead of on the whole arrays at once, and gives half of the rows to a helper thread when numpy's
BLAS may use two:

- Blocks: a chain of numpy passes (GELU's nine, LayerNorm's, a softmax's) over arrays of a few MB
  streams each array through memory once per pass. Done a block of ``BLOCK_BYTES`` at a time, the
  block's arrays stay in the core's cache from one pass to the next (measured: GELU's forward on
  (768, 512) float32, 0.95-1.0 ms whole, 0.61-0.66 ms in blocks of 256 rows; the L2 cache here is
  2 MB a core).
- Two cores: numpy's BLAS spreads a large matrix product over its threads, but every other numpy
  operation runs on the calling thread alone. When numpy's BLAS uses two threads or more (set by
  ``--threads``, ``fit(threads=...)``, the ``ThreadChooser`` or ``OPENBLAS_NUM_THREADS``: the
  number of cores this process may use) and an array has at least ``MIN_SIZE`` elements, a helper
  thread takes the first half of the rows while the caller does the second; numpy lets go of the
  interpreter lock inside its loops and products, so both run at once.
- The same numbers either way: ``function`` must compute each row from that row alone (element-wise
  passes, reductions along other axes, a product per row), so how the rows are split changes no
  result.
- One hand-off at a time: a second thread calling meanwhile works alone. An error in either half is
  raised in the caller once both halves are done, and Ctrl-C waits for the helper's half, so no work
  is ever left running behind the caller's back.
"""

from __future__ import annotations

import functools
import os
import queue
import threading

# Rows are worked on in blocks of about this many bytes of the widest array (a few arrays of this
# size fit together in a core's L2 cache, 2 MB on the machine measured).
BLOCK_BYTES = 1 << 18
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
    may use, which ``by_rows`` follows."""
    library = _numpy_blas()
    return max(1, int(library.num_threads)) if library is not None else 1


class _Helper:
    """The helper thread and the two queues that hand it work and hand back its outcome."""

    def __init__(self):
        self.jobs, self.done = queue.SimpleQueue(), queue.SimpleQueue()
        self.busy = threading.Lock()
        self.pid = os.getpid()
        threading.Thread(target=self._serve, name="nnscratch-rows", daemon=True).start()

    def _serve(self):
        while True:
            job = self.jobs.get()
            try:
                job()
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


def by_rows(function, *arrays) -> None:
    """``function(*arrays)``, done on blocks of rows (each array split along axis 0 at the same rows),
    and on two cores when it pays: the first half of the rows in the helper thread, the rest here."""
    rows = arrays[0].shape[0] if arrays[0].ndim else 0
    if rows < 2:
        function(*arrays)
        return
    row_bytes = max(a.nbytes // max(a.shape[0], 1) for a in arrays)
    block = max(1, BLOCK_BYTES // max(row_bytes, 1))

    def blocks(start: int, stop: int) -> None:
        for first in range(start, stop, block):
            last = min(first + block, stop)
            function(*(a[first:last] for a in arrays))

    helper = None
    if max(a.size for a in arrays) >= MIN_SIZE and cores() >= 2:
        helper = _get_helper()
        if not helper.busy.acquire(blocking=False):  # another thread is using the helper: work alone
            helper = None
    if helper is None:
        blocks(0, rows)
        return
    try:
        middle = rows // 2
        helper.jobs.put(functools.partial(blocks, 0, middle))
        try:
            blocks(middle, rows)
        finally:
            error = helper.wait()
        if error is not None:
            raise error
    finally:
        helper.busy.release()
