"""Export a trained model to ONNX, for ONNX Runtime and every other engine that reads it.

    nn.export_onnx(model, "model.onnx", input_shape=(1, 28, 28))   # one sample's shape, no batch axis

The graph is built from a table, ``CONVERTERS``: one small function per built-in layer class that
adds the layer's ONNX nodes and returns the name of its output. A nested ``Sequential`` is walked
in place. Anything not in the table (a layer of your own, a loss in the middle of the model) is a
``TypeError`` naming it and where it sits.

What the file holds:
- opset 17 of the default ONNX domain (ONNX 1.12, 2022): every op used here is in it, and ONNX
  Runtime reads it from version 1.12 on; newer opsets would shut out older runtimes for nothing.
- float32 throughout (weights in float64 are rounded), the usual precision for deployment.
- one input ``input`` of shape (N, *input_shape) and one output ``output``, N a dynamic batch axis.
- inference only: Dropout is the identity and BatchNorm1D/2D use their running statistics, whatever
  mode the model is in. The loss layers at the end of a training network (``SoftmaxCrossEntropy``,
  ``Mean``, ...) are dropped, as ``nnscratch predict`` drops them, so the graph outputs what
  ``nn.predict(model[:-2], x)`` gives: logits for a model ending in SoftmaxCrossEntropy,
  probabilities for one ending in Softmax -> CrossEntropy.

``onnx`` is an optional extra (``pip install 'nnscratch[onnx]'``), imported only when exporting.
"""

from __future__ import annotations

import numpy as np

from . import reference
from .atomic_file import atomic_write
from .inference import converter_registrar, no_converter_error, without_loss
from .layers import (
    ELU,
    GELU,
    AvgPool2D,
    BatchNorm1D,
    BatchNorm2D,
    Conv2D,
    Dropout,
    Flatten,
    GlobalAvgPool2D,
    LayerNorm,
    LeakyReLU,
    Linear,
    MaxPool2D,
    ReLU,
    SiLU,
    Sigmoid,
    Softmax,
    Softplus,
    Tanh,
)
from .layers.activations import _GELU_CUBIC, _GELU_SCALE  # the tanh approximation's constants
from .containers import Residual, Sequential
from .protocol import layer_class_name
from .version import __version__

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
        self.where = "model"  # the position of the layer being converted, e.g. model[2][0]

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


# -- one converter per layer class: converter(graph, layer, x, shape) -> output name --------------
CONVERTERS: dict = {}
converts = converter_registrar(CONVERTERS)  # @converts(Linear): the ONNX converter of Linear


@converts(Linear)
def _linear(graph: Graph, layer, x: str, shape: tuple) -> str:
    # nnscratch keeps W as (in, out), so y = x @ W + b is Gemm without transposing B.
    weight = graph.weight("linear_weight", layer.weight)
    if layer.bias is None:
        return graph.node("MatMul", [x, weight], "linear")
    return graph.node("Gemm", [x, weight, graph.weight("linear_bias", layer.bias)], "linear")


@converts(Conv2D, reference.Conv2D)
def _conv2d(graph: Graph, layer, x: str, shape: tuple) -> str:
    (ph, pw) = layer.padding
    inputs = [x, graph.weight("conv_weight", layer.weight)]
    if layer.bias is not None:
        inputs.append(graph.weight("conv_bias", layer.bias))
    return graph.node("Conv", inputs, "conv", kernel_shape=list(layer.kernel_size),
                      strides=list(layer.stride), pads=[ph, pw, ph, pw])


@converts(MaxPool2D, reference.MaxPool2D)
def _maxpool2d(graph: Graph, layer, x: str, shape: tuple) -> str:
    # Floor division of the output size and no padding, ONNX's defaults and nnscratch's rule.
    return graph.node("MaxPool", [x], "maxpool", kernel_shape=list(layer.kernel_size), strides=list(layer.stride))


