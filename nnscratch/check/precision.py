"""Precision: a layer that computes in another dtype than it is given, or that is right in float64
and wrong in float32.

Three signs, each a ``precision`` diagnosis:

- backward hands back a gradient of another dtype than float64 for float64 input and parameters
  (read from the first backward, no extra call);
- forward rounds a tensor to a coarser dtype (a cast, or a float32 array inside): moving every value
  of it by 1 part in 1e12 leaves the output as it was, while 1 part in 1e5 changes it. Its central
  differences are then rounding noise, so no other diagnosis is made (two forwards, on a failure);
- the float32 probe: once every float64 comparison passes, the layer is run once in float32 (a
  float32 copy, forward and backward) and once in float64 on the very same numbers, and their
  outputs and gradients compared. A value that is not finite in float32 only, or a gradient off by
  more than 1e-3 of its largest value in at least a tenth of its elements, is an overflow or a
  cancellation that float64 hides (exp without subtracting the max, E[x^2] - E[x]^2). Not run for a
  layer that draws random numbers (its draws depend on the dtype); a layer that refuses float32
  (it raises) is reported as skipped, not failed.
"""

from __future__ import annotations

import math

import numpy as np

from .context import Context, Target, fmt
from .numerical import Comparison
from .report import Diagnosis
from .working_copy import Runner, as_float_arg, float64_copy, random_states, typed_copy

_CAUSES = "an overflow or a cancellation (exp of a large value without subtracting the max, E[x^2] - E[x]^2)"


def returned_dtype(target: Target, dtypes: list):
    """A diagnosis when backward gave this tensor's gradient in another dtype than float64."""
    dtype = dtypes[target.index] if target.index < len(dtypes) else None
    if dtype is None or dtype == np.float64:
        return None
    message = (f"backward gave the gradient of {target.label} as {dtype} for float64 input and parameters: "
               f"it computes in {dtype} somewhere (a {dtype} array or constant), losing float64's precision")
    return Diagnosis("precision", message, {"returned_dtype": str(dtype)})


def rounds_to_lower_precision(ctx: Context, target: Target, comparison: Comparison):
    """A diagnosis when forward cannot see a change of 1 part in 1e12 in ``target`` but sees 1e-5."""
    if not (np.abs(comparison.numerical) > comparison.noise).any() or not target.array.any():
        return None  # the function does not change along this tensor: nothing to round away
    saved = target.array.copy()
    changed = []
    try:
        for relative in (1e-12, 1e-5):
            target.array[...] = saved * (1 + relative)
            changed.append(int(np.count_nonzero(ctx.run.forward() != ctx.y0)))
    finally:
        target.array[...] = saved
    if not changed[1] or changed[0] > changed[1] // 10:
        return None
    message = (f"forward rounds {target.label} to a lower precision than float64: moving each of its values "
               f"by 1 part in 1e12 changes {changed[0]} output values, by 1 part in 1e5 changes {changed[1]}; "
               "it computes in float32 (or coarser) somewhere, so its central differences are rounding noise")
    return Diagnosis("precision", message, {"changed_by_1e-12": changed[0], "changed_by_1e-5": changed[1]})


def _off_in_float32(low: np.ndarray, high: np.ndarray):
    """(index, float32 value, float64 value, how many elements are off) where float32 went wrong, or None."""
    bad = ~np.isfinite(low) & np.isfinite(high)
    if bad.any():
        pick = int(np.argmax(bad))
    else:
        error = np.abs(low - high)
        bad = error > 1e-3 * (np.abs(high).max(initial=0.0) + np.abs(high))
        if bad.sum() < max(1, math.ceil(0.1 * bad.size)):
            return None
        pick = int(np.argmax(np.where(bad, error, -1.0)))
    index = tuple(int(i) for i in np.unravel_index(pick, np.shape(bad)))
    return index, float(low[index]), float(high[index]), int(bad.sum())


def _run_both(layer, name: str, x, args: tuple, r32: np.ndarray, integer_input: bool):
    """(y, gradients) of a float32 copy of the layer, and of a float64 copy of that on the same numbers."""
    low = typed_copy(layer, name, np.float32)
    high = float64_copy(low, name)  # before low runs: the same state, in float64
    x32 = x if integer_input else np.asarray(x, dtype=np.float32)
    args32 = tuple(as_float_arg(a, np.float32) for a in args)
    run32 = Runner(low, name, x32, args32, integer_input, np.float32)
    x64 = x32 if integer_input else x32.astype(np.float64)
    run64 = Runner(high, name, x64, tuple(as_float_arg(a) for a in args32), integer_input)
    return (run32.forward(), run32.backward(r32)), (run64.forward(), run64.backward(r32.astype(np.float64)))


def float32_probe(layer, name: str, x, args: tuple, r: np.ndarray, integer_input: bool):
    """(status, {row number: Diagnosis}): the layer in float32 against float64 on the same numbers."""
    if random_states(layer):
        return "skipped: the layer draws random numbers, and its draws depend on the dtype", {}
    try:
        with np.errstate(all="ignore"):  # an overflow here is what the diagnosis reports, not a warning
            (y32, result32), (y64, result64) = _run_both(layer, name, x, args, np.asarray(r, np.float32),
                                                         integer_input)
    except Exception as error:  # a layer meant for float64 only: nothing learnt, nothing failed
        return f"skipped: in float32, {type(error).__name__}: {error}", {}
    found = {}
    gradients = [(0, result32[0], result64[0])] + [
        (i + 1, low_d, high_d) for i, (low_d, high_d) in enumerate(zip(result32[1], result64[1]))]
    for row, low_g, high_g in gradients:
        off = None if low_g is None else _off_in_float32(low_g, high_g)
        if off:
            index, value32, value64, count = off
            found[row] = Diagnosis("precision", (
                f"passes in float64 but not in float32: on the same numbers, the float32 gradient at {index} is "
                f"{fmt(value32)} where float64 gives {fmt(value64)} ({count} of {low_g.size} values off): {_CAUSES}"),
                {"index": index, "float32": value32, "float64": value64, "off": count, "size": low_g.size})
    off = _off_in_float32(y32.astype(np.float64), y64)
    if off and not found:
        index, value32, value64, count = off
        row = 1 if integer_input else 0
        found[row] = Diagnosis("precision", (
            f"passes in float64 but not in float32: on the same numbers, forward's float32 output at {index} is "
            f"{fmt(value32)} where float64 gives {fmt(value64)} ({count} of {y64.size} values off): {_CAUSES}"),
            {"output_index": index, "float32": value32, "float64": value64, "off": count, "size": y64.size})
    return ("failed" if found else "passed"), found
