"""Sequential: a chain of layers that is itself a layer."""

from __future__ import annotations

import numpy as np

from .layers.base import Container, check_protocol, layer_name, layer_output_shape, with_context


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
        shape = tuple(input_shape)
        for layer in self.layers:
            shape = layer_output_shape(layer, shape)
        return shape

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
