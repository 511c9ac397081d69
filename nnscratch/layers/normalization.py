"""Normalization: BatchNorm1D and BatchNorm2D (batch statistics per feature), LayerNorm (per sample).

Both batch norms work on a view (A, C, B) of their input, C the features or channels, with the
statistics taken over axes A and B; nnscratch/kernels/channels.py makes the views (no copy, for
Conv2D's channel-major output too) and the per-channel sums. The output keeps the input's layout.
They share their constructor, checks, parameters and buffers with their textbook twins in
nnscratch/reference/normalization.py (through nnscratch/specs/), compute the same numbers, and
only compute forward and backward another way.
"""

from __future__ import annotations

import functools

import numpy as np

from .. import specs
from ..kernels import aligned
from ..kernels.channels import channel_dot, channel_sum, channel_view, delta_view, unview
from ..kernels.memory import KeepsMemory, writable_deltas
from ..kernels.recycle import RECYCLED_SIZE, recycled_empty, work_array
from ..kernels.rows import by_rows, scratch
from ..protocol import Layer
from ..validation import as_dtype, check_bool, check_int, check_number


class _BatchNorm(specs.BatchNormBase):
    """What BatchNorm1D and BatchNorm2D share: forward and backward on the (A, C, B) view.

    The formulas are the reference layers' (nnscratch/reference/normalization.py): read those first."""

    # The last forward's cache, for backward; recycled results are a store: dropped by
    # release_memory() and left out of copies (see kernels/memory.py).
    _caches = ("_cache",)
    _stores = ("_recycled",)

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, dtype=np.float32):
        super().__init__(num_features, eps, momentum, affine, dtype)
        self._cache = None
        self._recycled: dict = {}  # results and scratch, recycled (see kernels/recycle.py)

    def _empty(self, key: str, like: np.ndarray) -> np.ndarray:
        return recycled_empty(self._recycled, key, like.shape, like.dtype)

    def _on_view(self, values) -> np.ndarray:
        """A (C,) array as (1, C, 1), to broadcast against the (A, C, B) view."""
        return np.reshape(values, (1, self.num_features, 1))

    # -- forward and backward, on the (A, C, B) view --------------------------------------------
    def forward(self, x, *args):
        dtype = self._compute_dtype(x)
        x3, layout = channel_view(x.astype(dtype, copy=False))
        if self.training:
            y3, self._cache = self._forward_batch_statistics(x3)
        else:
            y3, self._cache = self._forward_running_statistics(x3)
        self._cache = (*self._cache, x.shape, layout)
        return unview(y3, x.shape, layout)

    def _forward_batch_statistics(self, x3):
        """x_hat = (x - mean) / sqrt(var + eps) with the batch's mean and biased variance;
        running_mean, running_var <- (1 - momentum) * running + momentum * (mean, unbiased var).

        x_hat itself is never stored: y = (x - mean) * (weight / sqrt(var + eps)) + bias in two passes
        over x - mean, which backward keeps instead (x_hat = (x - mean) * inv_std there too)."""
        m = x3.shape[0] * x3.shape[2]
        mean = channel_sum(x3) / m
        centered = np.subtract(x3, mean, out=self._empty("centered", x3))
        var = channel_dot(centered, centered) / m  # two passes (mean first): no cancellation
        inv_std = 1.0 / np.sqrt(var + self.eps)
        y3 = self._empty("y", x3)
        if self.affine:
            np.multiply(centered, inv_std * self._on_view(self.weight), out=y3)
            y3 += self._on_view(self.bias)
        else:
            np.multiply(centered, inv_std, out=y3)
        momentum = self.momentum
        self.running_mean *= 1.0 - momentum
        self.running_mean += momentum * mean.ravel()
        self.running_var *= 1.0 - momentum
        self.running_var += (momentum * m / (m - 1)) * var.ravel()
        return y3, ("batch", centered, inv_std)

    def _forward_running_statistics(self, x3):
        """y = (x - running_mean) / sqrt(running_var + eps) * weight + bias, as one scale and shift."""
        inv_std = self._on_view(1.0 / np.sqrt(self.running_var + self.eps)).astype(x3.dtype, copy=False)
        scale = inv_std * self._on_view(self.weight) if self.affine else inv_std
        shift = -self._on_view(self.running_mean) * scale
        if self.affine:
            shift = shift + self._on_view(self.bias)
        y3 = np.multiply(x3, scale, out=self._empty("y", x3))
        y3 += shift
        return y3, ("running", x3, inv_std)

    def backward(self, delta):
        self._check_forward_called(self._cache)
        kind, saved, inv_std, shape, layout = self._cache
        delta3 = delta_view(self._check_delta(delta, shape).astype(saved.dtype, copy=False), layout, self._recycled)
        gain = inv_std * self._on_view(self.weight) if self.affine else inv_std
        dx = self._empty("dx", saved)
        if kind == "batch":
            # x_hat depends on x through the batch mean and variance too. With M values per channel,
            # dbeta = sum(delta), dgamma = sum(delta * x_hat), and
            # dx = gamma / sqrt(var + eps) * (delta - dbeta / M - x_hat * dgamma / M).
            centered, m = saved, saved.shape[0] * saved.shape[2]  # x_hat = centered * inv_std
            dbeta = channel_sum(delta3)
            dgamma = channel_dot(delta3, centered) * inv_std
            np.multiply(centered, -inv_std * dgamma / m, out=dx)
            dx += delta3
            dx -= dbeta / m
            dx *= gain
        else:
            # The running statistics are constants: y is affine in x, dx = delta * gamma / sqrt(var + eps).
            if self.affine:
                dbeta = channel_sum(delta3)
                x_hat = np.subtract(saved, self._on_view(self.running_mean), out=dx)
                x_hat *= inv_std
                dgamma = channel_dot(delta3, x_hat)
            np.multiply(delta3, gain, out=dx)
        if self.affine:
            deltas = writable_deltas(self)
            deltas[0][...] = dgamma.ravel()
            deltas[1][...] = dbeta.ravel()
        return unview(dx, shape, layout)


