"""``sanity_check``: every gradient of a layer against central differences, and what is wrong if not.

Everything runs in float64 on a deep copy of the layer (``working_copy.py``), so the layer given is
left exactly as it was found (values, dtypes, the identity of its parameter arrays, its buffers and
its random generators). The layer is checked in the mode it is in: call ``layer.eval()`` first to
check its eval-mode function. Stochastic layers: every numpy Generator the layer holds (``self.rng``)
is rewound before every forward, so all forwards draw the same numbers (see ``working_copy.py``).
The differences and the tolerance rule are in ``numerical.py``, the diagnoses of a failing tensor in
``diagnose.py``, the rows, report and error in ``report.py``.
"""

from __future__ import annotations

import numpy as np

from . import precision
from .context import Context, Target
from .diagnose import diagnose as diagnose_tensor, probe, repeatability
from .numerical import DEFAULT_ATOL, DEFAULT_EPS, DEFAULT_MAX_COORDS, DEFAULT_RTOL, sample_coords
from .report import GradientCheckError, GradientCheckReport, TensorCheck, failure_message, layer_name
from .samples import leaks
from .traits import independent_samples, takes_integer_ids
from .working_copy import Runner, as_float_arg, float64_copy, parameters_of

DIAGNOSE = ("on-failure", "always", "never")
_SKIPPED_IDS = "integer ids have no gradient"
_R_STREAM = 0x5EED


def _check_finite(name: str, who: str, label: str, array) -> None:
    """NaN or inf in an output or a gradient is a bug of its own; say so before comparing anything."""
    bad = ~np.isfinite(array)
    if bad.any():
        index = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), np.shape(array)))
        raise GradientCheckError(
            f"{name}: {who} a non-finite value: {label} at index {index} is {float(array[index])} "
            f"({int(bad.sum())} of {bad.size} values are NaN or inf)"
        )


def _check_arguments(name, layer, x, eps, atol, rtol, max_coords, diagnose_mode) -> np.ndarray:
    for attr in ("forward", "backward"):
        if not callable(getattr(layer, attr, None)):
            raise TypeError(f"sanity_check: {name} does not follow the layer protocol: it has no {attr}() method")
    x = np.asarray(x)
    if x.dtype.kind not in "fiu":
        raise TypeError(f"sanity_check: x must be a real numeric array, got dtype {x.dtype} for {name}")
    if not (eps > 0 and atol >= 0 and rtol >= 0):
        raise ValueError(f"sanity_check: expected eps > 0, atol >= 0, rtol >= 0, got {eps}, {atol}, {rtol}")
    if max_coords is not None and (
        isinstance(max_coords, bool) or not isinstance(max_coords, (int, np.integer)) or max_coords < 1
    ):
        raise ValueError(f"sanity_check: max_coords must be a positive int or None, got {max_coords!r}")
    if diagnose_mode not in DIAGNOSE:
        raise ValueError(f"sanity_check: diagnose must be one of {', '.join(DIAGNOSE)}, got {diagnose_mode!r}")
    return x


