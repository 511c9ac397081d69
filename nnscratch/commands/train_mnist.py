"""``train-mnist``: train a softmax, MLP or CNN preset on MNIST, with checkpoints and metrics.

Every option is checked before any work starts (bad values exit 2 with one clear line). Then
MNIST is loaded (downloaded if needed), the network trained with ``nnscratch.fit``, the test set
evaluated, and the run ends with one line giving the test accuracy.

The test set doubles as the per-epoch validation set in the history (val_loss, val_accuracy);
nothing is selected or stopped on it. Exit codes: 0 done, 1 a failure while running (download,
divergence), 2 bad options, 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import sys
import tempfile
from pathlib import Path

HELP = "train a softmax, MLP or CNN classifier on MNIST (downloads it if needed)"
PRESET_NAMES = ("softmax", "mlp", "cnn")
DEFAULT_MODEL = "cnn"
# the options a resumed run takes from its checkpoint (they must not contradict it)
RUN_OPTIONS = ("model", "batch_size", "lr", "optimizer", "momentum", "weight_decay", "schedule", "shift", "seed",
               "limit")


class UsageError(Exception):
    """A bad option: printed as one line, exit code 2."""


def _epilog() -> str:
    from ..models import PRESETS

    lines = ["presets and their defaults:"]
    for p in PRESETS.values():
        lines.append(f"  {p.name:8s} {p.summary}")
        shift = f", shifts up to {p.shift} px" if p.shift else ""
        lines.append(f"  {'':8s} {p.optimizer} lr {p.lr:g} ({p.schedule}), batch {p.batch_size}, "
                     f"{p.epochs} epochs{shift}")
    lines.append("exit codes: 0 done, 1 failed (download, diverged), 2 bad options, 130 interrupted")
    return "\n".join(lines)


def add_arguments(parser) -> None:
    parser.epilog = _epilog()
    parser.formatter_class = argparse.RawDescriptionHelpFormatter  # keep the epilog's lines
    add = parser.add_argument
    add("--model", choices=PRESET_NAMES, default=None, help=f"the preset network (default: {DEFAULT_MODEL})")
    add("--epochs", type=int, default=None, help="total epochs (default: the preset's; with --resume, "
        "the checkpoint's plan, or a new total)")
    add("--batch-size", type=int, default=None, metavar="N", help="mini-batch size (default: the preset's)")
    add("--lr", type=float, default=None, help="learning rate, > 0 (default: the preset's)")
    add("--optimizer", choices=("sgd", "adam"), default=None, help="optimizer (default: the preset's)")
    add("--momentum", type=float, default=None, help="SGD momentum in [0, 1) (default: the preset's)")
    add("--weight-decay", type=float, default=None, help="L2 weight decay, >= 0 (default: the preset's)")
    add("--schedule", choices=("constant", "cosine"), default=None,
        help="learning rate: constant, or cosine decay per batch towards 0 at the last epoch "
        "(default: the preset's)")
    add("--shift", type=int, default=None, metavar="PX",
        help="augment: translate each training image by up to PX pixels, 0 = off (default: the preset's)")
    add("--seed", type=int, default=None, help="seed for initialisation and shuffling (default: 0)")
    add("--data-dir", metavar="D", default=None,
        help="MNIST directory (default: $NNSCRATCH_DATA_DIR, else ./data/mnist)")
    add("--mirror", metavar="URL", action="append", dest="mirrors", default=None,
        help="MNIST mirror base URL, repeatable, tried in order (as in download-mnist)")
    add("--limit", type=int, default=None, metavar="N", help="train on the first N samples only (a quick try)")
    add("--save", metavar="PATH", default=None,
        help="checkpoint (.npz) written after every epoch, and on Ctrl-C (the last complete epoch)")
    add("--resume", metavar="PATH", default=None, help="continue a run from a checkpoint written by --save")
    add("--metrics", metavar="PATH", default=None,
        help="write a JSON file: config, per-epoch history, test_accuracy, test_loss, train_seconds, "
        "samples_per_second")
    add("--plot", metavar="PATH", default=None, help="write a PNG of the loss and accuracy curves "
        "(needs matplotlib: pip install 'nnscratch[plot]')")
    add("--quiet", action="store_true", help="no progress output, only the final line")


def run(args) -> int:
    try:
        return _run(args)
    except UsageError as error:
        print(f"train-mnist: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("train-mnist: interrupted", file=sys.stderr)
        return 130


# -- checking the options ----------------------------------------------------------------------
def _check_output_path(option: str, path) -> Path:
    """The path's directory must exist and take a new file: checked by writing one, before any work."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise UsageError(f"{option} {path}: is a directory, expected a file path")
    directory = path.parent
    if not directory.is_dir():
        raise UsageError(f"{option} {path}: the directory {directory} does not exist")
    try:
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".train-mnist-check-"):
            pass
    except OSError as error:
        raise UsageError(f"{option} {path}: cannot write in {directory} ({error.strerror or error})") from None
    return path


