"""``nnscratch sanity-check``: gradient checks of the built-in layers, or of a layer of your own.

With no argument every built-in layer is checked in several configurations; ``sanity-check
Conv2D`` checks one layer's configurations; ``--layer pkg.module:Class --input-shape 5,6`` builds
your class with no arguments (or ``--args '{"n": 3}'``) and checks it on a seeded N(0, 1) input
of exactly that shape, batch axis included. Exit status: 0 all pass, 1 a check failed, 2 usage.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import sys
from typing import Callable

import numpy as np
from tqdm import tqdm

import nnscratch
from nnscratch.check import DEFAULT_ATOL, DEFAULT_EPS, DEFAULT_MAX_COORDS, DEFAULT_RTOL, GradientCheckError, sanity_check

HELP = "Check layer gradients against central differences (all built-ins, one of them, or your own layer)."


@dataclasses.dataclass
class Case:
    """One configuration to check: ``build()`` returns (layer, x, args)."""

    layer: str
    config: str
    build: Callable[[], tuple]


# -- inputs kept away from kinks -------------------------------------------------------------
def _normal(shape, seed, scale=1.0, offset=0.0):
    return offset + scale * np.random.default_rng(seed).standard_normal(shape)


def _away_from_zero(shape, seed):
    """|x| in [0.1, 2]: far from ReLU's kink at 0 compared with eps = 1e-6."""
    rng = np.random.default_rng(seed)
    return rng.choice([-1.0, 1.0], shape) * rng.uniform(0.1, 2.0, shape)


def _separated(shape, seed):
    """A random permutation of values 0.1 apart: no near-ties for max pooling."""
    size = int(np.prod(shape))
    return (np.random.default_rng(seed).permutation(size) - size / 2).reshape(shape) * 0.1


def _probs(n, c, seed):
    """Rows of probabilities each >= 0.05, so log and 1/p stay tame under a nudge of eps."""
    p = np.random.default_rng(seed).uniform(0.2, 1.0, (n, c))
    return p / p.sum(axis=1, keepdims=True)


def _targets(kind, n, c, seed):
    labels = np.random.default_rng(seed).integers(0, c, n)
    if kind == "integer":
        return labels
    if kind == "one-hot":
        return np.eye(c)[labels]
    return _probs(n, c, seed + 1)  # soft


