"""Pooling over (N, C, H, W) images: MaxPool2D, AvgPool2D, GlobalAvgPool2D."""

from __future__ import annotations

import numpy as np

from ..kernels.memory import KeepsMemory
from ..kernels.pool import max_pool_backward, max_pool_forward, windows
from ..kernels.recycle import copy_in_order, empty_in_order, memory_order
from ..protocol import Layer
from ..specs import MaxPool2DBase, check_window_fits, window_output_size
from ..validation import compact, pair


class MaxPool2D(MaxPool2DBase):
    """Max pooling: y[n, c, r, q] = max over (i, j) of x[n, c, r*sh + i, q*sw + j].

    Windows kh x kw, stride (sh, sw) (default: the kernel size); oh = (H - kh) // sh + 1, likewise
    ow (floor, as in PyTorch: rows and columns left over at the edge are dropped). Windows may
    overlap (stride < kernel) or leave gaps (stride > kernel).

    Backward sends each output's delta to the one input that was its maximum; on ties, to the first
    in row-major order within the window. Forward records that winner as the index (i*kw + j) of the
    kernel offset, one byte per output, rather than a full-size mask.

    The textbook version of this layer is ``nnscratch.reference.MaxPool2D``: read it first. This one
    shares its constructor and checks (nnscratch/specs/) and computes the same numbers with the passes of
    nnscratch/kernels/pool.py. The output keeps the input's dtype and its memory layout.

    Shape:
        x: (N, C, H, W)
        y: (N, C, oh, ow)
    """

    # The last forward's, for backward: its input's (shape, dtype, memory order), not the input
    # itself, and its winners (one small array). Recycled results and scratch are a store: dropped by
    # release_memory() and left out of copies (see kernels/memory.py).
    _caches = ("_input_layout", "_argmax")
    _stores = ("_recycled",)

    def __init__(self, kernel_size, stride=None):
        super().__init__(kernel_size, stride)
        self._input_layout, self._argmax = None, None
        self._recycled: dict = {}  # results and scratch, recycled (see kernels/recycle.py)

    def forward(self, x, *args):
        x = self._checked(x)
        y, argmax = max_pool_forward(x, self.kernel_size, self.stride, self.output_shape(x.shape), self._recycled)
        self._input_layout, self._argmax = (x.shape, x.dtype, memory_order(x)), argmax
        return y

    def backward(self, delta):
        self._check_forward_called(self._argmax)
        (x_shape, dtype, order), argmax = self._input_layout, self._argmax
        delta = self._check_delta(delta, argmax.shape).astype(dtype, copy=False)
        return max_pool_backward(delta, argmax, x_shape, order, self.kernel_size, self.stride, self._recycled)


