"""Gradient checking: compare a layer's backward with central differences of its forward.

The scalar differentiated is ``f = sum(forward(x, *args) * R)`` for a fixed random ``R`` of the
output's shape, so every output element takes part (a scalar output works too). Its analytical
gradient is what ``backward(R)`` returns for the input and stores in ``parameters_deltas`` for
each parameter; its numerical gradient along one coordinate ``t`` is the central difference

    df/dt ~ sum((forward(t + eps) - forward(t - eps)) * R) / ((t + eps) - (t - eps))

Everything runs in float64 on a deep copy of the layer, so the layer given is left exactly as it
was found (values, dtypes, and the identity of its parameter arrays).
"""

from __future__ import annotations

import copy
import dataclasses
import types

import numpy as np

# Defaults, for float64 arithmetic. With eps = 1e-6 the truncation error of a central difference
# is ~eps**2 * f''' ~ 1e-12 and the rounding error ~1e-16 * |y| / eps ~ 1e-10 * |y|, so a correct
# gradient lands around 1e-9; a wrong one is off by orders of magnitude more.
DEFAULT_EPS = 1e-6
DEFAULT_ATOL = 1e-6
DEFAULT_RTOL = 1e-5
DEFAULT_MAX_COORDS = 200


class GradientCheckError(AssertionError):
    """A gradient check failed. ``report``: the per-tensor rows, or None if it failed before them."""

    def __init__(self, message: str, report=None):
        super().__init__(message)
        self.report = report


@dataclasses.dataclass
class TensorCheck:
    """The result of checking one tensor (the input or one parameter)."""

    tensor: str  # "input" or "parameter i"
    shape: tuple
    coords: int  # coordinates checked (all of them, or a seeded sample of max_coords)
    max_abs_err: float
    max_rel_err: float  # over coordinates whose gradient is at least atol in size
    passed: bool
    worst_index: tuple = ()
    numerical: float = 0.0
    analytical: float = 0.0
    problem: str = ""  # why it failed, when it failed

    def __str__(self) -> str:
        return (
            f"{self.tensor} {self.shape}: {self.coords} coords, max abs err {self.max_abs_err:.2e}, "
            f"max rel err {self.max_rel_err:.2e}, {'PASS' if self.passed else 'FAIL'}"
        )


class GradientCheckReport(list):
    """What ``sanity_check`` returns: a list of ``TensorCheck`` rows with a readable table."""

    def __init__(self, layer: str, rows=()):
        super().__init__(rows)
        self.layer = layer

    @property
    def passed(self) -> bool:
        return all(row.passed for row in self)

    def __str__(self) -> str:
        lines = [f"gradient check of {self.layer}:"]
        lines.append(f"  {'tensor':<28} {'coords':>6} {'max abs err':>11} {'max rel err':>11}  result")
        for row in self:
            tensor = f"{row.tensor} {row.shape}"
            lines.append(
                f"  {tensor:<28} {row.coords:>6} {row.max_abs_err:>11.2e} {row.max_rel_err:>11.2e}  "
                f"{'PASS' if row.passed else 'FAIL'}"
            )
        return "\n".join(lines)


def layer_name(layer) -> str:
    """The name a layer goes by in messages: its ``name`` attribute if a string, else its class."""
    name = getattr(layer, "name", None)
    return name if isinstance(name, str) else type(layer).__name__


# -- promotion to float64 --------------------------------------------------------------------
# Objects whose __dict__ is code, not layer state.
_NOT_WALKED = (type, types.FunctionType, types.MethodType, types.BuiltinFunctionType, types.ModuleType)


def _promote_graph(obj, replacements: dict, memo: dict):
    """Return ``obj`` with every array whose id is in ``replacements`` swapped for its float64 twin.

    Lists, dicts and object ``__dict__``s are updated in place; tuples are rebuilt. ``memo`` (id ->
    result) keeps shared objects shared and stops cycles.
    """
    key = id(obj)
    if key in replacements:
        return replacements[key]
    if key in memo:
        return memo[key]
    if isinstance(obj, np.ndarray) or isinstance(obj, (str, bytes, int, float, complex, type(None))):
        return obj
    memo[key] = obj
    if isinstance(obj, list):
        for i, item in enumerate(obj):
            new = _promote_graph(item, replacements, memo)
            if new is not item:
                obj[i] = new
    elif isinstance(obj, dict):
        for k, item in list(obj.items()):
            new = _promote_graph(item, replacements, memo)
            if new is not item:
                obj[k] = new
    elif isinstance(obj, tuple):
        items = [_promote_graph(item, replacements, memo) for item in obj]
        if any(new is not old for new, old in zip(items, obj)):
            memo[key] = type(obj)(*items) if hasattr(obj, "_fields") else type(obj)(items)
    elif not isinstance(obj, _NOT_WALKED) and hasattr(obj, "__dict__"):
        attrs = vars(obj)
        for k, item in list(attrs.items()):
            new = _promote_graph(item, replacements, memo)
            if new is not item:
                attrs[k] = new  # bypasses property setters: we only swap like for like
    return memo[key]


