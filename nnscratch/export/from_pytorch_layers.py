"""One nnscratch layer per PyTorch module class, for ``from_torch`` (from_pytorch.py): the table of
``from_torch_table`` maps each class to ``converter(module, where) -> layer``, and ``read`` and
``require`` check each tensor and setting on the way (a ``ValueError`` naming the module, where it
sits and why)."""

from __future__ import annotations

import functools

import numpy as np

from .. import layers
from ..containers import Sequential
from .torch_modules import torch_modules

FLOAT_DTYPES = ("torch.float32", "torch.float64")


def _refused(module, where: str, why: str) -> ValueError:
    return ValueError(f"from_torch: {where} ({type(module).__name__}) has {why}")


def read(module, where: str, name: str, shape: tuple, dtype=None) -> np.ndarray:
    """A NumPy copy of ``module``'s tensor ``name`` (a parameter or buffer) at ``where``, checked:
    float32 or float64 values (``dtype`` when given: a layer holds one dtype), of ``shape``."""
    import torch

    tensor = getattr(module, name)
    if not isinstance(tensor, torch.Tensor):
        raise _refused(module, where, f"a {name} that is not a tensor but {type(tensor).__name__}")
    if tensor.is_meta:
        raise _refused(module, where, f"its {name} on the meta device, a shape without values (a module made "
                       "with device='meta'); give it values first, e.g. module.to_empty(device='cpu') and then "
                       "load_state_dict(...)")
    if tensor.layout != torch.strided:
        raise _refused(module, where, f"a {name} of layout {tensor.layout}; nnscratch takes dense tensors "
                       "(tensor.to_dense())")
    if str(tensor.dtype) not in FLOAT_DTYPES:
        raise _refused(module, where, f"a {name} of dtype {str(tensor.dtype).removeprefix('torch.')}; nnscratch "
                       "takes float32 or float64 (module.float() or module.double())")
    if tuple(tensor.shape) != tuple(shape):
        raise _refused(module, where, f"a {name} of shape {tuple(tensor.shape)}; its nnscratch layer holds "
                       f"{tuple(shape)}")
    try:  # another device: copied to the CPU; a view or a tensor that requires grad: its values
        array = np.array(tensor.detach().cpu().numpy(), copy=True, order="C")
    except (RuntimeError, TypeError, NotImplementedError) as error:  # a tensor subclass without data
        raise _refused(module, where, f"a {name} that cannot be read as values ({error})") from error
    if dtype is not None and array.dtype != np.dtype(dtype):
        raise _refused(module, where, f"a {name} of dtype {array.dtype} beside tensors of dtype "
                       f"{np.dtype(dtype)}; the nnscratch layer holds one dtype (module.float() or module.double())")
    return array


def require(module, where: str, setting: str, value, expected, why: str) -> None:
    """A ``ValueError`` naming ``setting`` unless it is ``expected``: what the nnscratch layer does not do."""
    if value != expected:
        raise _refused(module, where, f"{setting}={value!r}; {why}")


def _pair(value) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


# -- one nnscratch layer per PyTorch module class: converter(module, where) -> layer ----------------
def _weighted_from_torch(layer, module, where: str, weight: np.ndarray, layout=lambda w: w):
    """``layer`` with ``weight`` (laid out as nnscratch holds it) and ``module``'s bias, if any."""
    layer.weight[...] = layout(weight)
    if module.bias is not None:
        layer.bias[...] = read(module, where, "bias", layer.bias.shape, weight.dtype)
    return layer


def _linear_from_torch(module, where: str):
    weight = read(module, where, "weight", (module.out_features, module.in_features))
    layer = layers.Linear(module.in_features, module.out_features, bias=module.bias is not None,
                          dtype=weight.dtype, rng=0)
    return _weighted_from_torch(layer, module, where, weight, layout=np.transpose)  # PyTorch's (out, in)


def _conv2d_from_torch(module, where: str):
    require(module, where, "groups", module.groups, 1, "nnscratch's Conv2D has no groups (groups=1)")
    require(module, where, "dilation", tuple(module.dilation), (1, 1), "nnscratch's Conv2D has no dilation")
    require(module, where, "padding_mode", module.padding_mode, "zeros", "nnscratch's Conv2D pads with zeros")
    if isinstance(module.padding, str):
        raise _refused(module, where, f"padding={module.padding!r}; nnscratch's Conv2D takes explicit padding "
                       "sizes, e.g. padding=2 for a 5x5 kernel")
    weight = read(module, where, "weight", (module.out_channels, module.in_channels, *module.kernel_size))
    layer = layers.Conv2D(module.in_channels, module.out_channels, tuple(module.kernel_size),
                          stride=tuple(module.stride), padding=tuple(module.padding), bias=module.bias is not None,
                          dtype=weight.dtype, rng=0)
    return _weighted_from_torch(layer, module, where, weight)


