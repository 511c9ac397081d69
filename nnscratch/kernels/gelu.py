"""GELU's element-wise work (tanh approximation), in the input's dtype, a cache-sized block of rows
at a time through ``kernels/rows.by_rows``, its temporaries in per-thread work memory (``scratch``).

``layers.GELU`` states the formulas; this module computes them in place in as few passes as it can:
8 over memory forward and 10 backward, over two work arrays, instead of ~24 fresh temporaries.
"""

from __future__ import annotations

import math

import numpy as np

from .rows import by_rows, scratch

# sqrt(2 / pi) and the cubic coefficient of the tanh approximation of GELU
SCALE = math.sqrt(2.0 / math.pi)
CUBIC = 0.044715
# tanh(sqrt(2/pi) (u + 0.044715 u^3)) is exactly +-1 in float64 (and float32) from |u| = 10 on (its
# argument is past 43 there), so clipping the input of the cubic there changes nothing, and keeps u^3
# (and the gradient's u^2) from overflowing.
CLIP = 10.0


def _matrices(*arrays) -> tuple:
    """The arrays as (rows, last axis) matrices when all are C-contiguous (finer blocks of rows than
    an (N, T, D) array's N), else as they are; element-wise work sees the same elements either way."""
    if all(a.ndim > 1 and a.flags.c_contiguous for a in arrays):
        return tuple(a.reshape(-1, a.shape[-1]) for a in arrays)
    return arrays


def _parts(x, half, inner, clip=True) -> None:
    """s = (1 + t) / 2 into ``half``, and k (1 + 0.044715 u^2) into ``inner``, u = x clipped to +-10 (so
    that k u times it, the argument of the tanh, never overflows), or x itself with ``clip=False``."""
    dtype = x.dtype.type
    u = np.clip(x, -CLIP, CLIP, out=half) if clip else x
    np.multiply(u, u, out=inner)
    inner *= dtype(SCALE * CUBIC)
    inner += dtype(SCALE)
    np.multiply(u, inner, out=half)  # k (u + 0.044715 u^3)
    np.tanh(half, out=half)
    half *= dtype(0.5)
    half += dtype(0.5)  # s = (1 + t) / 2


def _forward(x, y) -> None:
    """y = x s, for a block of rows. x is not clipped: where |x| >= 10 the tanh is +-1 exactly either
    way, and an argument that overflows to +-inf (|x| > 1e19; ``forward_into`` silences the warning)
    still gives +-1. One pass of nine fewer (with attention's einsum, 45.0 -> 44.1 ms a GPT
    benchmark step)."""
    half, inner = scratch("gelu_half", x), scratch("gelu_inner", x)
    _parts(x, half, inner, clip=False)
    np.multiply(x, half, out=y)


def _backward(x, delta, dx) -> None:
    """dL/dx = delta dy/dx into ``dx``, for a block of rows, s and its factor computed again from x."""
    dtype = x.dtype.type
    half, inner = scratch("gelu_half", x), scratch("gelu_inner", x)
    _parts(x, half, inner)
    # dy/dx = s + 2 x s (1 - s) k (1 + 3 * 0.044715 u^2), and 2 k (1 + 3 * 0.044715 u^2) = 6 inner - 4 k.
    # s (1 - s) is exactly 0 wherever the clip acts (|x| >= 10), so u there changes nothing.
    np.subtract(dtype(1), half, out=dx)
    dx *= half
    dx *= x
    inner *= dtype(6)
    inner -= dtype(4 * SCALE)
    dx *= inner
    dx += half
    dx *= delta


def forward_into(x: np.ndarray, y: np.ndarray) -> None:
    """y = GELU(x), into ``y`` (shaped as x)."""
    with np.errstate(over="ignore"):  # x^2 of |x| > 1e19 is inf, and gives y = x or -0 as it should
        by_rows(_forward, *_matrices(x, y))


def backward_into(x: np.ndarray, delta: np.ndarray, dx: np.ndarray) -> None:
    """dx = delta GELU'(x), into ``dx`` (shaped as x), t computed again from x."""
    by_rows(_backward, *_matrices(x, delta, dx))