def builtin_cases() -> list[Case]:
    """Every built-in layer in the configurations the issue asks for (and a few more)."""
    n = nnscratch
    cases = [
        Case("Linear", "with bias, 5 -> 3, batch 4", lambda: (n.Linear(5, 3, rng=1), _normal((4, 5), 1), ())),
        Case("Linear", "no bias, 6 -> 2, batch 3", lambda: (n.Linear(6, 2, bias=False, rng=2), _normal((3, 6), 2), ())),
    ]
    conv = [  # (config, in, out, kernel, stride, padding, bias, input shape)
        ("4x4 input, 3x3 kernel", 1, 1, 3, 1, 0, False, (1, 1, 4, 4)),
        ("padding 1", 1, 1, 3, 1, 1, False, (1, 1, 4, 4)),
        ("stride 2 on 7x7", 1, 1, 3, 2, 0, False, (1, 1, 7, 7)),
        ("padding 1 + stride 2 on 7x7", 1, 1, 3, 2, 1, False, (1, 1, 7, 7)),
        ("3 input channels", 3, 1, 3, 1, 0, False, (1, 3, 5, 5)),
        ("3 channels + bias", 3, 1, 3, 1, 0, True, (1, 3, 5, 5)),
        ("4 filters", 3, 4, 3, 1, 0, False, (1, 3, 5, 5)),
        ("4 filters + bias", 3, 4, 3, 1, 0, True, (1, 3, 5, 5)),
        ("mini-batch of 3", 3, 4, 3, 1, 0, True, (3, 3, 5, 5)),
        ("RGB batch 3x3x7x7, 4 filters, stride 2, padding 1", 3, 4, 3, 2, 1, True, (3, 3, 7, 7)),
        ("kernel (3, 2), stride (2, 1), padding (1, 0)", 2, 3, (3, 2), (2, 1), (1, 0), True, (2, 2, 7, 6)),
        ("kernel (2, 3), stride (1, 2), 1x1 padding", 2, 2, (2, 3), (1, 2), 1, True, (1, 2, 5, 7)),
    ]
    for i, (config, c_in, c_out, k, s, p, bias, shape) in enumerate(conv):
        cases.append(Case("Conv2D", config, lambda c_in=c_in, c_out=c_out, k=k, s=s, p=p, bias=bias, shape=shape, i=i: (
            n.Conv2D(c_in, c_out, k, stride=s, padding=p, bias=bias, rng=10 + i), _normal(shape, 10 + i), ())))
    pools = [  # (config, kernel, stride, input shape)
        ("2x2, stride 2 (default)", 2, None, (2, 2, 6, 6)),
        ("2x2, stride 1 (overlapping)", 2, 1, (2, 2, 5, 5)),
        ("3x3, stride 2 (overlapping)", 3, 2, (1, 3, 7, 7)),
        ("kernel (2, 3), stride (1, 2)", (2, 3), (1, 2), (2, 1, 5, 7)),
    ]
    for i, (config, k, s, shape) in enumerate(pools):
        cases.append(Case("MaxPool2D", config, lambda k=k, s=s, shape=shape, i=i: (
            n.MaxPool2D(k, stride=s), _separated(shape, 30 + i), ())))
    cases += [
        Case("Sigmoid", "N(0, 2^2) inputs", lambda: (n.Sigmoid(), _normal((4, 5), 40, 2.0), ())),
        Case("Tanh", "N(0, 1) inputs", lambda: (n.Tanh(), _normal((4, 5), 41), ())),
        Case("ReLU", "inputs with |x| >= 0.1", lambda: (n.ReLU(), _away_from_zero((4, 5), 42), ())),
        Case("Softmax", "N(0, 1) inputs", lambda: (n.Softmax(), _normal((4, 5), 43), ())),
        Case("Softmax", "large inputs, 1e4 + N(0, 1)", lambda: (n.Softmax(), _normal((4, 5), 44, offset=1e4), ())),
        Case("Softmax", "spread inputs, N(0, 30^2)", lambda: (n.Softmax(), _normal((4, 5), 45, 30.0), ())),
        Case("Flatten", "(2, 3, 4, 5) -> (2, 60)", lambda: (n.Flatten(), _normal((2, 3, 4, 5), 46), ())),
        Case("Mean", "(4, 3) -> scalar", lambda: (n.Mean(), _normal((4, 3), 47), ())),
    ]
    for i, kind in enumerate(("integer", "one-hot", "soft")):
        cases.append(Case("CrossEntropy", f"{kind} targets", lambda kind=kind, i=i: (
            n.CrossEntropy(), _probs(4, 5, 50 + i), (_targets(kind, 4, 5, 50 + i),))))
    for i, kind in enumerate(("integer", "one-hot", "soft")):
        cases.append(Case("SoftmaxCrossEntropy", f"{kind} targets", lambda kind=kind, i=i: (
            n.SoftmaxCrossEntropy(), _normal((4, 5), 60 + i, 3.0), (_targets(kind, 4, 5, 60 + i),))))
    cases.append(Case("SoftmaxCrossEntropy", "large logits N(0, 1e3^2), integer targets", lambda: (
        n.SoftmaxCrossEntropy(), _normal((4, 5), 63, 1e3), (_targets("integer", 4, 5, 63),))))
    cases += [
        Case("Sequential", "Linear-Tanh-Linear-SoftmaxCE-Mean, integer targets", lambda: (
            n.Sequential(n.Linear(6, 5, rng=70), n.Tanh(), n.Linear(5, 3, rng=71), n.SoftmaxCrossEntropy(), n.Mean()),
            _normal((4, 6), 70), (_targets("integer", 4, 3, 70),))),
        Case("Sequential", "Linear-Softmax-CrossEntropy-Mean, soft targets", lambda: (
            n.Sequential(n.Linear(5, 4, rng=72), n.Softmax(), n.CrossEntropy(), n.Mean()),
            _normal((3, 5), 72), (_targets("soft", 3, 4, 72),))),
        Case("Sequential", "Conv2D-Sigmoid-Flatten-Linear-SoftmaxCE-Mean, one-hot", lambda: (
            n.Sequential(n.Conv2D(2, 3, 3, padding=1, rng=74), n.Sigmoid(), n.Flatten(), n.Linear(48, 4, rng=75),
                         n.SoftmaxCrossEntropy(), n.Mean()),
            _normal((2, 2, 4, 4), 74), (_targets("one-hot", 2, 4, 74),))),
    ]
    return cases