def _maxpool2d_from_torch(module, where: str):
    require(module, where, "padding", _pair(module.padding), (0, 0), "nnscratch's MaxPool2D does not pad")
    require(module, where, "dilation", _pair(module.dilation), (1, 1), "nnscratch's MaxPool2D has no dilation")
    require(module, where, "ceil_mode", module.ceil_mode, False, "nnscratch's MaxPool2D rounds the output size down")
    require(module, where, "return_indices", module.return_indices, False, "nnscratch's MaxPool2D returns the maxima only")
    stride = module.stride if module.stride is not None else module.kernel_size
    return layers.MaxPool2D(_pair(module.kernel_size), stride=_pair(stride))


def _avgpool2d_from_torch(module, where: str):
    require(module, where, "ceil_mode", module.ceil_mode, False, "nnscratch's AvgPool2D rounds the output size down")
    require(module, where, "count_include_pad", module.count_include_pad, True,
            "nnscratch's AvgPool2D counts the padding's zeros in every average")
    require(module, where, "divisor_override", module.divisor_override, None,
            "nnscratch's AvgPool2D divides by the kernel's size")
    stride = module.stride if module.stride is not None else module.kernel_size
    return layers.AvgPool2D(_pair(module.kernel_size), stride=_pair(stride), padding=_pair(module.padding))


def _flatten_from_torch(module, where: str):
    require(module, where, "start_dim", module.start_dim, 1, "nnscratch's Flatten keeps the batch axis only")
    require(module, where, "end_dim", module.end_dim, -1, "nnscratch's Flatten flattens every axis after the batch")
    return layers.Flatten()


def _softmax_from_torch(module, where: str):
    require(module, where, "dim", module.dim, -1,
            "nnscratch's Softmax is over the last axis: use nn.Softmax(dim=-1) (the same as dim=1 on (N, C) scores)")
    return layers.Softmax()


def _batchnorm_from_torch(cls):
    def convert(module, where: str):
        require(module, where, "track_running_stats", module.track_running_stats, True,
                f"nnscratch's {cls.__name__} keeps running statistics for eval mode")
        if module.momentum is None:
            raise _refused(module, where, f"momentum=None (a cumulative average); nnscratch's {cls.__name__} "
                           "takes a momentum in [0, 1]")
        c = (module.num_features,)
        mean = read(module, where, "running_mean", c)
        layer = cls(module.num_features, eps=float(module.eps), momentum=float(module.momentum),
                    affine=bool(module.affine), dtype=mean.dtype)
        names = ("weight", "bias", "running_var") if module.affine else ("running_var",)
        for name in names:
            getattr(layer, name)[...] = read(module, where, name, c, mean.dtype)
        layer.running_mean[...] = mean
        return layer

    return convert


def _layernorm_from_torch(module, where: str):
    affine = bool(module.elementwise_affine)
    if affine and module.bias is None:
        raise _refused(module, where, "a weight but bias=False; nnscratch's LayerNorm has both "
                       "(elementwise_affine=True) or neither")
    shape = tuple(module.normalized_shape)
    weight = read(module, where, "weight", shape) if affine else None
    layer = layers.LayerNorm(shape, eps=float(module.eps), elementwise_affine=affine,
                             dtype=weight.dtype if affine else np.float32)
    return _weighted_from_torch(layer, module, where, weight) if affine else layer


def _gelu_from_torch(module, where: str):
    require(module, where, "approximate", module.approximate, "tanh",
            "nnscratch's GELU is the tanh approximation, nn.GELU(approximate='tanh')")
    return layers.GELU()


def _softplus_from_torch(module, where: str):
    return layers.Softplus(beta=float(module.beta), threshold=float(module.threshold))


