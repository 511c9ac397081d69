"""Layers that only change an array's shape."""

from __future__ import annotations

import math

import numpy as np

from ..kernels.memory import KeepsMemory
from ..kernels.recycle import copy_in_order, memory_order
from ..protocol import Layer


class Flatten(KeepsMemory, Layer):
    """Flatten every axis but the batch axis: (N, C, H, W) -> (N, C*H*W).

    Forward returns a view of the input when it can (no copy); backward reshapes delta back, into
    the input's memory order when that was not C order (Conv2D and MaxPool2D hand out channel-major
    (C, N, H, W) memory behind their (N, C, H, W) outputs, and the layer before reads a delta in its
    own order several times faster).

    Shape:
        x: (N, *); y: (N, prod(*))
    """

    def __init__(self):
        super().__init__()
        self._shape = None
        self._axis_order = None  # the input's memory order, when it was not C order

    def output_shape(self, input_shape):
        return (input_shape[0], math.prod(input_shape[1:]))

    def forward(self, x, *args):
        self._check_input(x)
        if x.ndim < 1:
            raise ValueError("Flatten: expected an input with a batch axis (N, ...), got a scalar")
        self._shape = x.shape
        self._axis_order = None if x.flags.c_contiguous else memory_order(x)
        return x.reshape(x.shape[0], -1)

    def backward(self, delta):
        self._check_forward_called(self._shape)
        delta = np.asarray(delta)
        expected = self.output_shape(self._shape)
        if delta.shape != expected:
            raise ValueError(f"Flatten.backward: expected delta of shape {expected}, got {delta.shape}")
        delta = delta.reshape(self._shape)
        if self._axis_order is None:
            return delta
        return copy_in_order(delta, self._axis_order)