@converts(AvgPool2D)
def _avgpool2d(graph: Graph, layer, x: str, shape: tuple) -> str:
    # The padding's zeros count in every average (count_include_pad), as in nnscratch and PyTorch.
    (ph, pw) = layer.padding
    return graph.node("AveragePool", [x], "avgpool", kernel_shape=list(layer.kernel_size),
                      strides=list(layer.stride), pads=[ph, pw, ph, pw], count_include_pad=1)


@converts(GlobalAvgPool2D)
def _global_avgpool2d(graph: Graph, layer, x: str, shape: tuple) -> str:
    pooled = graph.node("GlobalAveragePool", [x], "global_avgpool")  # (N, C, 1, 1)
    return graph.node("Flatten", [pooled], "global_avgpool_flat", axis=1)  # (N, C), as nnscratch


def _elementwise(op: str):
    def convert(graph: Graph, layer, x: str, shape: tuple) -> str:
        return graph.node(op, [x], op.lower())

    return convert


converts(Sigmoid)(_elementwise("Sigmoid"))
converts(Tanh)(_elementwise("Tanh"))
converts(ReLU)(_elementwise("Relu"))


@converts(LeakyReLU)
def _leaky_relu(graph: Graph, layer, x: str, shape: tuple) -> str:
    return graph.node("LeakyRelu", [x], "leakyrelu", alpha=float(layer.negative_slope))


@converts(ELU)
def _elu(graph: Graph, layer, x: str, shape: tuple) -> str:
    return graph.node("Elu", [x], "elu", alpha=float(layer.alpha))


@converts(GELU)
def _gelu(graph: Graph, layer, x: str, shape: tuple) -> str:
    # y = 0.5 x (1 + tanh(k (x + 0.044715 x^3))), k = sqrt(2 / pi), written out: opset 17 has no Gelu.
    cube = graph.node("Mul", [graph.node("Mul", [x, x], "gelu_square"), x], "gelu_cube")
    inner = graph.node("Add", [x, graph.node("Mul", [cube, graph.weight("gelu_cubic", _GELU_CUBIC)], "gelu_cubic_term")],
                       "gelu_inner")
    t = graph.node("Tanh", [graph.node("Mul", [inner, graph.weight("gelu_scale", _GELU_SCALE)], "gelu_scaled")], "gelu_tanh")
    one_plus = graph.node("Add", [t, graph.weight("one", 1.0)], "gelu_one_plus")
    half_x = graph.node("Mul", [x, graph.weight("half", 0.5)], "gelu_half_x")
    return graph.node("Mul", [half_x, one_plus], "gelu")


@converts(SiLU)
def _silu(graph: Graph, layer, x: str, shape: tuple) -> str:
    return graph.node("Mul", [x, graph.node("Sigmoid", [x], "silu_sigmoid")], "silu")


@converts(Softplus)
def _softplus(graph: Graph, layer, x: str, shape: tuple) -> str:
    # As nnscratch computes it: z = beta x; log(1 + exp(z)) as max(z, 0) + log(1 + exp(-|z|)), which
    # never overflows (ONNX's own Softplus has no beta or threshold); y = x where z > threshold.
    z = graph.node("Mul", [x, graph.weight("softplus_beta", layer.beta)], "softplus_z")
    tail = graph.node("Exp", [graph.node("Neg", [graph.node("Abs", [z], "softplus_abs")], "softplus_neg")], "softplus_exp")
    log = graph.node("Log", [graph.node("Add", [tail, graph.weight("one", 1.0)], "softplus_one_plus")], "softplus_log")
    soft = graph.node("Add", [log, graph.node("Relu", [z], "softplus_relu")], "softplus_sum")
    soft = graph.node("Div", [soft, graph.weight("softplus_beta", layer.beta)], "softplus_soft")
    above = graph.node("Greater", [z, graph.weight("softplus_threshold", layer.threshold)], "softplus_above")
    return graph.node("Where", [above, x, soft], "softplus")


