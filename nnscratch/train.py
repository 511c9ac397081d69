"""The training loop: ``fit`` a model in shuffled mini-batches (``evaluate`` and ``predict``: evaluation.py).

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
scores with the label (the argmax of a one-hot row). For sequences, scores (N, T, C) and labels
(N, T): loss and accuracy are over the tokens, those the loss ignores left out (evaluation.py).

Modes: ``fit`` trains in train mode, ``evaluate`` and ``predict`` (and fit's validation passes) run
in eval mode, so Dropout and BatchNorm behave as they should in each. Each function puts back the
mode of every layer as it found it when it returns, also when it raises. Layers without ``train``
(plain protocol classes) are left alone.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass

import numpy as np

from .clip import clip_grad_norm as _clip_grad_norm
from .containers import Sequential
from .evaluation import check_data, check_validation, count_correct, evaluate_in_batches, ignore_index_of, ratio, scalar
from .protocol import in_mode
from .schedules import check_rate
from .seeding import get_rng
from .threads import training_threads
from .validation import check_int

try:  # tqdm is a dependency; the guard keeps `progress=False` working in a bare environment
    from tqdm.auto import tqdm
except ImportError:  # pragma: no cover
    tqdm = None


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite: training diverged. The message names the epoch and batch."""


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
    max_grad_norm=None,
    clip_grad_norm=None,
) -> list[dict]:
    """Train ``model`` on (x, y) with mini-batch gradient descent; return the per-epoch history.

    Each epoch draws a fresh permutation from ``rng`` and walks it in batches of ``batch_size``, so
    every sample is seen exactly once per epoch (the last batch holds the remainder). Per batch:
    scores = model(x_b); L = loss(scores, y_b); model.backward(loss.backward(1.0));
    [clip_grad_norm_(...)]; optimizer.step().

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
        max_grad_norm: optional max_norm > 0: after every backward, the deltas of model and loss
            are scaled so that their global L2 norm is at most max_norm (``nnscratch.clip_grad_norm_``),
            before the step. A non-finite gradient norm stops training before the step, as a
            non-finite loss does. (``clip_grad_norm=`` is its earlier name, still accepted.)

    Returns:
        one dict per epoch trained: ``epoch`` (1-based), ``loss`` and ``accuracy`` (over the epoch's
        batches, as the weights moved), ``val_loss`` and ``val_accuracy`` (None without
        validation), ``lr`` (at the epoch's first batch; None if the optimizer has none) and
        ``seconds`` (training time of the epoch, the validation pass excluded).

    Raises:
        NonFiniteLossError: the loss of a batch is NaN or infinite (or, with max_grad_norm, its
            gradient norm); raised before that batch's update, naming the epoch and batch. Or, at
            the end of an epoch, a weight (a parameter or buffer of model or loss) is NaN or
            infinite, or the validation loss is: updates no loss has seen yet diverged. So
            ``on_epoch_end`` never sees a diverged epoch, and a record holds no NaN but where
            nothing was counted (every token ignored).
        ValueError: the schedule returned a negative, NaN or infinite rate (naming the epoch and
            batch); the validation data do not have the training data's shape per sample (checked
            before the first step).

    Modes: each epoch trains in train mode and validates in eval mode; every layer's mode is put
    back as fit found it at the end of each, so fit leaves the model in the mode it was given.

    Shape:
        x: (N, ...) whatever the model takes (integer ids (N, T) for a model starting with
        Embedding); y: (N,) integer labels, (N, C) one-hot/soft, or (N, T) token labels (loss and
        accuracy then over the tokens counted, as in ``evaluate``)
    """
    check_data("fit", x, y)
    if clip_grad_norm is not None:  # the earlier name of max_grad_norm, which shadowed the function
        if max_grad_norm is not None:
            raise TypeError("fit: give max_grad_norm, not both it and clip_grad_norm (its earlier name)")
        max_grad_norm = clip_grad_norm
    run = _Run(
        model=model, loss=loss, optimizer=optimizer, x=x, y=y, ignore_index=ignore_index_of(loss),
        batch_size=check_int("fit", "batch_size", batch_size, 1),
        epochs=check_int("fit", "epochs", epochs, 0),
        validation=check_validation("fit", validation, x, y), progress=progress, schedule=schedule, augment=augment,
        on_epoch_end=on_epoch_end, max_grad_norm=_checked_max_grad_norm(max_grad_norm),
    )
    initial_epoch = check_int("fit", "initial_epoch", initial_epoch, 0)
    if schedule is not None and not hasattr(optimizer, "lr"):
        raise TypeError(f"fit: a schedule sets optimizer.lr, but {type(optimizer).__name__} has no lr")
    run.threads = training_threads(threads, "fit")
    run.rng = get_rng(rng)
    history = []
    with run.threads:
        for epoch in range(initial_epoch + 1, run.epochs + 1):
            record = _fit_epoch(run, epoch)
            history.append(record)
            if on_epoch_end is not None:
                on_epoch_end(record)
    return history


