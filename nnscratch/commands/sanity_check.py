"""``nnscratch sanity-check``: gradient checks of the built-in layers, or of a layer of your own.

With no argument every built-in layer is checked in several configurations; ``sanity-check
Conv2D`` checks one layer's configurations; ``--layer pkg.module:Class --input-shape 5,6`` builds
your class with no arguments (or ``--args '{"n": 3}'``) and checks it on a seeded N(0, 1) input
of exactly that shape, batch axis included (``--input`` picks another kind, e.g. probabilities for
a loss that takes them); ``--targets integer|one-hot|soft`` also passes seeded
targets, as forward's second argument, to a loss layer. Under each failing row, a line per
diagnosis says what is wrong (docs/when-the-check-fails.md); ``--json`` prints the same as one JSON
document instead (its schema: ``sanity_check_output.py``). Exit status: 0 all pass, 1 a check
failed, 2 usage.

``--layer`` imports your module, which runs that module's code, as any import does: give it only
modules you would run. It then checks the class against the layer protocol (``forward`` and
``backward`` methods on the class, ``parameters`` and ``parameters_deltas`` lists if the class
defines them) and forward's arguments against ``--targets`` before building it, so a class that is
not a layer (``subprocess:Popen``) is never called; building it runs its ``__init__``.
"""

from __future__ import annotations

import math
import sys

from tqdm import tqdm

from nnscratch.check import DEFAULT_ATOL, DEFAULT_MAX_COORDS, DEFAULT_RTOL, DIAGNOSE, GradientCheckError, sanity_check
from nnscratch.check.traits import takes_integer_ids

from .common import UsageError
from .sanity_check_cases import builtin_cases
from .sanity_check_inputs import INPUT_KINDS, TARGET_KINDS, Case, make_input, make_targets
from .sanity_check_output import CaseResult, document, summary, table
from .sanity_check_user import load_user_layer

HELP = "check layer gradients against central differences (all built-ins, one of them, or your own layer)"


# -- a user's layer --------------------------------------------------------------------------
def _input_shape(text: str) -> tuple:
    try:
        shape = tuple(int(part) for part in text.replace(" ", "").split(","))
    except ValueError:
        shape = ()
    if not shape or any(size < 1 for size in shape):
        raise UsageError(f"--input-shape: expected positive ints separated by commas, like 5,6; got {text!r}")
    return shape


def _input_option(kind: str | None) -> str:
    """``--input KIND``: one of INPUT_KINDS (ids:V with V a positive int), normal when not given."""
    if kind is None:
        return "normal"
    if kind.startswith("ids:"):
        bound = kind[4:]
        if not (bound.isdigit() and int(bound) > 0):
            raise UsageError(f"--input ids:V: expected V, the number of ids, a positive int; got {kind!r}")
        return f"ids:{int(bound)}"
    if kind not in INPUT_KINDS:
        raise UsageError(f"--input: expected one of {', '.join(INPUT_KINDS)}; got {kind!r}")
    return kind


def _targets_option(kind: str | None, classes: str | None, shape: tuple):
    """``--targets KIND [--classes C]`` checked against the input shape: (kind, C), or None without it."""
    if kind is None:
        if classes is not None:
            raise UsageError(f"--classes goes with --targets, got --classes {classes} alone")
        return None
    if kind not in TARGET_KINDS:
        raise UsageError(f"--targets: expected one of {', '.join(TARGET_KINDS)}; got {kind!r}")
    if classes is None:
        if len(shape) < 2:
            raise UsageError(f"--targets: the input shape {shape} has no class axis after the batch axis; "
                             "give the number of classes with --classes C")
        return kind, shape[-1]
    try:
        count = int(classes)
    except ValueError:
        count = 0
    if count < 1:
        raise UsageError(f"--classes: expected a positive int, the number of classes; got {classes!r}")
    return kind, count


# -- running and reporting -------------------------------------------------------------------
def _check_case(case: Case, options) -> CaseResult:
    """Run one case: its report (None if the layer crashed first) and, if it failed, the message."""
    try:
        layer, x, args = case.build()
        report = sanity_check(layer, x, args, max_coords=options.coords, seed=options.seed,
                              atol=options.atol, rtol=options.rtol, diagnose=options.diagnose)
        failure = ""
    except GradientCheckError as error:  # its diagnoses are in the report: the summary line is enough
        report, failure = error.report, error.summary if error.report else str(error)
    except (Exception, SystemExit) as error:  # a layer that crashes (or exits) fails its check; the run goes on
        report, failure = None, f"{type(error).__name__}: {error}"
    if case.hint and "a non-finite value" in failure:  # see nnscratch.check's _check_finite
        failure += f" ({case.hint})"
    return CaseResult(case.layer, case.config, report, failure)


