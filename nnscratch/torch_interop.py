"""Hand a model to PyTorch and back: ``to_torch(model)`` and ``from_torch(module)``.

    twin = nn.to_torch(model)        # a torch.nn.Sequential computing the same function
    model = nn.from_torch(twin)      # a new nnscratch Sequential with the module's weights

Both walk the model with a table, one small entry per layer class, and copy the weights (the twin
shares no memory with the original). What changes on the way:
- Linear keeps W as (in, out), PyTorch's ``nn.Linear`` as (out, in): the weight is transposed.
- Softmax is over the last axis, ``nn.Softmax(dim=-1)``; from_torch takes only dim=-1.
- the loss layers at the end of a training network are dropped (as by ``export_onnx`` and
  ``nnscratch predict``): PyTorch keeps its losses outside the model, e.g. ``nn.CrossEntropyLoss``
  for ``SoftmaxCrossEntropy`` + ``Mean``.
- dtypes are kept: float32 parameters give float32 tensors, float64 gives float64.
- so is the mode (``training``), layer by layer, and BatchNorm's running statistics.
- ``GlobalAvgPool2D`` and ``Residual`` have no PyTorch module of their own: they become the two small
  modules of ``torch_modules(torch)``, which ``from_torch`` reads back.

Only the layers in the tables convert; anything else is a ``TypeError`` naming it and where it
sits, and a PyTorch module configured beyond what the nnscratch layer does (a grouped or dilated
convolution, a pooling with padding) is a ``ValueError`` saying which setting.

PyTorch is imported only when one of these is called; nnscratch never depends on it.
"""

from __future__ import annotations

import functools
import types

import numpy as np

from . import reference
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
from .inference import converter_registrar, no_converter_error, without_loss
from .containers import Residual, Sequential
from .protocol import layer_class_name


def _import_torch():
    try:
        import torch
    except ImportError:
        raise ImportError(
            "to_torch and from_torch need PyTorch, which nnscratch does not install: "
            "pip install torch (or 'nnscratch[bench]' for the version the benchmark uses)"
        ) from None
    return torch


def _tensor(torch, array):
    """A tensor holding a copy of ``array``, its dtype kept."""
    return torch.from_numpy(np.array(array, copy=True))


def _array(tensor, where: str, what: str) -> np.ndarray:
    """A numpy copy of a float32/float64 tensor, as nnscratch's parameters are."""
    array = tensor.detach().cpu().numpy().copy()
    if array.dtype not in (np.float32, np.float64):
        raise ValueError(f"from_torch: {where} has a {what} of dtype {array.dtype}; nnscratch takes float32 or float64")
    return array


# -- nnscratch -> PyTorch: converter(layer, torch) -> module -------------------------------------
TO_TORCH: dict = {}
to_torch_converts = converter_registrar(TO_TORCH)  # @to_torch_converts(Linear): Linear's PyTorch twin


@to_torch_converts(Linear)
def _linear_to_torch(layer, torch):
    module = torch.nn.Linear(layer.in_features, layer.out_features, bias=layer.bias is not None,
                             dtype=_torch_dtype(torch, layer.weight.dtype))
    with torch.no_grad():
        module.weight.copy_(_tensor(torch, layer.weight.T))  # nnscratch (in, out) -> PyTorch (out, in)
        if layer.bias is not None:
            module.bias.copy_(_tensor(torch, layer.bias))
    return module


@to_torch_converts(Conv2D, reference.Conv2D)
def _conv2d_to_torch(layer, torch):
    module = torch.nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, stride=layer.stride,
                             padding=layer.padding, bias=layer.bias is not None,
                             dtype=_torch_dtype(torch, layer.weight.dtype))
    with torch.no_grad():
        module.weight.copy_(_tensor(torch, layer.weight))  # the same (out, in, kh, kw) layout
        if layer.bias is not None:
            module.bias.copy_(_tensor(torch, layer.bias))
    return module


