"""Containers: layers made of layers. ``Sequential`` chains them; ``Residual`` adds a skip around them.

A container keeps its children in ``self.layers`` and follows the layer protocol itself, so
containers nest, train, save and can be checked like any layer. What every container does the same
way (modes, buffers, parameters, iteration, repr) is ``Container``'s.
"""

from __future__ import annotations

import numpy as np

from .kernels.memory import release_memory
from .protocol import check_protocol, children, layer_name, layer_output_shape, with_context
from .validation import check_input_array, check_mode


class Container:
    """What every container of layers (``Sequential``, a residual block, ...) does the same way.

    The subclass keeps its children in ``self.layers``. ``train``/``eval`` set the container's own
    ``training`` and pass the mode on to every child that has ``train`` (a plain protocol layer
    without it is left alone); ``buffers`` concatenates the children's, in order. A subclass that
    also has a ``name`` gets the rest: ``parameters``/``parameters_deltas`` (its layers', in order),
    ``__call__``, ``len``, iteration, an empty ``config`` and a repr listing its layers.
    """

    training: bool = True

    def train(self, mode=True):
        """Set training mode (``mode=False``: eval mode) here and in every child; returns self."""
        mode = check_mode(getattr(self, "name", type(self).__name__), mode)
        self.training = mode
        for child in children(self):
            if callable(getattr(child, "train", None)):
                child.train(mode)
        return self

    def eval(self):
        """Set eval mode, ``train(False)``, here and in every child; returns self."""
        return self.train(False)

    @property
    def buffers(self) -> list:
        return [b for child in children(self) for b in getattr(child, "buffers", [])]

    def release_memory(self) -> None:
        """``release_memory()`` on every layer nested in the container that has it."""
        release_memory(self)

    @property
    def parameters(self) -> list:
        return [p for layer in self.layers for p in layer.parameters]

    @property
    def parameters_deltas(self) -> list:
        return [d for layer in self.layers for d in layer.parameters_deltas]

    def forward_layers(self, x, *args):
        """Run ``x`` through the layers in order; an error says which layer of the container raised it."""
        for index, layer in enumerate(self.layers):
            try:
                x = layer.forward(x, *args)
            except (ValueError, TypeError) as error:
                raise with_context(error, f"in layer {index} ({layer_name(layer)}) of {self.name}") from error
        return x

    def __call__(self, x, *args):
        return self.forward(x, *args)

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    def config(self) -> dict:
        return {}

    def __repr__(self) -> str:
        lines = [f"{self.name}("]
        for index, layer in enumerate(self.layers):
            inner = repr(layer).replace("\n", "\n  ")
            lines.append(f"  ({index}): {inner}")
        lines.append(")")
        return "\n".join(lines)


