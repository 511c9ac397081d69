"""Export a trained model to ONNX, for ONNX Runtime and every other engine that reads it.

    nn.export_onnx(model, "model.onnx", input_shape=(1, 28, 28))   # one sample's shape, no batch axis

The graph is built by a walk over the model: a ``Sequential`` adds its layers one after the other,
a ``Residual`` its layers and then one ``Add`` of the skip, and every other layer is converted by
its entry in ``CONVERTERS`` (onnx_layers.py), which adds the layer's nodes. Anything not in the
table (a layer of your own, a loss in the middle of the model) is a ``TypeError`` naming it and
where it sits, raised before anything is built.

What the file holds:
- opset 17 of the default ONNX domain (ONNX 1.12, 2022): every op used here is in it, and ONNX
  Runtime reads it from version 1.12 on; newer opsets would shut out older runtimes for nothing.
- float32 throughout (weights in float64 are rounded), the usual precision for deployment.
- one input ``input`` of shape (N, *input_shape) and one output ``output``, N a dynamic batch axis;
  the input is float32, or int64 ids for a model starting with ``Embedding`` (a text model's (N, T)).
- inference only: Dropout is the identity and BatchNorm1D/2D use their running statistics, whatever
  mode the model is in. The loss layers at the end of a training network (``SoftmaxCrossEntropy``,
  ``Mean``, ...) are dropped, by the rule ``nnscratch predict`` uses (``inference_model``), so the
  graph outputs what ``nn.predict(model[:-2], x)`` gives: logits for a model ending in
  SoftmaxCrossEntropy, probabilities for one ending in Softmax -> CrossEntropy.

``onnx`` is an optional extra (``pip install 'nnscratch[onnx]'``), imported only when exporting.
"""

from __future__ import annotations

import numpy as np

from ..atomic_file import atomic_write
from ..containers import Sequential
from ..version import __version__
from .common import CONTAINERS, convertible, positions
from .onnx_layers import CONVERTERS

OPSET = 17


def _import_onnx():
    try:
        import onnx
    except ImportError:
        raise ImportError(
            "export_onnx needs the onnx package, an optional extra: pip install 'nnscratch[onnx]'"
        ) from None
    return onnx


class Graph:
    """The nodes and weights of the graph being built, with unique names for every value.

    Shape:
        every value is float32; layer converters see the running value's name and its shape (1, ...)
    """

    def __init__(self, onnx):
        self.onnx = onnx
        self.nodes: list = []
        self.initializers: list = []
        self._used: set = {"input", "output"}

    def unique(self, hint: str) -> str:
        name, count = hint, 1
        while name in self._used:
            count += 1
            name = f"{hint}_{count}"
        self._used.add(name)
        return name

    def weight(self, hint: str, array) -> str:
        """A constant of the graph (a weight, a scalar), stored as float32 unless it is integer."""
        array = np.asarray(array)
        array = array if array.dtype.kind in "iu" else array.astype(np.float32)
        name = self.unique(hint)
        self.initializers.append(self.onnx.numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op: str, inputs: list, hint: str, **attributes) -> str:
        """Add one node with one output; return the output's name."""
        output = self.unique(hint)
        self.nodes.append(self.onnx.helper.make_node(op, inputs, [output], name=output, **attributes))
        return output


def supported_layers() -> list[str]:
    """The names of the layer classes ``export_onnx`` converts, the containers it opens included."""
    return CONVERTERS.names()


# -- the walk --------------------------------------------------------------------------------------
def _add_layer(graph: Graph, layer, x: str, shape: tuple, where: str) -> tuple[str, tuple]:
    """Add ``layer`` (at ``where``) reading value ``x`` of ``shape``; return its output's name and shape."""
    if type(layer) in CONTAINERS:
        fx, f_shape = x, shape
        for inner, inner_where in positions(layer.layers, where):
            fx, f_shape = _add_layer(graph, inner, fx, f_shape, inner_where)
        if type(layer) is Sequential:
            return fx, f_shape
        return graph.node("Add", [x, fx], "residual"), shape  # a Residual: y = x + f(x)
    output = CONVERTERS.find(layer, where)(graph, layer, x, shape)
    return output, tuple(layer.output_shape(shape))


def _check_input_shape(input_shape) -> tuple:
    if isinstance(input_shape, (int, np.integer)) and not isinstance(input_shape, bool):
        input_shape = (input_shape,)
    if not isinstance(input_shape, (tuple, list)) or not input_shape or not all(
        isinstance(size, (int, np.integer)) and not isinstance(size, bool) and size > 0 for size in input_shape
    ):
        raise ValueError(
            "export_onnx: input_shape must be one sample's shape as positive ints, without the batch "
            f"axis, e.g. (784,) or (1, 28, 28); got {input_shape!r}"
        )
    return tuple(int(size) for size in input_shape)


def build_onnx(model, input_shape):
    """The ``onnx.ModelProto`` of ``model`` (its trailing losses dropped) for samples of ``input_shape``.

    ``export_onnx`` writes it to a file; this returns it, for a caller that wants to inspect or
    serialise it itself.

    Shape:
        input_shape: one sample, e.g. (784,) or (1, 28, 28); the graph's input is (N, *input_shape)
    """
    onnx = _import_onnx()
    input_shape = _check_input_shape(input_shape)
    model = convertible(model, CONVERTERS)  # every layer has a converter: refused before the shapes
    try:
        model.output_shape((1, *input_shape))
    except (ValueError, TypeError) as error:
        raise ValueError(
            f"export_onnx: the model does not take samples of shape {input_shape} "
            f"(input_shape excludes the batch axis): {error}"
        ) from error
    graph = Graph(onnx)
    output, shape = _add_layer(graph, model, "input", (1, *input_shape), "model")
    # The node computing the result is renamed "output"; a model of identities (Dropout) gets one.
    if not graph.nodes or graph.nodes[-1].output[0] != output:
        graph.node("Identity", [output], "identity")
    graph.nodes[-1].output[0] = "output"
    float32 = onnx.TensorProto.FLOAT
    # A model starting with Embedding takes integer ids: int64, what Gather's indices and PyTorch's are.
    input_type = onnx.TensorProto.INT64 if getattr(model, "integer_input", False) else float32
    inputs = [onnx.helper.make_tensor_value_info("input", input_type, ["N", *input_shape])]
    outputs = [onnx.helper.make_tensor_value_info("output", float32, ["N", *shape[1:]])]
    proto = onnx.helper.make_model(
        onnx.helper.make_graph(graph.nodes, "nnscratch", inputs, outputs, graph.initializers),
        opset_imports=[onnx.helper.make_opsetid("", OPSET)],
        producer_name="nnscratch",
        producer_version=__version__,
    )
    # The oldest IR version that carries opset 17, so older runtimes read the file too.
    proto.ir_version = onnx.helper.find_min_ir_version_for(list(proto.opset_import))
    onnx.checker.check_model(proto, full_check=True)
    return proto


def export_onnx(model, path, input_shape):
    """Write ``model`` as an ONNX file at ``path`` (atomically), for inputs (N, *input_shape).

    The model's trailing loss layers are dropped (see the module docstring for what the graph
    holds); any layer without an ONNX form is a ``TypeError`` naming it, and nothing is written.
    Needs the ``onnx`` extra. Returns the ``onnx.ModelProto`` written.

    Shape:
        input_shape: one sample, e.g. (784,) or (1, 28, 28); N, the batch, stays dynamic
    """
    proto = build_onnx(model, input_shape)
    with atomic_write(path) as f:
        f.write(proto.SerializeToString())
    return proto
