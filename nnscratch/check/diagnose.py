"""Why a gradient is wrong: the diagnoses of one failing tensor, tried from the most specific down.

Run only when a comparison fails (the extra forwards and backwards cost nothing on a passing check):

1. precision: forward rounds the tensor to float32, so the numerical gradient is noise; or
   resolution: the errors are no larger than the finite differences' own (stop here);
2. kink: the failing coordinates sit where the function is not differentiable; they are moved off
   the kink and the tensor is checked again there (not a bug: the row can pass);
3. zero, ignores-upstream, scaled / wrong-sign, transposed, leaks-across-batch, batch-constant:
   the first that explains every checked coordinate is the diagnosis;
4. otherwise wrong-elements: how many coordinates are wrong, where, and the five worst.

``repeatability`` is decided before any of these, from the second backward the check always runs
(and a third when the two differ). docs/when-the-check-fails.md explains each diagnosis.
"""

from __future__ import annotations

import math

import numpy as np

from . import axes, kinks, precision, samples
from .context import Context, Target, at, fmt, worst_first
from .numerical import Comparison, central_differences
from .report import Diagnosis


def diagnose(ctx: Context, target: Target, comparison: Comparison):
    """(diagnoses, the comparison to report: a new one when the probe was moved off kinks)."""
    saved, y0 = target.array.copy(), ctx.y0
    try:
        for test in (precision.rounds_to_lower_precision, resolution):
            found = probe(test, ctx, target, comparison)
            if found:
                return [found], comparison
        kink, moved = probe(kinks.moved_off_kinks, ctx, target, comparison) or (None, comparison)
        found, comparison = ([kink] if kink else []), moved
        if not comparison.problem:
            return found, comparison
        for test in (zero, ignores_upstream, scaled, axes.transposed, samples.leaks, samples.batch_constant):
            explained = probe(test, ctx, target, comparison)
            if explained:
                return found + explained, comparison
        return found + [wrong_elements(target, comparison)], comparison
    finally:
        target.array[...] = saved
        ctx.y0 = y0


def probe(test, ctx: Context, target: Target, comparison: Comparison):
    """``test``'s result, or None when the layer raised at a point the probe moved to (a loss on
    probabilities given a value outside [0, 1]): a probe that cannot run explains nothing."""
    try:
        return test(ctx, target, comparison)
    except Exception:  # whatever the user's forward raises there; diagnose() restores what was moved
        return None


def resolution(ctx: Context, target: Target, comparison: Comparison) -> Diagnosis | None:
    """``resolution`` when, at the worst coordinates, the error is within what central differences
    resolve: their own change from step eps to 2 * eps (~3 times their truncation error) plus
    their rounding noise. Then the tolerance, not the layer, is what fails."""
    worst = worst_first(comparison)[:5]
    if not len(worst):
        return None
    coords = comparison.coords[worst]
    doubled, _ = central_differences(ctx.run, target.array, coords, ctx.r, 2 * ctx.eps)
    own = np.abs(doubled - comparison.numerical[worst]) + comparison.noise[worst]
    if np.any(comparison.abs_err[worst] > own):
        return None
    k = worst[0]
    message = (f"the errors (up to {comparison.abs_err[k]:.2g}, at {comparison.index(k)}) are no larger than the "
               f"central differences' own error (estimated there at {own[0]:.2g}): the tolerance "
               f"(atol={ctx.atol:g}, rtol={ctx.rtol:g}) asks for more than finite differences resolve; no bug shown")
    return Diagnosis("resolution", message, {"index": comparison.index(k), "abs_err": comparison.abs_err[k],
                                             "resolved": own[0]}, bug=False)