@to_torch_converts(MaxPool2D, reference.MaxPool2D)
def _maxpool2d_to_torch(layer, torch):
    return torch.nn.MaxPool2d(layer.kernel_size, stride=layer.stride)


@to_torch_converts(AvgPool2D)
def _avgpool2d_to_torch(layer, torch):
    return torch.nn.AvgPool2d(layer.kernel_size, stride=layer.stride, padding=layer.padding, count_include_pad=True)


@to_torch_converts(GlobalAvgPool2D)
def _global_avgpool2d_to_torch(layer, torch):
    return torch_modules(torch).GlobalAvgPool2d()


@to_torch_converts(Flatten)
def _flatten_to_torch(layer, torch):
    return torch.nn.Flatten()


@to_torch_converts(Softmax)
def _softmax_to_torch(layer, torch):
    return torch.nn.Softmax(dim=-1)


@to_torch_converts(LeakyReLU)
def _leaky_relu_to_torch(layer, torch):
    return torch.nn.LeakyReLU(layer.negative_slope)


@to_torch_converts(ELU)
def _elu_to_torch(layer, torch):
    return torch.nn.ELU(layer.alpha)


@to_torch_converts(GELU)
def _gelu_to_torch(layer, torch):
    return torch.nn.GELU(approximate="tanh")  # nnscratch's GELU is the tanh approximation


@to_torch_converts(Softplus)
def _softplus_to_torch(layer, torch):
    return torch.nn.Softplus(beta=layer.beta, threshold=layer.threshold)


@to_torch_converts(BatchNorm1D, BatchNorm2D, reference.BatchNorm1D, reference.BatchNorm2D)
def _batchnorm_to_torch(layer, torch):
    cls = torch.nn.BatchNorm1d if isinstance(layer, (BatchNorm1D, reference.BatchNorm1D)) else torch.nn.BatchNorm2d
    # The same momentum rule: running = (1 - momentum) running + momentum * batch statistic.
    module = cls(layer.num_features, eps=layer.eps, momentum=layer.momentum, affine=layer.affine,
                 dtype=_torch_dtype(torch, layer.running_mean.dtype))
    with torch.no_grad():
        if layer.affine:
            module.weight.copy_(_tensor(torch, layer.weight))
            module.bias.copy_(_tensor(torch, layer.bias))
        module.running_mean.copy_(_tensor(torch, layer.running_mean))
        module.running_var.copy_(_tensor(torch, layer.running_var))
    return module


@to_torch_converts(LayerNorm)
def _layernorm_to_torch(layer, torch):
    module = torch.nn.LayerNorm(layer.normalized_shape, eps=layer.eps, elementwise_affine=layer.elementwise_affine,
                                dtype=_torch_dtype(torch, layer.weight.dtype if layer.elementwise_affine
                                                   else layer.config()["dtype"]))
    if layer.elementwise_affine:
        with torch.no_grad():
            module.weight.copy_(_tensor(torch, layer.weight))
            module.bias.copy_(_tensor(torch, layer.bias))
    return module


@to_torch_converts(Dropout)
def _dropout_to_torch(layer, torch):
    return torch.nn.Dropout(layer.p)  # the same p; the random masks are each library's own


def _same_named(name: str):
    def convert(layer, torch):
        return getattr(torch.nn, name)()

    return convert


for _cls in (Sigmoid, Tanh, ReLU, SiLU):
    to_torch_converts(_cls)(_same_named(_cls.__name__))


