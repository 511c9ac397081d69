"""``train-mnist``: train a softmax, MLP or CNN preset on MNIST, with checkpoints and metrics.

Every option is checked before any work starts (bad values exit 2 with one clear line; the options
and their checks are in ``train_mnist_options``). Then MNIST is loaded (downloaded if needed), the
network trained with ``nnscratch.fit``, the test set evaluated, its confusion matrix printed (rows:
true class, columns: predicted; not with --quiet), and the run ends with one line giving the test
accuracy.

The test set doubles as the per-epoch validation set in the history (val_loss, val_accuracy);
nothing is selected or stopped on it. Exit codes: 0 done, 1 a failure while running (download,
divergence, an output that could not be written), 2 bad options, 130 interrupted (Ctrl-C), 143
terminated (SIGTERM: saved like Ctrl-C).

An output that cannot be written (a full disk) is one line saying which and why; the temporary
file is removed, the file it would have replaced is left as it was, training goes on, the final
accuracy line is still printed, and the exit code is 1.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

# add_arguments is this command's, as every command module has one (see nnscratch/commands/__init__.py)
from .common import os_error_text, save_figure, shown
from .train_mnist_options import UsageError, add_arguments, resolve_options  # noqa: F401 (add_arguments)
from .training import Outputs, interrupt_exit_code, run_training, stopped, write_json

HELP = "train a softmax, MLP or CNN classifier on MNIST (downloads it if needed)"


def run(args) -> int:
    return run_training("train-mnist", _run, args)


# -- the run -----------------------------------------------------------------------------------
def _start(config: dict, checkpoint, resume_path):
    """The network, optimizer, epochs done, history so far and shuffling generator of the run."""
    import numpy as np

    import nnscratch
    from ..presets import PRESETS, make_optimizer

    init_seed, shuffle_seed = np.random.SeedSequence(config["seed"]).spawn(2)
    # One generator for all of training's randomness: the shuffles, the shifts (fit hands it to
    # augment) and the dropout masks. Its state, saved after every epoch, is then all a resume needs
    # to continue exactly.
    shuffle_rng = np.random.default_rng(shuffle_seed)
    if checkpoint is None:
        nnscratch.seed(config["seed"])
        net = PRESETS[config["model"]].build(rng=np.random.default_rng(init_seed))
        optimizer = make_optimizer(config["optimizer"], net, config["lr"], config["momentum"], config["weight_decay"])
        _draw_dropout_from(net, shuffle_rng)
        return net, optimizer, 0, [], shuffle_rng
    saved = checkpoint.metadata["train_mnist"]  # all checked by resolve_options
    # the generator continues exactly where it stopped: the next epochs get the same shuffles
    shuffle_rng.bit_generator.state = saved["shuffle_state"]
    history = saved["history"]
    _draw_dropout_from(checkpoint.model, shuffle_rng)
    return checkpoint.model, checkpoint.optimizer, checkpoint.epoch or 0, list(history), shuffle_rng


def _draw_dropout_from(net, rng) -> None:
    """Every Dropout in ``net`` draws its masks from ``rng`` (see ``_start``)."""
    from ..layers import Dropout
    from ..protocol import walk

    for layer in walk(net):
        if isinstance(layer, Dropout):
            layer.rng = rng


def _run(args) -> int:
    from ..metrics import format_confusion_matrix, per_class_accuracy
    from ..presets import PRESETS, make_augment, make_schedule
    from ..evaluation import evaluate, predict
    from ..train import NonFiniteLossError, fit

    config, checkpoint, outputs = resolve_options(args)
    net, optimizer, start_epoch, history, shuffle_rng = _start(config, checkpoint, args.resume)
    say = (lambda *a: None) if args.quiet else (lambda message: print(message, file=sys.stderr))

    data = _load_data(args, config, PRESETS[config["model"]])
    if data is None:
        return 1
    x_train, y_train, x_test, y_test = data
    model, loss = net[:-2], net[-2:]
    parameter_count = sum(int(p.size) for p in net.parameters)
    plan = (f"epochs {start_epoch + 1}-{config['epochs']}" if start_epoch < config["epochs"]
            else f"nothing to train (epoch {start_epoch} of {config['epochs']} done)")  # fmt: skip
    say(
        f"train-mnist: {config['model']} ({parameter_count:,} parameters), {plan}, {len(x_train):,} samples, "
        f"batch {config['batch_size']}, {config['optimizer']} lr {config['lr']:g} ({config['schedule']}), "
        f"shifts up to {config['shift']} px, "
        f"seed {config['seed']}"
    )

    def state(epoch: int) -> dict:
        """Everything --save writes, as copies: the last complete state, kept for Ctrl-C."""
        return {
            "parameters": [p.copy() for p in net.parameters],
            "optimizer": optimizer.state_dict(),
            "epoch": epoch,
            "metadata": {"train_mnist": {"config": config, "history": [dict(r) for r in history],
                                         "shuffle_state": shuffle_rng.bit_generator.state}},
        }  # fmt: skip

    last = state(start_epoch)
    start_epoch_records = len(history)  # the records a resumed checkpoint brought

    written = Outputs("train-mnist", outputs)  # a failed write is one line, and the run goes on

    def save(state_to_save) -> bool:
        return written.write("save", "the checkpoint", _save, net, optimizer, state_to_save)

    def on_epoch_end(record):
        nonlocal last
        history.append(record)
        last = state(record["epoch"])
        if "save" in outputs:  # every epoch, so that even a killed run leaves its last epoch
            save(last)

    try:
        fit(model, loss, optimizer, x_train, y_train, config["epochs"], config["batch_size"],
            validation=(x_test, y_test), rng=shuffle_rng, progress=not args.quiet, initial_epoch=start_epoch,
            schedule=make_schedule(config["schedule"], config["lr"], config["epochs"]),
            augment=make_augment(config["shift"]),
            on_epoch_end=on_epoch_end, threads=args.threads)  # fmt: skip
    except KeyboardInterrupt as interrupt:
        if "save" not in outputs:
            print(f"train-mnist: {stopped(interrupt)} after {last['epoch']} complete epochs (nothing saved: no --save)",
                  file=sys.stderr)
            return interrupt_exit_code(interrupt)
        # the batches since the last epoch are undone: the file holds a state a resume continues exactly
        for p, saved in zip(net.parameters, last["parameters"]):
            p[...] = saved
        optimizer.load_state_dict(last["optimizer"])
        if save(last):
            print(f"train-mnist: {stopped(interrupt)}; saved the state after epoch {last['epoch']} to {outputs['save']} "
                  f"(continue with --resume {outputs['save']})", file=sys.stderr)  # fmt: skip
        return interrupt_exit_code(interrupt)
    except NonFiniteLossError as error:
        print(f"train-mnist: {error}, e.g. --lr {config['lr'] / 10:g}", file=sys.stderr)
        if "save" in outputs:  # the diverged weights are never saved: they mean nothing
            held = (f"holds the state after epoch {last['epoch']}" if last["epoch"] > start_epoch
                    else "was not written (no epoch ended before the divergence)")
            print(f"train-mnist: {shown(outputs['save'])} {held}", file=sys.stderr)
        return 1

    if len(history) > start_epoch_records:
        # fit's validation after the last epoch ran the test set through these very weights
        test = {"accuracy": history[-1]["val_accuracy"], "loss": history[-1]["val_loss"]}
    else:  # nothing trained in this run (a resume of a finished run)
        test = evaluate(model, x_test, y_test, config["batch_size"], loss=loss)
    confusion = _confusion(predict(model, x_test, config["batch_size"]), y_test)
    if "save" in outputs and last["epoch"] == start_epoch:  # no epoch ran, so none saved yet
        save(last)
    train_seconds = sum(record["seconds"] for record in history)
    metrics = {
        "config": config,
        "history": history,
        "test_accuracy": test["accuracy"],
        "test_loss": test["loss"],
        "train_seconds": train_seconds,
        "samples_per_second": len(x_train) * len(history) / train_seconds if train_seconds > 0 else None,
        "confusion_matrix": confusion.tolist(),
        "per_class_accuracy": per_class_accuracy(confusion),
    }
    if "metrics" in outputs:
        written.write("metrics", "the metrics", _write_json, metrics)
    if "plot" in outputs:
        written.write("plot", "the plot", _plot, history, config["model"])
    if "save" in outputs and "save" not in written.failed:
        say(f"train-mnist: checkpoint saved to {outputs['save']}")
    if not args.quiet:
        print(format_confusion_matrix(confusion))
    correct = round(test["accuracy"] * len(x_test))
    print(
        f"test accuracy: {100 * test['accuracy']:.2f}% ({correct}/{len(x_test)}), test loss {test['loss']:.4f}, "
        f"{config['model']}, {len(history)} epoch{'s' if len(history) != 1 else ''}, {train_seconds:.1f} s training"
    )
    return 1 if written.failed else 0


def _confusion(scores, y_test):
    """The test set's confusion matrix (rows: true class, columns: predicted) from the model's scores."""
    from ..metrics import confusion_matrix

    labels = y_test if y_test.ndim == 1 else y_test.argmax(axis=1)  # one-hot targets for the softmax preset
    return confusion_matrix(labels, scores.argmax(axis=1), scores.shape[1])


def _load_data(args, config, preset):
    """MNIST scaled to float32 once, shaped for the preset; None (after a message) when it fails."""
    from ..data import IDXFormatError, MNISTCacheError, MNISTDownloadError, load_mnist, one_hot, scale_images

    try:
        x_train, y_train, x_test, y_test = load_mnist(args.data_dir, mirrors=args.mirrors, progress=not args.quiet)
    except (MNISTDownloadError, MNISTCacheError, IDXFormatError) as error:  # the data, not the options
        print(error, file=sys.stderr)
        return None
    except (ValueError, TypeError) as error:  # a malformed --mirror or environment variable
        raise UsageError(str(error)) from None
    except OSError as error:
        print(f"train-mnist: MNIST directory: {os_error_text(error)}", file=sys.stderr)
        return None
    if config["limit"] is not None:
        x_train, y_train = x_train[: config["limit"]], y_train[: config["limit"]]
    x_train = scale_images(x_train).reshape(len(x_train), *preset.input_shape)
    x_test = scale_images(x_test).reshape(len(x_test), *preset.input_shape)
    if preset.one_hot:
        y_train, y_test = one_hot(y_train), one_hot(y_test)
    return x_train, y_train, x_test, y_test


# -- outputs -----------------------------------------------------------------------------------
def _save(net, optimizer, state: dict, path: Path) -> None:
    from ..io import save

    save(net, path, optimizer=optimizer, epoch=state["epoch"], metadata=state["metadata"])


def _write_json(data: dict, path: Path) -> None:
    """``data`` as standard JSON (``training.write_json``), a figure that is not finite (NaN where
    nothing was counted) written as null."""
    write_json(_finite_or_none(data), path)


def _finite_or_none(value):
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite_or_none(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(item) for item in value]
    return value


def _plot(history: list, model: str, path: Path) -> None:
    """Two panels, loss and accuracy per epoch, train and test."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    epochs = [record["epoch"] for record in history]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for axes, key, title in ((left, "loss", "loss"), (right, "accuracy", "accuracy")):
        axes.plot(epochs, [r[key] for r in history], marker="o", label="train")
        axes.plot(epochs, [r[f"val_{key}"] for r in history], marker="o", label="test")
        axes.set_xlabel("epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_title(f"{model}: {title}")
        axes.grid(alpha=0.3)
        axes.legend()
    figure.tight_layout()
    save_figure(figure, path)
