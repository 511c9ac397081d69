"""The max-pooling passes: one strided copy and a few contiguous passes per kernel offset.

The fast ``MaxPool2D`` (nnscratch/layers/pool.py) runs on these; ``nnscratch.reference.MaxPool2D``
computes the same numbers in a few lines of sliding windows.

Both passes keep the input's memory order (see ``recycle.memory_order``) and take their results and
scratch from a store the layer owns (see ``recycle.recycled_empty``).
"""

from __future__ import annotations

import numpy as np

from .recycle import copy_in_order, empty_in_order, memory_order
from .conv_plan import window_slices


def windows(x: np.ndarray, kernel: tuple, stride: tuple, out_hw: tuple):
    """For each kernel offset (i, j), row-major: the (N, C, oh, ow) view of the inputs it sees."""
    kh, kw = kernel
    for i in range(kh):
        for j in range(kw):
            yield x[(..., *window_slices(i, j, stride, out_hw))]


def max_pool_forward(x: np.ndarray, kernel: tuple, stride: tuple, out_shape: tuple, store: dict):
    """The maximum of each window, and which kernel offset (i*kw + j) won it.

    Returns (y, argmax), both of ``out_shape`` (N, C, oh, ow) and in x's memory order; argmax is
    uint8 (int32 for kernels of more than 256 offsets): one byte per output, not a full-size mask.
    On ties the first offset in row-major order wins.
    """
    offsets = kernel[0] * kernel[1]
    passes = windows(x, kernel, stride, out_shape[2:])
    order = memory_order(x)
    y = empty_in_order(out_shape, order, x.dtype, store, "y")
    np.copyto(y, next(passes))
    index_dtype = np.uint8 if offsets <= 256 else np.int32
    argmax = empty_in_order(out_shape, order, index_dtype, store, "argmax")
    argmax.fill(0)
    greater = empty_in_order(out_shape, order, bool, store, "greater")
    step = empty_in_order(out_shape, order, index_dtype, store, "step")
    window = empty_in_order(out_shape, order, x.dtype, store, "window")
    for k, strided_window in enumerate(passes, start=1):
        # One strided copy per offset, then contiguous passes: NumPy's loops over every
        # second element are slow, and reading the view twice (compare, then max) costs
        # more than copying it once. At the MNIST CNN's sizes each pool's forward takes
        # 0.2-0.5 ms less, and a whole training step 1-4% less.
        np.copyto(window, strided_window)
        # Strictly greater: on ties the earlier offset keeps the win.
        np.greater(window, y, out=greater)
        np.maximum(y, window, out=y)
        # The winner only ever moves to a later offset, so max(argmax, k * greater) records it
        # with two cheap integer passes (np.putmask is several times slower on these views).
        np.multiply(greater, k, out=step, dtype=index_dtype)
        np.maximum(argmax, step, out=argmax)
    return y, argmax


def max_pool_backward(delta: np.ndarray, argmax: np.ndarray, x_shape: tuple, order: tuple,
                      kernel: tuple, stride: tuple, store: dict) -> np.ndarray:
    """dL/dx: each output's delta sent to the input that won its window (argmax), in ``order``.

    ``delta`` has argmax's shape and the input's dtype; ``order`` is the input's memory order.
    """
    if memory_order(delta) != order:
        # The passes below walk argmax, delta and dx together: with delta laid out otherwise
        # (a C-order delta for a channel-major input, say) they take ~3x as long as one copy
        # into the input's layout and the passes after it.
        delta = copy_in_order(delta, order, store, "delta")
    (kh, kw), (sh, sw) = kernel, stride
    oh, ow = argmax.shape[2:]
    overlapping = sh < kh or sw < kw
    tiled = (sh, sw) == (kh, kw) and tuple(x_shape[2:]) == (oh * kh, ow * kw)
    # Exact tiling: every input is written exactly once below, so skip zero-filling.
    dx = empty_in_order(x_shape, order, delta.dtype, store, "dx")
    if not tiled:
        dx.fill(0)
    won = empty_in_order(argmax.shape, order, bool, store, "won")
    for k, window in enumerate(windows(dx, kernel, stride, (oh, ow))):
        np.equal(argmax, k, out=won)
        if overlapping:  # an input can win several windows: add up what each sends it
            window += delta * won
        else:  # each input sits in at most one window: plain writes
            np.multiply(delta, won, out=window)
    return dx