def _check_numbers(config: dict) -> None:
    if config["epochs"] < 0:
        raise UsageError(f"--epochs must be >= 0, got {config['epochs']}")
    if config["batch_size"] < 1:
        raise UsageError(f"--batch-size must be >= 1, got {config['batch_size']}")
    if not (math.isfinite(config["lr"]) and config["lr"] > 0):
        raise UsageError(f"--lr must be a finite number > 0, got {config['lr']:g}")
    if not (0 <= config["momentum"] < 1):
        raise UsageError(f"--momentum must be in [0, 1), got {config['momentum']:g}")
    if config["momentum"] and config["optimizer"] != "sgd":
        raise UsageError(f"--momentum applies to --optimizer sgd only, got --optimizer {config['optimizer']}")
    if not (math.isfinite(config["weight_decay"]) and config["weight_decay"] >= 0):
        raise UsageError(f"--weight-decay must be a finite number >= 0, got {config['weight_decay']:g}")
    if not 0 <= config["shift"] <= 8:
        raise UsageError(f"--shift must be between 0 and 8 pixels, got {config['shift']}")
    if config["limit"] is not None and config["limit"] < 1:
        raise UsageError(f"--limit must be >= 1, got {config['limit']}")


def _resolve_config(args, checkpoint) -> dict:
    """The run's configuration: the preset's defaults, or the checkpoint's, overridden by the options."""
    from ..models import PRESETS

    given = {name: getattr(args, name) for name in (*RUN_OPTIONS, "epochs")}
    if checkpoint is None:
        preset = PRESETS[given["model"] or DEFAULT_MODEL]
        config = {
            "model": preset.name, "epochs": preset.epochs, "batch_size": preset.batch_size, "lr": preset.lr,
            "optimizer": preset.optimizer, "momentum": preset.momentum, "weight_decay": preset.weight_decay,
            "schedule": preset.schedule, "shift": preset.shift, "seed": 0, "limit": None,
        }  # fmt: skip
        config.update({name: value for name, value in given.items() if value is not None})
        return config
    saved = checkpoint.metadata.get("train_mnist", {}).get("config")
    if not isinstance(saved, dict) or set(saved) != {*RUN_OPTIONS, "epochs"} or saved["model"] not in PRESETS:
        raise UsageError(f"--resume {args.resume}: this checkpoint was not written by train-mnist --save")
    for name in RUN_OPTIONS:
        if given[name] is not None and given[name] != saved[name]:
            raise UsageError(
                f"--{name.replace('_', '-')} {given[name]} contradicts the checkpoint {args.resume} "
                f"({saved[name]}); a resumed run keeps its configuration (only --epochs may change)"
            )
    return {**saved, "epochs": saved["epochs"] if given["epochs"] is None else given["epochs"]}


def _load_resume(path):
    from ..io import load_checkpoint

    try:
        return load_checkpoint(path)
    except FileNotFoundError:
        raise UsageError(f"--resume {path}: no such file") from None
    except (OSError, ValueError) as error:
        raise UsageError(f"--resume: {error}") from None


# -- the run -----------------------------------------------------------------------------------
def _start(config: dict, checkpoint, resume_path):
    """The network, optimizer, epochs done, history so far and shuffling generator of the run."""
    import numpy as np

    import nnscratch
    from ..models import PRESETS, make_optimizer

    init_seed, shuffle_seed = np.random.SeedSequence(config["seed"]).spawn(2)
    shuffle_rng = np.random.default_rng(shuffle_seed)
    if checkpoint is None:
        nnscratch.seed(config["seed"])
        net = PRESETS[config["model"]].build(rng=np.random.default_rng(init_seed))
        optimizer = make_optimizer(config["optimizer"], net, config["lr"], config["momentum"], config["weight_decay"])
        return net, optimizer, 0, [], shuffle_rng
    saved = checkpoint.metadata["train_mnist"]
    try:
        # the generator continues exactly where it stopped: the next epochs get the same shuffles
        shuffle_rng.bit_generator.state = saved["shuffle_state"]
    except (KeyError, TypeError, ValueError) as error:
        raise UsageError(f"--resume {resume_path}: the shuffling state is missing or invalid ({error})") from None
    if checkpoint.optimizer is None:
        raise UsageError(f"--resume {resume_path}: the checkpoint holds no optimizer state")
    history = saved.get("history")
    if not isinstance(history, list):
        raise UsageError(f"--resume {resume_path}: the checkpoint's history is missing")
    return checkpoint.model, checkpoint.optimizer, checkpoint.epoch or 0, list(history), shuffle_rng


