"""``nnscratch report CHECKPOINT --out report.png``: one picture of what a trained network gets wrong
and what it learned.

The network is run on the MNIST test set (loaded as ``train-mnist`` loads it: ``--data-dir``,
``--mirror``) and the picture, drawn by matplotlib (the ``plot`` extra), shows:

- the confusion matrix (rows: true class, columns: predicted), mistakes in red, each class's accuracy;
- the training curves, when the checkpoint holds its history (``train-mnist --save`` writes it);
- the most confident mistakes, as the images the network saw, with the true and predicted labels;
- the first layer's weights as images: 28x28 templates of a Linear first layer, the filters of a
  Conv2D one, blue for negative and red for positive weights.

``--out`` is checked before any work, as every command's outputs are (``nnscratch.commands.common``:
never the checkpoint or an MNIST file, never a FIFO or device). When writing it fails anyway (a full
disk), that is one line, the test accuracy is still printed, and the exit code is 1.

Exit codes: 0 written, 1 MNIST could not be loaded or the picture not written, 2 bad options or an
unusable checkpoint (NaN or infinite weights, or scores, included: said, never drawn as an
accuracy), 130 interrupted.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from .common import (UsageError, check_outputs, load_classifier, mnist_inputs, os_error_text, run_command, save_figure,
                     shown, write_failed)
from .train_mnist_options import HISTORY_RANGES

HELP = "draw a trained network's confusion matrix, worst mistakes, first-layer weights and training curves"
MISTAKES = 24  # the most confident mistakes shown
MAX_TEMPLATES = 32  # Linear units shown as 28x28 templates, Conv2D filters shown


def add_arguments(parser) -> None:
    parser.add_argument("checkpoint", metavar="CHECKPOINT", help="a network saved by train-mnist --save or nn.save")
    parser.add_argument("--out", metavar="PATH", required=True, help="the PNG to write")
    parser.add_argument("--data-dir", metavar="D", default=None,
                        help="MNIST directory (default: $NNSCRATCH_DATA_DIR, else ./data/mnist)")
    parser.add_argument("--mirror", metavar="URL", action="append", dest="mirrors", default=None,
                        help="MNIST mirror base URL, repeatable (as in download-mnist)")
    parser.add_argument("--quiet", action="store_true", help="no download progress")
    parser.epilog = "needs matplotlib: pip install 'nnscratch[plot]'. Exit codes: 0 written, 1 MNIST could " \
                    "not be loaded, 2 bad options or an unusable checkpoint"  # fmt: skip


def run(args) -> int:
    return run_command("report", _run, args)


def _run(args) -> int:
    import numpy as np

    from ..data import IDXFormatError, MNISTCacheError, MNISTDownloadError, load_mnist, scale_images
    from ..inference import class_probabilities, model_dtype
    from ..metrics import confusion_matrix

    try:
        inputs = [("the checkpoint", args.checkpoint), *mnist_inputs(args.data_dir)]
    except TypeError as error:  # a --data-dir that is no path
        raise UsageError(str(error)) from None
    out = check_outputs([("--out", args.out)], inputs)["--out"]
    if importlib.util.find_spec("matplotlib") is None:
        raise UsageError("report needs matplotlib, which is not installed: pip install 'nnscratch[plot]'")
    checkpoint, model, shape = load_classifier(args.checkpoint)
    try:
        _, _, x_test, y_test = load_mnist(args.data_dir, mirrors=args.mirrors, progress=not args.quiet)
    except (MNISTDownloadError, MNISTCacheError, IDXFormatError) as error:
        print(error, file=sys.stderr)
        return 1
    except (ValueError, TypeError) as error:  # a malformed --mirror or environment variable
        raise UsageError(str(error)) from None
    except OSError as error:
        print(f"report: MNIST directory: {os_error_text(error)}", file=sys.stderr)
        return 1
    x = scale_images(x_test, dtype=model_dtype(model)).reshape(len(x_test), *shape)
    with np.errstate(over="ignore", invalid="ignore"):  # non-finite scores are looked for below
        probabilities = class_probabilities(model, x)
    if probabilities.shape[1] != 10:
        raise UsageError(f"{shown(args.checkpoint)}: the network gives {probabilities.shape[1]} classes, MNIST has 10")
    overflowed = int(np.count_nonzero(~np.isfinite(probabilities).all(axis=1)))
    if overflowed:  # finite weights, and still scores that overflow: no accuracy would mean anything
        raise UsageError(f"{shown(args.checkpoint)}: the network's scores are NaN or infinite for {overflowed:,} of the "
                         f"{len(x):,} test images: its predictions mean nothing")
    predicted = probabilities.argmax(axis=1)
    matrix = confusion_matrix(y_test, predicted, 10)
    preset, history, skipped = read_training(checkpoint.metadata)
    for note in skipped:
        print(f"report: {shown(args.checkpoint)}: {note}", file=sys.stderr)
    title = f"{shown(Path(args.checkpoint).name)}: " + (f"{preset} preset, " if preset else "") + (
        f"{len(history)} epoch{'s' if len(history) != 1 else ''}, " if history else "")
    from .report_figure import draw_report

    figure = draw_report(
        title=title, matrix=matrix, images=x_test, labels=y_test, probabilities=probabilities,
        first_layer=_first_weighted_layer(model), history=history or None, history_note="; ".join(skipped) or None,
        mistakes=MISTAKES, max_templates=MAX_TEMPLATES,
    )  # fmt: skip
    try:
        save_figure(figure, out)
        written = True
    except OSError as error:  # a full disk: the accuracy below still stands
        write_failed("report", "--out", out, error)
        written = False
    accuracy = np.trace(matrix) / matrix.sum()
    print(f"report: test accuracy {100 * accuracy:.2f}% ({np.trace(matrix)}/{matrix.sum()})"
          + (f"; wrote {shown(out)}" if written else ""))
    return 0 if written else 1


def _first_weighted_layer(model):
    """The first layer with a ``weight`` of filters (out, in, kh, kw) or of a Linear on the image
    (784, out): Linear, Conv2D, the reference Conv2D, a user's layer alike; None when there is none."""
    import numpy as np

    from ..protocol import walk

    for layer in walk(model):  # nested Sequentials included: inference_model keeps them
        weight = getattr(layer, "weight", None)
        if isinstance(weight, np.ndarray) and (weight.ndim == 4 or (weight.ndim == 2 and weight.shape[0] == 784)):
            return layer
    return None