def _embedding_from_torch(module, where: str):
    require(module, where, "max_norm", module.max_norm, None, "nnscratch's Embedding does not renormalise its rows")
    require(module, where, "scale_grad_by_freq", module.scale_grad_by_freq, False,
            "nnscratch's Embedding sums the gradient of each row as it comes")
    require(module, where, "sparse", module.sparse, False, "nnscratch's Embedding has a dense gradient")
    weight = read(module, where, "weight", (module.num_embeddings, module.embedding_dim))
    layer = layers.Embedding(module.num_embeddings, module.embedding_dim, padding_idx=module.padding_idx,
                             dtype=weight.dtype, rng=0)
    layer.weight[...] = weight
    return layer


def _positional_embedding_from_torch(module, where: str):
    weight = read(module, where, "weight", (module.max_len, module.dim))
    layer = layers.PositionalEmbedding(module.max_len, module.dim, dtype=weight.dtype, rng=0)
    layer.weight[...] = weight
    return layer


def _recurrent_from_torch(module, where: str):
    """nn.RNN, nn.LSTM or nn.GRU (batch_first=True): one nnscratch layer, or a Sequential of one per
    PyTorch layer (num_layers), with Dropout between them if the module has dropout."""
    cell = type(module).__name__
    require(module, where, "batch_first", module.batch_first, True,
            f"nnscratch's {cell} takes (N, T, D) sequences: build it with batch_first=True")
    require(module, where, "bidirectional", module.bidirectional, False,
            f"nnscratch's {cell} runs one direction: run a second layer on the reversed sequence")
    require(module, where, "proj_size", getattr(module, "proj_size", 0), 0, "nnscratch's LSTM has no projection")
    extra = {"nonlinearity": module.nonlinearity} if cell == "RNN" else {}
    gates, hidden = {"RNN": 1, "LSTM": 4, "GRU": 3}[cell], module.hidden_size
    stack = []
    for index in range(module.num_layers):
        inputs = module.input_size if index == 0 else hidden
        weight = read(module, where, f"weight_ih_l{index}", (gates * hidden, inputs))
        layer = getattr(layers, cell)(inputs, hidden, bias=bool(module.bias), dtype=weight.dtype, rng=0, **extra)
        layer.weight_ih[...] = weight
        for name, array in zip(("weight_hh", "bias_ih", "bias_hh"), layer.parameters[1:]):
            array[...] = read(module, where, f"{name}_l{index}", array.shape, weight.dtype)
        stack += [layers.Dropout(float(module.dropout)), layer] if index and module.dropout else [layer]
    return stack[0] if len(stack) == 1 else Sequential(*stack).train(bool(module.training))


def _attention_from_torch(module, where: str, causal: bool | None = None):
    """nnscratch's twin (``module.attention``, ``module.causal``), or with ``causal`` given, PyTorch's own
    ``nn.MultiheadAttention`` (which takes its masks in each call: read as not causal)."""
    attention, where = (module, where) if causal is not None else (module.attention, f"{where}.attention")
    causal = bool(module.causal) if causal is None else causal
    require(attention, where, "batch_first", attention.batch_first, True, "nnscratch's attention is batch first")
    require(attention, where, "kdim and vdim", (attention.kdim, attention.vdim), (attention.embed_dim,) * 2,
            "nnscratch's attention is self-attention, with one packed in_proj_weight")
    require(attention, where, "add_bias_kv", attention.bias_k is not None, False, "nnscratch's attention has no bias_k")
    require(attention, where, "add_zero_attn", attention.add_zero_attn, False, "nnscratch's attention has no zero key")
    e = attention.embed_dim
    weight = read(attention, where, "in_proj_weight", (3 * e, e))
    bias = attention.in_proj_bias is not None
    layer = layers.MultiHeadAttention(e, attention.num_heads, causal=causal,
                                      dropout=float(attention.dropout), bias=bias, dtype=weight.dtype, rng=0)
    layer.in_proj_weight[...] = weight
    layer.out_proj_weight[...] = read(attention.out_proj, where, "weight", (e, e), weight.dtype)
    if bias:
        layer.in_proj_bias[...] = read(attention, where, "in_proj_bias", (3 * e,), weight.dtype)
        layer.out_proj_bias[...] = read(attention.out_proj, where, "bias", (e,), weight.dtype)
    return layer


