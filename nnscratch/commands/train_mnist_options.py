"""``train-mnist``'s command line: its options, their checks, and the run configuration they give.

Every option is checked here, before any work starts: a bad value raises ``UsageError``, which the
command prints as one line with exit code 2. The configuration comes from the chosen preset, or
from the checkpoint given to ``--resume``, overridden by the options given.
"""

from __future__ import annotations

import argparse
import importlib.util
import math

from ..presets import MOMENTUM_OPTIMIZERS, OPTIMIZER_CLASSES, OPTIMIZERS, SCHEDULES
from .common import UsageError, check_finite_weights, check_outputs, mnist_inputs
from .training import number_text, read_numbers, read_resume, read_threads

PRESET_NAMES = ("softmax", "mlp", "cnn")
DEFAULT_MODEL = "cnn"
# the options a resumed run takes from its checkpoint (they must not contradict it)
RUN_OPTIONS = ("model", "batch_size", "lr", "optimizer", "momentum", "weight_decay", "schedule", "shift", "seed",
               "limit")
# the numeric options and their types: read by training.read_numbers, not by argparse, so that a bad value
# gets one line naming the option rather than the usage block
NUMBER_OPTIONS = {"epochs": int, "batch_size": int, "lr": float, "momentum": float, "weight_decay": float,
                  "shift": int, "seed": int, "limit": int}

# the options that name output files (a new output option goes here)
OUTPUT_OPTIONS = ("save", "metrics", "plot")
# one record of a checkpoint's history: the key, and whether None is allowed (no validation set, no lr)
HISTORY_FIELDS = {"epoch": False, "loss": False, "accuracy": False, "val_loss": True, "val_accuracy": True,
                  "lr": True, "seconds": False}
# what fit can have written in each (an accuracy is a fraction, losses, rates and times are >= 0)
HISTORY_RANGES = {"accuracy": (0.0, 1.0), "val_accuracy": (0.0, 1.0), "loss": (0.0, math.inf),
                  "val_loss": (0.0, math.inf), "lr": (0.0, math.inf), "seconds": (0.0, math.inf)}


def _epilog() -> str:
    from ..presets import PRESETS

    lines = ["presets and their defaults:"]
    for p in PRESETS.values():
        lines.append(f"  {p.name:8s} {p.summary}")
        shift = f", shifts up to {p.shift} px" if p.shift else ""
        lines.append(f"  {'':8s} {p.optimizer} lr {p.lr:g} ({p.schedule}), batch {p.batch_size}, "
                     f"{p.epochs} epochs{shift}")
    lines.append("exit codes: 0 done, 1 failed (download, diverged, an output not written), 2 bad options, "
                 "130 interrupted, 143 terminated")
    return "\n".join(lines)


def add_arguments(parser) -> None:
    parser.epilog = _epilog()
    parser.formatter_class = argparse.RawDescriptionHelpFormatter  # keep the epilog's lines
    add = parser.add_argument
    add("--model", choices=PRESET_NAMES, default=None, help=f"the preset network (default: {DEFAULT_MODEL})")
    add("--epochs", default=None, help="total epochs (default: the preset's; with --resume, "
        "the checkpoint's plan, or a new total)")
    add("--batch-size", default=None, metavar="N", help="mini-batch size (default: the preset's)")
    add("--lr", default=None, help="learning rate, > 0 (default: the preset's)")
    add("--optimizer", choices=OPTIMIZERS, default=None, help="optimizer (default: the preset's)")
    add("--momentum", default=None, help=f"momentum in [0, 1), for --optimizer {' or '.join(MOMENTUM_OPTIMIZERS)} "
        "only (default: the preset's)")
    add("--weight-decay", default=None, help="weight decay, >= 0: L2 (added to the gradient), decoupled for adamw "
        "(default: the preset's; 0.01 for adamw when the preset uses another optimizer)")
    add("--schedule", choices=tuple(SCHEDULES), default=None,
        help="learning rate over the run, from --lr over E epochs (default: the preset's): "
        + "; ".join(f"{name}: {what}" for name, what in SCHEDULES.items()).replace("%", "%%"))
    add("--shift", default=None, metavar="PX",
        help="augment: translate each training image by up to PX pixels, 0 = off (default: the preset's)")
    add("--seed", default=None, help="seed for initialisation and shuffling (default: 0)")
    add("--data-dir", metavar="D", default=None,
        help="MNIST directory (default: $NNSCRATCH_DATA_DIR, else ./data/mnist)")
    add("--mirror", metavar="URL", action="append", dest="mirrors", default=None,
        help="MNIST mirror base URL, repeatable, tried in order (as in download-mnist)")
    add("--limit", default=None, metavar="N", help="train on the first N samples only (a quick try)")
    add("--save", metavar="PATH", default=None,
        help="checkpoint (.npz) written after every epoch, and on Ctrl-C (the last complete epoch)")
    add("--resume", metavar="PATH", default=None, help="continue a run from a checkpoint written by --save")
    add("--metrics", metavar="PATH", default=None,
        help="write a JSON file: config, per-epoch history, test_accuracy, test_loss, train_seconds, "
        "samples_per_second, confusion_matrix, per_class_accuracy")
    add("--plot", metavar="PATH", default=None, help="write a PNG of the loss and accuracy curves "
        "(needs matplotlib: pip install 'nnscratch[plot]')")
    add("--threads", default="auto", metavar="N",
        help="numpy's BLAS threads: auto (the default) picks and re-picks the faster of 1 and the default "
        "count as the machine's load changes, unless OPENBLAS_NUM_THREADS or the like is set; N fixes it")
    add("--quiet", action="store_true", help="no progress output, only the final line")