class AvgPool2D(KeepsMemory, Layer):
    """Average pooling: y[n, c, r, q] = (1 / (kh kw)) sum over (i, j) of xpad[n, c, r*sh + i, q*sw + j].

    xpad is x with ``padding`` zeros on each side, and the zeros count in the average, as in
    PyTorch's default (``count_include_pad=True``): every window is divided by kh * kw. Stride
    defaults to the kernel size; oh = (H + 2 ph - kh) // sh + 1, likewise ow (floor, as PyTorch).
    Padding may be at most half the kernel (ph <= kh // 2, pw <= kw // 2), as PyTorch requires, so
    that no window lies wholly in the padding.

    Backward: every input of a window gets an equal share of its delta,
        dxpad[n, c, r*sh + i, q*sw + j] += delta[n, c, r, q] / (kh kw)  for each (i, j),
    and the padding's share is dropped. The output and dx keep the input's dtype and memory layout.

    Shape:
        x: (N, C, H, W)
        y: (N, C, oh, ow)
    """

    _caches = ("_input_layout",)

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = pair(self.name, "kernel_size", kernel_size)
        self.stride = self.kernel_size if stride is None else pair(self.name, "stride", stride)
        self.padding = pair(self.name, "padding", padding, allow_zero=True)
        for axis, (k, p) in enumerate(zip(self.kernel_size, self.padding)):
            if p > k // 2:
                raise ValueError(
                    f"{self.name}: padding must be at most half the kernel size ({'hw'[axis]}: kernel {k}, "
                    f"so at most {k // 2}), got padding {compact(self.padding)} for kernel_size "
                    f"{compact(self.kernel_size)}"
                )
        self._input_layout = None  # (output shape, memory order, padded shape, dtype) of the last call

    def config(self) -> dict:
        return {"kernel_size": compact(self.kernel_size), "stride": compact(self.stride),
                "padding": compact(self.padding)}

    def output_shape(self, input_shape):
        shape = tuple(input_shape)
        self._check_ndim(shape, 4, "N, C, H, W")
        check_window_fits(self.name, shape, self.kernel_size, self.padding)
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        return (shape[0], shape[1], window_output_size(shape[2], kh, sh, ph), window_output_size(shape[3], kw, sw, pw))

    def forward(self, x, *args):
        self._check_input(x, 4, "N, C, H, W")
        if x.dtype.kind != "f":
            x = x.astype(np.float32)  # integer images and the like: compute in float32
        out_shape = self.output_shape(x.shape)
        order = memory_order(x)
        (kh, kw), (ph, pw) = self.kernel_size, self.padding
        if ph or pw:
            padded = empty_in_order((*x.shape[:2], x.shape[2] + 2 * ph, x.shape[3] + 2 * pw), order, x.dtype)
            padded.fill(0)
            padded[:, :, ph : ph + x.shape[2], pw : pw + x.shape[3]] = x
            x = padded
        y = empty_in_order(out_shape, order, x.dtype)
        y.fill(0)
        for window in windows(x, self.kernel_size, self.stride, out_shape[2:]):
            y += window
        y /= kh * kw  # an int divisor keeps y's dtype
        self._input_layout = (tuple(out_shape), order, x.shape, x.dtype)
        return y

    def backward(self, delta):
        self._check_forward_called(self._input_layout)
        out_shape, order, padded_shape, dtype = self._input_layout
        delta = self._check_delta(delta, out_shape)
        (kh, kw), (ph, pw) = self.kernel_size, self.padding
        share = delta.astype(dtype, copy=False) / (kh * kw)
        dx = empty_in_order(padded_shape, order, dtype)
        dx.fill(0)
        for window in windows(dx, self.kernel_size, self.stride, out_shape[2:]):
            window += share  # overlapping windows add up
        if ph or pw:
            dx = copy_in_order(dx[:, :, ph : padded_shape[2] - ph, pw : padded_shape[3] - pw], order)
        return dx


class GlobalAvgPool2D(KeepsMemory, Layer):
    """Global average pooling: y[n, c] = (1 / (H W)) sum over (h, w) of x[n, c, h, w].

    Backward: dx[n, c, h, w] = delta[n, c] / (H W), every position an equal share. Keeps the
    input's dtype; dx keeps its memory layout.

    Shape:
        x: (N, C, H, W)
        y: (N, C)
    """

    _caches = ("_input_layout",)

    def __init__(self):
        super().__init__()
        self._input_layout = None  # (shape, dtype, memory order) of the last input

    def output_shape(self, input_shape):
        shape = tuple(input_shape)
        self._check_ndim(shape, 4, "N, C, H, W")
        if shape[2] == 0 or shape[3] == 0:
            raise ValueError(f"{self.name}: expected an input with at least one position (H, W > 0), got {shape}")
        return shape[:2]

    def forward(self, x, *args):
        self._check_input(x, 4, "N, C, H, W")
        if x.dtype.kind != "f":
            x = x.astype(np.float32)
        self.output_shape(x.shape)
        self._input_layout = (x.shape, x.dtype, memory_order(x))
        return np.add.reduce(x, axis=(2, 3)) / (x.shape[2] * x.shape[3])

    def backward(self, delta):
        self._check_forward_called(self._input_layout)
        shape, dtype, order = self._input_layout
        delta = self._check_delta(delta, shape[:2]).astype(dtype, copy=False)
        dx = empty_in_order(shape, order, dtype)
        np.copyto(dx, (delta / (shape[2] * shape[3]))[:, :, None, None])
        return dx