class Sequential(Container):
    """Chain layers: y = layer_k(... layer_2(layer_1(x, *args), *args) ..., *args).

    Every layer gets the extra ``args`` (the loss targets); layers that do not need them ignore
    them. ``backward`` walks the chain in reverse, handing each layer's dL/dx to the one before.
    A Sequential follows the layer protocol itself, so it nests and can be checked and optimised
    like any layer. ``net[i]`` is a layer, ``net[a:b]`` a Sequential sharing the same layer objects
    (``net[:-2]`` is the model without its loss and mean). ``train()``/``eval()`` set the mode of
    every layer that has one; ``buffers`` lists the layers' buffers in order (see ``Container``).

    Shape:
        x: whatever the first layer takes; y: whatever the last layer returns
    """

    def __init__(self, *layers):
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        for index, layer in enumerate(layers):
            check_protocol(index, layer, "Sequential")
        self.layers = list(layers)

    # -- the layer protocol (parameters and parameters_deltas: Container's) --------------------
    def forward(self, x, *args):
        return self.forward_layers(x, *args)

    def backward(self, delta=1.0, input_delta=True):
        """Walk the chain in reverse, each layer's dL/dx becoming the delta of the one before.

        Returns dL/dx of the first layer's input. ``input_delta=False`` is an opt-in for training
        loops, which never use the gradient of the data: the layers in front of the first layer
        with parameters are not run backward (they have no parameter deltas to set), that layer is
        asked to skip its own dL/dx when it has a ``needs_input_delta`` attribute (as ``Linear``
        does; a nested Sequential is passed ``input_delta=False``), and the result is None. The
        parameter deltas are the same either way.
        """
        first = 0 if input_delta else _first_with_parameters(self.layers)
        for index in range(len(self.layers) - 1, first - 1, -1):
            layer = self.layers[index]
            try:
                if index == first and not input_delta:
                    delta = _backward_without_input_delta(layer, delta)
                else:
                    delta = layer.backward(delta)
            except (ValueError, TypeError) as error:
                raise with_context(error, f"in layer {index} ({layer_name(layer)}) of Sequential, backward") from error
        return delta if input_delta else None

    # -- a list of layers (len, iteration, repr: Container's) ----------------------------------
    def __getitem__(self, index):
        if isinstance(index, slice):
            part = Sequential(*self.layers[index])
            part.training = self.training
            return part
        return self.layers[index]

    @property
    def name(self) -> str:
        return "Sequential"

    # -- inspection ----------------------------------------------------------------------------
    def output_shape(self, input_shape: tuple) -> tuple:
        return chain_output_shape(self.layers, input_shape)

    @property
    def integer_input(self) -> bool:
        """Whether the chain's input is integer ids: its first layer's (see nnscratch/protocol.py)."""
        return bool(self.layers) and bool(getattr(self.layers[0], "integer_input", False))

    def summary(self, input_shape: tuple) -> str:
        """A table of each layer's output shape and parameter count, for one input sample.

        ``input_shape`` excludes the batch axis, e.g. ``(1, 28, 28)``; the batch shows as N.
        """
        shape = (1, *tuple(input_shape))
        rows = [("#", "layer", "output shape", "parameters")]
        total = 0
        for index, layer in enumerate(self.layers):
            try:
                shape = layer_output_shape(layer, shape)
                shown = str(("N", *shape[1:])).replace("'", "") if shape else "()"
            except Exception as error:  # a user layer that cannot be run on zeros: say so, keep going
                shown = f"? ({type(error).__name__})"
            count = sum(int(np.size(p)) for p in layer.parameters)
            total += count
            rows.append((str(index), repr(layer).split("\n")[0].rstrip("("), shown, f"{count:,}"))
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
        lines.insert(1, "-" * len(lines[0]))
        lines.append(f"Total parameters: {total:,}")
        return "\n".join(lines)


def chain_output_shape(layers, input_shape: tuple) -> tuple:
    """The output shape of ``layers`` run one after the other on an input of ``input_shape``."""
    shape = tuple(input_shape)
    for layer in layers:
        shape = layer_output_shape(layer, shape)
    return shape


def _first_with_parameters(layers) -> int:
    """Index of the first layer that has parameters (len(layers) when none has)."""
    for index, layer in enumerate(layers):
        if len(layer.parameters):
            return index
    return len(layers)


def _backward_without_input_delta(layer, delta):
    """``layer.backward(delta)`` for its parameter deltas only; dL/dx is skipped where the layer allows."""
    if isinstance(layer, Sequential):
        return layer.backward(delta, input_delta=False)
    if not hasattr(layer, "needs_input_delta"):
        layer.backward(delta)  # a layer without the switch computes dL/dx anyway; drop it
        return None
    previous = layer.needs_input_delta
    layer.needs_input_delta = False
    try:
        layer.backward(delta)
    finally:
        # Only for this call: every other caller (gradient checks included) gets the full backward.
        layer.needs_input_delta = previous
    return None


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
        x: whatever the first layer takes; f(x) must have the same shape; y: same shape as x, in f(x)'s dtype
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
        if isinstance(fx, np.ndarray) and fx.dtype.kind == "f" and fx.dtype != x.dtype:
            x = x.astype(fx.dtype)  # the block computes in its layers' dtype, as they do (float64 in, float32 out)
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
        f_shape = chain_output_shape(self.layers, shape)
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