@functools.lru_cache(maxsize=None)
def torch_modules(torch):
    """The small PyTorch modules for nnscratch layers PyTorch has no exact twin of, made once.

    - ``GlobalAvgPool2d()``: x.mean over (H, W), (N, C, H, W) -> (N, C) (``nn.AdaptiveAvgPool2d(1)``
      keeps (N, C, 1, 1)).
    - ``Residual(*modules)``: y = x + block(x), ``block`` an ``nn.Sequential`` of the modules.
    """
    nn = torch.nn

    class Residual(nn.Module):
        """y = x + block(x): nnscratch's Residual, f as an nn.Sequential named ``block``."""

        def __init__(self, *modules):
            super().__init__()
            self.block = nn.Sequential(*modules)

        def forward(self, x):
            return x + self.block(x)

    class GlobalAvgPool2d(nn.Module):
        """y[n, c] = mean over (h, w) of x[n, c, h, w]: nnscratch's GlobalAvgPool2D."""

        def forward(self, x):
            return x.mean(dim=(2, 3))

    GlobalAvgPool2d.__module__ = Residual.__module__ = __name__
    return types.SimpleNamespace(GlobalAvgPool2d=GlobalAvgPool2d, Residual=Residual)


def _torch_dtype(torch, dtype):
    return {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}[np.dtype(dtype)]


def _to_torch_module(layer, torch, where: str):
    module = _to_torch_unmoded(layer, torch, where)
    # The same mode, layer by layer (not cascaded: a user's mix of modes survives).
    module.training = bool(getattr(layer, "training", True))
    return module


def _to_torch_unmoded(layer, torch, where: str):
    if type(layer) in (Sequential, Residual):
        inner = [_to_torch_module(child, torch, f"{where}[{i}]") for i, child in enumerate(layer.layers)]
        if type(layer) is Sequential:
            return torch.nn.Sequential(*inner)
        module = torch_modules(torch).Residual(*inner)
        module.block.training = bool(getattr(layer, "training", True))
        return module
    convert = TO_TORCH.get(type(layer))
    if convert is None:
        names = ", ".join(sorted(layer_class_name(cls) for cls in TO_TORCH))
        raise no_converter_error("to_torch", where, layer, "PyTorch twin", f"{names}, Residual and Sequential")
    return convert(layer, torch)


def to_torch(model):
    """A ``torch.nn.Sequential`` computing what ``model`` computes, with copies of its weights.

    The trailing loss layers of a training network are dropped; a single layer comes back wrapped
    in a Sequential. The twin's outputs and gradients equal nnscratch's up to rounding.
    """
    torch = _import_torch()
    model = without_loss(model)
    module = _to_torch_module(model, torch, "model")
    return module if isinstance(module, torch.nn.Sequential) else torch.nn.Sequential(module)


# -- PyTorch -> nnscratch: converter(module, where) -> layer ------------------------------------
def _linear_from_torch(module, where: str):
    weight = _array(module.weight, where, "weight")
    layer = Linear(module.in_features, module.out_features, bias=module.bias is not None, dtype=weight.dtype, rng=0)
    layer.weight[...] = weight.T
    if module.bias is not None:
        layer.bias[...] = _array(module.bias, where, "bias")
    return layer


def _require(module, where: str, setting: str, value, expected, why: str) -> None:
    if value != expected:
        raise ValueError(f"from_torch: {where} ({type(module).__name__}) has {setting}={value!r}; {why}")


def _conv2d_from_torch(module, where: str):
    _require(module, where, "groups", module.groups, 1, "nnscratch's Conv2D has no groups (groups=1)")
    _require(module, where, "dilation", tuple(module.dilation), (1, 1), "nnscratch's Conv2D has no dilation")
    _require(module, where, "padding_mode", module.padding_mode, "zeros", "nnscratch's Conv2D pads with zeros")
    if isinstance(module.padding, str):
        raise ValueError(
            f"from_torch: {where} (Conv2d) has padding={module.padding!r}; nnscratch's Conv2D takes "
            "explicit padding sizes, e.g. padding=2 for a 5x5 kernel"
        )
    weight = _array(module.weight, where, "weight")
    layer = Conv2D(module.in_channels, module.out_channels, tuple(module.kernel_size), stride=tuple(module.stride),
                   padding=tuple(module.padding), bias=module.bias is not None, dtype=weight.dtype, rng=0)
    layer.weight[...] = weight
    if module.bias is not None:
        layer.bias[...] = _array(module.bias, where, "bias")
    return layer


