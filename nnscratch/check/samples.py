"""The batch axis: a gradient that leaks from one sample to another, or that is off by the same
amount for every sample. Both read the input gradient only (axis 0 of x is the batch).

- leaks across the batch, for a layer that treats samples independently (traits.py says which):
  the last sample's input (moved a tenth of the way to the first sample's) and upstream gradient
  are changed, and the input gradient of every other sample must stay exactly as it was (one
  forward and backward).
- off by the same amount for every sample: at a few failing positions, the numerical gradient is
  taken for every sample (up to 8), and analytical - numerical is the same for all of them: a term
  computed over the whole batch (a normalization's mean) is missing or wrong.
"""

from __future__ import annotations

import numpy as np

from .context import Context, Target, fmt, worst_first
from .numerical import Comparison, central_differences
from .report import Diagnosis

_SAMPLES = 8  # samples the batch-constant probe differentiates at each position
_POSITIONS = 3  # positions it looks at


def _batch(ctx: Context, target: Target) -> int:
    """The batch size when ``target`` is a float input with a batch of at least 2, else 0."""
    shape = ctx.x_shape
    return shape[0] if target.index == 0 and not ctx.integer_input and len(shape) >= 1 and shape[0] >= 2 else 0


def leaks(ctx: Context, target: Target, comparison: Comparison):
    """A ``leaks-across-batch`` diagnosis, or None (also None for a layer that is not independent)."""
    n = _batch(ctx, target)
    if not n or ctx.independent is not True:
        return None
    rng = np.random.default_rng([ctx.seed, 24])
    x = np.array(ctx.run.x, copy=True)
    # A tenth of the way to sample 0: still in the layer's domain when that is convex (probabilities,
    # positive values, [0, 1]); the upstream gradient of the last sample changes too.
    x[-1] += 0.1 * (x[0] - x[-1])
    r = np.array(ctx.r, copy=True)
    if r.ndim >= 1 and r.shape[0] == n:
        r[-1] = rng.standard_normal(r[-1].shape)
    before = comparison.full[:-1]
    after = ctx.gradient(target, delta=r, x=x)[:-1]
    change = np.abs(after - before)
    if not change.max(initial=0.0) > 1e-9 * np.abs(before).max(initial=0.0) + 1e-300:
        return None
    index = tuple(int(i) for i in np.unravel_index(int(np.argmax(change)), change.shape))
    message = (f"changing sample {n - 1} (its input and its upstream gradient) changed the input gradient of "
               f"sample {index[0]} (at {index}: {fmt(before[index])} before, {fmt(after[index])} after), in a "
               "layer that treats samples independently: look for a sum or a mean over axis 0, the batch, "
               "where another axis was meant")
    evidence = {"changed_sample": n - 1, "index": index, "before": before[index], "after": after[index]}
    return [Diagnosis("leaks-across-batch", message, evidence)]


def batch_constant(ctx: Context, target: Target, comparison: Comparison):
    """A ``batch-constant`` diagnosis, or None."""
    n = _batch(ctx, target)
    if not n:
        return None
    shape, positions = ctx.x_shape, []
    for k in worst_first(comparison):
        rest = comparison.index(k)[1:]
        if rest not in positions:
            positions.append(rest)
        if len(positions) == _POSITIONS:
            break
    offsets = []
    for rest in positions:
        flats = np.array([np.ravel_multi_index((i, *rest), shape) for i in range(min(n, _SAMPLES))])
        numerical, _ = central_differences(ctx.run, target.array, flats, ctx.r, ctx.eps)
        analytical = comparison.full.ravel()[flats]
        error = analytical - numerical
        tolerance = (ctx.atol + ctx.rtol * np.maximum(np.abs(analytical), np.abs(numerical))).max()
        offset = float(error.mean())
        if np.abs(error - offset).max() > tolerance or abs(offset) <= tolerance:
            return None
        offsets.append(((slice(None), *rest), offset))
    where = "; ".join(f"at {_position(rest)} by {fmt(offset)}" for rest, offset in offsets)
    message = (f"the analytical gradient is off by the same amount for every sample ({where}; "
               f"{min(n, _SAMPLES)} samples each): a term computed over the whole batch is missing or wrong, "
               "most often, in a normalization, the dependence of the batch mean on x (d mean / dx = 1 / N)")
    evidence = {"offsets": [{"index": [None, *rest[1:]], "offset": offset} for rest, offset in offsets],
                "samples": min(n, _SAMPLES)}
    return [Diagnosis("batch-constant", message, evidence)]


def _position(index: tuple) -> str:
    return "(" + ", ".join(":" if isinstance(i, slice) else str(i) for i in index) + ")"