# -- checking the options ----------------------------------------------------------------------
def resolve_options(args):
    """Check every option; return ``(config, checkpoint or None, outputs)``.

    ``outputs`` maps "save", "metrics" and "plot" (those given) to paths already shown writable,
    none of them the checkpoint resumed, an MNIST file or another output (``check_outputs``).
    """
    read_numbers(args, NUMBER_OPTIONS)
    args.threads = read_threads(args.threads)
    try:
        inputs = [("--resume", args.resume)] if args.resume else []
        inputs += mnist_inputs(args.data_dir)
    except TypeError as error:  # a --data-dir that is no path
        raise UsageError(str(error)) from None
    given = check_outputs([(f"--{name}", getattr(args, name)) for name in OUTPUT_OPTIONS], inputs)
    checkpoint = read_resume(args.resume) if args.resume else None
    config = _resolve_config(args, checkpoint)
    if checkpoint is not None:
        _check_resumed_run(args.resume, checkpoint, config)
    _check_numbers(config)
    outputs = {option[2:]: path for option, path in given.items()}
    if "plot" in outputs and importlib.util.find_spec("matplotlib") is None:
        raise UsageError("--plot needs matplotlib, which is not installed: pip install 'nnscratch[plot]'")
    return config, checkpoint, outputs


# the int options' ranges, inclusive: every value in them is safe all the way through the run (the
# schedules divide by epochs as floats; numpy's seeds, threadpoolctl's counts are C integers), and
# the longest run's history fits a checkpoint's header (nnscratch.io.format.MAX_HEADER_CHARS)
INT_RANGES = {"epochs": (0, 10_000), "batch_size": (1, 1_000_000), "shift": (0, 8), "seed": (0, 2**64 - 1),
              "limit": (1, 1_000_000)}


def _check_numbers(config: dict) -> None:
    for name, (low, high) in INT_RANGES.items():
        value = config[name]
        if value is None and name == "limit":
            continue
        if value < low:
            bound = "between 0 and 8 pixels" if name == "shift" else f">= {low}"
            raise UsageError(f"--{name.replace('_', '-')} must be {bound}, got {number_text(value)}")
        if value > high:
            bound = "between 0 and 8 pixels" if name == "shift" else f"at most {high:,}"
            raise UsageError(f"--{name.replace('_', '-')} must be {bound}, got {number_text(value)}")
    if not (math.isfinite(config["lr"]) and config["lr"] > 0):
        raise UsageError(f"--lr must be a finite number > 0, got {config['lr']:g}")
    if not (0 <= config["momentum"] < 1):
        raise UsageError(f"--momentum must be in [0, 1), got {config['momentum']:g}")
    if config["momentum"] and config["optimizer"] not in MOMENTUM_OPTIMIZERS:
        raise UsageError(f"--momentum applies to --optimizer {' or '.join(MOMENTUM_OPTIMIZERS)} only, "
                         f"got --optimizer {config['optimizer']}")
    if not (math.isfinite(config["weight_decay"]) and config["weight_decay"] >= 0):
        raise UsageError(f"--weight-decay must be a finite number >= 0, got {config['weight_decay']:g}")


