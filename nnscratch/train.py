"""Training loops: ``fit`` a model in shuffled mini-batches; ``evaluate`` and ``predict`` in batches.

The network is split in two parts that stay separate objects:

- ``model`` maps inputs to scores, e.g. ``Sequential(Flatten(), Linear(784, 10))`` (logits) or
  ``Sequential(Linear(784, 10), Softmax())`` (probabilities). Accuracy is the argmax of its output,
  whatever its last layer, so logits and probabilities both work.
- ``loss`` maps (scores, targets) to one scalar, e.g. ``Sequential(SoftmaxCrossEntropy(), Mean())``
  or ``Sequential(CrossEntropy(), Mean())``.

A whole training network is ``Sequential(*model, *loss)``; ``net[:-2]`` and ``net[-2:]`` give the
two parts back for the usual two-layer losses. Any object following the layer protocol works in
either part, built-in or not.

Targets are integer labels (N,) or one-hot/soft rows (N, C); accuracy compares the argmax of the
scores with the label (the argmax of a one-hot row).

Modes: ``fit`` trains in train mode, ``evaluate`` and ``predict`` (and fit's validation passes) run
in eval mode, so Dropout and BatchNorm behave as they should in each. Each function puts back the
mode of every layer as it found it when it returns, also when it raises. Layers without ``train``
(plain protocol classes) are left alone.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from .clip import clip_grad_norm as _clip_grad_norm
from .containers import Sequential
from .kernels.memory import release_memory
from .protocol import in_mode
from .seeding import get_rng
from .validation import check_int
from .threads import training_threads

try:  # tqdm is a dependency; the guard keeps `progress=False` working in a bare environment
    from tqdm.auto import tqdm
except ImportError:  # pragma: no cover
    tqdm = None


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite: training diverged. The message names the epoch and batch."""


# -- argument checks ---------------------------------------------------------------------------
def _check_data(where: str, x, y=None) -> None:
    if not hasattr(x, "shape") or len(x.shape) == 0:
        raise TypeError(f"{where}: x must be an array with a batch axis (N, ...), got {type(x).__name__}")
    if len(x) == 0:
        raise ValueError(f"{where}: x is empty (shape {x.shape}), expected at least one sample")
    if y is None:
        return
    if not hasattr(y, "shape") or len(y.shape) not in (1, 2):
        raise ValueError(
            f"{where}: y must be integer labels (N,) or one-hot/soft targets (N, C), "
            f"got {getattr(y, 'shape', type(y).__name__)}"
        )
    if len(y) != len(x):
        raise ValueError(f"{where}: x has {len(x)} samples but y has {len(y)}; expected one target per sample")


def _labels(y: np.ndarray) -> np.ndarray:
    """Class labels of the targets: the labels themselves, or the argmax of one-hot/soft rows."""
    return y if y.ndim == 1 else y.argmax(axis=1)


def _scalar(where: str, value) -> float:
    if np.ndim(value) != 0:
        raise ValueError(
            f"{where}: the loss must return a scalar (end it with Mean()), got shape {np.shape(value)}"
        )
    return float(value)


def _correct(where: str, scores, labels: np.ndarray) -> int:
    if np.ndim(scores) != 2 or len(scores) != len(labels):
        raise ValueError(
            f"{where}: the model must return scores of shape (N, C) with N = {len(labels)}, "
            f"got shape {np.shape(scores)}"
        )
    return int(np.count_nonzero(scores.argmax(axis=1) == labels))


# -- evaluate and predict ----------------------------------------------------------------------
def predict(model, x, batch_size: int = 1000) -> np.ndarray:
    """The model's outputs for every sample, computed ``batch_size`` samples at a time.

    When it returns, every layer's ``release_memory()`` has dropped what the batches made it keep
    (see nnscratch/kernels/memory.py): only the result holds memory.

    Shape:
        x: (N, ...) whatever the model takes; returns (N, ...) whatever the model gives per sample
    """
    _check_data("predict", x)
    batch_size = check_int("predict", "batch_size", batch_size, 1)
    try:
        with in_mode(False, model):
            return _predict(model, x, batch_size)
    finally:  # _predict has returned: none of its batches' arrays is still held
        release_memory(model)