def _transformer_block_from_torch(module, where: str):
    """A TransformerBlock of the module's size, holding what its parts convert to (each checked)."""
    attention = _attention_from_torch(module.attn, f"{where}.attn")
    norms = [_layernorm_from_torch(getattr(module, name), f"{where}.{name}") for name in ("ln_1", "ln_2")]
    _gelu_from_torch(module.mlp[1], f"{where}.mlp[1]")
    fc, proj = (_linear_from_torch(module.mlp[i], f"{where}.mlp[{i}]") for i in (0, 2))
    dim, hidden = attention.embed_dim, fc.out_features
    for setting, value, expected in [("attn bias", attention.in_proj_bias is not None, True),
                                     ("ln_1 and ln_2 (elementwise_affine, eps)",
                                      [(norm.elementwise_affine, norm.eps) for norm in norms], [(True, 1e-5)] * 2),
                                     ("mlp biases", (fc.bias is not None, proj.bias is not None), (True, True)),
                                     ("attn_dropout.p and mlp[3].p", (module.attn_dropout.p, module.mlp[3].p),
                                      (attention.dropout,) * 2)]:
        require(module, where, setting, value, expected, "nnscratch's TransformerBlock has LayerNorms with eps 1e-5, "
                "biases everywhere and one dropout rate")
    ratio = hidden // dim if hidden % dim == 0 else hidden / dim
    block = layers.TransformerBlock(dim, attention.num_heads, ratio, dropout=attention.dropout, causal=attention.causal,
                                    dtype=attention.in_proj_weight.dtype, rng=0)
    require(module, where, "mlp[0].out_features", hidden, block.layers[1].layers[1].out_features,
            f"nnscratch's TransformerBlock holds an MLP of int(dim * mlp_ratio) features, dim = {dim}")
    parts = [norms[0], attention, norms[1], fc, proj]
    for mine, theirs in zip(block.parameters, [p for part in parts for p in part.parameters]):
        mine[...] = theirs
    # each part in its module's mode (the walk sets the block's own)
    modes = [(block.layers[0].layers[1], module.attn)]
    if attention.dropout > 0:
        modes += [(block.layers[0].layers[2], module.attn_dropout), (block.layers[1].layers[4], module.mlp[3])]
    for layer, part in modes:
        layer.training = bool(part.training)
    return block


@functools.lru_cache(maxsize=None)
def from_torch_table(torch) -> dict:
    """torch module class -> converter(module, where) -> nnscratch layer."""
    nn = torch.nn
    return {
        torch_modules(torch).GlobalAvgPool2D: lambda module, where: layers.GlobalAvgPool2D(),
        torch_modules(torch).PositionalEmbedding: _positional_embedding_from_torch,
        torch_modules(torch).SinusoidalPositionalEncoding:
            lambda module, where: layers.SinusoidalPositionalEncoding(module.dim, max_len=module.max_len),
        nn.Embedding: _embedding_from_torch,
        torch_modules(torch).Recurrent: lambda module, where: _recurrent_from_torch(module.module, where),
        nn.RNN: _recurrent_from_torch,
        nn.LSTM: _recurrent_from_torch,
        nn.GRU: _recurrent_from_torch,
        torch_modules(torch).MultiHeadAttention: _attention_from_torch,
        nn.MultiheadAttention: lambda module, where: _attention_from_torch(module, where, causal=False),
        torch_modules(torch).TransformerBlock: _transformer_block_from_torch,
        nn.AvgPool2d: _avgpool2d_from_torch,
        nn.BatchNorm1d: _batchnorm_from_torch(layers.BatchNorm1D),
        nn.BatchNorm2d: _batchnorm_from_torch(layers.BatchNorm2D),
        nn.LayerNorm: _layernorm_from_torch,
        nn.Linear: _linear_from_torch,
        nn.Conv2d: _conv2d_from_torch,
        nn.MaxPool2d: _maxpool2d_from_torch,
        nn.Flatten: _flatten_from_torch,
        nn.Softmax: _softmax_from_torch,
        nn.Sigmoid: lambda module, where: layers.Sigmoid(),
        nn.Tanh: lambda module, where: layers.Tanh(),
        nn.ReLU: lambda module, where: layers.ReLU(),
        nn.SiLU: lambda module, where: layers.SiLU(),
        nn.LeakyReLU: lambda module, where: layers.LeakyReLU(float(module.negative_slope)),
        nn.ELU: lambda module, where: layers.ELU(float(module.alpha)),
        nn.GELU: _gelu_from_torch,
        nn.Softplus: _softplus_from_torch,
        nn.Dropout: lambda module, where: layers.Dropout(float(module.p)),
    }