def _resolve_config(args, checkpoint) -> dict:
    """The run's configuration: the preset's defaults, or the checkpoint's, overridden by the options."""
    from ..presets import PRESETS

    given = {name: getattr(args, name) for name in (*RUN_OPTIONS, "epochs")}
    if checkpoint is None:
        preset = PRESETS[given["model"] or DEFAULT_MODEL]
        config = {
            "model": preset.name, "epochs": preset.epochs, "batch_size": preset.batch_size, "lr": preset.lr,
            "optimizer": preset.optimizer, "momentum": preset.momentum, "weight_decay": preset.weight_decay,
            "schedule": preset.schedule, "shift": preset.shift, "seed": 0, "limit": None,
        }  # fmt: skip
        config.update({name: value for name, value in given.items() if value is not None})
        if config["optimizer"] == "adamw" and preset.optimizer != "adamw" and given["weight_decay"] is None:
            config["weight_decay"] = 0.01  # AdamW's own default: with the preset's 0 it would be Adam
        return config
    run = checkpoint.metadata.get("train_mnist")
    saved = run.get("config") if isinstance(run, dict) else None
    if (not isinstance(saved, dict) or set(saved) != {*RUN_OPTIONS, "epochs"} or not isinstance(saved["model"], str)
            or saved["model"] not in PRESETS):
        raise UsageError(f"--resume {args.resume}: this checkpoint was not written by train-mnist --save")
    for name in RUN_OPTIONS:
        if given[name] is not None and given[name] != saved[name]:
            raise UsageError(
                f"--{name.replace('_', '-')} {given[name]} contradicts the checkpoint {args.resume} "
                f"({saved[name]}); a resumed run keeps its configuration (only --epochs may change)"
            )
    return {**saved, "epochs": saved["epochs"] if given["epochs"] is None else given["epochs"]}


# -- checking what --resume reads ----------------------------------------------------------------
def _check_resumed_run(path, checkpoint, config: dict) -> None:
    """The checkpoint's training metadata must be what train-mnist --save writes, and its network
    the preset's: checked in full here, so that a bad file stops the run before any work."""
    import numpy as np

    from ..presets import PRESETS

    def refuse(what):
        raise UsageError(f"--resume {path}: {what}")

    check_finite_weights(f"--resume {path}", checkpoint.model, "training cannot go on from them")

    saved = checkpoint.metadata["train_mnist"]
    for name, value in saved["config"].items():  # as saved: an option given now may override it
        kind = _config_kind(name)
        if not kind(value):
            refuse(f"the checkpoint's config has {name}={value!r:.60}, {kind.__doc__}")
    try:
        _check_numbers(saved["config"])
    except UsageError as error:
        refuse(f"the checkpoint's config is out of range ({error})")
    epoch = checkpoint.epoch or 0
    history = saved.get("history")
    if not isinstance(history, list) or len(history) != epoch:
        refuse(f"the checkpoint's history must list its {epoch} epochs, got {history!r:.80}")
    for index, record in enumerate(history):
        if not isinstance(record, dict) or set(record) != set(HISTORY_FIELDS) or record["epoch"] != index + 1:
            refuse(f"history record {index + 1} is not a train-mnist epoch record: {record!r:.120}")
        for key, optional in HISTORY_FIELDS.items():
            value = record[key]
            if not ((optional and value is None) or _is_finite_number(value)):
                refuse(f"history record {index + 1} has {key}={value!r:.40}, expected a finite number")
            low, high = HISTORY_RANGES.get(key, (-math.inf, math.inf))
            if value is not None and not low <= value <= high:
                refuse(f"history record {index + 1} has {key}={value!r:.40}, expected a number from {low:g} to {high:g}")
    try:
        np.random.default_rng(0).bit_generator.state = saved.get("shuffle_state")
    except (KeyError, TypeError, ValueError) as error:
        refuse(f"the shuffling state is missing or invalid ({error})")
    if type(checkpoint.optimizer) is not OPTIMIZER_CLASSES[config["optimizer"]]:
        found = "no optimizer state" if checkpoint.optimizer is None else f"a {type(checkpoint.optimizer).__name__}"
        refuse(f"the checkpoint holds {found}, its config says --optimizer {config['optimizer']}")
    preset = PRESETS[config["model"]].build(rng=np.random.default_rng(0))
    if repr(checkpoint.model) != repr(preset):
        # A checkpoint of an earlier version's preset (the cnn preset changed in issue 13) lands here.
        refuse(f"the saved network is not this version's {config['model']} preset (its config says --model "
               f"{config['model']}); presets change between versions, and nn.load or nnscratch predict still "
               "take the file")


def _is_finite_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _config_kind(name: str):
    """A check of one saved config value's type (its docstring says what it expects)."""

    def integer(value):
        """expected an int"""
        return isinstance(value, int) and not isinstance(value, bool)

    def number(value):
        """expected a finite number"""
        return _is_finite_number(value)

    def optional_integer(value):
        """expected an int or null"""
        return value is None or integer(value)

    def choice(*names):
        def check(value):
            return isinstance(value, str) and value in names

        check.__doc__ = f"expected one of {', '.join(names)}"
        return check

    from ..presets import PRESETS

    kinds = {"model": choice(*PRESETS), "optimizer": choice(*OPTIMIZERS), "schedule": choice(*SCHEDULES),
             "lr": number, "momentum": number, "weight_decay": number, "limit": optional_integer}  # fmt: skip
    return kinds.get(name, integer)