def sanity_check(
    layer,
    x,
    args=(),
    *,
    eps: float = DEFAULT_EPS,
    atol: float = DEFAULT_ATOL,
    rtol: float = DEFAULT_RTOL,
    max_coords: int | None = DEFAULT_MAX_COORDS,
    seed: int = 0,
    name: str | None = None,
    diagnose: str = "on-failure",
) -> GradientCheckReport:
    """Check ``layer``'s gradients for its input and every parameter against central differences,
    and say what is wrong with each one that fails.

    f = sum(forward(x, *args) * R), R ~ N(0, 1) of the output's shape (seeded); analytical
    gradients from backward(R). A coordinate passes when
    |numerical - analytical| <= atol + rtol * max(|numerical|, |analytical|).
    Defaults (float64): eps=1e-6, atol=1e-6, rtol=1e-5, at most max_coords=200 coordinates per
    tensor (a seeded random sample; None checks them all). ``name`` overrides the layer's name in
    messages. Float ``args`` are cast to float64, others (integer labels) passed as they are.

    Each failing tensor gets its diagnoses (``TensorCheck.diagnoses``, one line each with the
    evidence; docs/when-the-check-fails.md): scaled (by N: summed where it should be averaged),
    wrong-sign, transposed, zero, accumulates, not-repeatable, ignores-upstream, leaks-across-batch,
    batch-constant, kink, wrong-elements, precision. A mismatch at a kink (ReLU at 0, a max-pooling
    tie) is not a bug: the probe is moved off it and the tensor passes if it matches there.
    ``diagnose``: "on-failure" (the default) probes only what fails, plus one float32 forward and
    backward once everything passed (precision); "always" also looks for a leak across the batch
    in a passing input gradient; "never" makes no probe beyond the comparison.

    Integer ids: a layer whose input is integer ids (an embedding) declares the class attribute
    ``integer_input = True`` and its backward returns None (ids have no gradient; what it returns
    is not read). x is then passed to forward as it is (no float64 cast), every parameter is checked
    as usual, and the input's row is skipped with the reason "integer ids have no gradient".

    The layer is checked in the mode it is in (``layer.eval()`` first checks its eval-mode function).
    Stochastic layers: keep your randomness in a numpy Generator the layer holds (``self.rng``);
    the check rewinds every generator it finds in the layer (through containers) before every
    forward, so all forwards draw the same numbers and both gradients describe one function.

    Returns a ``GradientCheckReport`` (one ``TensorCheck`` row per tensor); raises
    ``GradientCheckError`` (an ``AssertionError``) naming the layer, the tensor, the worst index,
    both values, the errors and the diagnoses when a gradient fails, and when forward or backward
    breaks the protocol (a non-finite value, forward not repeatable, ``parameters_deltas`` not
    aligned with ``parameters``).

    Shape:
        x: whatever ``layer.forward`` takes (batch axis included); R: forward's output shape
    """
    name = name or layer_name(layer)
    x = _check_arguments(name, layer, x, eps, atol, rtol, max_coords, diagnose)
    args = tuple(args) if isinstance(args, (tuple, list)) else (args,)
    ids = takes_integer_ids(layer)

    work = float64_copy(layer, name)
    x_work = np.array(x, copy=True) if ids else x.astype(np.float64)
    run = Runner(work, name, x_work, tuple(as_float_arg(a) for a in args), ids)
    y = run.forward()
    _check_finite(name, "forward gave", "output", y)
    # R from a stream of its own: an x drawn with default_rng(seed) in the shape of y must not equal it.
    r = np.random.default_rng([seed, _R_STREAM]).standard_normal(y.shape)
    first = run.backward(r)
    dtypes = list(run.returned_dtypes)
    labels = ["input"] + [f"parameter {i}" for i in range(len(first[1]))]
    for label, gradient in zip(labels, (first[0], *first[1])):
        if gradient is not None:
            _check_finite(name, "backward gave", f"{label} {gradient.shape}", gradient)
    if not np.array_equal(run.forward(), y):
        raise GradientCheckError(
            f"{name}: forward gave different outputs for the same input twice; a layer that draws "
            "random numbers must draw them from a numpy Generator it holds (e.g. self.rng), which the "
            "check rewinds before every forward"
        )
    second = run.backward(r)

    targets = [] if ids else [Target(0, "input", run.x, sample_coords(run.x.size, max_coords, seed, 0))]
    for i, p in enumerate(parameters_of(work)):
        targets.append(Target(i + 1, f"parameter {i}", p, sample_coords(p.size, max_coords, seed, i + 1)))
    ctx = Context(run, r, y, eps, atol, rtol, seed, targets, independent_samples(layer), ids)
    third = []

    def third_backward():
        if not third:
            run.forward()
            third.append(run.backward(r))
        return third[0]

    report = GradientCheckReport(name)
    if ids:
        report.append(TensorCheck("input", x.shape, 0, 0.0, 0.0, True, skipped=_SKIPPED_IDS))
    for target in targets:
        report.append(_check_tensor(ctx, target, first, second, third_backward, dtypes, diagnose))
    if diagnose != "never" and report.passed:
        report.float32, found = precision.float32_probe(layer, name, x, args, r, ids)
        for row_number, diagnosis in found.items():
            row = report[min(row_number, len(report) - 1)]
            row.diagnoses.append(diagnosis)
            row.passed = False
    failed = [row for row in report if not row.passed]
    if failed:
        raise GradientCheckError(failure_message(name, failed, eps, atol, rtol), report)
    return report


def _check_tensor(ctx: Context, target: Target, first, second, third, dtypes, mode) -> TensorCheck:
    """One tensor's row: compared at its coordinates, and diagnosed when it fails."""
    found = []
    repeat = repeatability(target, first, second, third)
    analytical = target.gradient(first)
    if repeat is not None:
        found.append(repeat)
        if repeat.kind == "accumulates":  # compare what one backward adds
            ctx.accumulating.add(target.index)
            analytical = target.gradient(second) - analytical
    comparison = ctx.compare_with(target, analytical)
    dtype = precision.returned_dtype(target, dtypes)
    if dtype is not None:
        found.append(dtype)
    if mode != "never" and (repeat is None or repeat.kind == "accumulates"):
        if comparison.problem:
            more, comparison = diagnose_tensor(ctx, target, comparison)
            found += more
        elif mode == "always":
            found += probe(leaks, ctx, target, comparison) or []
    passed = not comparison.problem and not any(d.bug for d in found)
    row = comparison.row(target.label, passed, found)
    if repeat is not None and repeat.kind == "not-repeatable":
        row.problem = ""  # two backwards disagree: that, not a comparison with either, is the failure
    return row
