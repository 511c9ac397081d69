"""Transposed: a gradient, or a parameter as backward uses it, with its axes permuted or flipped.

Two ways a learner gets it: the gradient itself comes out transposed (dW = delta.T @ x for a square
W), which shows as the analytical gradient matching the numerical one once its axes are put back;
or backward reads a parameter the wrong way round (dx = delta @ W where delta @ W.T is right; a
convolution's input gradient without the kernel flipped), which shows as backward giving the right
gradient once that parameter is transposed or flipped first. Only for shapes that allow it: axes
swapped must have the same size (a (4, 3) gradient transposed is (3, 4), which the check refuses
before comparing, with a word on the transposition).
"""

from __future__ import annotations

import itertools

import numpy as np

from .context import Context, Target
from .numerical import Comparison
from .report import Diagnosis


def symmetries(shape: tuple) -> list:
    """(description, evidence, function) for each rearrangement an array of ``shape`` keeps its shape
    under: every permutation of axes of equal sizes, and flips of the axes after the first two
    (a kernel's spatial axes: (out, in, kh, kw))."""
    found = []
    ndim = len(shape)
    if 2 <= ndim <= 4:
        for axes in itertools.permutations(range(ndim)):
            if axes != tuple(range(ndim)) and tuple(shape[a] for a in axes) == tuple(shape):
                text = "transposed" if ndim == 2 else f"with its axes permuted to {axes}"
                found.append((text, {"axes": list(axes)}, lambda a, axes=axes: a.transpose(axes)))
    spatial = list(range(2, ndim))
    for count in range(1, len(spatial) + 1):
        for flipped in itertools.combinations(spatial, count):
            text = (f"flipped along axes {flipped}" + (" (rotated 180 degrees)" if count == 2 else "")
                    if count > 1 else f"flipped along axis {flipped[0]}")
            found.append((text, {"flipped_axes": list(flipped)}, lambda a, flipped=flipped: np.flip(a, flipped)))
    return found


def _matches(comparison: Comparison, gradient: np.ndarray) -> bool:
    """``gradient`` (the tensor's shape) agrees with the numerical gradient at every checked coordinate."""
    values = np.asarray(gradient).ravel()[comparison.coords]
    tolerance = comparison.atol + comparison.rtol * np.maximum(np.abs(values), np.abs(comparison.numerical))
    return bool(np.all(np.abs(values - comparison.numerical) <= tolerance))


def transposed(ctx: Context, target: Target, comparison: Comparison):
    """A ``transposed`` diagnosis, or None."""
    for text, evidence, rearrange in symmetries(comparison.full.shape):
        if _matches(comparison, rearrange(comparison.full)):
            message = (f"the gradient of {target.label} is right once {text}: backward computes it with its "
                       "axes the wrong way round" + (" (for y = x @ W, dW = x.T @ delta; delta.T @ x is its "
                                                     "transpose)" if comparison.full.ndim == 2 and target.index else ""))
            return [Diagnosis("transposed", message, {"of": target.label, **evidence})]
    for other in ctx.targets:
        if other.index == 0 or other is target:
            continue
        saved = other.array.copy()
        try:
            for text, evidence, rearrange in symmetries(saved.shape):
                other.array[...] = rearrange(saved)
                if _matches(comparison, ctx.gradient(target)):
                    return [_uses_rearranged(target, other, text, evidence)]
        finally:
            other.array[...] = saved
    return None


def _uses_rearranged(target: Target, parameter: Target, text: str, evidence: dict) -> Diagnosis:
    kernel = "flipped_axes" in evidence and parameter.array.ndim >= 3
    why = ("the kernel is not flipped where backward spreads delta back onto the input (the input gradient "
           "is a convolution with the kernel rotated 180 degrees; a correlation with it as is gives forward's "
           "pattern, not its transpose)" if kernel else
           f"backward uses {parameter.label} the wrong way round (delta @ W where delta @ W.T is right, or the "
           "reverse)")
    message = f"the gradient of {target.label} is right if {parameter.label} {parameter.array.shape} is first {text}: {why}"
    return Diagnosis("transposed", message, {"of": target.label, "uses": parameter.label, **evidence})
