"""The textbook 2-D convolution: sliding windows and two tensor contractions, nothing else."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..specs import Conv2DBase


class Conv2D(Conv2DBase):
    """2-D cross-correlation (what PyTorch and TensorFlow call convolution) plus bias.

    y[n, f, r, c] = b[f] + sum over (k, i, j) of W[f, k, i, j] * xp[n, k, r*sh + i, c*sw + j],
    where xp is x zero-padded by (ph, pw) on each side; oh = (H + 2ph - kh) // sh + 1, likewise ow.

    Backward, with delta = dL/dy and the same windows of xp:
        dW[f, k, i, j] = sum over (n, r, c) of delta[n, f, r, c] * xp[n, k, r*sh + i, c*sw + j]
        db[f]          = sum over (n, r, c) of delta[n, f, r, c]
        dxp[n, k, r*sh + i, c*sw + j] += sum over f of delta[n, f, r, c] * W[f, k, i, j]
    and dx is dxp without its padding. He uniform init: W ~ U(-sqrt(6 / fan_in), +sqrt(6 / fan_in)),
    fan_in = in_channels * kh * kw; b = 0.

    The textbook twin of ``nnscratch.Conv2D``: the same constructor, parameters and numbers, computed
    in plain NumPy. Read this one first.

    Shape:
        x: (N, in_channels, H, W)
        y: (N, out_channels, oh, ow)
        weight: (out_channels, in_channels, kh, kw), bias: (out_channels,)
    """

    _caches = ("_x_shape", "_windows")  # what release_memory() drops

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True,
                 dtype=np.float32, rng=None):
        # The checks, the weight and bias, config and output_shape are shared with nnscratch.Conv2D
        # (nnscratch/specs/); only forward and backward differ.
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, bias, dtype, rng)
        self._x_shape, self._windows = None, None  # the last forward's, for backward

    def forward(self, x, *args):
        x = self._checked(x)
        (ph, pw), (sh, sw) = self.padding, self.stride
        xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        # windows[n, k, r, c, i, j] = xp[n, k, r*sh + i, c*sw + j]: a view, no copy
        self._windows = sliding_window_view(xp, self.kernel_size, axis=(2, 3))[:, :, ::sh, ::sw]
        self._x_shape = x.shape
        y = np.tensordot(self._windows, self.weight, axes=([1, 4, 5], [1, 2, 3]))  # (N, oh, ow, F)
        if self.bias is not None:
            y += self.bias
        return y.transpose(0, 3, 1, 2)

    def backward(self, delta):
        self._check_forward_called(self._windows)
        windows, (n, c, h, w) = self._windows, self._x_shape
        delta = self._check_delta(delta, (n, self.out_channels, *windows.shape[2:4])).astype(windows.dtype)
        d_weight = np.tensordot(delta, windows, axes=([0, 2, 3], [0, 2, 3]))  # (F, C, kh, kw)
        d_bias = [delta.sum(axis=(0, 2, 3))] if self.bias is not None else []
        self.parameters_deltas[:] = [d_weight, *d_bias]  # set, never accumulate
        d_windows = np.tensordot(delta, self.weight, axes=([1], [0]))  # (N, oh, ow, C, kh, kw)
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        oh, ow = windows.shape[2:4]
        dxp = np.zeros((n, c, h + 2 * ph, w + 2 * pw), windows.dtype)
        for i in range(kh):  # each kernel offset adds its share back onto the inputs it read
            for j in range(kw):
                dxp[:, :, i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw] += (
                    d_windows[..., i, j].transpose(0, 3, 1, 2))
        return dxp[:, :, ph : ph + h, pw : pw + w]