def _run(args) -> int:
    from ..models import PRESETS, make_augment, make_schedule
    from ..train import NonFiniteLossError, evaluate, fit

    checkpoint = _load_resume(args.resume) if args.resume else None
    config = _resolve_config(args, checkpoint)
    _check_numbers(config)
    outputs = {
        name: _check_output_path(f"--{name}", getattr(args, name))
        for name in ("save", "metrics", "plot")
        if getattr(args, name) is not None
    }
    if "plot" in outputs and importlib.util.find_spec("matplotlib") is None:
        raise UsageError("--plot needs matplotlib, which is not installed: pip install 'nnscratch[plot]'")
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

    def on_epoch_end(record):
        nonlocal last
        history.append(record)
        last = state(record["epoch"])
        if "save" in outputs:  # every epoch, so that even a killed run leaves its last epoch
            _save(net, optimizer, last, outputs["save"])

    try:
        fit(model, loss, optimizer, x_train, y_train, config["epochs"], config["batch_size"],
            validation=(x_test, y_test), rng=shuffle_rng, progress=not args.quiet, initial_epoch=start_epoch,
            schedule=make_schedule(config["schedule"], config["lr"], config["epochs"]),
            augment=make_augment(config["shift"]),
            on_epoch_end=on_epoch_end)  # fmt: skip
    except KeyboardInterrupt:
        if "save" not in outputs:
            print(f"train-mnist: interrupted after {last['epoch']} complete epochs (nothing saved: no --save)",
                  file=sys.stderr)
            return 130
        # the batches since the last epoch are undone: the file holds a state a resume continues exactly
        for p, saved in zip(net.parameters, last["parameters"]):
            p[...] = saved
        optimizer.load_state_dict(last["optimizer"])
        _save(net, optimizer, last, outputs["save"])
        print(f"train-mnist: interrupted; saved the state after epoch {last['epoch']} to {outputs['save']} "
              f"(continue with --resume {outputs['save']})", file=sys.stderr)  # fmt: skip
        return 130
    except NonFiniteLossError as error:
        print(f"train-mnist: {error}, e.g. --lr {config['lr'] / 10:g}", file=sys.stderr)
        if "save" in outputs and last["epoch"] > start_epoch:
            print(f"train-mnist: {outputs['save']} holds the state after epoch {last['epoch']}", file=sys.stderr)
        return 1

    test = evaluate(model, x_test, y_test, config["batch_size"], loss=loss)
    if "save" in outputs and last["epoch"] == start_epoch:  # no epoch ran, so none saved yet
        _save(net, optimizer, last, outputs["save"])
    train_seconds = sum(record["seconds"] for record in history)
    metrics = {
        "config": config,
        "history": history,
        "test_accuracy": test["accuracy"],
        "test_loss": test["loss"],
        "train_seconds": train_seconds,
        "samples_per_second": len(x_train) * len(history) / train_seconds if train_seconds > 0 else None,
    }
    if "metrics" in outputs:
        _write_json(outputs["metrics"], metrics)
    if "plot" in outputs:
        _plot(outputs["plot"], history, config["model"])
    if "save" in outputs:
        say(f"train-mnist: checkpoint saved to {outputs['save']}")
    correct = round(test["accuracy"] * len(x_test))
    print(
        f"test accuracy: {100 * test['accuracy']:.2f}% ({correct}/{len(x_test)}), test loss {test['loss']:.4f}, "
        f"{config['model']}, {len(history)} epochs, {train_seconds:.1f} s training"
    )
    return 0


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
        print(f"train-mnist: cannot read or write the MNIST directory: {error}", file=sys.stderr)
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


def _atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_json(path: Path, data: dict) -> None:
    _atomic_write(path, lambda f: f.write((json.dumps(data, indent=2) + "\n").encode()))


def _plot(path: Path, history: list, model: str) -> None:
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
    _atomic_write(path, lambda f: figure.savefig(f, format="png", dpi=100))
    plt.close(figure)