def add_arguments(parser) -> None:
    parser.add_argument("layers", nargs="*", metavar="LAYER",
                        help="built-in layer names to check (default: all of them)")
    parser.add_argument("--layer", dest="user_layer", metavar="pkg.module:Class",
                        help="check your own layer class, built with no arguments (see --args); importing the "
                        "module runs its code, as any import does")
    parser.add_argument("--input-shape", metavar="N,...",
                        help="with --layer: the input's full shape, batch axis included, e.g. 5,6")
    parser.add_argument("--input", metavar="KIND",
                        help="with --layer: the seeded input, normal (N(0, 1), the default), away-from-zero "
                        "(|x| in [0.1, 2]), positive (in [0.5, 2]), probabilities (rows along the last "
                        "axis summing to 1) or ids:V (integers in [0, V), for a layer declaring integer_input = True)")
    parser.add_argument("--args", dest="layer_args", metavar="JSON",
                        help="with --layer: constructor keyword arguments as a JSON object")
    parser.add_argument("--targets", metavar="KIND",
                        help="with --layer, for a loss layer: seeded targets passed as forward's second argument, "
                        "integer (labels (N,)), one-hot or soft (rows (N, C)); N is the input's first axis")
    parser.add_argument("--classes", metavar="C",
                        help="with --targets: the number of classes C (default: the input's last axis)")
    # The numbers are read by _read_numbers, not by argparse, so a bad one gets a one-line message.
    parser.add_argument("--coords", default=DEFAULT_MAX_COORDS,
                        help=f"at most this many coordinates per tensor, a seeded sample (default {DEFAULT_MAX_COORDS})")
    parser.add_argument("--seed", default=0, help="seed of the random R and of the sampling (default 0)")
    parser.add_argument("--atol", default=DEFAULT_ATOL, help=f"absolute tolerance (default {DEFAULT_ATOL:g})")
    parser.add_argument("--rtol", default=DEFAULT_RTOL, help=f"relative tolerance (default {DEFAULT_RTOL:g})")
    parser.add_argument("--diagnose", default="on-failure", metavar="WHEN",
                        help="on-failure (the default): say what is wrong with each failing tensor, and probe a "
                        "passing layer once in float32; always: also look for a leak across the batch in a passing "
                        "input gradient; never: compare only")
    parser.add_argument("--json", action="store_true",
                        help="print the results as one JSON document (schema: nnscratch.sanity-check/1) instead of "
                        "the table")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _int_option(option: str, value, minimum: int, expected: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = None
    if number is None or number < minimum:
        raise UsageError(f"{option}: expected {expected}, got {value!r}")
    return number


def _tolerance_option(option: str, value) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not (math.isfinite(number) and number >= 0):  # a negative or nan tolerance fails everything, inf nothing
        raise UsageError(f"{option}: expected a finite number >= 0, got {value!r}")
    return number


def _read_numbers(args) -> None:
    """Turn --coords, --seed, --atol and --rtol from text into numbers, in place, or raise UsageError."""
    args.coords = _int_option("--coords", args.coords, 1, "a positive int")
    args.seed = _int_option("--seed", args.seed, 0, "a non-negative int")
    args.atol = _tolerance_option("--atol", args.atol)
    args.rtol = _tolerance_option("--rtol", args.rtol)
    if args.diagnose not in DIAGNOSE:
        raise UsageError(f"--diagnose: expected one of {', '.join(DIAGNOSE)}, got {args.diagnose!r}")


def _select(args) -> list[Case]:
    if args.user_layer is not None:
        if args.layers:
            raise UsageError("give either built-in LAYER names or --layer, not both")
        if args.input_shape is None:
            raise UsageError("--layer needs --input-shape, the input's full shape with the batch axis, e.g. 5,6")
        shape = _input_shape(args.input_shape)
        input_kind = _input_option(args.input)
        targets = _targets_option(args.targets, args.classes, shape)
        layer = load_user_layer(args.user_layer, args.layer_args, targets)
        if takes_integer_ids(layer) != input_kind.startswith("ids:"):
            raise UsageError(f"--input: {args.user_layer} declares integer_input = True: give --input ids:V, V the "
                             "number of ids" if takes_integer_ids(layer) else
                             f"--input {input_kind}: {args.user_layer} does not declare integer_input = True")
        config = (f"input {shape}" if input_kind == "normal" else f"ids in [0, {input_kind[4:]}) {shape}"
                  if input_kind.startswith("ids:") else f"{input_kind} input {shape}")
        hint = ("the input was N(0, 1); a layer defined for positive values only takes --input positive, "
                "a loss on probabilities --input probabilities") if input_kind == "normal" else ""
        if targets is None:
            return [Case(args.user_layer, config, lambda: (layer, make_input(input_kind, shape, args.seed), ()),
                         hint)]
        kind, classes = targets
        return [Case(args.user_layer, f"{config}, {kind} targets, {classes} classes", lambda: (
            layer, make_input(input_kind, shape, args.seed), (make_targets(kind, shape[0], classes, args.seed),)),
            hint)]
    if args.input_shape is not None or args.layer_args is not None or args.input is not None:
        raise UsageError("--input-shape, --input and --args go with --layer")
    if args.targets is not None or args.classes is not None:
        raise UsageError("--targets and --classes go with --layer; the built-in losses are already checked "
                         "with integer, one-hot and soft targets")
    cases = builtin_cases()
    names = {case.layer.lower(): case.layer for case in cases}
    unknown = [name for name in args.layers if name.lower() not in names]
    if unknown:
        raise UsageError(f"unknown layer {', '.join(map(repr, unknown))}; built-in layers: {', '.join(dict.fromkeys(names.values()))}")
    wanted = {names[name.lower()] for name in args.layers}
    return [case for case in cases if not wanted or case.layer in wanted]


def run(args) -> int:
    try:
        _read_numbers(args)
        cases = _select(args)
    except UsageError as error:
        print(f"nnscratch sanity-check: error: {error}", file=sys.stderr)
        return 2
    progress = tqdm(cases, desc="sanity-check", unit="config", file=sys.stderr, leave=False,
                    disable=args.quiet or len(cases) <= 3)
    results = [_check_case(case, args) for case in progress]
    print(document(results, args) if args.json else table(results) + "\n" + summary(results, args))
    return 1 if any(result.failure for result in results) else 0
