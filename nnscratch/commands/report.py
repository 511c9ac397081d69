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
unusable checkpoint, 130 interrupted.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from .common import (UsageError, check_outputs, load_classifier, mnist_inputs, os_error_text, run_command, shown,
                     write_failed)

HELP = "draw a trained network's confusion matrix, worst mistakes, first-layer weights and training curves"
MISTAKES = 24  # the most confident mistakes shown
MAX_TEMPLATES = 32  # Linear units shown as 28x28 templates


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
    probabilities = class_probabilities(model, x)
    if probabilities.shape[1] != 10:
        raise UsageError(f"{args.checkpoint}: the network gives {probabilities.shape[1]} classes, MNIST has 10")
    predicted = probabilities.argmax(axis=1)
    matrix = confusion_matrix(y_test, predicted, 10)
    history = checkpoint.metadata.get("train_mnist", {}).get("history")
    config = checkpoint.metadata.get("train_mnist", {}).get("config") or {}
    title = f"{Path(args.checkpoint).name}: " + (f"{config['model']} preset, " if "model" in config else "") + (
        f"{len(history)} epoch{'s' if len(history) != 1 else ''}, " if isinstance(history, list) else "")
    from .report_figure import draw_report

    figure = draw_report(
        title=title, matrix=matrix, images=x_test, labels=y_test, probabilities=probabilities,
        first_layer=_first_weighted_layer(model), history=history if _valid_history(history) else None,
        mistakes=MISTAKES, max_templates=MAX_TEMPLATES,
    )  # fmt: skip
    import matplotlib.pyplot as plt

    from ..atomic_file import atomic_write

    try:
        with atomic_write(out) as f:
            figure.savefig(f, format="png", dpi=100)
        written = True
    except OSError as error:  # a full disk: the accuracy below still stands
        write_failed("report", "--out", out, error)
        written = False
    finally:
        plt.close(figure)
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


def _valid_history(history) -> bool:
    """A history as train-mnist writes it: per-epoch dicts with the four curves (None when not validated)."""
    keys = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy")
    return isinstance(history, list) and len(history) > 0 and all(
        isinstance(r, dict) and all(k in r for k in keys) for r in history)  # fmt: skip
