"""Buffer reuse and memory order: the arrays the fast layers hand out, recycled and laid out to fit.

- ``recycled_empty``: a result array handed out again once every caller has dropped it, so a
  training step does not pay the kernel's page faults for fresh memory each time; ``work_array``:
  the same for arrays large enough for it to pay; ``kept_ones``: a vector of ones kept between calls.
- ``memory_order``, ``empty_in_order``, ``copy_in_order``: arrays laid out in memory in a given axis
  order, so that channel-major (C, N, H, W) memory behind an (N, C, H, W) view flows from layer to
  layer without transposing copies.
"""

from __future__ import annotations

import math
import sys

import numpy as np

from . import aligned


def recycled_empty(store: dict, key, shape, dtype) -> np.ndarray:
    """An uninitialised array for a layer's result, recycled from an earlier call if nobody holds it.

    A fresh large array costs the kernel a page fault per 4 KiB on first touch (~2-3 us each on a
    small VM, a few milliseconds per training step); handing the same memory out again costs
    nothing. An array is handed out again only when ``store`` has the only reference to it: the
    caller dropped the earlier result and every view of it (CPython's reference count says so
    exactly), so a result a caller still holds is never overwritten. Two arrays per key, so a
    result held until the next call (a layer caching its input) still leaves one free.

    ``store`` is a dict the layer owns; ``key`` names the result (one slot pair per key).
    """
    shape, dtype = tuple(shape), np.dtype(dtype)
    slots = store.setdefault(key, [])
    for index in range(len(slots)):
        if slots[index].shape == shape and slots[index].dtype == dtype and _only_in_store(slots, index):
            return slots[index]
    array = aligned.empty(shape, dtype)
    slots.append(array)
    del slots[:-2]
    return array


# Below this many elements a fresh array costs less than recycling's bookkeeping (measured with GELU
# and LayerNorm at (128, 10) and (32, 10) float32: recycling there was up to 2x slower).
RECYCLED_SIZE = 1 << 15


def work_array(store: dict, key, shape, dtype) -> np.ndarray:
    """``recycled_empty(store, key, shape, dtype)`` for an array of ``RECYCLED_SIZE`` elements or more;
    a fresh ``np.empty`` below that."""
    shape = tuple(shape)
    if math.prod(shape) < RECYCLED_SIZE:
        return np.empty(shape, dtype)
    return recycled_empty(store, key, shape, dtype)


def kept_ones(kept: np.ndarray | None, count: int, dtype) -> np.ndarray:
    """A read-only vector of ``count`` ones in ``dtype``: ``kept`` when it is one, else a new one (for
    the caller to keep for its next call). A bias gradient, the sum of delta over the rows, is then
    one BLAS matrix-vector product, ones @ delta (see Linear.backward)."""
    if kept is None or kept.shape[0] != count or kept.dtype != dtype:
        kept = np.ones(count, dtype=dtype)
        kept.flags.writeable = False
    return kept


def memory_order(x: np.ndarray) -> tuple:
    """x's axes from the slowest-varying in memory to the fastest: (0, 1, 2, 3) for C order,
    (1, 0, 2, 3) for channel-major (C, N, H, W) memory behind an (N, C, H, W) view."""
    return tuple(sorted(range(x.ndim), key=lambda axis: -abs(x.strides[axis])))


def empty_in_order(shape, order: tuple, dtype, store: dict | None = None, key=None) -> np.ndarray:
    """An empty array of ``shape`` whose axes are laid out in memory in ``order``.

    Conv2D hands out channel-major (C, N, H, W) memory behind (N, C, H, W) views; keeping that order
    through the layers after it lets each read its input, and take its delta, without transposing
    copies. With ``store``, the memory is recycled from it under ``key`` (see ``recycled_empty``).
    """
    memory_shape = [shape[axis] for axis in order]
    memory = np.empty(memory_shape, dtype) if store is None else recycled_empty(store, key, memory_shape, dtype)
    return memory.transpose(np.argsort(order))


def copy_in_order(x: np.ndarray, order: tuple, store: dict | None = None, key=None) -> np.ndarray:
    """A copy of x laid out in memory in ``order`` (see ``empty_in_order``)."""
    copy = empty_in_order(x.shape, order, x.dtype, store, key)
    np.copyto(copy, x)
    return copy


def _references(slots: list, index: int) -> tuple[int, int]:
    """Reference counts of the slot's array and of the byte buffer it views (see aligned.py).

    Both count: a caller may hold the array itself, or a view of it, and NumPy points every view
    at the buffer that owns the memory, not at the array it was taken from.
    """
    array = slots[index]
    return sys.getrefcount(array), sys.getrefcount(array.base)


# The counts for an array held by nothing but its slot list, measured the way they are checked, so
# they hold whatever the interpreter's own conventions; None (never recycle) without reference counts.
_ALONE = _references([aligned.empty(1)], 0) if hasattr(sys, "getrefcount") else None


def _only_in_store(slots: list, index: int) -> bool:
    if _ALONE is None:
        return False
    array_count, buffer_count = _references(slots, index)
    return array_count <= _ALONE[0] and buffer_count <= _ALONE[1]
