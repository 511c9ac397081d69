"""Residual: a skip connection around a chain of layers, y = x + f(x)."""

from __future__ import annotations

import numpy as np

from .layers.base import Container, check_input_array, check_protocol, layer_name, layer_output_shape, with_context
from .sequential import Sequential


class Residual(Container):
    """Residual block: y = x + f(x), where f is ``layers`` applied in sequence (as ``Sequential``).

    Backward: x reaches y along two paths, the skip (identity) and f, so their gradients add:
        dL/dx = delta + f'(x)^T delta
    where the second term is ``delta`` walked back through the layers of f. The skip is why deep
    residual networks train: the gradient reaches early layers even where f's is small.

    f must keep the shape of its input (the shape of x), or the sum is undefined: a mismatch is a
    ``ValueError`` naming both shapes. Like ``Sequential``, a Residual follows the layer protocol
    (``parameters``/``parameters_deltas``/``buffers`` are its layers', in order), nests, passes
    ``train()``/``eval()`` on, can be checked with ``sanity_check`` and saved with ``nn.save``.
    Every layer gets the extra ``args`` of forward, as in ``Sequential``.

    Shape:
        x: whatever the first layer takes; f(x) must have the same shape; y: same as x
    """

    def __init__(self, *layers):
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        if not layers:
            raise ValueError("Residual: expected at least one layer for f in y = x + f(x), got none")
        for index, layer in enumerate(layers):
            check_protocol(index, layer, "Residual")
        self.layers = list(layers)
        self._output = None  # (shape, dtype) of the last output, for backward

    # -- the layer protocol (parameters and parameters_deltas: Container's) --------------------
    def forward(self, x, *args):
        check_input_array("Residual", x)  # before the cast below, which would hide a non-real input
        if x.dtype.kind != "f":
            x = x.astype(np.float32)  # integer images and the like: compute in float32, as the layers do
        fx = self.forward_layers(x, *args)
        if np.shape(fx) != x.shape:
            raise ValueError(
                f"Residual: f(x) has shape {np.shape(fx)} but x has shape {x.shape}; y = x + f(x) needs "
                "f to keep the shape of its input"
            )
        y = x + fx
        self._output = (y.shape, y.dtype)
        return y

    def backward(self, delta):
        if self._output is None:
            raise RuntimeError("Residual.backward called before forward")
        shape, dtype = self._output
        delta = np.asarray(delta)
        if delta.shape != shape:
            raise ValueError(
                f"Residual.backward: expected delta of shape {shape} (the shape of the last output), got {delta.shape}"
            )
        delta = delta.astype(dtype, copy=False)
        delta_f = delta
        for index in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[index]
            try:
                delta_f = layer.backward(delta_f)
            except (ValueError, TypeError) as error:
                raise with_context(error, f"in layer {index} ({layer_name(layer)}) of Residual, backward") from error
        return delta + delta_f  # the skip's gradient plus f's

    # -- a list of layers (len, iteration, repr: Container's) ----------------------------------
    def __getitem__(self, index):
        if isinstance(index, slice):
            # part of f with the skip around it would be another block; part of f alone a Sequential
            raise TypeError(
                "Residual: index it with an int; for a chain of some of its layers, "
                "use Sequential(*block.layers[a:b])"
            )
        return self.layers[index]

    @property
    def name(self) -> str:
        return "Residual"

    # -- inspection ----------------------------------------------------------------------------
    def output_shape(self, input_shape: tuple) -> tuple:
        shape = tuple(input_shape)
        f_shape = shape
        for layer in self.layers:
            f_shape = layer_output_shape(layer, f_shape)
        if f_shape != shape:
            raise ValueError(
                f"Residual: f(x) has shape {f_shape} but x has shape {shape}; y = x + f(x) needs "
                "f to keep the shape of its input"
            )
        return shape

    def summary(self, input_shape: tuple) -> str:
        """The table of ``Sequential.summary`` for f, the layers inside the block, and a line for the sum.

        ``input_shape`` excludes the batch axis, e.g. ``(16, 14, 14)``.
        """
        table = Sequential(*self.layers).summary(input_shape)
        self.output_shape((1, *tuple(input_shape)))  # a block whose f changes the shape says so
        return f"Residual: y = x + f(x), f =\n{table}"