def _to_float64(layer, name: str):
    """Deep-copy ``layer`` and make every float parameter (and delta buffer) float64 in the copy."""
    try:
        work = copy.deepcopy(layer)
    except Exception as error:
        raise TypeError(f"sanity_check: cannot deep-copy layer {name} to check it: {error}") from None
    originals = {id(p) for p in _parameters(layer)}
    if work is layer or any(id(p) in originals for p in _parameters(work)):
        raise TypeError(
            f"sanity_check: copy.deepcopy({name}) shares parameter arrays with the original; "
            "the check needs an independent copy so as to leave the layer untouched"
        )
    replacements = {}
    for p in _parameters(work) + _delta_buffers(work):
        if p.dtype.kind == "f" and p.dtype != np.float64:
            replacements[id(p)] = p.astype(np.float64)
    if replacements:
        _promote_graph(work, replacements, {})
    for i, p in enumerate(_parameters(work)):
        if p.dtype != np.float64:
            raise TypeError(
                f"sanity_check: parameter {i} of {name} is {p.dtype} and could not be made float64 "
                "(parameters must be float arrays the layer holds, not fresh copies)"
            )
    return work


def _parameters(layer) -> list:
    """``layer.parameters`` validated: a list of arrays (a missing attribute counts as empty)."""
    items = getattr(layer, "parameters", None)
    if items is None:
        return []
    if not isinstance(items, (list, tuple)):
        raise TypeError(
            f"sanity_check: {layer_name(layer)}.parameters must be a list of arrays, got {type(items).__name__}"
        )
    for i, item in enumerate(items):
        if not isinstance(item, np.ndarray):
            raise TypeError(
                f"sanity_check: {layer_name(layer)}.parameters[{i}] must be a numpy array, got {type(item).__name__}"
            )
    return list(items)


def _delta_buffers(layer) -> list:
    """The arrays already in ``layer.parameters_deltas`` (before backward it may hold anything)."""
    items = getattr(layer, "parameters_deltas", None)
    if not isinstance(items, (list, tuple)):
        return []
    return [item for item in items if isinstance(item, np.ndarray)]


def _as_float64_arg(arg):
    """Float arrays (one-hot or soft targets) go to float64; integer labels and the rest stay."""
    if isinstance(arg, np.ndarray) and arg.dtype.kind == "f":
        return arg.astype(np.float64)
    return arg


# -- one forward / backward ------------------------------------------------------------------
class _Runner:
    """Calls on the float64 working copy, always with fresh copies of the inputs."""

    def __init__(self, layer, name: str, x: np.ndarray, args: tuple):
        self.layer, self.name, self.x, self.args = layer, name, x, args

    def forward(self) -> np.ndarray:
        args = tuple(a.copy() if isinstance(a, np.ndarray) else a for a in self.args)
        y = self.layer.forward(self.x.copy(), *args)
        y_array = np.asarray(y)
        if y_array.dtype != np.float64:
            raise TypeError(
                f"sanity_check: {self.name}.forward returned {y_array.dtype} for float64 input and "
                "float64 parameters; the check needs float64 arithmetic (derive the dtype from the "
                "parameters or the input, not from a stored attribute)"
            )
        # Copy: a layer may return a view of its input or of an internal buffer.
        return np.array(y_array, dtype=np.float64, copy=True)

    def backward(self, r: np.ndarray):
        """Run backward(R); return copies of the input gradient and of every parameter delta."""
        delta = np.float64(r) if r.ndim == 0 else r.copy()
        delta_x = self.layer.backward(delta)
        delta_x = np.array(delta_x, dtype=None, copy=True) if delta_x is not None else None
        if delta_x is None or delta_x.shape != self.x.shape:
            got = "None" if delta_x is None else f"shape {delta_x.shape}"
            raise GradientCheckError(
                f"{self.name}: backward must return the input gradient of shape {self.x.shape} "
                f"(the input's shape), got {got}"
            )
        params = _parameters(self.layer)
        deltas = getattr(self.layer, "parameters_deltas", None)
        deltas = [] if deltas is None and not params else deltas
        if not isinstance(deltas, (list, tuple)):
            raise GradientCheckError(
                f"{self.name}: parameters_deltas must be a list aligned with parameters, "
                f"got {type(deltas).__name__}"
            )
        if len(deltas) != len(params):
            raise GradientCheckError(
                f"{self.name}: parameters_deltas has {len(deltas)} entries but parameters has "
                f"{len(params)}; after backward they must be aligned lists, one delta per parameter"
            )
        copies = []
        for i, (p, d) in enumerate(zip(params, deltas)):
            d = np.asarray(d) if d is not None else None
            if d is None or d.shape != p.shape:
                got = "None" if d is None else f"shape {d.shape}"
                raise GradientCheckError(
                    f"{self.name}: parameters_deltas[{i}] must have the shape of parameters[{i}], "
                    f"{p.shape}, got {got}"
                )
            # Copy now: some layers overwrite their delta buffers in place on the next backward.
            copies.append(np.array(d, dtype=np.float64, copy=True))
        return delta_x.astype(np.float64), copies


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


