"""Per-channel statistics for the batch norms: inputs viewed as (A, C, B), and sums over A and B.

A batch norm takes statistics per channel C over every other axis. Viewed as (A, C, B), with the
statistics over axes A and B, every input it takes is a plain reshape, without a copy:

    (N, D)                             -> (N, D, 1)
    (N, C, L)                          -> (N, C, L)
    (N, C, H, W) in C order            -> (N, C, H*W)
    (N, C, H, W) on (C, N, H, W) memory -> (1, C, N*H*W)   (Conv2D's channel-major output)

``channel_view`` makes the view and names its layout, ``delta_view`` views a delta the same way
(copying it only when it is laid out otherwise), ``unview`` turns a result back into the input's
shape and layout. ``channel_sum`` and ``channel_dot`` reduce over A and B.
"""

from __future__ import annotations

import numpy as np

from .recycle import copy_in_order, memory_order

_CHANNEL_MAJOR = (1, 0, 2, 3)


def channel_view(x: np.ndarray) -> tuple[np.ndarray, str]:
    """(x as (A, C, B), its layout: "channel-major" or "C"); a copy only for other layouts."""
    if x.ndim == 4 and memory_order(x) == _CHANNEL_MAJOR and x.transpose(_CHANNEL_MAJOR).flags.c_contiguous:
        n, c, h, w = x.shape
        return x.transpose(_CHANNEL_MAJOR).reshape(1, c, n * h * w), "channel-major"
    x = np.ascontiguousarray(x)
    return x.reshape(x.shape[0], x.shape[1], -1), "C"


def delta_view(delta: np.ndarray, layout: str, store: dict | None = None) -> np.ndarray:
    """``delta`` viewed as (A, C, B) in ``layout``, the layout of the input it belongs to, so that the
    passes of backward walk it and the cached input in step (copied into that layout if need be)."""
    if layout == "C":
        delta = np.ascontiguousarray(delta)
        return delta.reshape(delta.shape[0], delta.shape[1], -1)
    if not delta.transpose(_CHANNEL_MAJOR).flags.c_contiguous:
        delta = copy_in_order(delta, _CHANNEL_MAJOR, store, "delta")
    n, c, h, w = delta.shape
    return delta.transpose(_CHANNEL_MAJOR).reshape(1, c, n * h * w)


def unview(y3: np.ndarray, shape: tuple, layout: str) -> np.ndarray:
    """An (A, C, B) result back in the input's ``shape``, laid out as the input was."""
    if layout == "channel-major":
        n, c, h, w = shape
        return y3.reshape(c, n, h, w).transpose(_CHANNEL_MAJOR)
    return y3.reshape(shape)


def channel_sum(a: np.ndarray) -> np.ndarray:
    """sum over axes 0 and 2 of an (A, C, B) array, as (1, C, 1).

    einsum's loop reads the array once and is 1.5-3x faster here than ``a.sum(axis=(0, 2))``,
    whose reduction over two axes walks the array in short pieces."""
    return np.einsum("acb->c", a).reshape(1, a.shape[1], 1)


def channel_dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """sum over axes 0 and 2 of a * b, for (A, C, B) arrays, as (1, C, 1); a * b is never stored.

    Long rows (B >= 128, Conv2D's channel-major output is one row per channel) go to a batch of BLAS
    dot products, one per (a, c) row, ~1.5-2x faster than einsum there; short rows (BatchNorm1D's B = 1,
    small images) to einsum, which a BLAS call per row would make 20x slower."""
    if a.shape[2] >= 128:
        dots = np.matmul(a[:, :, None, :], b[:, :, :, None]).sum(axis=0)
    else:
        dots = np.einsum("acb,acb->c", a, b)
    return dots.reshape(1, a.shape[1], 1)
