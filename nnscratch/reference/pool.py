"""Textbook max pooling: sliding windows, an argmax, and the deltas sent back to the winners."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..specs import MaxPool2DBase


class MaxPool2D(MaxPool2DBase):
    """Max pooling: y[n, c, r, q] = max over (i, j) of x[n, c, r*sh + i, q*sw + j].

    Windows kh x kw, stride (sh, sw) (default: the kernel size); oh = (H - kh) // sh + 1, likewise
    ow (floor, as in PyTorch: rows and columns left over at the edge are dropped).

    Backward: the max passes on the gradient of the one input that won, so
        dx[n, c, r*sh + i*, q*sw + j*] += delta[n, c, r, q],  (i*, j*) = the argmax of window (r, q)
    and every other input gets nothing. On ties the first winner in row-major order takes it all.

    The textbook twin of ``nnscratch.MaxPool2D``: the same constructor and numbers, in plain NumPy.

    Shape:
        x: (N, C, H, W)
        y: (N, C, oh, ow)
    """

    _caches = ("_x_shape", "_dtype", "_argmax")  # what release_memory() drops

    def __init__(self, kernel_size, stride=None):
        super().__init__(kernel_size, stride)  # the checks, config and output_shape: nnscratch/specs/
        self._x_shape, self._dtype, self._argmax = None, None, None  # the last forward's, for backward

    def forward(self, x, *args):
        x = self._checked(x)
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        # windows[n, c, r, q] = the kh*kw values of window (r, q), row-major
        windows = sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]
        windows = windows.reshape(*windows.shape[:4], kh * kw)
        self._argmax = windows.argmax(axis=-1)  # the first maximum on ties
        self._x_shape, self._dtype = x.shape, x.dtype
        return np.take_along_axis(windows, self._argmax[..., None], axis=-1)[..., 0]

    def backward(self, delta):
        self._check_forward_called(self._argmax)
        argmax, (n, c, h, w) = self._argmax, self._x_shape
        delta = self._check_delta(delta, argmax.shape).astype(self._dtype, copy=False)
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        oh, ow = argmax.shape[2:]
        # The input position each window's winner sits at: row r*sh + i*, column q*sw + j*.
        rows = np.arange(oh)[:, None] * sh + argmax // kw
        columns = np.arange(ow)[None, :] * sw + argmax % kw
        batch, channel = np.arange(n)[:, None, None, None], np.arange(c)[:, None, None]
        dx = np.zeros((n, c, h, w), self._dtype)
        np.add.at(dx, (batch, channel, rows, columns), delta)  # add: overlapping windows may share one
        return dx
