"""Gradient checking: compare a layer's backward with central differences of its forward.

The scalar differentiated is ``f = sum(forward(x, *args) * R)`` for a fixed random ``R`` of the
output's shape, so every output element takes part (a scalar output works too). Its analytical
gradient is what ``backward(R)`` returns for the input and stores in ``parameters_deltas`` for
each parameter; its numerical gradient along one coordinate ``t`` is the central difference

    df/dt ~ sum((forward(t + eps) - forward(t - eps)) * R) / ((t + eps) - (t - eps))

Everything runs in float64 on a deep copy of the layer (``working_copy.py``), so the layer given is
left exactly as it was found (values, dtypes, the identity of its parameter arrays, its buffers and
its random generators). The layer is checked in the mode it is in: call ``layer.eval()`` first to
check its eval-mode function. Stochastic layers: every numpy Generator the layer holds (``self.rng``)
is rewound before every forward, so all forwards draw the same numbers (see ``working_copy.py``). The rows,
report and error it produces are in ``report.py``.
"""

from __future__ import annotations

import numpy as np

from .report import GradientCheckError, GradientCheckReport, TensorCheck, failure_message, layer_name
from .working_copy import Runner, as_float64_arg, float64_copy, parameters_of

# Defaults, for float64 arithmetic. With eps = 1e-6 the truncation error of a central difference
# is ~eps**2 * f''' ~ 1e-12 and the rounding error ~1e-16 * |y| / eps ~ 1e-10 * |y|, so a correct
# gradient lands around 1e-9; a wrong one is off by orders of magnitude more.
DEFAULT_EPS = 1e-6
DEFAULT_ATOL = 1e-6
DEFAULT_RTOL = 1e-5
DEFAULT_MAX_COORDS = 200


# -- the check -------------------------------------------------------------------------------
def sample_coords(size: int, max_coords: int | None, seed: int, tensor_index: int) -> np.ndarray:
    """Flat indices to check: all of them, or a sorted seeded sample of ``max_coords`` of them.

    Each tensor draws from its own stream (seed, tensor_index), so adding a parameter does not
    change which coordinates of the others are checked.
    """
    if max_coords is None or size <= max_coords:
        return np.arange(size)
    rng = np.random.default_rng([seed, tensor_index])
    return np.sort(rng.choice(size, size=max_coords, replace=False))


def _numerical(run: Runner, target: np.ndarray, coords, r: np.ndarray, eps: float):
    """Central differences of sum(forward * R) along each flat coordinate of ``target``.

    ``target`` is the working copy's own array (its input ``run.x`` or a parameter), nudged in place
    and restored.

    Also returns, per coordinate, an estimate of the rounding noise in that difference, so an
    all-zero analytical gradient can be told apart from a function that does not change.
    """
    grads = np.empty(len(coords))
    noise = np.empty(len(coords))
    for k, flat in enumerate(coords):
        value = target.flat[flat]
        plus, minus = value + eps, value - eps
        target.flat[flat] = plus
        y_plus = run.forward()
        target.flat[flat] = minus
        y_minus = run.forward()
        target.flat[flat] = value
        # The step actually taken: exact (Sterbenz), unlike 2 * eps when |value| >> eps.
        step = plus - minus
        # Difference elementwise first: unchanged elements then cancel exactly, whatever |y| is.
        grads[k] = np.sum((y_plus - y_minus) * r) / step
        changed = y_plus != y_minus
        size = np.maximum(np.abs(y_plus), np.abs(y_minus))[changed]
        noise[k] = 64 * np.finfo(np.float64).eps * np.sum(size * np.abs(r[changed])) / step
    return grads, noise


def _compare(tensor, shape, coords, numerical, analytical, noise, atol, rtol) -> TensorCheck:
    abs_err = np.abs(numerical - analytical)
    scale = np.maximum(np.abs(numerical), np.abs(analytical))
    tolerance = atol + rtol * scale
    bad = abs_err > tolerance
    # scale > 0 matters only when atol = 0: both gradients exactly 0 then, so no error, rel err 0.
    big = (scale >= atol) & (scale > 0)
    rel_err = np.where(big, abs_err / np.where(big, scale, 1.0), 0.0)
    # The worst coordinate: the one furthest beyond its tolerance, abs_err / tolerance. A tolerance
    # is 0 where atol = 0 and both gradients are 0 (no error there: ratio 0), or everywhere when
    # atol = rtol = 0; any error over a zero tolerance is infinitely far beyond it, and the largest
    # such error is the worst.
    beyond_zero = (tolerance == 0) & (abs_err > 0)
    if beyond_zero.any():
        worst = int(np.argmax(np.where(beyond_zero, abs_err, -1.0)))
    else:
        worst = int(np.argmax(abs_err / np.where(tolerance > 0, tolerance, 1.0))) if len(coords) else 0
    problem = ""
    if bad.any():
        problem = "gradient is wrong"
    elif len(coords) and not analytical.any() and (np.abs(numerical) > noise).any():
        worst = int(np.argmax(np.abs(numerical) - noise))
        problem = "analytical gradient is all zero, but the function changes"
    return TensorCheck(
        tensor=tensor,
        shape=tuple(shape),
        coords=len(coords),
        max_abs_err=float(abs_err.max()) if len(coords) else 0.0,
        max_rel_err=float(rel_err.max()) if len(coords) else 0.0,
        passed=not problem,
        worst_index=tuple(int(i) for i in np.unravel_index(coords[worst], shape)) if len(coords) else (),
        numerical=float(numerical[worst]) if len(coords) else 0.0,
        analytical=float(analytical[worst]) if len(coords) else 0.0,
        problem=problem,
    )