def _numerical(run: _Runner, target: np.ndarray, coords, r: np.ndarray, eps: float):
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
    bad = abs_err > atol + rtol * scale
    big = scale >= atol
    rel_err = np.where(big, abs_err / np.where(big, scale, 1.0), 0.0)
    # The worst coordinate: the one furthest beyond its tolerance.
    worst = int(np.argmax(abs_err / (atol + rtol * scale))) if len(coords) else 0
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


def _check_repeatable(name: str, first, second) -> None:
    """A second forward + backward must give the same gradients (deltas overwritten, deterministic)."""
    for label, a, b in _pairs(first, second):
        if not np.allclose(a, b, rtol=1e-9, atol=1e-12):
            index = np.unravel_index(int(np.argmax(np.abs(a - b))), a.shape)
            index = tuple(int(i) for i in index)
            raise GradientCheckError(
                f"{name}: backward gave different results on a second call after the same forward: "
                f"{label} at index {index} was {a[index]!r} the first time and {b[index]!r} the second; "
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

    work = _to_float64(layer, name)
    run = _Runner(work, name, x.astype(np.float64), tuple(_as_float64_arg(a) for a in args))

    y = run.forward()
    r = np.random.default_rng(seed).standard_normal(y.shape)
    first = run.backward(r)
    if not np.array_equal(run.forward(), y):
        raise GradientCheckError(f"{name}: forward gave different outputs for the same input twice")
    _check_repeatable(name, first, run.backward(r))
    delta_x, deltas = first

    report = GradientCheckReport(name)
    params = _parameters(work)
    targets = [("input", run.x, delta_x)]
    targets += [(f"parameter {i}", p, d) for i, (p, d) in enumerate(zip(params, deltas))]
    for index, (tensor, target, analytical) in enumerate(targets):
        coords = sample_coords(target.size, max_coords, seed, index)
        numerical, noise = _numerical(run, target, coords, r, eps)
        row = _compare(tensor, target.shape, coords, numerical, analytical.ravel()[coords], noise, atol, rtol)
        report.append(row)
    failed = [row for row in report if not row.passed]
    if failed:
        raise GradientCheckError(_failure_message(name, failed, eps, atol, rtol), report)
    return report


def _failure_message(name, failed, eps, atol, rtol) -> str:
    row = failed[0]
    message = (
        f"{name}: {row.problem} for {row.tensor} (shape {row.shape}) at index {row.worst_index}: "
        f"numerical {row.numerical:.9g}, analytical {row.analytical:.9g}, "
        f"abs err {abs(row.numerical - row.analytical):.3g}, rel err "
        f"{abs(row.numerical - row.analytical) / max(abs(row.numerical), abs(row.analytical), 1e-300):.3g} "
        f"(passes when abs err <= atol + rtol * |value|, atol={atol:g}, rtol={rtol:g}, eps={eps:g}; "
        f"{row.coords} coordinates checked)"
    )
    if len(failed) > 1:
        message += "; also failing: " + ", ".join(f"{other.tensor} {other.shape}" for other in failed[1:])
    return message
