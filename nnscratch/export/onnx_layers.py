"""One ONNX converter per layer class: ``CONVERTERS``, filled with ``@CONVERTERS.converts(...)``.

A converter ``(graph, layer, x, shape) -> output name`` adds the layer's nodes to ``graph``
(``graph.node(op, inputs, hint, **attributes)``) and its weights (``graph.weight(hint, array)``,
stored as float32), reading the value named ``x`` of ``shape`` (one sample's, batch axis 1). The
walk in onnx.py calls them; containers never reach them.
"""

from __future__ import annotations

import numpy as np

from .. import layers, reference
from ..kernels.gelu import CUBIC as _GELU_CUBIC, SCALE as _GELU_SCALE  # the tanh approximation's constants
from .common import ConverterTable

CONVERTERS = ConverterTable("export_onnx", "ONNX form")


@CONVERTERS.converts(layers.Linear)
def _linear(graph, layer, x: str, shape: tuple) -> str:
    # nnscratch keeps W as (in, out), so y = x @ W + b is Gemm without transposing B.
    weight = graph.weight("linear_weight", layer.weight)
    if layer.bias is None:
        return graph.node("MatMul", [x, weight], "linear")
    if len(shape) > 2:  # a sequence (N, T, in): Gemm takes matrices only
        return graph.node("Add", [graph.node("MatMul", [x, weight], "linear_product"),
                                  graph.weight("linear_bias", layer.bias)], "linear")
    return graph.node("Gemm", [x, weight, graph.weight("linear_bias", layer.bias)], "linear")


@CONVERTERS.converts(layers.Conv2D, reference.Conv2D)
def _conv2d(graph, layer, x: str, shape: tuple) -> str:
    (ph, pw) = layer.padding
    inputs = [x, graph.weight("conv_weight", layer.weight)]
    if layer.bias is not None:
        inputs.append(graph.weight("conv_bias", layer.bias))
    return graph.node("Conv", inputs, "conv", kernel_shape=list(layer.kernel_size),
                      strides=list(layer.stride), pads=[ph, pw, ph, pw])


@CONVERTERS.converts(layers.MaxPool2D, reference.MaxPool2D)
def _maxpool2d(graph, layer, x: str, shape: tuple) -> str:
    # Floor division of the output size and no padding, ONNX's defaults and nnscratch's rule.
    return graph.node("MaxPool", [x], "maxpool", kernel_shape=list(layer.kernel_size), strides=list(layer.stride))


@CONVERTERS.converts(layers.AvgPool2D)
def _avgpool2d(graph, layer, x: str, shape: tuple) -> str:
    # The padding's zeros count in every average (count_include_pad), as in nnscratch and PyTorch.
    (ph, pw) = layer.padding
    return graph.node("AveragePool", [x], "avgpool", kernel_shape=list(layer.kernel_size),
                      strides=list(layer.stride), pads=[ph, pw, ph, pw], count_include_pad=1)


@CONVERTERS.converts(layers.GlobalAvgPool2D)
def _global_avgpool2d(graph, layer, x: str, shape: tuple) -> str:
    pooled = graph.node("GlobalAveragePool", [x], "global_avgpool")  # (N, C, 1, 1)
    return graph.node("Flatten", [pooled], "global_avgpool_flat", axis=1)  # (N, C), as nnscratch


def _elementwise(op: str):
    def convert(graph, layer, x: str, shape: tuple) -> str:
        return graph.node(op, [x], op.lower())

    return convert


CONVERTERS.converts(layers.Sigmoid)(_elementwise("Sigmoid"))
CONVERTERS.converts(layers.Tanh)(_elementwise("Tanh"))
CONVERTERS.converts(layers.ReLU)(_elementwise("Relu"))


@CONVERTERS.converts(layers.LeakyReLU)
def _leaky_relu(graph, layer, x: str, shape: tuple) -> str:
    return graph.node("LeakyRelu", [x], "leakyrelu", alpha=float(layer.negative_slope))


@CONVERTERS.converts(layers.ELU)
def _elu(graph, layer, x: str, shape: tuple) -> str:
    return graph.node("Elu", [x], "elu", alpha=float(layer.alpha))


@CONVERTERS.converts(layers.GELU)
def _gelu(graph, layer, x: str, shape: tuple) -> str:
    # y = 0.5 x (1 + tanh(k (x + 0.044715 x^3))), k = sqrt(2 / pi), written out: opset 17 has no Gelu.
    cube = graph.node("Mul", [graph.node("Mul", [x, x], "gelu_square"), x], "gelu_cube")
    inner = graph.node("Add", [x, graph.node("Mul", [cube, graph.weight("gelu_cubic", _GELU_CUBIC)], "gelu_cubic_term")],
                       "gelu_inner")
    t = graph.node("Tanh", [graph.node("Mul", [inner, graph.weight("gelu_scale", _GELU_SCALE)], "gelu_scaled")], "gelu_tanh")
    one_plus = graph.node("Add", [t, graph.weight("one", 1.0)], "gelu_one_plus")
    half_x = graph.node("Mul", [x, graph.weight("half", 0.5)], "gelu_half_x")
    return graph.node("Mul", [half_x, one_plus], "gelu")