def _pair(value) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _maxpool2d_from_torch(module, where: str):
    _require(module, where, "padding", _pair(module.padding), (0, 0), "nnscratch's MaxPool2D does not pad")
    _require(module, where, "dilation", _pair(module.dilation), (1, 1), "nnscratch's MaxPool2D has no dilation")
    _require(module, where, "ceil_mode", module.ceil_mode, False, "nnscratch's MaxPool2D rounds the output size down")
    _require(module, where, "return_indices", module.return_indices, False, "nnscratch's MaxPool2D returns the maxima only")
    stride = module.stride if module.stride is not None else module.kernel_size
    return MaxPool2D(_pair(module.kernel_size), stride=_pair(stride))


def _avgpool2d_from_torch(module, where: str):
    _require(module, where, "ceil_mode", module.ceil_mode, False, "nnscratch's AvgPool2D rounds the output size down")
    _require(module, where, "count_include_pad", module.count_include_pad, True,
             "nnscratch's AvgPool2D counts the padding's zeros in every average")
    _require(module, where, "divisor_override", module.divisor_override, None,
             "nnscratch's AvgPool2D divides by the kernel's size")
    stride = module.stride if module.stride is not None else module.kernel_size
    return AvgPool2D(_pair(module.kernel_size), stride=_pair(stride), padding=_pair(module.padding))


def _flatten_from_torch(module, where: str):
    _require(module, where, "start_dim", module.start_dim, 1, "nnscratch's Flatten keeps the batch axis only")
    _require(module, where, "end_dim", module.end_dim, -1, "nnscratch's Flatten flattens every axis after the batch")
    return Flatten()


def _softmax_from_torch(module, where: str):
    _require(module, where, "dim", module.dim, -1,
             "nnscratch's Softmax is over the last axis: use nn.Softmax(dim=-1) (the same as dim=1 on (N, C) scores)")
    return Softmax()


def _batchnorm_from_torch(cls):
    def convert(module, where: str):
        _require(module, where, "track_running_stats", module.track_running_stats, True,
                 f"nnscratch's {cls.__name__} keeps running statistics for eval mode")
        if module.momentum is None:
            raise ValueError(f"from_torch: {where} ({type(module).__name__}) has momentum=None (a cumulative "
                             f"average); nnscratch's {cls.__name__} takes a momentum in [0, 1]")
        mean = _array(module.running_mean, where, "running_mean")
        layer = cls(module.num_features, eps=float(module.eps), momentum=float(module.momentum),
                    affine=bool(module.affine), dtype=mean.dtype)
        if module.affine:
            layer.weight[...] = _array(module.weight, where, "weight")
            layer.bias[...] = _array(module.bias, where, "bias")
        layer.running_mean[...] = mean
        layer.running_var[...] = _array(module.running_var, where, "running_var")
        return layer

    return convert


def _layernorm_from_torch(module, where: str):
    affine = bool(module.elementwise_affine)
    if affine and module.bias is None:
        raise ValueError(f"from_torch: {where} (LayerNorm) has a weight but bias=False; nnscratch's LayerNorm "
                         "has both (elementwise_affine=True) or neither")
    dtype = _array(module.weight, where, "weight").dtype if affine else np.float32
    layer = LayerNorm(tuple(module.normalized_shape), eps=float(module.eps), elementwise_affine=affine, dtype=dtype)
    if affine:
        layer.weight[...] = _array(module.weight, where, "weight")
        layer.bias[...] = _array(module.bias, where, "bias")
    return layer


def _gelu_from_torch(module, where: str):
    _require(module, where, "approximate", module.approximate, "tanh",
             "nnscratch's GELU is the tanh approximation, nn.GELU(approximate='tanh')")
    return GELU()