class BatchNorm1D(_BatchNorm):
    """Batch normalization of features: y = (x - mean) / sqrt(var + eps) * weight + bias, per feature.

    Training mode: mean and var are the batch's (biased variance, over N, and L for 3-D input), and
    running_mean / running_var are updated as (1 - momentum) * running + momentum * batch statistic,
    with the unbiased variance for running_var. Eval mode: the running statistics are used instead.
    As PyTorch's BatchNorm1d. ``parameters == [weight, bias]`` (starting at 1 and 0) when ``affine``;
    ``buffers == [running_mean, running_var]`` (starting at 0 and 1), saved, never trained.

    Backward in training mode is the full gradient through the batch statistics:
    dx = weight / sqrt(var + eps) * (delta - mean(delta) - x_hat * mean(delta * x_hat)),
    dweight = sum(delta * x_hat), dbias = sum(delta), sums and means over the batch.

    The textbook version of this layer is ``nnscratch.reference.BatchNorm1D``: read it first. This
    one computes the same numbers on a view of the input (kernels/channels.py).

    Shape:
        x: (N, num_features) or (N, num_features, L); y: same as x
        weight, bias, running_mean, running_var: (num_features,)
    """

    ranks, layout, values = specs.BATCHNORM1D


class BatchNorm2D(_BatchNorm):
    """Batch normalization of channels: y = (x - mean) / sqrt(var + eps) * weight + bias, per channel.

    Mean and var are taken per channel over (N, H, W); otherwise as ``BatchNorm1D`` (PyTorch's
    BatchNorm2d): batch statistics and running-statistic updates in training mode, the running
    statistics in eval mode, the full batch-statistics gradient in training.

    The output (and the input gradient) keep the input's memory layout: Conv2D's channel-major
    (C, N, H, W) memory behind an (N, C, H, W) view is worked on as one (C, N*H*W) block, without a
    transposing copy; C-order input as (N, C, H*W). The textbook version of this layer is
    ``nnscratch.reference.BatchNorm2D``: read it first.

    Shape:
        x: (N, num_features, H, W); y: same as x
        weight, bias, running_mean, running_var: (num_features,)
    """

    ranks, layout, values = specs.BATCHNORM2D


