"""``nnscratch predict CHECKPOINT IMAGE...``: classify digit images (or .npy arrays) with a trained network.

Each image is brought to MNIST's form first (``nnscratch.data.digits``: grayscale, light on dark,
cropped to the ink, 20 pixels, centred by mass); a ``.npy`` array is taken as an MNIST digit
already (``nnscratch.data.digit_files``). The checkpoint may hold a whole training network (its
loss layers are dropped) or a bare model; the scores go through a softmax unless the model ends in
one.

Output: per file, the top classes with their probabilities, one line each (``--json``: one JSON
document instead). File names are shown as given, except for bytes that are not valid in the
locale's encoding, shown as \\xNN (``commands.common.shown``). A file that cannot be classified
(not a regular file, unreadable, no digit, ...) gets one line on stderr and the others are still
classified. ``--show-input`` is checked with the other options, before any work, as every
command's outputs are (``nnscratch.commands.common``: never one of the images or the checkpoint, never
a FIFO or device); when writing it fails anyway (a full disk), that is one line on stderr, the
predictions are still printed, and the exit code is 1. Exit codes: 0 all classified (and written),
1 some file could not be classified or written, 2 bad options or a checkpoint that cannot be used
(unreadable, NaN or infinite weights, or a network that does not take 28x28 digits), 130
interrupted. A file the network gives NaN or infinite scores for (finite weights can overflow)
counts as one that could not be classified. ``--json`` writes standard JSON only (never NaN).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

from .common import UsageError, check_outputs, load_classifier, run_command, shown, write_failed

HELP = "classify digit images (PNG, JPEG, ... or .npy arrays) with a trained network"
TOP = 3


def add_arguments(parser) -> None:
    parser.epilog = (
        "Images need Pillow (pip install 'nnscratch[images]'); .npy arrays (28x28, 1x28x28 or 784 values, "
        "uint8 0-255 or floats in [0, 1]) do not. Exit codes: 0 all classified, 1 some file could not be, "
        "2 bad options or an unusable checkpoint."
    )
    parser.add_argument("checkpoint", metavar="CHECKPOINT", help="a network saved by train-mnist --save or nn.save")
    parser.add_argument("images", metavar="IMAGE", nargs="+", help="image files (any format Pillow reads) or .npy")
    parser.add_argument("--top", default=str(TOP), metavar="K", help=f"how many classes to show per image (default {TOP})")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    parser.add_argument("--show-input", metavar="PATH", default=None,
                        help="write what the network saw as a PNG (28x28 for one image; for several, a grid "
                        "in the order given, 10 per row, a file that failed left blank)")  # fmt: skip


def run(args) -> int:
    return run_command("predict", _run, args)


def _check_options(args) -> int:
    try:
        top = int(args.top)
    except ValueError:
        raise UsageError(f"--top must be an int, got {args.top!r}") from None
    if top < 1:
        raise UsageError(f"--top must be >= 1, got {top}")
    if args.show_input is not None:
        inputs = [("the checkpoint", args.checkpoint), *(("the image", name) for name in args.images)]
        args.show_input = check_outputs([("--show-input", args.show_input)], inputs)["--show-input"]
        if importlib.util.find_spec("PIL") is None:
            raise UsageError("--show-input needs Pillow, which is not installed: pip install 'nnscratch[images]'")
    return top


def _run(args) -> int:
    import numpy as np

    from ..data.digit_files import DigitFileError, read_digit
    from ..inference import class_probabilities, model_dtype

    top = _check_options(args)
    _, model, shape = load_classifier(args.checkpoint)
    inputs, results = [], []
    for name in args.images:
        try:
            inputs.append(read_digit(name))
            results.append({"file": shown(name)})
        except DigitFileError as error:
            inputs.append(None)
            results.append({"file": shown(name), "error": f"{shown(error.path)}: {error.reason}"})
            print(f"predict: {results[-1]['error']}", file=sys.stderr)
    good = [i for i, x in enumerate(inputs) if x is not None]
    if good:
        batch = np.stack([inputs[i] for i in good]).reshape(len(good), *shape).astype(model_dtype(model))
        with np.errstate(over="ignore", invalid="ignore"):  # non-finite scores are looked for below
            probabilities = class_probabilities(model, batch)
        for i, p in zip(good, probabilities):
            if not np.isfinite(p).all():  # finite weights can still overflow on some input
                results[i]["error"] = f"{results[i]['file']}: the network's scores for it are NaN or infinite"
                print(f"predict: {results[i]['error']}", file=sys.stderr)
                continue
            order = np.argsort(-p, kind="stable")[: min(top, len(p))]
            results[i]["top"] = [{"class": int(c), "probability": float(p[c])} for c in order]
            results[i]["probabilities"] = [float(v) for v in p]
    if args.json:
        print(json.dumps({"checkpoint": shown(args.checkpoint), "results": results}, indent=2, allow_nan=False))
    else:
        for result in results:
            if "top" in result:
                top = ", ".join(f"{t['class']} ({percent(t['probability'])})" for t in result["top"])
                print(f"{result['file']}: {top}")
    written = True
    if args.show_input is not None and good:
        try:
            _write_inputs(args.show_input, inputs)
        except OSError as error:  # a full disk: the predictions above stand
            write_failed("predict", "--show-input", args.show_input, error)
            written = False
    elif args.show_input is not None:
        print(f"predict: --show-input {shown(args.show_input)}: not written, no file could be read", file=sys.stderr)
    classified = sum("top" in result for result in results)
    return 0 if classified == len(inputs) and written else 1


def percent(p: float) -> str:
    """A probability as a percentage with one decimal, never rounded to a certainty it is not."""
    if p > 0.999:
        return ">99.9%" if p < 1 else "100%"
    if p < 0.0005:
        return "0%" if p == 0 else "<0.1%"
    return f"{100 * p:.1f}%"


def _write_inputs(path: Path, inputs: list) -> None:
    """The 28x28 inputs as one PNG: the image itself for one input; for several, a grid of them."""
    from PIL import Image

    from ..atomic_file import atomic_write
    from ..data.digits import to_uint8

    if len(inputs) == 1:
        picture = Image.fromarray(to_uint8(inputs[0]))
    else:
        picture = Image.fromarray(input_grid([None if x is None else to_uint8(x) for x in inputs]))
    with atomic_write(path) as f:
        picture.save(f, format="PNG")


GRID_COLUMNS = 10
GAP = 2  # pixels between the cells, in a colour no grayscale input has
GAP_COLOUR = (40, 90, 200)
BLANK_COLOUR = (90, 0, 0)  # the cell of a file that could not be read


def input_grid(cells: list):
    """Tile 28x28 uint8 images (None: a blank cell) row by row, GRID_COLUMNS a row, into one RGB picture.

    Shape:
        n cells -> (rows * 30 + 2, columns * 30 + 2, 3) uint8, rows = ceil(n / 10), columns = min(n, 10)
    """
    import numpy as np

    columns = min(len(cells), GRID_COLUMNS)
    rows = -(-len(cells) // GRID_COLUMNS)
    step = 28 + GAP
    grid = np.empty((rows * step + GAP, columns * step + GAP, 3), dtype=np.uint8)
    grid[...] = GAP_COLOUR
    for index, cell in enumerate(cells):
        top, left = GAP + (index // GRID_COLUMNS) * step, GAP + (index % GRID_COLUMNS) * step
        grid[top : top + 28, left : left + 28] = BLANK_COLOUR if cell is None else cell[:, :, None]
    return grid