# -- what the checkpoint says about its training: trusted only as far as it checks out ------------
CURVES = ("loss", "accuracy", "val_loss", "val_accuracy")
MAX_EPOCH = 1_000_000
MAX_VALUE = 1e100  # a curve's values beyond this cannot be drawn (matplotlib's margins overflow)
# what each curve can be at all (train-mnist's own ranges for its records, which --resume checks too),
# within what can be drawn; a record outside these was not written by train-mnist's fit
CURVE_RANGES = {key: (HISTORY_RANGES[key][0], min(HISTORY_RANGES[key][1], MAX_VALUE)) for key in CURVES}


def read_training(metadata) -> tuple:
    """``(preset, history, skipped)`` from a checkpoint's ``train_mnist`` metadata, whatever it holds.

    ``preset``: the config's model name, or None; ``history``: the records fit to draw, sorted by
    epoch (each a dict with an int "epoch" in [1, MAX_EPOCH] and the four curves as numbers in
    ``CURVE_RANGES``: the accuracies fractions from 0 to 1, the losses from 0 to MAX_VALUE; the two
    val_ ones possibly None), possibly empty; ``skipped``:
    one sentence per part that was there but could not be used, saying why. Never raises.
    """
    if not isinstance(metadata, dict) or "train_mnist" not in metadata:
        return None, [], []
    run = metadata["train_mnist"]
    if not isinstance(run, dict):
        return None, [], [f"its train_mnist metadata is a {type(run).__name__}, not a mapping: not used"]
    skipped = []
    config, preset = run.get("config"), None
    if isinstance(config, dict) and "model" in config:
        model = config["model"]
        if isinstance(model, str) and model.isprintable() and 0 < len(model) <= 40:
            preset = model
        else:
            skipped.append(f"its config's model {model!r:.40} is not a preset name: not shown")
    elif config is not None and not isinstance(config, dict):
        skipped.append(f"its config is a {type(config).__name__}, not a mapping: not used")
    records = run.get("history")
    if records is None:
        return preset, [], skipped
    if not isinstance(records, list):
        return preset, [], [*skipped, f"its history is a {type(records).__name__}, not a list: not drawn"]
    history, bad = [], []
    for index, record in enumerate(records):
        reason = _record_problem(record)
        if reason is None:
            history.append({"epoch": record["epoch"], **{key: record[key] for key in CURVES}})
        else:
            bad.append(f"record {index + 1}: {reason}")
    if bad:
        skipped.append(f"{len(bad)} of its {len(records)} history records skipped, not train-mnist epoch records "
                       f"({bad[0]}{', ...' if len(bad) > 1 else ''})")
    return preset, sorted(history, key=lambda r: r["epoch"]), skipped


def _record_problem(record) -> str | None:
    """Why one history record cannot be drawn, or None when it can."""
    if not isinstance(record, dict):
        return f"a {type(record).__name__}, not a mapping"
    epoch = record.get("epoch")
    if isinstance(epoch, bool) or not isinstance(epoch, int) or not 1 <= epoch <= MAX_EPOCH:
        return f"epoch {epoch!r:.30}, expected an int from 1 to {MAX_EPOCH:,}"
    for key in CURVES:
        if key not in record:
            return f"no {key}"
        value = record[key]
        if value is None and key.startswith("val_"):
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not abs(value) <= MAX_VALUE:
            return f"{key} {value!r:.30}, expected a finite number within +-{MAX_VALUE:g}"
        low, high = CURVE_RANGES[key]
        if not low <= value <= high:
            return f"{key} {value!r:.30}, expected a number from {low:g} to {high:g}"
    return None