@CONVERTERS.converts(layers.SiLU)
def _silu(graph, layer, x: str, shape: tuple) -> str:
    return graph.node("Mul", [x, graph.node("Sigmoid", [x], "silu_sigmoid")], "silu")


@CONVERTERS.converts(layers.Softplus)
def _softplus(graph, layer, x: str, shape: tuple) -> str:
    # As nnscratch computes it: z = beta x; log(1 + exp(z)) as max(z, 0) + log(1 + exp(-|z|)), which
    # never overflows (ONNX's own Softplus has no beta or threshold); y = x where z > threshold.
    z = graph.node("Mul", [x, graph.weight("softplus_beta", layer.beta)], "softplus_z")
    tail = graph.node("Exp", [graph.node("Neg", [graph.node("Abs", [z], "softplus_abs")], "softplus_neg")], "softplus_exp")
    log = graph.node("Log", [graph.node("Add", [tail, graph.weight("one", 1.0)], "softplus_one_plus")], "softplus_log")
    soft = graph.node("Add", [log, graph.node("Relu", [z], "softplus_relu")], "softplus_sum")
    soft = graph.node("Div", [soft, graph.weight("softplus_beta", layer.beta)], "softplus_soft")
    above = graph.node("Greater", [z, graph.weight("softplus_threshold", layer.threshold)], "softplus_above")
    return graph.node("Where", [above, x, soft], "softplus")


@CONVERTERS.converts(layers.BatchNorm1D, layers.BatchNorm2D, reference.BatchNorm1D, reference.BatchNorm2D)
def _batchnorm(graph, layer, x: str, shape: tuple) -> str:
    # Inference: the running statistics, whatever the mode (training_mode=0, ONNX's default).
    c = layer.num_features
    scale = layer.weight if layer.affine else np.ones(c)
    shift = layer.bias if layer.affine else np.zeros(c)
    inputs = [x, graph.weight("bn_weight", scale), graph.weight("bn_bias", shift),
              graph.weight("bn_running_mean", layer.running_mean), graph.weight("bn_running_var", layer.running_var)]
    return graph.node("BatchNormalization", inputs, "batchnorm", epsilon=float(layer.eps))


@CONVERTERS.converts(layers.LayerNorm)
def _layernorm(graph, layer, x: str, shape: tuple) -> str:
    # Over the trailing len(normalized_shape) axes, as nnscratch: axis=-k normalizes from there on.
    normalized = layer.normalized_shape
    scale = layer.weight if layer.elementwise_affine else np.ones(normalized)
    shift = layer.bias if layer.elementwise_affine else np.zeros(normalized)
    inputs = [x, graph.weight("ln_weight", scale), graph.weight("ln_bias", shift)]
    return graph.node("LayerNormalization", inputs, "layernorm", axis=-len(normalized), epsilon=float(layer.eps))


# PyTorch's gate blocks in ONNX's order: LSTM (i, f, g, o) -> (i, o, f, c); GRU (r, z, n) -> (z, r, h).
_ONNX_GATE_ORDER = {"RNN": [0], "LSTM": [0, 3, 1, 2], "GRU": [1, 0, 2]}


@CONVERTERS.converts(layers.RNN, layers.LSTM, layers.GRU, reference.RNN, reference.LSTM, reference.GRU)
def _recurrent(graph, layer, x: str, shape: tuple) -> str:
    # ONNX's RNN, LSTM and GRU ops, time-major (layout 0, which every runtime takes): (N, T, D) is
    # transposed in, and Y (T, directions = 1, N, H) squeezed and transposed out. No initial state:
    # zeros, as the layer starts (a stateful layer's carried state is not exported).
    cell, hidden = type(layer).__name__, layer.hidden_size
    rows = np.concatenate([np.arange(k * hidden, (k + 1) * hidden) for k in _ONNX_GATE_ORDER[cell]])
    name = cell.lower()
    inputs = [graph.node("Transpose", [x], f"{name}_time_major", perm=[1, 0, 2]),
              graph.weight(f"{name}_W", layer.weight_ih[rows][None]), graph.weight(f"{name}_R", layer.weight_hh[rows][None])]
    if layer.bias_ih is not None:
        inputs.append(graph.weight(f"{name}_B", np.concatenate([layer.bias_ih[rows], layer.bias_hh[rows]])[None]))
    attributes = {"hidden_size": hidden}
    if cell == "RNN":
        attributes["activations"] = ["Tanh" if layer.nonlinearity == "tanh" else "Relu"]
    if cell == "GRU":
        attributes["linear_before_reset"] = 1  # PyTorch's GRU: r scales (W_hn h + b_hn), not h
    y = graph.node(cell, inputs, name, **attributes)
    y = graph.node("Squeeze", [y, graph.weight(f"{name}_direction_axis", np.array([1], np.int64))], f"{name}_squeeze")
    return graph.node("Transpose", [y], f"{name}_batch_first", perm=[1, 0, 2])


