"""Mean: the scalar a training step minimises, over the per-sample losses (or the tokens not ignored)."""

from __future__ import annotations

import math

import numpy as np

from ...kernels.memory import KeepsMemory
from ...protocol import Layer


class Mean(KeepsMemory, Layer):
    """Mean of all elements: y = (1 / size) sum_i x_i, a scalar. Backward: dL/dx_i = delta / size.

    A ``numpy.ma.MaskedArray`` (the per-token losses of a cross-entropy with ignored tokens) is
    averaged over its unmasked elements only: y = sum(unmasked) / count(unmasked), and backward
    gives delta / count to each unmasked element and exactly 0 to the masked ones. With every
    element masked there is nothing to average: y = 0.0 and the gradient is all zeros (PyTorch's
    ``CrossEntropyLoss`` gives NaN there), so a batch of padding alone leaves the weights as they are.

    Shape:
        x: any; y: () scalar; backward delta: () scalar (1.0 when it is the final loss)
    """

    _caches = ("_shape", "_mask")
    takes_masked_input = True  # the one layer that does (see above); every other one refuses a masked array

    def __init__(self):
        super().__init__()
        self._shape = None
        self._dtype = None
        self._mask = None  # the masked elements of a masked input, None for a plain array
        self._count = 0  # the number of unmasked elements of a masked input

    def output_shape(self, input_shape):
        return ()

    def forward(self, x, *args):
        if isinstance(x, np.generic):  # a numpy scalar, e.g. another Mean's output
            x = np.asarray(x)
        self._check_input(x)
        if x.size == 0:
            raise ValueError(f"Mean: expected a non-empty input, got shape {x.shape}")
        dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float32)
        self._shape, self._dtype, self._mask = x.shape, dtype, None
        if isinstance(x, np.ma.MaskedArray) and np.ma.getmask(x) is not np.ma.nomask:
            return self._masked_mean(x, dtype)
        # What np.mean computes (a sum in dtype, then a division), without its Python-level wrapper.
        return np.add.reduce(x, axis=None, dtype=dtype) / dtype.type(x.size)

    def _masked_mean(self, x: np.ma.MaskedArray, dtype) -> np.ndarray:
        mask = np.ma.getmaskarray(x)
        count = x.size - int(np.count_nonzero(mask))
        self._mask, self._count = mask, count
        if count == 0:
            return dtype.type(0.0)
        values = np.where(mask, 0, x.data)  # whatever sits under the mask counts for nothing
        return np.add.reduce(values, axis=None, dtype=dtype) / dtype.type(count)

    def backward(self, delta=1.0):
        self._check_forward_called(self._shape)
        delta = np.asarray(delta, dtype=self._dtype)
        if delta.shape != ():
            raise ValueError(f"Mean.backward: expected a scalar delta (shape ()), got shape {delta.shape}")
        if self._mask is None:
            return np.full(self._shape, delta / math.prod(self._shape), dtype=self._dtype)
        share = delta / max(self._count, 1)
        return np.where(self._mask, self._dtype.type(0), share).astype(self._dtype, copy=False)