class LayerNorm(KeepsMemory, Layer):
    """Layer normalization: y = (x - mean) / sqrt(var + eps) * weight + bias, per sample.

    mean and the biased var are taken over the trailing ``normalized_shape`` axes of each sample, in
    training and evaluation alike (no running statistics), as PyTorch's LayerNorm. With
    ``elementwise_affine``, ``parameters == [weight, bias]`` of shape ``normalized_shape``, starting
    at 1 and 0.

    Backward, with K the number of normalized values per sample and sums over them:
    dx_hat = delta * weight, dx = (dx_hat - mean(dx_hat) - x_hat * mean(dx_hat * x_hat)) / sqrt(var + eps),
    dweight = sum over samples of delta * x_hat, dbias = sum over samples of delta.

    Shape:
        x: (*, *normalized_shape); y: same as x
        weight, bias: normalized_shape
    """

    _caches = ("_cache",)  # what forward keeps for backward (see kernels/memory.py)
    _stores = ("_recycled",)  # its results and work arrays, recycled (see kernels/recycle.py)

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, dtype=np.float32):
        super().__init__()
        self.normalized_shape, self.eps, self.elementwise_affine, self._dtype = self._hyperparameters(
            normalized_shape, eps, elementwise_affine, dtype)
        if self.elementwise_affine:
            self.weight = aligned.zeros(self.normalized_shape, self._dtype)
            self.weight += 1
            self.bias = aligned.zeros(self.normalized_shape, self._dtype)
            self.parameters = [self.weight, self.bias]
            self.parameters_deltas = [aligned.zeros_like(p) for p in self.parameters]
        else:
            self.weight = self.bias = None
        self._cache = None
        self._recycled: dict = {}

    @staticmethod
    def _hyperparameters(normalized_shape, eps, elementwise_affine, dtype) -> tuple:
        """The hyperparameters validated: (normalized_shape as a tuple, eps, elementwise_affine, dtype)."""
        shape = normalized_shape if isinstance(normalized_shape, (tuple, list)) else (normalized_shape,)
        if not shape:
            raise ValueError("LayerNorm: normalized_shape must name at least one axis, got ()")
        shape = tuple(check_int("LayerNorm", "normalized_shape", s, 1) for s in shape)
        return (shape, check_number("LayerNorm", "eps", eps, 0.0, low_inclusive=False),
                check_bool("LayerNorm", "elementwise_affine", elementwise_affine), as_dtype("LayerNorm", dtype))

    @classmethod
    def parameter_specs(cls, normalized_shape, eps=1e-5, elementwise_affine=True, dtype=np.float32) -> list:
        shape, _, affine, dtype = cls._hyperparameters(normalized_shape, eps, elementwise_affine, dtype)
        return [(shape, dtype), (shape, dtype)] if affine else []

    def config(self) -> dict:
        shape = self.normalized_shape
        return {"normalized_shape": shape[0] if len(shape) == 1 else list(shape), "eps": self.eps,
                "elementwise_affine": self.elementwise_affine, "dtype": self._dtype.name}

    def output_shape(self, input_shape):
        self._check_shape(tuple(input_shape))
        return tuple(input_shape)

    def _check_shape(self, shape: tuple) -> None:
        k = len(self.normalized_shape)
        if len(shape) < k or tuple(shape[len(shape) - k :]) != self.normalized_shape:
            raise ValueError(
                f"LayerNorm: expected input whose trailing axes are {self.normalized_shape} "
                f"(shape (*, {', '.join(map(str, self.normalized_shape))})), got shape {tuple(shape)}"
            )

    def _empty(self, key: str, shape: tuple, dtype) -> np.ndarray:
        return work_array(self._recycled, key, shape, dtype)

    def forward(self, x, *args):
        self._check_parameters_in_place("weight", "bias")
        self._check_input(x)
        self._check_shape(x.shape)
        # The dtype comes from the parameters when there are any (a check swaps them for float64).
        dtype = self.weight.dtype if self.elementwise_affine else np.result_type(self._dtype, x.dtype)
        k = int(np.prod(self.normalized_shape))
        x2 = np.ascontiguousarray(x, dtype=dtype).reshape(-1, k)
        x_hat, y2 = self._empty("x_hat", x2.shape, dtype), self._empty("y", x2.shape, dtype)
        inv_std = np.empty((x2.shape[0], 1), dtype)
        affine = (self.weight.reshape(1, k), self.bias.reshape(1, k)) if self.elementwise_affine else None
        # row by row, in cache-sized blocks (kernels/rows.py)
        by_rows(functools.partial(_normalize, eps=self.eps, affine=affine), x2, x_hat, y2, inv_std)
        self._cache = (x_hat, inv_std, x.shape)
        return y2.reshape(x.shape)

    def backward(self, delta):
        self._check_forward_called(self._cache)
        x_hat, inv_std, shape = self._cache
        k = x_hat.shape[1]
        delta2 = np.ascontiguousarray(self._check_delta(delta, shape), dtype=x_hat.dtype).reshape(-1, k)
        if self.elementwise_affine:
            deltas = writable_deltas(self)
            deltas[0][...] = np.einsum("rk,rk->k", delta2, x_hat).reshape(self.normalized_shape)
            deltas[1][...] = _column_sums(delta2).reshape(self.normalized_shape)
        weight = self.weight.reshape(1, k) if self.elementwise_affine else None
        dx = self._empty("dx", x_hat.shape, x_hat.dtype)
        by_rows(functools.partial(_normalize_backward, weight=weight), delta2, x_hat, inv_std, dx)
        return dx.reshape(shape)