def _predict(model, x, batch_size: int) -> np.ndarray:
    out = None
    for start in range(0, len(x), batch_size):
        scores = model.forward(x[start : start + batch_size])
        if out is None:  # the output shape and dtype are known after the first batch
            out = np.empty((len(x), *np.shape(scores)[1:]), dtype=np.asarray(scores).dtype)
        out[start : start + batch_size] = scores
    return out


def evaluate(model, x, y, batch_size: int = 1000, loss=None) -> dict:
    """Accuracy (and the mean loss when ``loss`` is given) over a data set, in batches.

    accuracy = mean(argmax(model(x)) == label); loss = sum over batches of loss(batch) * |batch| / N,
    which is the mean over all samples for a loss ending in ``Mean()``.

    Shape:
        x: (N, ...); y: (N,) labels or (N, C) one-hot/soft
    Returns:
        {"accuracy": float, "loss": float} (no "loss" key without ``loss``)

    When it returns, every layer's ``release_memory()`` has dropped what the batches made it keep,
    as in ``predict``.
    """
    _check_data("evaluate", x, y)
    batch_size = check_int("evaluate", "batch_size", batch_size, 1)
    try:
        return _evaluate(model, x, y, batch_size, loss)
    finally:
        release_memory(model)
        if loss is not None:
            release_memory(loss)


def _evaluate(model, x, y, batch_size: int, loss) -> dict:
    """``evaluate`` without releasing memory: fit's validation, whose batches have the size of the
    training batches, so the layers' buffers serve the next epoch as they are."""
    labels = _labels(y)
    correct, total_loss = 0, 0.0
    with in_mode(False, model, *([] if loss is None else [loss])):
        for start in range(0, len(x), batch_size):
            stop = start + batch_size
            scores = model.forward(x[start:stop])
            correct += _correct("evaluate", scores, labels[start:stop])
            if loss is not None:
                total_loss += _scalar("evaluate", loss.forward(scores, y[start:stop])) * len(labels[start:stop])
    result = {"accuracy": correct / len(x)}
    if loss is not None:
        result["loss"] = total_loss / len(x)
    return result