def _softplus_from_torch(module, where: str):
    return Softplus(beta=float(module.beta), threshold=float(module.threshold))


@functools.lru_cache(maxsize=None)
def _from_torch_table(torch) -> dict:
    """torch module class -> converter(module, where) -> nnscratch layer."""
    nn = torch.nn
    return {
        torch_modules(torch).GlobalAvgPool2d: lambda module, where: GlobalAvgPool2D(),
        nn.AvgPool2d: _avgpool2d_from_torch,
        nn.BatchNorm1d: _batchnorm_from_torch(BatchNorm1D),
        nn.BatchNorm2d: _batchnorm_from_torch(BatchNorm2D),
        nn.LayerNorm: _layernorm_from_torch,
        nn.Linear: _linear_from_torch,
        nn.Conv2d: _conv2d_from_torch,
        nn.MaxPool2d: _maxpool2d_from_torch,
        nn.Flatten: _flatten_from_torch,
        nn.Softmax: _softmax_from_torch,
        nn.Sigmoid: lambda module, where: Sigmoid(),
        nn.Tanh: lambda module, where: Tanh(),
        nn.ReLU: lambda module, where: ReLU(),
        nn.SiLU: lambda module, where: SiLU(),
        nn.LeakyReLU: lambda module, where: LeakyReLU(float(module.negative_slope)),
        nn.ELU: lambda module, where: ELU(float(module.alpha)),
        nn.GELU: _gelu_from_torch,
        nn.Softplus: _softplus_from_torch,
        nn.Dropout: lambda module, where: Dropout(float(module.p)),
    }


def _torch_name(cls) -> str:
    """nn.Linear for PyTorch's modules, the full path for ours (nnscratch.torch_interop.GlobalAvgPool2d)."""
    return f"nn.{cls.__name__}" if cls.__module__.startswith("torch.") else f"{cls.__module__}.{cls.__name__}"


def _from_torch_layer(module, torch, where: str):
    layer = _from_torch_unmoded(module, torch, where)
    layer.training = bool(module.training)  # the same mode, layer by layer, as in to_torch
    return layer


def _from_torch_unmoded(module, torch, where: str):
    if type(module) is torch.nn.Sequential:
        return Sequential(*[_from_torch_layer(inner, torch, f"{where}[{i}]") for i, inner in enumerate(module)])
    if type(module) is torch_modules(torch).Residual:
        return Residual(*[_from_torch_layer(inner, torch, f"{where}[{i}]") for i, inner in enumerate(module.block)])
    table = _from_torch_table(torch)
    convert = table.get(type(module))
    if convert is None:
        names = ", ".join(sorted(_torch_name(cls) for cls in table))
        raise TypeError(
            f"from_torch: {where} is a {type(module).__module__}.{type(module).__name__}, which has no "
            f"nnscratch layer here; from_torch converts {names}, {_torch_name(torch_modules(torch).Residual)} "
            "and nn.Sequential"
        )
    try:
        return convert(module, where)
    except (TypeError, ValueError) as error:
        if str(error).startswith("from_torch:"):
            raise
        # the nnscratch layer refused a setting (Dropout(p=1.0), say): say which module had it
        raise type(error)(f"from_torch: {where} ({type(module).__name__}): {error}") from error


def from_torch(module):
    """A new nnscratch ``Sequential`` computing what ``module`` computes, with copies of its weights.

    ``module`` is a ``torch.nn.Sequential`` (nesting allowed) of the modules ``to_torch`` produces,
    or one such module. Parameters keep their dtype (float32 or float64).
    """
    torch = _import_torch()
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"from_torch: expected a torch.nn.Module, got {type(module).__name__}")
    layer = _from_torch_layer(module, torch, "module")
    return layer if isinstance(layer, Sequential) else Sequential(layer)