@CONVERTERS.converts(layers.Dropout)
def _dropout(graph, layer, x: str, shape: tuple) -> str:
    return x  # the identity in inference, whatever the mode: no node


@CONVERTERS.converts(layers.Softmax)
def _softmax(graph, layer, x: str, shape: tuple) -> str:
    return graph.node("Softmax", [x], "softmax", axis=-1)  # opset 13+: over that one axis, as nnscratch


@CONVERTERS.converts(layers.Flatten)
def _flatten(graph, layer, x: str, shape: tuple) -> str:
    return graph.node("Flatten", [x], "flatten", axis=1)


# -- sequences: ids to vectors, and positions -------------------------------------------------------
@CONVERTERS.converts(layers.Embedding)
def _embedding(graph, layer, x: str, shape: tuple) -> str:
    # Row ids[n, t] of the table: Gather along its first axis. The graph's input is then int64
    # (build_onnx declares it so for a model whose first layer takes integer ids).
    return graph.node("Gather", [graph.weight("embedding_weight", layer.weight), x], "embedding", axis=0)


@CONVERTERS.converts(layers.PositionalEmbedding)
def _positional_embedding(graph, layer, x: str, shape: tuple) -> str:
    # x + weight[:T], T fixed by the input shape: the rows the input reaches, broadcast over the batch.
    return graph.node("Add", [x, graph.weight("position_weight", layer.weight[: shape[1]])], "positions")


@CONVERTERS.converts(layers.SinusoidalPositionalEncoding)
def _sinusoidal_positions(graph, layer, x: str, shape: tuple) -> str:
    return graph.node("Add", [x, graph.weight("position_table", layer.table(shape[1]))], "positions")


@CONVERTERS.converts(layers.MultiHeadAttention, reference.MultiHeadAttention)
def _attention(graph, layer, x: str, shape: tuple) -> str:
    # Opset 17 has no attention op: the products, the mask and the softmax written out. The graph
    # takes no key padding mask (its one input is x); causality is a constant (T, T) mask.
    _, t, e = shape
    h, d = layer.num_heads, layer.head_dim
    heads_shape = graph.weight("attn_heads_shape", np.array([0, t, h, d], np.int64))  # 0: N, as it comes

    def project(index: int, name: str) -> str:  # Q, K or V, (N, T, E) -> (N, H, T, d)
        rows = slice(index * e, (index + 1) * e)
        part = graph.node("MatMul", [x, graph.weight(f"attn_{name}_weight", layer.in_proj_weight[rows].T)], f"attn_{name}")
        if layer.in_proj_bias is not None:
            part = graph.node("Add", [part, graph.weight(f"attn_{name}_bias", layer.in_proj_bias[rows])], f"attn_{name}_b")
        part = graph.node("Reshape", [part, heads_shape], f"attn_{name}_heads")
        return graph.node("Transpose", [part], f"attn_{name}_t", perm=[0, 2, 3, 1] if name == "k" else [0, 2, 1, 3])

    q, k_t, v = project(0, "q"), project(1, "k"), project(2, "v")  # K as (N, H, d, T), ready for Q K^T
    scores = graph.node("Mul", [graph.node("MatMul", [q, k_t], "attn_qk"),
                                graph.weight("attn_scale", 1.0 / np.sqrt(d))], "attn_scores")
    if layer.causal:  # key j after query i: + -inf, which Softmax turns into a weight of 0
        future = graph.weight("attn_causal", np.triu(np.full((t, t), -np.inf), k=1))
        scores = graph.node("Add", [scores, future], "attn_masked")
    weights = graph.node("Softmax", [scores], "attn_weights", axis=-1)  # ONNX subtracts the row maximum too
    heads = graph.node("Transpose", [graph.node("MatMul", [weights, v], "attn_out")], "attn_out_t", perm=[0, 2, 1, 3])
    out = graph.node("Reshape", [heads, graph.weight("attn_merge", np.array([0, t, e], np.int64))], "attn_merged")
    y = graph.node("MatMul", [out, graph.weight("attn_out_weight", layer.out_proj_weight.T)], "attn_proj")
    if layer.out_proj_bias is None:
        return y
    return graph.node("Add", [y, graph.weight("attn_out_bias", layer.out_proj_bias)], "attention")


@CONVERTERS.converts(layers.TransformerBlock)
def _transformer_block(graph, layer, x: str, shape: tuple) -> str:
    # x + attn(ln_1(x)), then x + mlp(ln_2(x)): each branch's layers by their own converters
    for index, branch in enumerate(layer.layers):
        fx, f_shape = x, shape
        for inner_index, inner in enumerate(branch.layers):
            fx = CONVERTERS.find(inner, f"{layer.name}[{index}][{inner_index}]")(graph, inner, fx, f_shape)
            f_shape = tuple(inner.output_shape(f_shape))
        x = graph.node("Add", [x, fx], "residual")
    return x
