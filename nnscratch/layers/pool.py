"""Pooling over (N, C, H, W) images."""

from __future__ import annotations

import numpy as np

from ..kernels.buffers import memory_order
from ..kernels.pool import max_pool_backward, max_pool_forward
from ..reference import pool as reference


class MaxPool2D(reference.MaxPool2D):
    """Max pooling: y[n, c, r, q] = max over (i, j) of x[n, c, r*sh + i, q*sw + j].

    Windows kh x kw, stride (sh, sw) (default: the kernel size); oh = (H - kh) // sh + 1, likewise
    ow (floor, as in PyTorch: rows and columns left over at the edge are dropped). Windows may
    overlap (stride < kernel) or leave gaps (stride > kernel).

    Backward sends each output's delta to the one input that was its maximum; on ties, to the first
    in row-major order within the window. Forward records that winner as the index (i*kw + j) of the
    kernel offset, one byte per output, rather than a full-size mask.

    The textbook version of this layer is ``nnscratch.reference.MaxPool2D``: read it first. This one
    is built on it (same constructor and checks) and computes the same numbers with the passes of
    nnscratch/kernels/pool.py. The output keeps the input's dtype and its memory layout.

    Shape:
        x: (N, C, H, W)
        y: (N, C, oh, ow)
    """

    def __init__(self, kernel_size, stride=None):
        super().__init__(kernel_size, stride)
        self._input = None  # (shape, dtype, memory order) of the last input; not the input itself
        self._buffers: dict = {}  # results and scratch, recycled (see kernels/buffers.py)

    def forward(self, x, *args):
        self._check_input(x, 4, "N, C, H, W")
        if x.dtype.kind != "f":
            x = x.astype(np.float32)  # integer images and the like: compute in float32
        shape = self.output_shape(x.shape)
        y, argmax = max_pool_forward(x, self.kernel_size, self.stride, shape, self._buffers)
        self._input, self._argmax = (x.shape, x.dtype, memory_order(x)), argmax
        return y

    def backward(self, delta):
        self._check_forward_called(self._argmax)
        (x_shape, dtype, order), argmax = self._input, self._argmax
        delta = self._check_delta(delta, argmax.shape).astype(dtype, copy=False)
        return max_pool_backward(delta, argmax, x_shape, order, self.kernel_size, self.stride, self._buffers)
