"""Hand a model to PyTorch: ``to_torch(model)``, a ``torch.nn.Sequential`` computing the same function.

    twin = nn.to_torch(model)        # a torch.nn.Sequential computing the same function
    model = nn.from_torch(twin)      # the way back (from_pytorch.py): a new nnscratch Sequential

Both walk the model, opening ``Sequential`` and ``Residual`` themselves, with a table of one small
entry per layer class (here ``TO_TORCH``), and copy the weights (the twin shares no memory with the
original). What changes on the way:
- Linear keeps W as (in, out), PyTorch's ``nn.Linear`` as (out, in): the weight is transposed.
- Softmax is over the last axis, ``nn.Softmax(dim=-1)``; from_torch takes only dim=-1.
- the loss layers at the end of a training network are dropped, by the rule ``export_onnx`` and
  ``nnscratch predict`` use (``inference_model``): PyTorch keeps its losses outside the model,
  e.g. ``nn.CrossEntropyLoss`` for ``SoftmaxCrossEntropy`` + ``Mean``.
- dtypes are kept: float32 parameters give float32 tensors, float64 gives float64.
- so is the mode (``training``), layer by layer, and BatchNorm's running statistics.
- ``GlobalAvgPool2D``, ``Residual``, the positional encodings, ``MultiHeadAttention`` and
  ``TransformerBlock`` have no PyTorch module of their own: they become the small modules of
  ``torch_modules(torch)``, of the same names, which ``from_torch`` reads back
  (``nn.MultiheadAttention`` returns a pair, and takes its causal mask in every call).
- ``Embedding`` becomes ``nn.Embedding`` (the same (num_embeddings, embedding_dim) table and
  padding_idx); its input is integer ids, as nnscratch's.
- RNN, LSTM and GRU become ``nn.RNN``, ``nn.LSTM`` and ``nn.GRU`` (``batch_first=True``, the weights
  as they are), each in ``torch_modules(torch).Recurrent``, which returns the output sequence alone
  (PyTorch's modules return it with the final state, and nn.Sequential passes on one value). The twin
  starts every sequence from zeros: a stateful layer's carried state does not go across.

Only the layers in the tables convert; anything else is a ``TypeError`` naming it and where it
sits, and a PyTorch module configured beyond what the nnscratch layer does (a grouped or dilated
convolution, a pooling with padding) is a ``ValueError`` saying which setting.

PyTorch is imported only when one of these is called; nnscratch never depends on it.
"""

from __future__ import annotations

import numpy as np

from .. import layers, reference
from ..containers import Sequential
from .common import CONTAINERS, ConverterTable, convertible, positions
from .torch_modules import import_torch, torch_modules


def _tensor(torch, array):
    """A tensor holding a copy of ``array``, its dtype kept."""
    return torch.from_numpy(np.array(array, copy=True))


def _torch_dtype(torch, dtype):
    return {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}[np.dtype(dtype)]


def _with_weights(torch, module, layer, names=("weight", "bias")):
    """``module`` with copies of ``layer``'s arrays of those names (the same layout on both sides)."""
    with torch.no_grad():
        for name in names:
            getattr(module, name).copy_(_tensor(torch, getattr(layer, name)))
    return module


# -- one PyTorch twin per layer class: converter(layer, torch) -> module -----------------------------
TO_TORCH = ConverterTable("to_torch", "PyTorch twin")


@TO_TORCH.converts(layers.Linear)
def _linear_to_torch(layer, torch):
    module = torch.nn.Linear(layer.in_features, layer.out_features, bias=layer.bias is not None,
                             dtype=_torch_dtype(torch, layer.weight.dtype))
    with torch.no_grad():
        module.weight.copy_(_tensor(torch, layer.weight.T))  # nnscratch (in, out) -> PyTorch (out, in)
    return _with_weights(torch, module, layer, ("bias",) if layer.bias is not None else ())


@TO_TORCH.converts(layers.Conv2D, reference.Conv2D)
def _conv2d_to_torch(layer, torch):
    module = torch.nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, stride=layer.stride,
                             padding=layer.padding, bias=layer.bias is not None,
                             dtype=_torch_dtype(torch, layer.weight.dtype))
    # the same (out, in, kh, kw) layout
    return _with_weights(torch, module, layer, ("weight", "bias") if layer.bias is not None else ("weight",))


@TO_TORCH.converts(layers.MaxPool2D, reference.MaxPool2D)
def _maxpool2d_to_torch(layer, torch):
    return torch.nn.MaxPool2d(layer.kernel_size, stride=layer.stride)


