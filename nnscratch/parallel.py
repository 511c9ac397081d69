"""Data parallelism over processes: each training step's batch split by rows across processes, one
core each, the gradients combined into the main process's network.

Why processes, not threads: numpy's element-wise passes (GELU, LayerNorm, the softmax, the
optimizer's update) run on one core, and only BLAS's products use a second one. Python threads can
share that work in principle (numpy lets go of the interpreter lock inside its loops), but each of
a step's ~1,000 numpy calls has to take the lock back, and the threads wait on each other for it:
measured on train-text's GPT (2 cores), two threads each taking half the batch gave 41-43 ms a
step against 44-46 for one process with BLAS's two threads, while two processes gave 33 ms
(docs/benchmarks.md). A process has an interpreter, and a lock, of its own.

How a step goes (``step(x, targets)``), with P processes (the main one and P - 1 workers):

1. The batch is cut into P slices of consecutive rows. The main process copies its parameters into
   shared memory and sends each worker its slice through a pipe.
2. Each worker copies the parameters into its own network (built from the same description as a
   checkpoint's), runs forward and backward on its slice, and writes its gradients, scaled by its
   slice's share of the counted targets, into its own block of shared memory. The main process does
   the same with the first slice meanwhile.
3. The main process adds the workers' gradients into its layers' ``parameters_deltas`` and returns
   the loss. The loss is a mean over counted targets (a cross-entropy's ignored ones left out), so
   the slices are weighted by their counts: the result is the whole batch's mean loss and its
   gradient, up to rounding. The optimizer then updates the main process's weights as usual.

Each process runs BLAS at one thread (``threads``), so P processes use P cores. A run is
deterministic for a fixed P and thread count. The networks must compute the same thing in every
process: no dropout in training, no state carried from batch to batch, no running statistics, and
built-in layers only (``check_network``). Messages between the processes are this module's own
arrays and tuples (pickled by ``multiprocessing``), each answer naming the call it answers; nothing
a user hands over is unpickled. What a worker runs, and the shared memory's layout, are in
``parallel_worker``.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import time
from contextlib import contextmanager

import numpy as np

from .parallel_worker import ALIGN, blocks, check_network, forward_backward, leaves, worker
from .validation import check_int

START_TIMEOUT = 120.0  # seconds a worker may take to start (import numpy and nnscratch, build the network)
STOP_TIMEOUT = 5.0  # seconds the workers get to stop when asked, then when terminated


class WorkerError(RuntimeError):
    """A worker process that died, did not start in time, or failed in an unexpected way."""


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity where the system tells), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


@contextmanager
def _sigint_blocked():
    """SIGINT held back (not lost) in this thread meanwhile; a process started meanwhile keeps it blocked
    from birth, before it could install ``_worker``'s SIG_IGN (else a Ctrl-C then printed its traceback)."""
    if not hasattr(signal, "pthread_sigmask"):  # Windows
        yield
        return
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()  # started by the first start(), it unblocks SIGINT in this thread afterwards
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class DataParallel:
    """``processes`` processes training one network: ``with DataParallel(model, loss, 2, count) as
    parallel:`` then ``parallel.step(x, targets)`` (forward and backward, the gradients left in
    ``model``'s and ``loss``'s ``parameters_deltas``) and ``parallel.loss_of(x, targets)`` (eval mode,
    no backward). ``count(targets) -> int`` is the number of targets the loss averages over. With
    ``input_delta``, backward also computes dL/dx of the input (and discards it), as a network's
    first layer would need it; by default it is skipped (``Sequential.backward(input_delta=False)``).

    With ``processes=1`` nothing is started and both run in this process, as plain calls; with
    ``fallback``, so does a DataParallel whose workers could not start (``fallback_reason`` says why).
    Workers are started by ``multiprocessing``'s spawn, which imports the main script again in each:
    a script that uses one must keep its work under ``if __name__ == "__main__":``.
    """

    def __init__(self, model, loss, processes: int, count, threads: int = 1, where: str = "train-text",
                 input_delta: bool = False, fallback: bool = False):
        if not callable(count):
            raise TypeError(f"DataParallel: count must be a function of the targets giving how many the loss "
                            f"averages over, got {type(count).__name__}")
        processes = check_int("DataParallel", "processes", processes, 1)
        threads = check_int("DataParallel", "threads", threads, 1)
        self.model, self.loss, self.count, self.where = model, loss, count, where
        self.processes, self.threads, self.input_delta, self.fallback = processes, threads, input_delta, fallback
        self.fallback_reason = None
        self._workers: list = []
        self._memory = self._limiter = None
        self._calls = 0  # steps and losses asked of the workers; each answer names its call
        if processes > 1:
            check_network(where, model, loss)

    # -- starting and stopping -----------------------------------------------------------------------
    def __enter__(self) -> DataParallel:
        # spawn's worker imports the main script again: one without the guard starts its work again in
        # there (multiprocessing's RuntimeError was a traceback in every worker); it says so and exits
        if self.processes > 1 and getattr(multiprocessing.current_process(), "_inheriting", False):
            raise SystemExit(f"{self.where}: a worker process, importing the main script {sys.argv[0]}, was asked to "
                             "start the work again; a script that uses several processes must keep its work under "
                             "if __name__ == \"__main__\":")
        if self.processes > 1:
            try:
                self._start()
            except BaseException as error:
                self.close()
                # multiprocessing refuses a daemonic process children with an AssertionError; a MemoryError
                # is a worker's copy of the network that did not fit (one process may still train)
                if not isinstance(error, (OSError, WorkerError, AssertionError, MemoryError)):
                    raise
                reason = f"could not start worker processes ({type(error).__name__}: {error})"
                if not self.fallback:
                    if isinstance(error, WorkerError):
                        raise
                    raise WorkerError(f"{self.where}: {reason}; try --processes 1") from error
                self.processes, self.fallback_reason = 1, reason
        return self

    def __exit__(self, *exc_info) -> bool:
        self.close()
        return False

    def _start(self) -> None:
        from threadpoolctl import ThreadpoolController

        from .io.registry import describe, layer_classes

        self._calls = 0  # new workers answer call 0 when they are ready
        # this process's BLAS at ``threads`` too while the workers run (FixedThreads' way)
        self._limiter = ThreadpoolController().select(user_api="blas").limit(limits=self.threads, user_api="blas")
        classes = layer_classes()
        descriptions = [describe(self.model, "model", classes), describe(self.loss, "loss", classes)]
        parameters = self._parameters()
        size = sum(-(-p.nbytes // ALIGN) * ALIGN for p in parameters) + ALIGN
        context = multiprocessing.get_context("spawn")  # fork would copy BLAS's threads in a broken state
        # one block for the parameters, then one for each worker's gradients
        self._memory = context.RawArray("b", size * self.processes)
        buffer = memoryview(self._memory).cast("B")
        self._shared, _ = blocks(parameters, buffer, 0)
        for rank in range(1, self.processes):
            ends = context.Pipe()
            process = context.Process(target=worker, name=f"nnscratch-worker-{rank}", daemon=True,
                                      args=(ends[1], descriptions, self._memory, size, rank, self.threads,
                                            self.input_delta))
            with _sigint_blocked():  # which the worker inherits: a Ctrl-C while it starts is the main process's alone
                process.start()
            ends[1].close()
            self._workers.append((process, ends[0], blocks(parameters, buffer, size * rank)[0]))
        for process, conn, _ in self._workers:
            self._answer(process, conn, "start", START_TIMEOUT)

    def close(self) -> None:
        """Stop the workers (asked first, then terminated, then killed), free the shared memory; idempotent."""
        workers, self._workers = self._workers, []
        for process, conn, _ in workers:
            try:
                conn.send(("stop",))
            except (OSError, ValueError):
                pass
        try:
            for stop in (None, "terminate"):
                alive = [process for process, _, _ in workers if process.is_alive()]
                for process in alive if stop else ():
                    process.terminate()
                deadline = time.monotonic() + STOP_TIMEOUT
                for process in alive:
                    process.join(max(0.0, deadline - time.monotonic()))
        finally:
            # a worker stopped (SIGSTOP) or deaf to SIGTERM is killed, also when a second Ctrl-C cuts the waits
            # short: else multiprocessing's exit handler waits for it forever
            for process, conn, _ in workers:
                if process.is_alive():
                    process.kill()
                    process.join(STOP_TIMEOUT)
                conn.close()
            self._memory = None
            limiter, self._limiter = self._limiter, None
            if limiter is not None:
                limiter.restore_original_limits()

    def _parameters(self) -> list:
        return [p for layer in (self.model, self.loss) for inner in leaves(layer) for p in inner.parameters]

    def _deltas(self) -> list:
        from .kernels.memory import writable_deltas

        return [d for layer in (self.model, self.loss) for inner in leaves(layer) for d in writable_deltas(inner)]

    # -- a step --------------------------------------------------------------------------------------
    def step(self, x, targets) -> float:
        """Forward and backward over the batch (rows split across the processes); the mean loss over
        every counted target, its gradient in the layers' ``parameters_deltas``."""
        return self._run(x, targets, train=True)

    def loss_of(self, x, targets) -> float:
        """The mean loss over the batch's counted targets, in eval mode, without backward."""
        return self._run(x, targets, train=False)

    def _run(self, x, targets, train: bool) -> float:
        slices = self._slices(len(x), targets)
        total = sum(count for _, count in slices)
        if not self._workers or len(slices) < 2 or total == 0:
            return forward_backward(self.model, self.loss, x, targets, train, self.input_delta)
        for shared, parameter in zip(self._shared, self._parameters()):
            np.copyto(shared, parameter)  # as they are now: the optimizer changed them since the last call
        sent, failure = [], None
        self._calls += 1
        for (rows, count), (process, conn, grads) in zip(slices[1:], self._workers):
            if count:
                try:
                    conn.send(("step" if train else "loss", self._calls, x[rows], targets[rows], count / total))
                except (OSError, ValueError):  # the worker is gone
                    failure = self._exited(process, "step")
                    break
                sent.append((process, conn, grads))
        # when this process's part fails (Ctrl-C, SIGTERM) the answers are left unread (the next call skips
        # them): a worker killed by the same SIGTERM must not turn the interrupt into a WorkerError
        # the layers' gradient arrays, fetched once (writable_deltas keeps the same arrays through backward)
        deltas = self._deltas() if train else []
        value = self._own_part(x, targets, *slices[0], total, train, deltas) if failure is None else 0.0
        answers = [self._answer(process, conn, "step", None, keep_error=True) for process, conn, _ in sent]
        answers += [failure] if failure is not None else []
        for answer in answers:
            if isinstance(answer, Exception):
                raise answer
        value += sum(answers)
        if train:
            for _, _, grads in sent:
                for delta, grad in zip(deltas, grads):
                    delta += grad
        return value

    def _own_part(self, x, targets, rows: slice, count: int, total: int, train: bool, deltas: list) -> float:
        """This process's slice: its loss and, with ``train``, its gradients (in ``deltas``, the
        layers' gradient arrays), weighted by its share of the counted targets."""
        if not count:
            for delta in deltas:
                delta.fill(0)
            return 0.0
        value = forward_backward(self.model, self.loss, x[rows], targets[rows], train, self.input_delta)
        for delta in deltas:
            delta *= delta.dtype.type(count / total)
        return value * (count / total)

    def _slices(self, rows: int, targets) -> list:
        """[(slice of rows, counted targets in it)] for each process that gets rows, in order."""
        parts = min(len(self._workers) + 1, rows) if self._workers else 1
        bounds = [rows * k // parts for k in range(parts + 1)]
        return [(slice(a, b), int(self.count(targets[a:b]))) for a, b in zip(bounds, bounds[1:])]

    def _answer(self, process, conn, what: str, timeout, keep_error: bool = False):
        """The worker's answer to the last message: its value, or the error it reports, raised as
        ours (returned instead with ``keep_error``, when the worker itself is still well)."""
        while True:
            ready = multiprocessing.connection.wait([conn, process.sentinel], timeout)
            if not ready:
                raise WorkerError(f"{self.where}: worker process {process.name} did not {what} within {timeout:g} s")
            if conn not in ready:
                raise self._exited(process, what)
            try:
                kind, call, value = conn.recv()
            except (EOFError, OSError):
                raise self._exited(process, what) from None
            if call == self._calls:  # else the answer to a call interrupted (Ctrl-C) before it was read
                break
        if kind == "ok":
            return value
        name, message = value
        error = _error_of_kind(name, f"{self.where}: worker process {process.name} failed: {message}")
        if keep_error:
            return error
        raise error

    def _exited(self, process, what: str) -> WorkerError:
        process.join(1.0)
        return WorkerError(f"{self.where}: worker process {process.name} exited (code {process.exitcode}) during "
                           f"the {what}; try --processes 1")


# the errors a worker reports as their own kind (the layers' ValueError and TypeError for bad input,
# MemoryError, which train-text explains); any other is a WorkerError
KINDS = {kind.__name__: kind for kind in (ValueError, TypeError, MemoryError, FloatingPointError, OverflowError)}


def _error_of_kind(name: str, message: str) -> Exception:
    return KINDS[name](message) if name in KINDS else WorkerError(f"{message} ({name})")


