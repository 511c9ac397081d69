"""Kinks: a mismatch where the function is not differentiable is not a bug; move the probe off it.

At ReLU's 0, at a max-pooling tie, at a hinge's margin, the left and right slopes differ and a
central difference straddling the point returns their mean, which no backward gives. A checked
coordinate is at a kink when its one-sided slopes (``numerical.one_sided_slopes``) differ by more
than the tolerance and the analytical value lies between them (one of the two slopes, or a
subgradient between them, as nnscratch's ReLU gives 0 at 0). Such coordinates are moved off the
kink, each by a different multiple of eps (5, 8, 11, ... eps, so tied values stay apart), and the
tensor is checked again there.
"""

from __future__ import annotations

from .context import Context, Target, fmt, worst_first
from .numerical import Comparison, one_sided_slopes
from .report import Diagnosis

# When none of the worst this many failing coordinates is at a kink, the mismatch is not about
# kinks: the rest are not examined (4 forwards each).
_SCREEN = 20
_ROUNDS = 3  # moves and re-checks, for kinks the first move may bring within reach


def _kinks(ctx: Context, target: Target, comparison: Comparison) -> list:
    """(checked coordinate number, left slope, right slope) of each failing coordinate at a kink."""
    found = []
    for n, k in enumerate(worst_first(comparison)):
        if n >= _SCREEN and not found:
            break
        left, right = one_sided_slopes(ctx.run, target.array, comparison.coords[k], ctx.r, ctx.eps, ctx.y0)
        tolerance = comparison.tolerance[k] + 20 * comparison.noise[k]
        low, high = min(left, right), max(left, right)
        if high - low > tolerance and low - tolerance <= comparison.analytical[k] <= high + tolerance:
            found.append((k, left, right))
    return found


def moved_off_kinks(ctx: Context, target: Target, comparison: Comparison):
    """(kink diagnosis or None, the comparison to report). The target stays moved (and ``ctx.y0``
    with it) so that the diagnoses after this one read the moved point; the caller restores it."""
    found, moves = [], 0
    for _ in range(_ROUNDS):
        kinks = _kinks(ctx, target, comparison)
        if not kinks:
            break
        for k, left, right in kinks:
            index, flat = comparison.index(k), comparison.coords[k]
            found.append({"index": index, "left": left, "right": right, "analytical": comparison.analytical[k]})
            target.array.flat[flat] += (5 + 3 * moves) * ctx.eps
            moves += 1
        ctx.y0 = ctx.run.forward()
        comparison = ctx.compare(target)
        if not comparison.problem:
            break
    if not found:
        return None, comparison
    first = found[0]
    outcome = ("with them moved off the kink by a few eps, the gradient matches" if not comparison.problem
               else "moved off the kink, the gradient is still wrong (below)")
    message = (
        f"{len(found)} of {len(comparison.coords)} checked coordinates sit on a kink, where the function "
        f"is not differentiable (at {first['index']}: slope {fmt(first['left'])} on the left, "
        f"{fmt(first['right'])} on the right, analytical {fmt(first['analytical'])}): not a bug at these "
        f"points; {outcome}"
    )
    evidence = {"count": len(found), "checked": len(comparison.coords), "points": found[:5],
                "passes_when_moved": not comparison.problem}
    return Diagnosis("kink", message, evidence, bug=False), comparison