def repeatability(target: Target, first, second, third) -> Diagnosis | None:
    """``accumulates`` or ``not-repeatable`` when a second backward after the same forward gives
    another gradient; ``third()`` runs a third one (only then)."""
    g1, g2 = target.gradient(first), target.gradient(second)
    if np.allclose(g1, g2, rtol=1e-9, atol=1e-12):
        return None
    g3 = target.gradient(third())
    index = tuple(int(i) for i in np.unravel_index(int(np.argmax(np.abs(g2 - g1))), g1.shape))
    values = [float(g[index]) for g in (g1, g2, g3)]
    if np.allclose(g3 - g2, g2 - g1, rtol=1e-9, atol=1e-12):
        what = ("return a fresh input gradient, not one it adds to" if target.index == 0 else
                "set parameters_deltas (d[...] = ...), never add to them (+=)")
        message = (f"each backward adds its gradient to the last one: {target.label} at {index} was "
                   f"{fmt(values[0])} after one backward, {fmt(values[1])} after two, {fmt(values[2])} after "
                   f"three; backward must {what}")
        return Diagnosis("accumulates", message, {"index": index, "after_1_2_3": values})
    message = (f"backward gave different results on a second call after the same forward: {target.label} at "
               f"{index} was {values[0]!r} the first time and {values[1]!r} the second; backward must be "
               "deterministic and overwrite parameters_deltas, not accumulate into them")
    return Diagnosis("not-repeatable", message, {"index": index, "first": values[0], "second": values[1]})


def zero(ctx: Context, target: Target, comparison: Comparison):
    if comparison.full.any():
        return None
    k = int(np.argmax(np.abs(comparison.numerical)))
    where = ("backward returns zeros for the input gradient" if target.index == 0 else
             f"backward never writes the gradient of {target.label} into parameters_deltas (is it computed into "
             "a new array, self.dW = ..., instead of into the one in the list, self.dW[...] = ...?)")
    message = (f"the analytical gradient is 0 everywhere while the numerical one is not (up to "
               f"{fmt(comparison.numerical[k])} at {comparison.index(k)}): {where}")
    return [Diagnosis("zero", message, {"index": comparison.index(k), "numerical": comparison.numerical[k]})]


def ignores_upstream(ctx: Context, target: Target, comparison: Comparison):
    """``ignores-upstream`` when backward gives the same for delta and 2 * delta, or when the part of
    the gradient that does scale with delta (backward(2 delta) - backward(delta)) is the right one and
    the error is all in a part that does not."""
    once, twice = comparison.full, ctx.gradient(target, delta=2 * ctx.r)
    scale = np.abs(once).max(initial=0.0)
    if np.allclose(twice, 2 * once, rtol=1e-8, atol=1e-12 * scale):
        return None
    index = tuple(int(i) for i in np.unravel_index(int(np.argmax(np.abs(twice - 2 * once))), once.shape))
    same = np.allclose(twice, once, rtol=1e-8, atol=1e-12 * scale)
    if same:
        what = "backward never multiplies by the upstream gradient delta (return (p - t) * delta[:, None], not p - t)"
    else:
        scaling = (twice - once).ravel()[comparison.coords]
        tolerance = ctx.atol + ctx.rtol * np.maximum(np.abs(scaling), np.abs(comparison.numerical))
        if np.any(np.abs(scaling - comparison.numerical) > tolerance):
            return None  # not linear in delta, and wrong besides: no single explanation
        what = ("the part of the gradient that scales with delta is right, and a term that does not (a constant, "
                "a regularization term) is the error")
    message = (f"backward(2 * delta) is not 2 * backward(delta): at {index}, {fmt(once[index])} for delta and "
               f"{fmt(twice[index])} for 2 * delta; {what}")
    return [Diagnosis("ignores-upstream", message, {"index": index, "for_delta": once[index],
                                                     "for_2_delta": twice[index], "unchanged": bool(same)})]


def scaled(ctx: Context, target: Target, comparison: Comparison):
    numerical, analytical = comparison.numerical, comparison.analytical
    norm = float(numerical @ numerical)
    if norm == 0.0:
        return None
    factor = float(analytical @ numerical) / norm
    tolerance = ctx.atol + ctx.rtol * np.maximum(np.abs(analytical), np.abs(factor * numerical))
    if np.any(np.abs(analytical - factor * numerical) > tolerance):
        return None
    k = int(np.argmax(np.abs(numerical)))
    evidence = {"factor": factor, "index": comparison.index(k), "numerical": numerical[k], "analytical": analytical[k]}
    found = []
    if factor < 0:
        what = "is minus the numerical one" if abs(factor + 1) <= 1e-6 else "has the opposite sign (and a scale, below)"
        found.append(Diagnosis("wrong-sign", (
            f"the analytical gradient {what} (at {comparison.index(k)}: numerical {fmt(numerical[k])}, analytical "
            f"{fmt(analytical[k])}): a sign flipped in backward (y - 1 where 1 - y, x - t where t - x)"), evidence))
    if abs(abs(factor) - 1) > 1e-6:
        found.append(Diagnosis("scaled", _scaled_message(abs(factor), ctx), evidence))
    return found or None