# -- a user's layer --------------------------------------------------------------------------
class UsageError(Exception):
    """A bad command line: reported in one line, exit status 2."""


def _input_shape(text: str) -> tuple:
    try:
        shape = tuple(int(part) for part in text.replace(" ", "").split(","))
    except ValueError:
        shape = ()
    if not shape or any(size < 1 for size in shape):
        raise UsageError(f"--input-shape: expected positive ints separated by commas, like 5,6; got {text!r}")
    return shape


def load_user_layer(spec: str, kwargs_json: str | None):
    """Import ``pkg.module:Class`` (the current directory is searched too) and build it."""
    module_name, sep, class_name = spec.partition(":")
    if not sep or not module_name or not class_name:
        raise UsageError(f"--layer: expected pkg.module:Class, got {spec!r}")
    kwargs = {}
    if kwargs_json is not None:
        try:
            kwargs = json.loads(kwargs_json)
        except json.JSONDecodeError as error:
            raise UsageError(f"--args: not valid JSON ({error}): {kwargs_json!r}") from None
        if not isinstance(kwargs, dict):
            raise UsageError(f"--args: expected a JSON object of constructor arguments, got {kwargs_json!r}")
    added = os.getcwd() not in sys.path
    if added:  # as `python -m` does, so a module next to you imports from the console script too
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as error:
        raise UsageError(f"--layer: cannot import module {module_name!r}: {type(error).__name__}: {error}") from None
    finally:
        if added:
            sys.path.remove(os.getcwd())
    cls = getattr(module, class_name, None)
    if cls is None or not callable(cls):
        raise UsageError(f"--layer: module {module_name!r} has no class {class_name!r}")
    try:
        layer = cls(**kwargs)
    except Exception as error:
        raise UsageError(f"--layer: cannot build {spec}(**{kwargs}): {type(error).__name__}: {error}") from None
    missing = [m for m in ("forward", "backward") if not callable(getattr(layer, m, None))]
    for attr in ("parameters", "parameters_deltas"):
        if not isinstance(getattr(layer, attr, []), (list, tuple)):
            missing.append(f"{attr} as a list")
    if missing:
        raise UsageError(
            f"--layer: {spec} does not follow the layer protocol (forward, backward, parameters, "
            f"parameters_deltas): missing {', '.join(missing)}"
        )
    return layer


# -- running and reporting -------------------------------------------------------------------
def _check_case(case: Case, options) -> tuple[list, str]:
    """Run one case; return its table rows and, if it failed, the message."""
    try:
        layer, x, args = case.build()
        report = sanity_check(layer, x, args, max_coords=options.coords, seed=options.seed,
                              atol=options.atol, rtol=options.rtol)
        failure = ""
    except GradientCheckError as error:
        report, failure = error.report, str(error)
    except Exception as error:  # a layer that crashes fails its check; the run goes on
        report, failure = None, f"{type(error).__name__}: {error}"
    if not report:
        return [(case.layer, case.config, "-", "-", "-", "-", "FAIL")], failure
    rows = [
        (case.layer, case.config, f"{row.tensor} {row.shape}", str(row.coords), f"{row.max_abs_err:.2e}",
         f"{row.max_rel_err:.2e}", "PASS" if row.passed else "FAIL")
        for row in report
    ]
    return rows, failure


