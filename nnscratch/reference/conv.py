"""The textbook 2-D convolution: sliding windows and two tensor contractions, nothing else."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .. import init
from ..kernels import aligned
from ..layers.base import Layer, as_dtype, check_bool, check_positive_int, check_window_fits, compact, pair


class Conv2D(Layer):
    """2-D cross-correlation (what PyTorch and TensorFlow call convolution) plus bias.

    y[n, f, r, c] = b[f] + sum over (k, i, j) of W[f, k, i, j] * xp[n, k, r*sh + i, c*sw + j],
    where xp is x zero-padded by (ph, pw) on each side; oh = (H + 2ph - kh) // sh + 1, likewise ow.

    Backward, with delta = dL/dy and the same windows of xp:
        dW[f, k, i, j] = sum over (n, r, c) of delta[n, f, r, c] * xp[n, k, r*sh + i, c*sw + j]
        db[f]          = sum over (n, r, c) of delta[n, f, r, c]
        dxp[n, k, r*sh + i, c*sw + j] += sum over f of delta[n, f, r, c] * W[f, k, i, j]
    and dx is dxp without its padding. He uniform init: W ~ U(-sqrt(6 / fan_in), +sqrt(6 / fan_in)),
    fan_in = in_channels * kh * kw; b = 0 (``nnscratch.init.kaiming_uniform_`` and ``zeros_``).

    The textbook twin of ``nnscratch.Conv2D``, which is built on this class: the same constructor,
    parameters and numbers; the fast layer only computes forward and backward another way.

    Shape:
        x: (N, in_channels, H, W)
        y: (N, out_channels, oh, ow)
        weight: (out_channels, in_channels, kh, kw), bias: (out_channels,)
    """

    _caches = ("_x_shape", "_windows")  # the last forward's, for backward (see Layer.release_memory)

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True,
                 dtype=np.float32, rng=None):
        super().__init__()
        # parameter_specs checks every argument, and gives the weight's shape and dtype
        (shape, dtype), *bias_spec = self.parameter_specs(in_channels, out_channels, kernel_size, stride, padding,
                                                          bias, dtype)
        self.out_channels, self.in_channels, kh, kw = shape
        self.kernel_size, self.stride = (kh, kw), pair(self.name, "stride", stride)
        self.padding = pair(self.name, "padding", padding, allow_zero=True)
        # Parameters, deltas and optimizer state are 64-byte aligned: see kernels/aligned.py.
        self.weight = init.kaiming_uniform_(aligned.empty(shape, dtype), rng=rng)  # fan_in = C * kh * kw
        self.bias = init.zeros_(aligned.empty(self.out_channels, dtype)) if bias_spec else None
        self.parameters = [self.weight] if self.bias is None else [self.weight, self.bias]
        self.parameters_deltas = [aligned.zeros_like(p) for p in self.parameters]
        self._x_shape, self._windows = None, None

    @classmethod
    def parameter_specs(cls, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True,
                        dtype=np.float32) -> list:
        name = cls.__name__
        in_channels = check_positive_int(name, "in_channels", in_channels)
        out_channels = check_positive_int(name, "out_channels", out_channels)
        kernel_size = pair(name, "kernel_size", kernel_size)
        pair(name, "stride", stride)
        pair(name, "padding", padding, allow_zero=True)
        dtype = as_dtype(name, dtype)
        specs = [((out_channels, in_channels, *kernel_size), dtype)]
        return specs + [((out_channels,), dtype)] if check_bool(name, "bias", bias) else specs

    def config(self) -> dict:
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": compact(self.kernel_size), "stride": compact(self.stride),
                "padding": compact(self.padding), "bias": self.bias is not None,
                "dtype": self.weight.dtype.name}  # fmt: skip

    def output_shape(self, input_shape):
        shape = tuple(input_shape)
        self._check_ndim(shape, 4, "N, C, H, W")
        if shape[1] != self.in_channels:
            raise ValueError(f"{self.name}: expected {self.in_channels} input channels (x of shape "
                             f"(N, {self.in_channels}, H, W)), got x of shape {shape}")
        check_window_fits(self.name, shape, self.kernel_size, self.padding)
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        return (shape[0], self.out_channels, (shape[2] + 2 * ph - kh) // sh + 1, (shape[3] + 2 * pw - kw) // sw + 1)

    def forward(self, x, *args):
        self._check_parameters_in_place("weight", "bias")
        self._check_input(x, 4, "N, C, H, W")
        self.output_shape(x.shape)
        (ph, pw), (sh, sw) = self.padding, self.stride
        xp = np.pad(x.astype(self.weight.dtype, copy=False), ((0, 0), (0, 0), (ph, ph), (pw, pw)))
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
        deltas = self._delta_buffers()
        deltas[0][...] = np.tensordot(delta, windows, axes=([0, 2, 3], [0, 2, 3]))  # (F, C, kh, kw)
        if self.bias is not None:
            deltas[1][...] = delta.sum(axis=(0, 2, 3))
        d_windows = np.tensordot(delta, self.weight, axes=([1], [0]))  # (N, oh, ow, C, kh, kw)
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        oh, ow = windows.shape[2:4]
        dxp = np.zeros((n, c, h + 2 * ph, w + 2 * pw), windows.dtype)
        for i in range(kh):  # each kernel offset adds its share back onto the inputs it read
            for j in range(kw):
                dxp[:, :, i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw] += (
                    d_windows[..., i, j].transpose(0, 3, 1, 2))
        return dxp[:, :, ph : ph + h, pw : pw + w]