@TO_TORCH.converts(layers.AvgPool2D)
def _avgpool2d_to_torch(layer, torch):
    return torch.nn.AvgPool2d(layer.kernel_size, stride=layer.stride, padding=layer.padding, count_include_pad=True)


@TO_TORCH.converts(layers.GlobalAvgPool2D)
def _global_avgpool2d_to_torch(layer, torch):
    return torch_modules(torch).GlobalAvgPool2D()


@TO_TORCH.converts(layers.Flatten)
def _flatten_to_torch(layer, torch):
    return torch.nn.Flatten()


@TO_TORCH.converts(layers.Softmax)
def _softmax_to_torch(layer, torch):
    return torch.nn.Softmax(dim=-1)


@TO_TORCH.converts(layers.LeakyReLU)
def _leaky_relu_to_torch(layer, torch):
    return torch.nn.LeakyReLU(layer.negative_slope)


@TO_TORCH.converts(layers.ELU)
def _elu_to_torch(layer, torch):
    return torch.nn.ELU(layer.alpha)


@TO_TORCH.converts(layers.GELU)
def _gelu_to_torch(layer, torch):
    return torch.nn.GELU(approximate="tanh")  # nnscratch's GELU is the tanh approximation


@TO_TORCH.converts(layers.Softplus)
def _softplus_to_torch(layer, torch):
    return torch.nn.Softplus(beta=layer.beta, threshold=layer.threshold)


@TO_TORCH.converts(layers.BatchNorm1D, layers.BatchNorm2D, reference.BatchNorm1D, reference.BatchNorm2D)
def _batchnorm_to_torch(layer, torch):
    one_d = isinstance(layer, (layers.BatchNorm1D, reference.BatchNorm1D))
    cls = torch.nn.BatchNorm1d if one_d else torch.nn.BatchNorm2d
    # The same momentum rule: running = (1 - momentum) running + momentum * batch statistic.
    module = cls(layer.num_features, eps=layer.eps, momentum=layer.momentum, affine=layer.affine,
                 dtype=_torch_dtype(torch, layer.running_mean.dtype))
    statistics = ("running_mean", "running_var")
    return _with_weights(torch, module, layer, ("weight", "bias", *statistics) if layer.affine else statistics)


@TO_TORCH.converts(layers.LayerNorm)
def _layernorm_to_torch(layer, torch):
    affine = layer.elementwise_affine
    module = torch.nn.LayerNorm(layer.normalized_shape, eps=layer.eps, elementwise_affine=affine,
                                dtype=_torch_dtype(torch, layer.weight.dtype if affine else layer.config()["dtype"]))
    return _with_weights(torch, module, layer, ("weight", "bias") if affine else ())


@TO_TORCH.converts(layers.RNN, layers.LSTM, layers.GRU, reference.RNN, reference.LSTM, reference.GRU)
def _recurrent_to_torch(layer, torch):
    extra = {"nonlinearity": layer.nonlinearity} if isinstance(layer, (layers.RNN, reference.RNN)) else {}
    module = getattr(torch.nn, type(layer).__name__)(
        layer.input_size, layer.hidden_size, bias=layer.bias_ih is not None, batch_first=True,
        dtype=_torch_dtype(torch, layer.weight_ih.dtype), **extra)
    with torch.no_grad():  # the same names (PyTorch's with the layer's index, _l0) and the same layout
        for name, value in zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh"), layer.parameters):
            getattr(module, f"{name}_l0").copy_(_tensor(torch, value))
    # in the layer's mode, the module inside included (the walk sets the outer module's alone)
    return torch_modules(torch).Recurrent(module).train(bool(layer.training))


@TO_TORCH.converts(layers.Dropout)
def _dropout_to_torch(layer, torch):
    return torch.nn.Dropout(layer.p)  # the same p; the random masks are each library's own


@TO_TORCH.converts(layers.Embedding)
def _embedding_to_torch(layer, torch):
    module = torch.nn.Embedding(layer.num_embeddings, layer.embedding_dim, padding_idx=layer.padding_idx,
                                dtype=_torch_dtype(torch, layer.weight.dtype))
    return _with_weights(torch, module, layer, ("weight",))  # the same (num_embeddings, embedding_dim) table


@TO_TORCH.converts(layers.PositionalEmbedding)
def _positional_embedding_to_torch(layer, torch):
    module = torch_modules(torch).PositionalEmbedding(layer.max_len, layer.dim, _torch_dtype(torch, layer.weight.dtype))
    return _with_weights(torch, module, layer, ("weight",))


@TO_TORCH.converts(layers.SinusoidalPositionalEncoding)
def _sinusoidal_to_torch(layer, torch):
    return torch_modules(torch).SinusoidalPositionalEncoding(layer.dim, layer.max_len)


