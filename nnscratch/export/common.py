"""What the converters share: their tables, the walk over containers, the loss dropped, the refusal.

Each converter is a table from a layer class to a small function, filled with
``@table.converts(...)``, and a walk over the model. The walk opens the containers itself
(``CONTAINERS``: ``Sequential`` and ``Residual``, whose layers it converts one by one with their
positions, ``model[1][2]``) and asks the table for every other layer. Before any work,
``convertible`` drops the trailing losses (``inference_model``'s rule, the one ``predict`` uses) and
looks every layer up, so a layer without a converter, a loss in the middle of the model included,
is a ``TypeError`` naming it and where it sits, before anything is built or any shape is checked.

The converters name the layer classes through the packages (``layers.Linear``,
``reference.Conv2D``): ``nnscratch.layers.__all__`` and ``nnscratch.reference.__all__`` are the one
list of the built-in classes.
"""

from __future__ import annotations

from ..containers import Residual, Sequential
from ..inference import LOSS_LAYERS, inference_model
from ..protocol import layer_class_name, layer_name

# The containers each converter opens itself, converting the layers inside one by one (the exact
# classes: a user's subclass may compute something else, and is refused).
CONTAINERS = (Sequential, Residual)


def spoken_list(names) -> str:
    """``"A, B and C"``: names as a sentence lists them."""
    names = list(names)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def refusal(tool: str, where: str, what: str, form: str, converted, more: str = "") -> TypeError:
    """The ``TypeError`` of ``tool`` for the ``what`` at ``where`` that it has no ``form`` for;
    ``converted`` are the names of what it takes."""
    return TypeError(f"{tool}: {where} is a {what}, which has no {form} here; {tool} converts "
                     f"{spoken_list(converted)}{more}")


def positions(inner, where: str) -> list:
    """``[(layer, "model[i]"), ...]``: the layers inside a container at ``where``, with their positions."""
    return [(layer, f"{where}[{index}]") for index, layer in enumerate(inner)]


def walk_positions(layer, where: str = "model"):
    """``(layer, where)``, then every layer inside it through ``CONTAINERS``, depth first."""
    yield layer, where
    if type(layer) in CONTAINERS:
        for inner, inner_where in positions(layer.layers, where):
            yield from walk_positions(inner, inner_where)


class ConverterTable(dict):
    """Layer class -> converter, for one tool (``export_onnx``, ``to_torch``).

    ``@table.converts(A, B)`` makes the decorated function the converter of the layer classes A and
    B (their exact classes: a subclass may compute something else). ``table.find(layer, where)``
    gives the converter of ``layer``, or raises the refusal naming it and where it sits.
    """

    def __init__(self, tool: str, form: str):
        super().__init__()
        self.tool = tool  # the function the user called, which every message starts with
        self.form = form  # what a converter makes of a layer: "ONNX form", "PyTorch twin"

    def converts(self, *classes):
        def register(function):
            for cls in classes:
                self[cls] = function
            return function

        return register

    def names(self) -> list:
        """The names of the classes the tool converts, the containers it opens included, sorted."""
        return sorted(layer_class_name(cls) for cls in {*self, *CONTAINERS})

    def find(self, layer, where: str):
        """The converter of ``layer`` (at ``where``); a ``TypeError`` when there is none: a loss in
        the middle of the model, or a layer of a class the table does not hold."""
        convert = self.get(type(layer))
        if convert is not None:
            return convert
        tool = self.tool
        if isinstance(layer, LOSS_LAYERS):
            raise TypeError(f"{tool}: {where} is a {layer_name(layer)}, a loss in the middle of the model; "
                            f"{tool} drops the losses at the end of a training network only")
        raise refusal(tool, where, layer_name(layer), self.form, self.names(),
                      " (and drops the losses at the end of a training network)")


def convertible(model, table: ConverterTable):
    """``model`` without its trailing losses (``inference_model``'s rule), every layer in it looked
    up in ``table`` first: a layer it cannot convert is refused before any work."""
    model = inference_model(model, table.tool)
    for layer, where in walk_positions(model):
        if type(layer) not in CONTAINERS:
            table.find(layer, where)
    return model
