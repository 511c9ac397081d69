"""Using a trained network: its model without the loss, what input it takes, class probabilities.

A checkpoint written by ``train-mnist --save`` holds the whole training network, the model followed
by its loss (``... -> SoftmaxCrossEntropy -> Mean``); one saved with ``nn.save(model, path)`` may be
the bare model. ``inference_model`` gives the model either way, and ``class_probabilities`` its
answers as probabilities, whether it ends in logits or in ``Softmax``. ``without_loss`` drops the
loss the same way but keeps nested Sequentials (``export_onnx``, ``to_torch``).
"""

from __future__ import annotations

import numpy as np

from . import layers as builtin_layers
from .layers import Softmax, losses
from .layers.activations import softmax
from .containers import Sequential
from .protocol import layer_name

# the layers that turn scores into a loss, every layer exported from layers/losses.py (so a new loss
# is one too): dropped from the end of a training network
LOSS_LAYERS = tuple(
    layer for layer in map(vars(builtin_layers).get, builtin_layers.__all__) if layer.__module__ == losses.__name__
)
# the input shapes a 28x28 digit can take, tried in this order: images first (Conv2D), then flat (Linear)
DIGIT_SHAPES = ((1, 28, 28), (784,), (28, 28))


def _flat_layers(net) -> list:
    """The chain of layers, nested Sequentials opened up (they run the same)."""
    if isinstance(net, Sequential):
        return [inner for layer in net.layers for inner in _flat_layers(layer)]
    return [net]


def inference_model(net) -> Sequential:
    """``net`` without the loss layers at its end (CrossEntropy, SoftmaxCrossEntropy, Mean).

    Shares the layer objects with ``net``. A network that is nothing but loss layers is refused.
    """
    layers = _flat_layers(net)
    while layers and isinstance(layers[-1], LOSS_LAYERS):
        layers.pop()
    if not layers:
        raise ValueError("inference_model: the network holds only loss layers, no model to classify with")
    return Sequential(*layers)


def _is_loss(layer) -> bool:
    if isinstance(layer, Sequential):
        return bool(layer.layers) and all(_is_loss(inner) for inner in layer.layers)
    return isinstance(layer, LOSS_LAYERS)


def without_loss(net):
    """``net`` without the loss layers at its end, its structure kept (for export_onnx and to_torch).

    ``Sequential(..., Linear(128, 10), SoftmaxCrossEntropy(), Mean())`` gives ``Sequential(...,
    Linear(128, 10))`` sharing the layer objects, in the same mode; a trailing ``Sequential`` of
    losses goes too. Unlike ``inference_model`` nested Sequentials stay nested, and a network
    without a loss at the end (or a single layer) comes back as it is.
    """
    if not isinstance(net, Sequential):
        return net
    layers = list(net.layers)
    while layers and _is_loss(layers[-1]):
        layers.pop()
    return net if len(layers) == len(net.layers) else net[: len(layers)]  # a slice keeps the mode


# -- for the converters, export_onnx and to_torch: a table of layer classes, and one refusal --------
def converter_registrar(table: dict):
    """A decorator filling ``table``: ``@converts(A, B)`` makes the decorated function the converter
    of layer classes A and B."""

    def converts(*classes):
        def register(function):
            for cls in classes:
                table[cls] = function
            return function

        return register

    return converts


def no_converter_error(tool: str, where: str, layer, form: str, converted: str) -> TypeError:
    """The ``TypeError`` of ``tool`` for the layer at ``where`` that it has no ``form`` for: a loss in
    the middle of the model, or a layer outside ``converted`` (the names of what it takes)."""
    if isinstance(layer, LOSS_LAYERS):
        return TypeError(
            f"{tool}: {where} is a {layer_name(layer)}, a loss in the middle of the model; "
            f"{tool} drops the losses at the end of a training network only"
        )
    return TypeError(
        f"{tool}: {where} is a {layer_name(layer)}, which has no {form} here; {tool} converts "
        f"{converted} (and drops the losses at the end of a training network)"
    )


def ends_in_softmax(model) -> bool:
    """Whether the model's outputs are probabilities already (its last layer is ``Softmax``)."""
    layers = _flat_layers(model)
    return bool(layers) and isinstance(layers[-1], Softmax)


def class_probabilities(model, x, batch_size: int = 1000) -> np.ndarray:
    """The model's class probabilities: its outputs if it ends in Softmax, else their softmax.

    Shape:
        x (N, ...) as the model takes it -> (N, C) float64, rows summing to 1
    """
    from .evaluation import predict

    scores = predict(model, x, batch_size)
    if np.ndim(scores) != 2:
        raise ValueError(f"class_probabilities: the model must give scores (N, C), got shape {np.shape(scores)}")
    if ends_in_softmax(model):
        return np.asarray(scores, dtype=np.float64)
    return softmax(np.asarray(scores, dtype=np.float64))  # in float64: tiny probabilities keep their digits


def model_dtype(model) -> np.dtype:
    """The dtype of the model's parameters (float32 when it has none): the dtype to feed it."""
    parameters = model.parameters
    return np.dtype(parameters[0].dtype) if parameters else np.dtype(np.float32)


def digit_input_shape(model) -> tuple:
    """The shape one 28x28 digit must take for ``model``: (1, 28, 28), (784,) or (28, 28).

    Found by running the model on one zero sample of each shape in turn; the first that gives
    scores of shape (1, C), C >= 2, wins. Raises ``ValueError`` when none fits (a network made for
    other inputs), quoting what the network said about the most telling shape: one of the right
    number of dimensions (a wrong feature or channel count says more than a wrong rank).
    """
    from .evaluation import predict

    errors = []
    for shape in DIGIT_SHAPES:
        try:  # predict runs in eval mode: a BatchNorm's running statistics are not touched
            out = predict(model, np.zeros((1, *shape), dtype=model_dtype(model)))
        except (ValueError, TypeError) as error:
            errors.append((shape, str(error)))
            continue
        if np.ndim(out) == 2 and np.shape(out)[1] >= 2:
            return shape
        errors.append((shape, f"gives outputs of shape {np.shape(out)}, expected class scores (1, C)"))
    # The most telling: a wrong feature or channel count says more than a wrong rank, and for a model
    # that starts with Linear (which takes any leading axes) the flat digit is the one meant.
    flat_first = hasattr(_flat_layers(model)[0], "in_features") if _flat_layers(model) else False
    telling = sorted(errors, key=lambda found: ("-D input" in found[1], not (flat_first and len(found[0]) == 1)))
    shape, said = telling[0]
    tried = ", ".join(str(s) for s in DIGIT_SHAPES)
    raise ValueError(f"the network does not take a 28x28 digit (tried the shapes {tried}); as {shape}: {said}")
