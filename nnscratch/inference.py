"""Using a trained network: its model without the loss, what input it takes, class probabilities.

A checkpoint written by ``train-mnist --save`` holds the whole training network, the model followed
by its loss (``... -> SoftmaxCrossEntropy -> Mean``); one saved with ``nn.save(model, path)`` may be
the bare model. ``inference_model`` gives the model either way (``predict``, ``report`` and the
converters in ``nnscratch.export`` all drop the loss through it), and ``class_probabilities`` its
answers as probabilities, whether it ends in logits or in ``Softmax``.
"""

from __future__ import annotations

import numpy as np

from .containers import Sequential
from .layers import Softmax, losses
from .layers.softmax import softmax
from .protocol import walk

# the layers that turn scores into a loss, every layer exported from layers/losses/ (so a new loss
# is one too): dropped from the end of a training network
LOSS_LAYERS = tuple(getattr(losses, name) for name in losses.__all__)
# the input shapes a 28x28 digit can take, tried in this order: images first (Conv2D), then flat (Linear)
DIGIT_SHAPES = ((1, 28, 28), (784,), (28, 28))


def _chain(net) -> list:
    """The layers ``net`` runs one after the other: nested Sequentials opened, a Residual one step."""
    steps = walk(net, opens=lambda layer: isinstance(layer, Sequential))
    return [layer for layer in steps if not isinstance(layer, Sequential)]


def _without_trailing_losses(net):
    """What is left of ``net`` once the losses it runs last are dropped: ``net`` itself when it does
    not end in one, a new Sequential of what is left (a trailing nested Sequential trimmed the same
    way), None when nothing is."""
    if not isinstance(net, Sequential):
        return None if isinstance(net, LOSS_LAYERS) else net
    layers, changed = list(net.layers), False
    while layers:
        last = layers[-1]
        kept = _without_trailing_losses(last)
        if kept is last:
            break
        changed = True
        if kept is not None:
            layers[-1] = kept
            break
        layers.pop()  # a loss, or a Sequential of losses only: the layer before may be one too
    if not changed:
        return net
    if not layers:
        return None
    trimmed = Sequential(*layers)
    trimmed.training = net.training  # the mode is kept, as a slice of a Sequential keeps it
    return trimmed


def inference_model(net, tool: str = "inference_model") -> Sequential:
    """``net`` without the loss layers at its end (CrossEntropy, SoftmaxCrossEntropy, Mean, ...).

    The one rule for dropping the loss, used by ``predict``, ``report``, ``export_onnx`` and
    ``to_torch``: the layers that run last are dropped while they are losses, looking into a
    trailing nested ``Sequential`` (trimmed the same way, or dropped when it holds only losses).
    The structure is kept: nested Sequentials stay nested (so the PyTorch twin has the same module
    tree, and an error names a layer where it sits in ``net``), and the layer objects are shared,
    not copied. A ``Sequential`` comes back as it is when it does not end in a loss, a trimmed
    one keeps its mode, and a bare layer comes back in a ``Sequential``. A loss anywhere else (in
    the middle, inside a ``Residual``) is left where it is, for the caller to refuse.

    ``Sequential(Sequential(Linear(784, 10), ReLU()), Sequential(SoftmaxCrossEntropy(), Mean()))``
    gives ``Sequential(Sequential(Linear(784, 10), ReLU()))``.

    Raises ``ValueError`` (its message starting with ``tool``) when no layer is left.
    """
    model = _without_trailing_losses(net)
    if model is not None and not isinstance(model, Sequential):
        model = Sequential(model)
        model.training = bool(getattr(net, "training", True))
    if model is None or not _chain(model):
        raise ValueError(f"{tool}: the network holds no layers besides its loss layers, no model to run")
    return model


def ends_in_softmax(model) -> bool:
    """Whether the model's outputs are probabilities already (its last layer is ``Softmax``)."""
    layers = _chain(model)
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
    chain = _chain(model)
    flat_first = bool(chain) and hasattr(chain[0], "in_features")
    telling = sorted(errors, key=lambda found: ("-D input" in found[1], not (flat_first and len(found[0]) == 1)))
    shape, said = telling[0]
    tried = ", ".join(str(s) for s in DIGIT_SHAPES)
    raise ValueError(f"the network does not take a 28x28 digit (tried the shapes {tried}); as {shape}: {said}")