def _checked_max_grad_norm(value):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"fit: max_grad_norm must be a number or None, got {type(value).__name__}")
    if not value > 0:
        raise ValueError(f"fit: max_grad_norm must be > 0 (the largest gradient norm), got {value!r}")
    return value


@dataclass
class _Run:
    """What every epoch of one ``fit`` works with: its arguments, checked, and the shuffling generator
    and BLAS thread control it made."""

    model: object
    loss: object
    optimizer: object
    x: object
    y: object
    ignore_index: int | None  # the loss's: those targets count for neither loss nor accuracy
    batch_size: int
    epochs: int
    validation: tuple | None
    progress: bool
    schedule: object
    augment: object
    on_epoch_end: object
    max_grad_norm: float | None
    rng: np.random.Generator | None = None
    threads: object = None  # a ThreadChooser or FixedThreads: times the steps

    @property
    def num_batches(self) -> int:
        return -(-len(self.x) // self.batch_size)


def _fit_epoch(run: _Run, epoch: int) -> dict:
    """Train one epoch (in train mode), validate (in eval mode); return the epoch's record."""
    lr = float(run.optimizer.lr) if hasattr(run.optimizer, "lr") else None
    with in_mode(True, run.model, run.loss):
        trained = _train_epoch(run, epoch)
    val = {"loss": None, "accuracy": None}
    if run.validation is not None:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # a divergence is said below, once
            val = evaluate_in_batches(run.model, run.validation[0], run.validation[1], run.batch_size, run.loss)
        if not math.isfinite(val["loss"]) and not math.isnan(val["accuracy"]):  # (both NaN: nothing counted)
            raise _diverged(f"the validation loss is {val['loss']}", epoch, None, run)
    record = {
        "epoch": epoch, "loss": trained["loss"], "accuracy": trained["accuracy"],
        "val_loss": val["loss"], "val_accuracy": val["accuracy"],
        "lr": trained.get("lr", lr), "seconds": trained["seconds"],
    }  # fmt: skip
    if run.progress and tqdm is not None:
        tqdm.write(_epoch_line(record, run.epochs), file=sys.stderr)
    return record


def _epoch_line(record: dict, epochs: int) -> str:
    line = f"epoch {record['epoch']}/{epochs}: loss {record['loss']:.4f}, accuracy {record['accuracy']:.4f}"
    if record["val_accuracy"] is not None:
        line += f", val_loss {record['val_loss']:.4f}, val_accuracy {record['val_accuracy']:.4f}"
    return line + f" ({record['seconds']:.1f} s)"


def _diverged(what: str, epoch: int, batch: int | None, run: _Run, after: str = "") -> NonFiniteLossError:
    """The error for a divergence: ``what`` was seen at ``batch`` of ``epoch`` (None: the epoch's end)."""
    lr = f" (lr={run.optimizer.lr:g})" if hasattr(run.optimizer, "lr") else ""
    where = f"the end of epoch {epoch}" if batch is None else f"epoch {epoch}, batch {batch}/{run.num_batches}"
    return NonFiniteLossError(
        f"training diverged: {what} at {where}{after}; the learning rate{lr} is probably too high, try a lower one"
    )


def _train_epoch(run: _Run, epoch: int) -> dict:
    """One pass over a fresh permutation of the data; returns the epoch's loss, accuracy, first lr
    and time."""
    model, loss, optimizer, x, y = run.model, run.loss, run.optimizer, run.x, run.y
    result = {}
    order = run.rng.permutation(len(x))
    skip_input_delta = isinstance(model, Sequential)
    total_loss, correct, counted, seen = 0.0, 0, 0, 0
    bar = None
    if run.progress and tqdm is not None:
        bar = tqdm(total=len(x), desc=f"epoch {epoch}/{run.epochs}", unit="img", leave=False, dynamic_ncols=True)
    started = time.perf_counter()
    run.threads.skip()  # the last epoch's validation, on_epoch_end and this epoch's start are no step
    try:
        # A diverging run overflows in exp() and friends; the guard below reports that once,
        # clearly, instead of a stream of RuntimeWarnings.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            for batch, start in enumerate(range(0, len(x), run.batch_size), start=1):
                index = order[start : start + run.batch_size]
                if run.schedule is not None:
                    t = epoch - 1 + (batch - 1) / run.num_batches
                    # a negative rate would train uphill, silently; NaN or inf would spoil every weight
                    rate = run.schedule(t)
                    rate = rate.item() if isinstance(rate, np.ndarray) and rate.ndim == 0 else rate  # np.where's
                    optimizer.lr = check_rate(f"fit: the schedule at epoch {epoch}, batch {batch}/{run.num_batches} "
                                              f"(t={t:g})", rate)
                    if batch == 1:
                        result["lr"] = optimizer.lr
                x_batch, y_batch = x[index], y[index]
                if run.augment is not None:
                    x_batch = run.augment(x_batch, run.rng)
                scores = model.forward(x_batch)
                value = scalar("fit", loss.forward(scores, y_batch))
                if not np.isfinite(value):
                    raise _diverged(f"the loss is {value}", epoch, batch, run)
                hits, count = count_correct("fit", scores, y_batch, run.ignore_index)
                if skip_input_delta:  # nobody uses dL/dx of the data: skip computing it
                    model.backward(loss.backward(1.0), input_delta=False)
                else:
                    model.backward(loss.backward(1.0))
                if run.max_grad_norm is not None:
                    norm = _clip_grad_norm([model, loss], run.max_grad_norm)
                    if not np.isfinite(norm):
                        raise _diverged(f"the gradient norm is {norm}", epoch, batch, run, f" (the loss was {value:g})")
                optimizer.step()
                run.threads.step()  # the BLAS thread chooser times the steps
                # weighted by the rows counted (samples, or the tokens not ignored): the epoch's loss
                # is the mean over all of them
                total_loss, correct, counted = total_loss + value * count, correct + hits, counted + count
                seen += len(index)
                if bar is not None:
                    bar.update(len(index))
                    if batch % 20 == 0 or seen == len(x):  # formatting the postfix every batch costs
                        bar.set_postfix(loss=f"{ratio(total_loss, counted):.4f}", acc=f"{ratio(correct, counted):.4f}",
                                        refresh=False)
    finally:
        if bar is not None:
            bar.close()
    result.update(loss=ratio(total_loss, counted), accuracy=ratio(correct, counted),
                  seconds=time.perf_counter() - started)
    # Each loss was finite before its update, but the last updates are seen by no loss: an overflow
    # there (or a NaN weight the next layers hide) leaves weights that mean nothing.
    spoilt = _non_finite_values(run.model, run.loss)
    if spoilt:
        raise _diverged(f"{spoilt:,} weight value{'s are' if spoilt > 1 else ' is'} NaN or infinite", epoch, None, run)
    return result


def _non_finite_values(*layers) -> int:
    """How many values of the layers' parameters and buffers are NaN or infinite."""
    arrays = [np.asarray(a) for layer in layers for a in [*layer.parameters, *getattr(layer, "buffers", [])]]
    return sum(int(a.size - np.count_nonzero(np.isfinite(a))) for a in arrays if not np.isfinite(a).all())