def _sizes(ctx: Context) -> list:
    """(size, what it is, over what) for the sizes of the input a gradient may be summed or averaged over."""
    shape = ctx.x_shape
    if not shape:
        return []
    found = [(shape[0], "N, the batch size", "over the batch")]
    for axis in range(1, len(shape)):
        if axis == 1 and (len(shape) == 3 or (ctx.integer_input and len(shape) == 2)):
            found.append((shape[1], "T, the number of time steps (input axis 1)", "over time"))
        else:
            found.append((shape[axis], f"the size of input axis {axis}", f"over axis {axis}"))
    if len(shape) >= 3:
        found.append((math.prod(shape[1:]), "the number of values per sample", "over each sample's values"))
    if len(shape) >= 2:
        found.append((math.prod(shape), "the number of input values", "over every value"))
    return [entry for entry in found if entry[0] > 1]


def _scaled_message(factor: float, ctx: Context) -> str:
    for invert in (False, True):
        value = 1 / factor if invert else factor
        matches = [(what, over) for size, what, over in _sizes(ctx) if abs(value / size - 1) <= 1e-6]
        if matches:
            names = " or ".join(what for what, _ in matches)
            if invert:
                return (f"the analytical gradient is 1/{round(value)} of the numerical one, 1/({names}): averaged "
                        f"{matches[0][1]} where it should be summed (a 1/{round(value)} too many in backward)")
            return (f"the analytical gradient is {round(value)} times the numerical one, {names}: summed "
                    f"{matches[0][1]} where it should be averaged (backward misses a 1/{round(value)})")
    if abs(factor - 2) <= 2e-6 or abs(1 / factor - 2) <= 2e-6:
        return (f"the analytical gradient is {'half' if factor < 1 else 'twice'} the numerical one: a factor 2 "
                f"{'missing' if factor < 1 else 'too many'} (the 2 of d(x^2)/dx = 2x, which a loss with 1/2 in "
                "front cancels)")
    for value, text in ((factor, "{} times"), (1 / factor, "1/{} of")):
        if abs(value - round(value)) <= 1e-6 * value:
            return f"the analytical gradient is {text.format(round(value))} the numerical one (no size of the input is {round(value)})"
    return f"the analytical gradient is {fmt(factor)} times the numerical one"


def wrong_elements(target: Target, comparison: Comparison) -> Diagnosis:
    order = worst_first(comparison)
    count, checked = len(order), len(comparison.coords)
    block = _block(comparison, order)
    where = (f", all in indices {block['from']}..{block['to']} of axis {block['axis']} (every checked coordinate "
             "outside them is right)" if block else "")
    what = (f"wrong in {count} of {checked} checked coordinates{where}" if count < checked else
            f"wrong in all {checked} checked coordinates, in no pattern the check knows (not a constant factor, "
            "a sign, a transposition, a kink, a leak across the batch)")
    message = f"{what}; the worst: " + "; ".join(at(comparison, k) for k in order[:5])
    worst = [{"index": comparison.index(k), "numerical": comparison.numerical[k],
              "analytical": comparison.analytical[k]} for k in order[:5]]
    return Diagnosis("wrong-elements", message, {"wrong": count, "checked": checked, "worst": worst, "block": block})


def _block(comparison: Comparison, order) -> dict | None:
    """The axis and index range the wrong coordinates fill exactly, when they fill one (and not all)."""
    if len(order) < 2 or len(order) == len(comparison.coords):
        return None
    indices = np.array([comparison.index(k) for k in range(len(comparison.coords))])
    wrong = np.zeros(len(comparison.coords), bool)
    wrong[order] = True
    for axis in range(indices.shape[1]):
        low, high = indices[wrong, axis].min(), indices[wrong, axis].max()
        inside = (indices[:, axis] >= low) & (indices[:, axis] <= high)
        if np.array_equal(inside, wrong):
            return {"axis": axis, "from": int(low), "to": int(high)}
    return None