@TO_TORCH.converts(layers.MultiHeadAttention, reference.MultiHeadAttention)
def _attention_to_torch(layer, torch):
    bias = layer.in_proj_bias is not None
    module = torch_modules(torch).MultiHeadAttention(layer.embed_dim, layer.num_heads, layer.causal, layer.dropout,
                                                     bias, dtype=_torch_dtype(torch, layer.in_proj_weight.dtype))
    module.train(bool(layer.training))  # the nn.MultiheadAttention inside too (its dropout)
    return _with_attention_weights(torch, module, layer)


def _with_attention_weights(torch, module, layer):
    """``module`` (a torch_modules MultiHeadAttention) with copies of the layer's parameters: the same
    names and layout on both sides."""
    attention = module.attention
    with torch.no_grad():
        for param, value in zip(attention.parameters(), layer.parameters):
            param.copy_(_tensor(torch, value))
    return module


@TO_TORCH.converts(layers.TransformerBlock)
def _transformer_block_to_torch(block, torch):
    ln_1, attention, attention_dropout, ln_2, fc, proj, mlp_dropout = block_parts(block)
    module = torch_modules(torch).TransformerBlock(block.dim, block.num_heads, fc.out_features, block.dropout,
                                                   block.causal, dtype=_torch_dtype(torch, fc.weight.dtype))
    for norm, twin in ((ln_1, module.ln_1), (ln_2, module.ln_2)):
        twin.eps = norm.eps
        _with_weights(torch, twin, norm)
    _with_attention_weights(torch, module.attn, attention)
    for linear, twin in ((fc, module.mlp[0]), (proj, module.mlp[2])):
        with torch.no_grad():
            twin.weight.copy_(_tensor(torch, linear.weight.T))  # nnscratch (in, out) -> PyTorch (out, in)
        _with_weights(torch, twin, linear, ("bias",))
    # each part in its layer's mode (the walk sets the block's own)
    module.train(bool(block.training))
    for part, twin in ((attention, module.attn), (attention_dropout, module.attn_dropout), (mlp_dropout, module.mlp[3])):
        twin.train(bool(getattr(part, "training", block.training)))
    return module


def block_parts(block) -> tuple:
    """(ln_1, attention, its Dropout or None, ln_2, the MLP's two Linear, its Dropout or None) of a
    TransformerBlock; a TypeError if its layers are no longer the ones it was built with."""
    branches = [list(getattr(branch, "layers", [branch])) for branch in block.layers]
    attention, mlp = branches if len(branches) == 2 else ([], [])
    kinds = [[type(layer).__name__ for layer in branch] for branch in branches]
    tail = ["Dropout"] if block.dropout > 0 else []
    if kinds != [["LayerNorm", "MultiHeadAttention", *tail], ["LayerNorm", "Linear", "GELU", "Linear", *tail]]:
        raise TypeError(f"{block.name}: its layers were changed from LayerNorm, MultiHeadAttention{', Dropout' * bool(tail)} "
                        f"and LayerNorm, Linear, GELU, Linear{', Dropout' * bool(tail)}; got {kinds}")
    return (attention[0], attention[1], attention[2] if tail else None, mlp[0], mlp[1], mlp[3], mlp[4] if tail else None)


def _same_named(name: str):
    def convert(layer, torch):
        return getattr(torch.nn, name)()

    return convert


for _cls in (layers.Sigmoid, layers.Tanh, layers.ReLU, layers.SiLU):
    TO_TORCH.converts(_cls)(_same_named(_cls.__name__))


# -- the walk --------------------------------------------------------------------------------------
def _to_torch_module(layer, torch, where: str):
    if type(layer) in CONTAINERS:
        inner = [_to_torch_module(child, torch, inner_where) for child, inner_where in positions(layer.layers, where)]
        if type(layer) is Sequential:
            module = torch.nn.Sequential(*inner)
        else:
            module = torch_modules(torch).Residual(*inner)
            module.block.training = bool(layer.training)
    else:
        module = TO_TORCH.find(layer, where)(layer, torch)
    # The same mode, layer by layer (not cascaded: a user's mix of modes survives).
    module.training = bool(getattr(layer, "training", True))
    return module


def to_torch(model):
    """A ``torch.nn.Sequential`` computing what ``model`` computes, with copies of its weights.

    The trailing loss layers of a training network are dropped; a single layer comes back wrapped
    in a Sequential. The twin's outputs and gradients equal nnscratch's up to rounding.
    """
    torch = import_torch()
    model = convertible(model, TO_TORCH)  # every layer has a twin: refused before any is built
    return _to_torch_module(model, torch, "model")
