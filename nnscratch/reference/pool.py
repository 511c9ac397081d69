"""Textbook max pooling: sliding windows, an argmax, and the deltas sent back to the winners."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..layers.base import Layer, check_window_fits, compact, pair


class MaxPool2D(Layer):
    """Max pooling: y[n, c, r, q] = max over (i, j) of x[n, c, r*sh + i, q*sw + j].

    Windows kh x kw, stride (sh, sw) (default: the kernel size); oh = (H - kh) // sh + 1, likewise
    ow (floor, as in PyTorch: rows and columns left over at the edge are dropped).

    Backward: the max passes on the gradient of the one input that won, so
        dx[n, c, r*sh + i*, q*sw + j*] += delta[n, c, r, q],  (i*, j*) = the argmax of window (r, q)
    and every other input gets nothing. On ties the first winner in row-major order takes it all.

    The textbook twin of ``nnscratch.MaxPool2D``, which is built on this class: the same constructor
    and numbers; the fast layer only computes forward and backward another way.

    Shape:
        x: (N, C, H, W)
        y: (N, C, oh, ow)
    """

    _caches = ("_input", "_argmax")  # the last forward's, for backward (see Layer.release_memory)

    def __init__(self, kernel_size, stride=None):
        super().__init__()
        self.kernel_size = pair(self.name, "kernel_size", kernel_size)
        self.stride = self.kernel_size if stride is None else pair(self.name, "stride", stride)
        self._input, self._argmax = None, None  # the last input's (shape, dtype); its winners

    def config(self) -> dict:
        return {"kernel_size": compact(self.kernel_size), "stride": compact(self.stride)}

    def output_shape(self, input_shape):
        shape = tuple(input_shape)
        self._check_ndim(shape, 4, "N, C, H, W")
        check_window_fits(self.name, shape, self.kernel_size)
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        return (shape[0], shape[1], (shape[2] - kh) // sh + 1, (shape[3] - kw) // sw + 1)

    def forward(self, x, *args):
        self._check_input(x, 4, "N, C, H, W")
        self.output_shape(x.shape)
        if x.dtype.kind != "f":
            x = x.astype(np.float32)  # integer images and the like: compute in float32
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        # windows[n, c, r, q] = the kh*kw values of window (r, q), row-major
        windows = sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]
        windows = windows.reshape(*windows.shape[:4], kh * kw)
        self._argmax = windows.argmax(axis=-1)  # the first maximum on ties
        self._input = (x.shape, x.dtype)
        return np.take_along_axis(windows, self._argmax[..., None], axis=-1)[..., 0]

    def backward(self, delta):
        self._check_forward_called(self._argmax)
        argmax, (x_shape, dtype) = self._argmax, self._input
        delta = self._check_delta(delta, argmax.shape).astype(dtype, copy=False)
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        oh, ow = argmax.shape[2:]
        # The input position each window's winner sits at: row r*sh + i*, column q*sw + j*.
        rows = np.arange(oh)[:, None] * sh + argmax // kw
        columns = np.arange(ow)[None, :] * sw + argmax % kw
        batch, channel = np.arange(x_shape[0])[:, None, None, None], np.arange(x_shape[1])[:, None, None]
        dx = np.zeros(x_shape, dtype)
        np.add.at(dx, (batch, channel, rows, columns), delta)  # add: overlapping windows may share one
        return dx