def _normalize(x2, x_hat, y2, inv_std, eps, affine) -> None:
    """Each row of x2 normalized: x_hat = (x - mean) / sqrt(var + eps), y = x_hat * weight + bias
    (``affine`` = (weight, bias), or None), into the given arrays; 1 / sqrt(var + eps) into inv_std."""
    k = x2.shape[1]
    mean = _row_sums(x2)[:, None] / k
    np.subtract(x2, mean, out=x_hat)
    var = np.einsum("rk,rk->r", x_hat, x_hat)[:, None] / k  # two passes (mean first): no cancellation
    inv_std[...] = 1.0 / np.sqrt(var + eps)
    x_hat *= inv_std
    if affine is None:
        np.copyto(y2, x_hat)
    else:
        np.multiply(x_hat, affine[0], out=y2)
        y2 += affine[1]


def _normalize_backward(delta2, x_hat, inv_std, dx, weight) -> None:
    """dL/dx of each row into dx, with dx_hat = delta * weight:
    dx = (dx_hat - mean(dx_hat) - x_hat * mean(dx_hat * x_hat)) / sqrt(var + eps), per sample."""
    k = x_hat.shape[1]
    if weight is None:
        np.copyto(dx, delta2)
    else:
        np.multiply(delta2, weight, out=dx)
    projection = np.einsum("rk,rk->r", dx, x_hat)[:, None] / k
    mean = _row_sums(dx)[:, None] / k
    dx -= mean
    dx -= np.multiply(x_hat, projection, out=scratch("layernorm", x_hat))  # the thread's block-sized memory
    dx *= inv_std


def _row_sums(x2: np.ndarray) -> np.ndarray:
    """x2 (R, K) summed along each row, by einsum (measured at (384, 128) float32: 4.4 us, against
    np.sum(axis=1)'s 12). A BLAS product x2 @ ones (2.7 us) may hand a block to BLAS's threads, and
    might sum a row otherwise for another number of rows; einsum sums each row the same way always."""
    return np.einsum("rk->r", x2)


def _column_sums(x2: np.ndarray) -> np.ndarray:
    """x2 (R, K) summed down each column: for a large x2 one BLAS product, ones @ x2 (5.5 us against
    np.sum(axis=0)'s 21 at (768, 128) float32); for a small one the product's call costs more."""
    return np.ones(x2.shape[0], x2.dtype) @ x2 if x2.size >= RECYCLED_SIZE else x2.sum(axis=0)
