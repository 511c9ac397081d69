"""The worker's side of ``nnscratch.parallel``: what a worker process runs (``worker``), the
forward and backward it shares with the main process, the layout of the shared memory, and what a
network must be for every process to compute the same thing (``check_network``).
"""

from __future__ import annotations

import signal

import numpy as np

from . import protocol

ALIGN = 64  # bytes: each parameter's block in shared memory starts on a cache line


def leaves(layer) -> list:
    """The layers of ``layer`` (containers walked into) that hold parameters, in a fixed order."""
    return [inner for inner in protocol.walk(layer)
            if not protocol.children(inner) and getattr(inner, "parameters", None)]


def check_network(where: str, *layers) -> None:
    """Refuse what would compute differently in each process: dropout in training, carried state,
    running statistics (``buffers``: only parameters travel between the processes); and a layer no
    worker can build."""
    from .io.registry import CONTAINERS, class_key, layer_classes

    classes = layer_classes()
    for layer in (inner for outer in layers for inner in protocol.walk(outer)):
        name = type(layer).__name__
        if CONTAINERS.get(name) is not type(layer) and class_key(layer, classes) is None:
            raise TypeError(f"{where}: the network has a {name}, which the worker processes cannot build: each builds "
                            "its copy from the network's description, as nnscratch.load does, and knows nnscratch's "
                            "own layers only. Use one process (--processes 1)")
        rate = getattr(layer, "dropout", getattr(layer, "p", 0.0))
        if isinstance(rate, (int, float)) and rate > 0:
            raise ValueError(f"{where}: the network has a {name} with dropout {rate:g}; several processes would each "
                             "draw their own masks. Use one process (--processes 1)")
        if getattr(layer, "stateful", False):
            raise ValueError(f"{where}: the network has a stateful {name}, whose state one process alone can carry "
                             "from batch to batch. Use one process (--processes 1)")
        if getattr(layer, "buffers", None) and not protocol.children(layer):  # a container lists its layers' too
            raise ValueError(f"{where}: the network has a {name}, whose running statistics each process would update "
                             "from its own slice of the batch (and its workers' copies never reach the main process). "
                             "Use one process (--processes 1)")


def blocks(arrays, buffer, start: int = 0) -> tuple:
    """Views into ``buffer`` shaped and typed as ``arrays``, one after the other from byte ``start``,
    each aligned; (views, the byte after the last)."""
    views, offset = [], start
    for array in arrays:
        offset = -(-offset // ALIGN) * ALIGN
        views.append(np.ndarray(array.shape, array.dtype, buffer, offset))
        offset += array.nbytes
    return views, offset


def forward_backward(model, loss, x, targets, train: bool, input_delta: bool) -> float:
    """The loss of one slice (and its gradients in the layers, with ``train``)."""
    if not train:
        with protocol.in_mode(False, model, loss):
            return float(loss.forward(model.forward(x), targets))
    value = float(loss.forward(model.forward(x), targets))
    model.backward(loss.backward(1.0), input_delta=input_delta)
    return value


def worker(conn, descriptions, memory, size: int, rank: int, threads: int, input_delta: bool) -> None:
    """A worker process: build the network, then answer steps until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    try:
        from threadpoolctl import threadpool_limits

        from .io.registry import build, layer_classes
        from .kernels.memory import writable_deltas

        threadpool_limits(threads, user_api="blas")
        classes = layer_classes()
        model, loss = (build(description, classes) for description in descriptions)
        parameters = [p for layer in (model, loss) for inner in leaves(layer) for p in inner.parameters]
        buffer = memoryview(memory).cast("B")
        shared, _ = blocks(parameters, buffer, 0)
        grads, _ = blocks(parameters, buffer, size * rank)
        conn.send(("ok", 0, None))
    except BaseException as error:  # noqa: BLE001 (reported to the main process, which raises it)
        try:
            conn.send(("error", 0, (type(error).__name__, str(error))))
        except OSError:  # the main process is gone (its answer to "ok" failed too)
            pass
        return
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):  # the main process is gone (killed): nobody to answer
            return
        if message[0] == "stop":
            return
        kind, call, x, targets, weight = message
        try:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                for parameter, value in zip(parameters, shared):
                    np.copyto(parameter, value)
                value = forward_backward(model, loss, x, targets, kind == "step", input_delta) * weight
                if kind == "step":
                    deltas = [d for layer in (model, loss) for inner in leaves(layer) for d in writable_deltas(inner)]
                    for grad, delta in zip(grads, deltas):
                        np.multiply(delta, delta.dtype.type(weight), out=grad)
            answer = ("ok", call, value)
        except Exception as error:  # noqa: BLE001 (reported to the main process, which raises it)
            answer = ("error", call, (type(error).__name__, str(error)))
        try:
            conn.send(answer)
        except OSError:  # the main process is gone
            return
