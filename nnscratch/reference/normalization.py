"""Textbook batch normalization: a mean and a variance per channel over every other axis, and the
gradient through both."""

from __future__ import annotations

import numpy as np

from .. import specs


class _BatchNorm(specs.BatchNormBase):
    """Forward and backward of BatchNorm1D and BatchNorm2D, which differ only in the shapes they
    take (the formulas are in BatchNorm1D's docstring; the checks, parameters and running
    statistics are shared with the fast layers, in nnscratch/specs/)."""

    _caches = ("_cache",)  # what release_memory() drops

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, dtype=np.float32):
        super().__init__(num_features, eps, momentum, affine, dtype)
        self._cache = None  # (x_hat, 1 / sqrt(var + eps), the mode) of the last forward, for backward

    def _per_channel(self, values, ndim: int) -> np.ndarray:
        """A (C,) array shaped (1, C, 1, ...) to broadcast against an input of ``ndim`` axes."""
        return np.reshape(values, (1, self.num_features) + (1,) * (ndim - 2))

    def forward(self, x, *args):
        x = x.astype(self._compute_dtype(x), copy=False)
        axes = (0, *range(2, x.ndim))  # every axis but the channels
        if self.training:
            mean = x.mean(axis=axes, keepdims=True)
            var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
            m = x.size // self.num_features
            self.running_mean[...] = (1 - self.momentum) * self.running_mean + self.momentum * mean.ravel()
            self.running_var[...] = (1 - self.momentum) * self.running_var + self.momentum * var.ravel() * m / (m - 1)
        else:
            mean = self._per_channel(self.running_mean, x.ndim).astype(x.dtype)
            var = self._per_channel(self.running_var, x.ndim).astype(x.dtype)
        inv_std = 1.0 / np.sqrt(var + self.eps)
        x_hat = (x - mean) * inv_std
        self._cache = (x_hat, inv_std, self.training)
        if not self.affine:
            return x_hat
        return x_hat * self._per_channel(self.weight, x.ndim) + self._per_channel(self.bias, x.ndim)

    def backward(self, delta):
        self._check_forward_called(self._cache)
        x_hat, inv_std, training = self._cache
        delta = self._check_delta(delta, x_hat.shape).astype(x_hat.dtype, copy=False)
        axes = (0, *range(2, x_hat.ndim))
        dx_hat = delta
        if self.affine:
            self.parameters_deltas[:] = [(delta * x_hat).sum(axis=axes), delta.sum(axis=axes)]  # set, not add
            dx_hat = delta * self._per_channel(self.weight, delta.ndim)
        if not training:  # the running statistics are constants: y is affine in x
            return dx_hat * inv_std
        return inv_std * (dx_hat - dx_hat.mean(axis=axes, keepdims=True)
                          - x_hat * (dx_hat * x_hat).mean(axis=axes, keepdims=True))


class BatchNorm1D(_BatchNorm):
    """Batch normalization of features: y = (x - mean) / sqrt(var + eps) * weight + bias, per feature.

    Training mode, with M = the number of values per channel (x.size / C), sums over every axis but 1:
        mean = sum(x) / M,  var = sum((x - mean)^2) / M  (biased),  x_hat = (x - mean) / sqrt(var + eps)
        y = weight * x_hat + bias  (y = x_hat without affine)
        running_mean <- (1 - momentum) * running_mean + momentum * mean
        running_var  <- (1 - momentum) * running_var  + momentum * var * M / (M - 1)  (unbiased)
    Backward through the batch statistics (x_hat depends on every value of its channel):
        dbias = sum(delta),  dweight = sum(delta * x_hat),  dx_hat = delta * weight
        dx = (dx_hat - mean(dx_hat) - x_hat * mean(dx_hat * x_hat)) / sqrt(var + eps)
    Eval mode: mean and var are running_mean and running_var, constants, so dx = dx_hat / sqrt(var + eps).
    The statistics are over N (and L for 3-D input); as PyTorch's BatchNorm1d. ``parameters == [weight,
    bias]`` (starting at 1 and 0) when ``affine``; ``buffers == [running_mean, running_var]``
    (starting at 0 and 1), saved, never trained. A batch of one is an error in training mode.

    The textbook twin of ``nnscratch.BatchNorm1D``: the same constructor, parameters, buffers and
    numbers, in plain NumPy.

    Shape:
        x: (N, num_features) or (N, num_features, L); y: same as x
        weight, bias, running_mean, running_var: (num_features,)
    """

    ranks, layout, values = specs.BATCHNORM1D


class BatchNorm2D(_BatchNorm):
    """Batch normalization of channels: y = (x - mean) / sqrt(var + eps) * weight + bias, per channel.

    The formulas of forward, backward and the running statistics are ``BatchNorm1D``'s, with the
    statistics per channel over (N, H, W) (M = N*H*W); as PyTorch's BatchNorm2d. The textbook twin
    of ``nnscratch.BatchNorm2D``.

    Shape:
        x: (N, num_features, H, W); y: same as x
        weight, bias, running_mean, running_var: (num_features,)
    """

    ranks, layout, values = specs.BATCHNORM2D