def _check_finite(name: str, who: str, label: str, array) -> None:
    """NaN or inf in an output or a gradient is a bug of its own; say so before comparing anything."""
    bad = ~np.isfinite(array)
    if bad.any():
        index = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), np.shape(array)))
        raise GradientCheckError(
            f"{name}: {who} a non-finite value: {label} at index {index} is {float(array[index])} "
            f"({int(bad.sum())} of {bad.size} values are NaN or inf)"
        )


def _check_repeatable(name: str, first, second) -> None:
    """A second forward + backward must give the same gradients (deltas overwritten, deterministic)."""
    for label, a, b in _pairs(first, second):
        if not np.allclose(a, b, rtol=1e-9, atol=1e-12):
            index = np.unravel_index(int(np.argmax(np.abs(a - b))), a.shape)
            index = tuple(int(i) for i in index)
            raise GradientCheckError(
                f"{name}: backward gave different results on a second call after the same forward: "
                f"{label} at index {index} was {float(a[index])!r} the first time and {float(b[index])!r} the second; "
                "backward must be deterministic and overwrite parameters_deltas, not accumulate into them"
            )


def _pairs(first, second):
    """Pairs (label, first, second) for the input gradient and each parameter delta."""
    (dx1, deltas1), (dx2, deltas2) = first, second
    yield f"input {dx1.shape}", dx1, dx2
    for i, (a, b) in enumerate(zip(deltas1, deltas2)):
        yield f"parameter {i} {a.shape}", a, b


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
) -> GradientCheckReport:
    """Check ``layer``'s gradients for its input and every parameter against central differences.

    f = sum(forward(x, *args) * R), R ~ N(0, 1) of the output's shape (seeded); analytical
    gradients from backward(R). A coordinate passes when
    |numerical - analytical| <= atol + rtol * max(|numerical|, |analytical|).
    Defaults (float64): eps=1e-6, atol=1e-6, rtol=1e-5, at most max_coords=200 coordinates per
    tensor (a seeded random sample; None checks them all). ``name`` overrides the layer's name in
    messages. Float ``args`` are cast to float64, others (integer labels) passed as they are.

    The layer is checked in the mode it is in (``layer.eval()`` first checks its eval-mode function).
    Stochastic layers: keep your randomness in a numpy Generator the layer holds (``self.rng``);
    the check rewinds every generator it finds in the layer (through containers) before every
    forward, so all forwards draw the same numbers and both gradients describe one function.

    Returns a ``GradientCheckReport`` (one ``TensorCheck`` row per tensor); raises
    ``GradientCheckError`` (an ``AssertionError``) naming the layer, the tensor, the worst index,
    both values and the errors when a gradient is wrong, all zero while the function changes,
    different on a second backward, or when ``parameters_deltas`` does not align with ``parameters``.

    Shape:
        x: whatever ``layer.forward`` takes (batch axis included); R: forward's output shape
    """
    name = name or layer_name(layer)
    for attr in ("forward", "backward"):
        if not callable(getattr(layer, attr, None)):
            raise TypeError(
                f"sanity_check: {name} does not follow the layer protocol: it has no {attr}() method"
            )
    x = np.asarray(x)
    if x.dtype.kind not in "fiu":
        raise TypeError(f"sanity_check: x must be a real numeric array, got dtype {x.dtype} for {name}")
    if not (eps > 0 and atol >= 0 and rtol >= 0):
        raise ValueError(f"sanity_check: expected eps > 0, atol >= 0, rtol >= 0, got {eps}, {atol}, {rtol}")
    if max_coords is not None and (
        isinstance(max_coords, bool) or not isinstance(max_coords, (int, np.integer)) or max_coords < 1
    ):
        raise ValueError(f"sanity_check: max_coords must be a positive int or None, got {max_coords!r}")
    if not isinstance(args, (tuple, list)):
        args = (args,)

    work = float64_copy(layer, name)
    run = Runner(work, name, x.astype(np.float64), tuple(as_float64_arg(a) for a in args))

    y = run.forward()
    _check_finite(name, "forward gave", "output", y)
    r = np.random.default_rng(seed).standard_normal(y.shape)
    first = run.backward(r)
    for label, delta, _ in _pairs(first, first):
        _check_finite(name, "backward gave", label, delta)
    if not np.array_equal(run.forward(), y):
        raise GradientCheckError(
            f"{name}: forward gave different outputs for the same input twice; a layer that draws "
            "random numbers must draw them from a numpy Generator it holds (e.g. self.rng), which the "
            "check rewinds before every forward"
        )
    _check_repeatable(name, first, run.backward(r))
    delta_x, deltas = first

    report = GradientCheckReport(name)
    params = parameters_of(work)
    targets = [("input", run.x, delta_x)]
    targets += [(f"parameter {i}", p, d) for i, (p, d) in enumerate(zip(params, deltas))]
    for index, (tensor, target, analytical) in enumerate(targets):
        coords = sample_coords(target.size, max_coords, seed, index)
        numerical, noise = _numerical(run, target, coords, r, eps)
        row = _compare(tensor, target.shape, coords, numerical, analytical.ravel()[coords], noise, atol, rtol)
        report.append(row)
    failed = [row for row in report if not row.passed]
    if failed:
        raise GradientCheckError(failure_message(name, failed, eps, atol, rtol), report)
    return report