# -- fit ---------------------------------------------------------------------------------------
def fit(
    model,
    loss,
    optimizer,
    x,
    y,
    epochs: int,
    batch_size: int,
    validation=None,
    rng=None,
    progress: bool = True,
    *,
    initial_epoch: int = 0,
    schedule=None,
    augment=None,
    on_epoch_end=None,
    threads="auto",
    clip_grad_norm=None,
) -> list[dict]:
    """Train ``model`` on (x, y) with mini-batch gradient descent; return the per-epoch history.

    Each epoch draws a fresh permutation from ``rng`` and walks it in batches of ``batch_size``, so
    every sample is seen exactly once per epoch (the last batch holds the remainder). Per batch:
    scores = model(x_b); L = loss(scores, y_b); model.backward(loss.backward(1.0));
    [clip_grad_norm(...)]; optimizer.step().

    Args:
        model, loss: the two parts of the network (see the module docstring).
        optimizer: anything with ``step()`` updating the model's parameters (``SGD``, ``Adam``).
        validation: optional (x_val, y_val), evaluated after every epoch; nothing here selects or
            stops on it.
        rng: shuffling generator: None (drawn from ``nnscratch.seed``), an int or a Generator.
        progress: a tqdm bar per epoch with the running loss and accuracy.
        initial_epoch: epochs already done (when resuming); training runs epochs
            ``initial_epoch + 1 .. epochs`` and numbers them so.
        schedule: optional ``schedule(progress) -> lr``, set as ``optimizer.lr`` before every
            batch; ``progress`` is the number of epochs done so far as a float (0.0 at the start,
            1.5 halfway through the second epoch), so a schedule can decay smoothly per step.
        augment: optional ``augment(x_batch, rng) -> x_batch``, applied to every training batch
            (never to validation), drawing its randomness from ``rng``, e.g. ``presets.random_shift``.
        on_epoch_end: optional ``callback(record)`` after each epoch (checkpointing, logging).
        threads: numpy's BLAS threads while training (the counts found come back on return or
            raise). ``"auto"`` (or None): a ``ThreadChooser`` picks the faster count as load
            changes, unless a thread variable such as ``OPENBLAS_NUM_THREADS`` is set (then
            nothing is changed); an int: that many threads throughout; a ``ThreadChooser``: that
            one, configured as you like (see nnscratch/threads.py). OpenBLAS rounds some products
            differently at another count: for runs that must match bit for bit, pass an int.
        clip_grad_norm: optional max_norm > 0: after every backward, the deltas of model and loss
            are scaled so that their global L2 norm is at most max_norm (``nnscratch.clip_grad_norm``),
            before the step. A non-finite gradient norm stops training before the step, as a
            non-finite loss does.

    Returns:
        one dict per epoch trained: ``epoch`` (1-based), ``loss`` and ``accuracy`` (over the epoch's
        batches, as the weights moved), ``val_loss`` and ``val_accuracy`` (None without
        validation), ``lr`` (at the epoch's first batch; None if the optimizer has none) and
        ``seconds`` (training time of the epoch, the validation pass excluded).

    Raises:
        NonFiniteLossError: the loss of a batch is NaN or infinite (or, with clip_grad_norm, its
            gradient norm); raised before that batch's update, naming the epoch and batch.

    Modes: each epoch trains in train mode and validates in eval mode; every layer's mode is put
    back as fit found it at the end of each, so fit leaves the model in the mode it was given.

    Shape:
        x: (N, ...) whatever the model takes; y: (N,) integer labels or (N, C) one-hot/soft
    """
    _check_data("fit", x, y)
    epochs = check_int("fit", "epochs", epochs, 0)
    batch_size = check_int("fit", "batch_size", batch_size, 1)
    initial_epoch = check_int("fit", "initial_epoch", initial_epoch, 0)
    if validation is not None:
        if not isinstance(validation, (tuple, list)) or len(validation) != 2:
            raise TypeError("fit: validation must be a pair (x_val, y_val)")
        _check_data("fit (validation)", *validation)
    if schedule is not None and not hasattr(optimizer, "lr"):
        raise TypeError(f"fit: a schedule sets optimizer.lr, but {type(optimizer).__name__} has no lr")
    if clip_grad_norm is not None:
        if isinstance(clip_grad_norm, bool) or not isinstance(clip_grad_norm, (int, float, np.integer, np.floating)):
            raise TypeError(f"fit: clip_grad_norm must be a number or None, got {type(clip_grad_norm).__name__}")
        if not clip_grad_norm > 0:
            raise ValueError(f"fit: clip_grad_norm must be > 0 (the largest gradient norm), got {clip_grad_norm!r}")
    blas_threads = training_threads(threads, "fit")
    rng = get_rng(rng)
    labels = _labels(y)
    n = len(x)
    num_batches = -(-n // batch_size)
    history = []
    with blas_threads:
        _fit_epochs(model, loss, optimizer, x, y, labels, rng, batch_size, epochs, initial_epoch, num_batches,
                    validation, progress, schedule, augment, on_epoch_end, history, blas_threads, clip_grad_norm)
    return history


def _fit_epochs(model, loss, optimizer, x, y, labels, rng, batch_size, epochs, initial_epoch, num_batches,
                validation, progress, schedule, augment, on_epoch_end, history, threads, clip=None) -> None:
    """fit's epochs, appended to ``history``; ``threads`` (a ThreadChooser or FixedThreads) times the steps."""
    for epoch in range(initial_epoch + 1, epochs + 1):
        lr = float(optimizer.lr) if hasattr(optimizer, "lr") else None
        with in_mode(True, model, loss):
            trained = _train_epoch(model, loss, optimizer, x, y, labels, rng, batch_size, epoch, epochs,
                                   num_batches, progress, schedule, augment, threads, clip)
        val = {"loss": None, "accuracy": None}
        if validation is not None:
            val = _evaluate(model, validation[0], validation[1], batch_size, loss)
        record = {
            "epoch": epoch, "loss": trained["loss"], "accuracy": trained["accuracy"],
            "val_loss": val["loss"], "val_accuracy": val["accuracy"],
            "lr": trained.get("lr", lr), "seconds": trained["seconds"],
        }  # fmt: skip
        if progress and tqdm is not None:
            tqdm.write(_epoch_line(record, epochs), file=sys.stderr)
        history.append(record)
        if on_epoch_end is not None:
            on_epoch_end(record)


def _epoch_line(record: dict, epochs: int) -> str:
    line = f"epoch {record['epoch']}/{epochs}: loss {record['loss']:.4f}, accuracy {record['accuracy']:.4f}"
    if record["val_accuracy"] is not None:
        line += f", val_loss {record['val_loss']:.4f}, val_accuracy {record['val_accuracy']:.4f}"
    return line + f" ({record['seconds']:.1f} s)"


def _train_epoch(model, loss, optimizer, x, y, labels, rng, batch_size, epoch, epochs, num_batches,
                 progress, schedule, augment, threads=None, clip=None) -> dict:
    """One pass over a fresh permutation of the data; returns the epoch's loss, accuracy, first lr
    and time."""
    result = {}
    order = rng.permutation(len(x))
    skip_input_delta = isinstance(model, Sequential)
    total_loss, correct, seen = 0.0, 0, 0
    bar = None
    if progress and tqdm is not None:
        bar = tqdm(total=len(x), desc=f"epoch {epoch}/{epochs}", unit="img", leave=False,
                   dynamic_ncols=True)
    started = time.perf_counter()
    if threads is not None:  # the last epoch's validation, on_epoch_end and this epoch's start are no step
        threads.skip()
    try:
        # A diverging run overflows in exp() and friends; the guard below reports that once,
        # clearly, instead of a stream of RuntimeWarnings.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            for batch, start in enumerate(range(0, len(x), batch_size), start=1):
                index = order[start : start + batch_size]
                if schedule is not None:
                    optimizer.lr = float(schedule(epoch - 1 + (batch - 1) / num_batches))
                    if batch == 1:
                        result["lr"] = optimizer.lr
                x_batch, y_batch = x[index], y[index]
                if augment is not None:
                    x_batch = augment(x_batch, rng)
                scores = model.forward(x_batch)
                value = _scalar("fit", loss.forward(scores, y_batch))
                if not np.isfinite(value):
                    lr = f" (lr={optimizer.lr:g})" if hasattr(optimizer, "lr") else ""
                    raise NonFiniteLossError(
                        f"training diverged: the loss is {value} at epoch {epoch}, batch "
                        f"{batch}/{num_batches}; the learning rate{lr} is probably too high, "
                        "try a lower one"
                    )
                correct += _correct("fit", scores, labels[index])
                if skip_input_delta:  # nobody uses dL/dx of the data: skip computing it
                    model.backward(loss.backward(1.0), input_delta=False)
                else:
                    model.backward(loss.backward(1.0))
                if clip is not None:
                    norm = _clip_grad_norm([model, loss], clip)
                    if not np.isfinite(norm):
                        raise NonFiniteLossError(
                            f"training diverged: the gradient norm is {norm} at epoch {epoch}, batch "
                            f"{batch}/{num_batches} (the loss was {value:g}); the learning rate is probably "
                            "too high, try a lower one"
                        )
                optimizer.step()
                if threads is not None:  # the BLAS thread chooser times the steps
                    threads.step()
                total_loss += value * len(index)
                seen += len(index)
                if bar is not None:
                    bar.update(len(index))
                    if batch % 20 == 0 or seen == len(x):  # formatting the postfix every batch costs
                        bar.set_postfix(loss=f"{total_loss / seen:.4f}", acc=f"{correct / seen:.4f}",
                                        refresh=False)
    finally:
        if bar is not None:
            bar.close()
    result.update(loss=total_loss / seen, accuracy=correct / seen, seconds=time.perf_counter() - started)
    return result

