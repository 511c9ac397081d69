"""The fully connected layer."""

from __future__ import annotations

import numpy as np

from .. import init
from ..kernels import aligned
from ..kernels.memory import KeepsMemory, writable_deltas
from ..kernels.recycle import kept_ones
from ..protocol import Layer
from ..validation import as_dtype, check_bool, check_int


class Linear(KeepsMemory, Layer):
    """Affine map of the last axis: y = x @ W + b.

    Initialisation is He (Kaiming) uniform, W ~ U(-sqrt(6 / in_features), +sqrt(6 / in_features)),
    which keeps activations at a steady scale through ReLU networks; the bias starts at zero
    (``nnscratch.init.kaiming_uniform_`` and ``zeros_``: re-initialise with any ``nnscratch.init``
    function, whose fans follow this (in, out) layout).

    Backward: dL/dW = x^T @ delta, dL/db = sum of delta over the batch, dL/dx = delta @ W^T.

    Any number of leading axes, as PyTorch's: a sequence (N, T, in_features) is worked on as the
    (N*T, in_features) matrix of its rows (a view), so the same three products serve it.

    ``needs_input_delta`` (True by default): set to False, backward still sets the parameter
    deltas but skips dL/dx and returns None. For the first layer of a network in training, where
    nobody uses the gradient of the data, that saves a third of the layer's matrix products (PyTorch
    skips it too: the data does not require grad). ``Sequential.backward(input_delta=False)`` sets it
    for the duration of one call; leave it True everywhere else (gradient checks need dL/dx).

    Shape:
        x: (N, *, in_features)
        y: (N, *, out_features)
        weight: (in_features, out_features), bias: (out_features,)
    """

    _caches = ("_x", "_ones_cache")

    def __init__(self, in_features, out_features, bias=True, dtype=np.float32, rng=None):
        super().__init__()
        self.in_features = check_int("Linear", "in_features", in_features, 1)
        self.out_features = check_int("Linear", "out_features", out_features, 1)
        bias = check_bool("Linear", "bias", bias)
        dtype = as_dtype("Linear", dtype)
        # Parameters, deltas and optimizer state are 64-byte aligned: see kernels/aligned.py.
        self.weight = init.kaiming_uniform_(aligned.empty((self.in_features, self.out_features), dtype), rng=rng)
        self.parameters = [self.weight]
        if bias:
            self.bias = init.zeros_(aligned.empty(self.out_features, dtype))
            self.parameters.append(self.bias)
        else:
            self.bias = None
        # Preallocated gradient buffers: backward overwrites them in place every step.
        self.parameters_deltas = [aligned.zeros_like(p) for p in self.parameters]
        self.needs_input_delta = True
        self._x = None
        self._ones_cache = None

    @classmethod
    def parameter_specs(cls, in_features, out_features, bias=True, dtype=np.float32) -> list:
        in_features = check_int("Linear", "in_features", in_features, 1)
        out_features = check_int("Linear", "out_features", out_features, 1)
        dtype = as_dtype("Linear", dtype)
        specs = [((in_features, out_features), dtype)]
        return specs + [((out_features,), dtype)] if check_bool("Linear", "bias", bias) else specs

    def config(self) -> dict:
        return {
            "in_features": self.in_features,
            "out_features": self.out_features,
            "bias": self.bias is not None,
            "dtype": self.weight.dtype.name,
        }

    def output_shape(self, input_shape):
        self._check_input_shape(tuple(input_shape))
        return (*input_shape[:-1], self.out_features)

    def _check_input_shape(self, shape: tuple) -> None:
        if len(shape) < 2 or shape[-1] != self.in_features:
            raise ValueError(
                f"Linear: expected {self.in_features} input features (x of shape (N, {self.in_features}) or "
                f"(N, ..., {self.in_features})), got x of shape {shape}"
            )

    def forward(self, x, *args):
        self._check_parameters_in_place("weight", "bias")
        self._check_input(x)
        self._check_input_shape(x.shape)
        x = x.astype(self.weight.dtype, copy=False)
        self._x = x
        rows = x if x.ndim == 2 else x.reshape(-1, self.in_features)  # (N*T, in): a view when it can be
        y = rows @ self.weight
        if self.bias is not None:
            y += self.bias
        return y if x.ndim == 2 else y.reshape(*x.shape[:-1], self.out_features)

    def backward(self, delta):
        self._check_forward_called(self._x)
        x = self._x
        delta = self._check_delta(delta, (*x.shape[:-1], self.out_features)).astype(x.dtype, copy=False)
        if x.ndim != 2:
            x, delta = x.reshape(-1, self.in_features), delta.reshape(-1, self.out_features)
        deltas = writable_deltas(self)
        np.matmul(x.T, delta, out=deltas[0])
        if self.bias is not None:
            # The sum of delta over the rows, written as ones @ delta: one BLAS matrix-vector product.
            # Measured float32, one thread: 2.2 us against np.sum(delta, axis=0)'s 5.6 at 128x256,
            # 5.2 against 19.1 at 768x128 (a GPT block's rows), 2.2 against 15.6 at 1000x10.
            self._ones_cache = kept_ones(self._ones_cache, x.shape[0], x.dtype)
            np.matmul(self._ones_cache, delta, out=deltas[1])
        if not self.needs_input_delta:
            return None
        dx = delta @ self.weight.T
        return dx if self._x.ndim == 2 else dx.reshape(self._x.shape)
