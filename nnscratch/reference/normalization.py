"""Textbook batch normalization: a mean and a variance per channel over every other axis, and the
gradient through both."""

from __future__ import annotations

import numpy as np

from ..kernels import aligned
from ..layers.base import Layer, as_dtype, check_bool, check_positive_int, check_real


class _BatchNorm(Layer):
    """What BatchNorm1D and BatchNorm2D share: everything but the shapes they accept (the
    formulas are in BatchNorm1D's docstring)."""

    _caches = ("_cache",)  # what forward keeps for backward (see Layer.release_memory)

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, dtype=np.float32):
        super().__init__()
        c, self.eps, self.momentum, self.affine, dtype = self._checked(num_features, eps, momentum, affine, dtype)
        self.num_features = c
        if self.affine:
            self.weight, self.bias = aligned.zeros(c, dtype), aligned.zeros(c, dtype)
            self.weight += 1
            self.parameters = [self.weight, self.bias]
            self.parameters_deltas = [aligned.zeros_like(p) for p in self.parameters]
        else:
            self.weight = self.bias = None
        self.running_mean, self.running_var = aligned.zeros(c, dtype), aligned.zeros(c, dtype)
        self.running_var += 1
        self.buffers = [self.running_mean, self.running_var]
        self._cache = None  # what backward needs, from the last forward (see forward)

    @classmethod
    def _checked(cls, num_features, eps, momentum, affine, dtype) -> tuple:
        """The hyperparameters validated: (num_features, eps, momentum, affine, dtype)."""
        name = cls.__name__
        num_features = check_positive_int(name, "num_features", num_features)
        eps = check_real(name, "eps", eps, 0.0, strict=True)
        momentum = check_real(name, "momentum", momentum, 0.0)
        if momentum > 1.0:
            raise ValueError(f"{name}: momentum must be in [0, 1], got {momentum}")
        return num_features, eps, momentum, check_bool(name, "affine", affine), as_dtype(name, dtype)

    @classmethod
    def parameter_specs(cls, num_features, eps=1e-5, momentum=0.1, affine=True, dtype=np.float32) -> list:
        c, _, _, affine, dtype = cls._checked(num_features, eps, momentum, affine, dtype)
        return [((c,), dtype), ((c,), dtype)] if affine else []

    @classmethod
    def buffer_specs(cls, num_features, eps=1e-5, momentum=0.1, affine=True, dtype=np.float32) -> list:
        c, _, _, _, dtype = cls._checked(num_features, eps, momentum, affine, dtype)
        return [((c,), dtype), ((c,), dtype)]  # running_mean, running_var

    def config(self) -> dict:
        return {"num_features": self.num_features, "eps": self.eps, "momentum": self.momentum,
                "affine": self.affine, "dtype": self.running_mean.dtype.name}

    def output_shape(self, input_shape):
        self._check_shape(tuple(input_shape))
        return tuple(input_shape)

    def _checked_input(self, x) -> np.dtype:
        """Check the layer's arrays and ``x`` before a forward; return the dtype to compute in."""
        self._check_parameters_in_place("weight", "bias")
        for index, name in enumerate(("running_mean", "running_var")):
            if index >= len(self.buffers) or getattr(self, name) is not self.buffers[index]:
                # save and load go through buffers: a rebound array would be neither saved nor loaded
                raise ValueError(
                    f"{self.name}: {name} is not the array in buffers (was layer.{name} assigned a new "
                    f"array?); save and load use buffers, so assign into it instead: layer.{name}[...] = new_values"
                )
        self._check_input(x)
        self._check_shape(x.shape)
        if self.training and x.size // self.num_features < 2:
            raise ValueError(
                f"{self.name}: in training mode each feature needs at least 2 values ({self._values}) to "
                f"take a batch variance, got 1 per feature (input of shape {x.shape}): the variance of a "
                "single value is undefined; use a larger batch, or eval mode"
            )
        # The running statistics carry the dtype when there are no parameters (affine=False).
        return (self.weight if self.affine else self.running_mean).dtype

    def _per_channel(self, values, ndim: int) -> np.ndarray:
        """A (C,) array shaped (1, C, 1, ...) to broadcast against an input of ``ndim`` axes."""
        return np.reshape(values, (1, self.num_features) + (1,) * (ndim - 2))

    def forward(self, x, *args):
        x = x.astype(self._checked_input(x), copy=False)
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
        if self.affine:
            deltas = self._delta_buffers()
            deltas[0][...] = (delta * x_hat).sum(axis=axes)
            deltas[1][...] = delta.sum(axis=axes)
            dx_hat = delta * self._per_channel(self.weight, delta.ndim)
        else:
            dx_hat = delta
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

    The textbook twin of ``nnscratch.BatchNorm1D``, which is built on this class: the same
    constructor, parameters, buffers and numbers; the fast layer only computes them another way.

    Shape:
        x: (N, num_features) or (N, num_features, L); y: same as x
        weight, bias, running_mean, running_var: (num_features,)
    """

    _values = "N, or N*L"

    def _check_shape(self, shape: tuple) -> None:
        c = self.num_features
        if len(shape) not in (2, 3) or shape[1] != c:
            raise ValueError(
                f"BatchNorm1D: expected input of shape (N, {c}) or (N, {c}, L) ({c} features), got shape {shape}"
            )


class BatchNorm2D(_BatchNorm):
    """Batch normalization of channels: y = (x - mean) / sqrt(var + eps) * weight + bias, per channel.

    The formulas of forward, backward and the running statistics are ``BatchNorm1D``'s, with the
    statistics per channel over (N, H, W) (M = N*H*W); as PyTorch's BatchNorm2d. Parameters and buffers as
    ``BatchNorm1D``.

    The textbook twin of ``nnscratch.BatchNorm2D``, which is built on this class: the same
    constructor, parameters, buffers and numbers; the fast layer only computes them another way.

    Shape:
        x: (N, num_features, H, W); y: same as x
        weight, bias, running_mean, running_var: (num_features,)
    """

    _values = "N*H*W"

    def _check_shape(self, shape: tuple) -> None:
        c = self.num_features
        if len(shape) != 4 or shape[1] != c:
            raise ValueError(
                f"BatchNorm2D: expected input of shape (N, {c}, H, W) ({c} channels), got shape {shape}"
            )