def _table(rows: list) -> str:
    header = ("layer", "configuration", "tensor", "coords", "max abs err", "max rel err", "result")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    right = {3, 4, 5}
    lines = []
    for r in [header, *rows]:
        cells = [str(c).rjust(w) if i in right else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths))]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def add_arguments(parser) -> None:
    parser.add_argument("layers", nargs="*", metavar="LAYER",
                        help="built-in layer names to check (default: all of them)")
    parser.add_argument("--layer", dest="user_layer", metavar="pkg.module:Class",
                        help="check your own layer class, built with no arguments (see --args)")
    parser.add_argument("--input-shape", metavar="N,...",
                        help="with --layer: the input's full shape, batch axis included, e.g. 5,6")
    parser.add_argument("--args", dest="layer_args", metavar="JSON",
                        help="with --layer: constructor keyword arguments as a JSON object")
    parser.add_argument("--coords", type=int, default=DEFAULT_MAX_COORDS,
                        help=f"at most this many coordinates per tensor, a seeded sample (default {DEFAULT_MAX_COORDS})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random R and of the sampling (default 0)")
    parser.add_argument("--atol", type=float, default=DEFAULT_ATOL, help=f"absolute tolerance (default {DEFAULT_ATOL:g})")
    parser.add_argument("--rtol", type=float, default=DEFAULT_RTOL, help=f"relative tolerance (default {DEFAULT_RTOL:g})")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _select(args) -> list[Case]:
    if args.coords < 1:
        raise UsageError(f"--coords: expected a positive int, got {args.coords}")
    if args.user_layer is not None:
        if args.layers:
            raise UsageError("give either built-in LAYER names or --layer, not both")
        if args.input_shape is None:
            raise UsageError("--layer needs --input-shape, the input's full shape with the batch axis, e.g. 5,6")
        shape = _input_shape(args.input_shape)
        layer = load_user_layer(args.user_layer, args.layer_args)
        return [Case(args.user_layer, f"input {shape}", lambda: (layer, _normal(shape, args.seed), ()))]
    if args.input_shape is not None or args.layer_args is not None:
        raise UsageError("--input-shape and --args go with --layer")
    cases = builtin_cases()
    names = {case.layer.lower(): case.layer for case in cases}
    unknown = [name for name in args.layers if name.lower() not in names]
    if unknown:
        raise UsageError(f"unknown layer {', '.join(map(repr, unknown))}; built-in layers: {', '.join(dict.fromkeys(names.values()))}")
    wanted = {names[name.lower()] for name in args.layers}
    return [case for case in cases if not wanted or case.layer in wanted]


def run(args) -> int:
    try:
        cases = _select(args)
    except UsageError as error:
        print(f"nnscratch sanity-check: error: {error}", file=sys.stderr)
        return 2
    rows, failures = [], []
    progress = tqdm(cases, desc="sanity-check", unit="config", file=sys.stderr, leave=False,
                    disable=args.quiet or len(cases) <= 3)
    for case in progress:
        case_rows, failure = _check_case(case, args)
        rows += case_rows
        if failure:
            failures.append(f"{case.layer} [{case.config}]: {failure}")
    print(_table(rows))
    if failures:
        print()
    for failure in failures:
        print(f"FAIL {failure}")
    tensors = sum(1 for r in rows if r[2] != "-")
    print(f"\nA tensor passes when every coordinate checked has abs err <= atol + rtol * |gradient| "
          f"(atol={args.atol:g}, rtol={args.rtol:g}; central differences, eps={DEFAULT_EPS:g}, float64).\n"
          "max rel err is taken over the coordinates with |gradient| >= atol.")
    if failures:
        print(f"\nsanity-check: {len(failures)} of {len(cases)} configurations FAILED ({tensors} tensors checked)")
        return 1
    print(f"\nsanity-check: all {len(cases)} configurations passed ({tensors} tensors checked)")
    return 0