@converts(BatchNorm1D, BatchNorm2D, reference.BatchNorm1D, reference.BatchNorm2D)
def _batchnorm(graph: Graph, layer, x: str, shape: tuple) -> str:
    # Inference: the running statistics, whatever the mode (training_mode=0, ONNX's default).
    c = layer.num_features
    scale = layer.weight if layer.affine else np.ones(c)
    shift = layer.bias if layer.affine else np.zeros(c)
    inputs = [x, graph.weight("bn_weight", scale), graph.weight("bn_bias", shift),
              graph.weight("bn_running_mean", layer.running_mean), graph.weight("bn_running_var", layer.running_var)]
    return graph.node("BatchNormalization", inputs, "batchnorm", epsilon=float(layer.eps))


@converts(LayerNorm)
def _layernorm(graph: Graph, layer, x: str, shape: tuple) -> str:
    # Over the trailing len(normalized_shape) axes, as nnscratch: axis=-k normalizes from there on.
    normalized = layer.normalized_shape
    scale = layer.weight if layer.elementwise_affine else np.ones(normalized)
    shift = layer.bias if layer.elementwise_affine else np.zeros(normalized)
    inputs = [x, graph.weight("ln_weight", scale), graph.weight("ln_bias", shift)]
    return graph.node("LayerNormalization", inputs, "layernorm", axis=-len(normalized), epsilon=float(layer.eps))


@converts(Residual)
def _residual(graph: Graph, layer, x: str, shape: tuple) -> str:
    # y = x + f(x): f's layers as in a Sequential, then one Add of the skip
    fx, _ = _add_layers(graph, layer.layers, x, shape, graph.where)
    return graph.node("Add", [x, fx], "residual")


@converts(Dropout)
def _dropout(graph: Graph, layer, x: str, shape: tuple) -> str:
    return x  # the identity in inference, whatever the mode: no node


@converts(Softmax)
def _softmax(graph: Graph, layer, x: str, shape: tuple) -> str:
    return graph.node("Softmax", [x], "softmax", axis=-1)  # opset 13+: over that one axis, as nnscratch


@converts(Flatten)
def _flatten(graph: Graph, layer, x: str, shape: tuple) -> str:
    return graph.node("Flatten", [x], "flatten", axis=1)


def supported_layers() -> list[str]:
    """The names of the layer classes ``export_onnx`` converts (``Sequential`` besides)."""
    return sorted(layer_class_name(cls) for cls in CONVERTERS)


# -- the walk --------------------------------------------------------------------------------------
def _add_layers(graph: Graph, layers, x: str, shape: tuple, where: str) -> tuple[str, tuple]:
    """Add ``layers`` one after the other (a Sequential, or the f of a Residual)."""
    for index, inner in enumerate(layers):
        x, shape = _add_layer(graph, inner, x, shape, f"{where}[{index}]")
    return x, shape


def _add_layer(graph: Graph, layer, x: str, shape: tuple, where: str) -> tuple[str, tuple]:
    """Add ``layer`` reading value ``x`` of ``shape``; return its output's name and shape."""
    if type(layer) is Sequential:
        return _add_layers(graph, layer.layers, x, shape, where)
    graph.where = where  # for a container's converter, which adds its layers with their positions
    convert = CONVERTERS.get(type(layer))
    if convert is None:
        converted = f"{', '.join(supported_layers())} and Sequential"
        raise no_converter_error("export_onnx", where, layer, "ONNX form", converted)
    output = convert(graph, layer, x, shape)
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
    model = without_loss(model)
    if isinstance(model, Sequential) and not model.layers:
        raise ValueError("export_onnx: the model has no layers besides its loss; there is nothing to export")
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
    inputs = [onnx.helper.make_tensor_value_info("input", float32, ["N", *input_shape])]
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
