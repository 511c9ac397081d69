"""Take a model back from PyTorch: ``from_torch(module)``, a new nnscratch ``Sequential``.

    model = nn.from_torch(twin)      # the modules to_torch makes, built or trained in PyTorch

The walk opens ``nn.Sequential`` and the ``Residual`` of ``torch_modules(torch)``; every other module
is converted by its entry in the table of ``from_pytorch_layers.from_torch_table``: ``converter(module, where) -> layer``.
The weights are copied by ``read``, which takes a tensor only when it holds float32 or float64
values nnscratch can hold as they are: a tensor on the meta device (a shape without values), of
another dtype, sparse, or of a shape the nnscratch layer does not hold is a ``ValueError`` naming
the module, where it sits and why. Tensors on another device are copied to the CPU; views,
non-contiguous tensors and tensors that require grad are copied as their values.
"""

from __future__ import annotations

from ..containers import Residual, Sequential
from .common import positions, refusal
from .from_pytorch_layers import from_torch_table
from .torch_modules import import_torch, torch_modules

# -- the walk --------------------------------------------------------------------------------------
def _torch_name(cls) -> str:
    """nn.Linear for PyTorch's modules, the full path for ours (nnscratch.export.torch_modules.GlobalAvgPool2D)."""
    return f"nn.{cls.__name__}" if cls.__module__.startswith("torch.") else f"{cls.__module__}.{cls.__name__}"


def _from_torch_layer(module, torch, where: str):
    layer = _from_torch_unmoded(module, torch, where)
    layer.training = bool(module.training)  # the same mode, layer by layer, as in to_torch
    return layer


def _from_torch_unmoded(module, torch, where: str):
    if type(module) is torch.nn.Sequential:
        return Sequential(*[_from_torch_layer(inner, torch, w) for inner, w in positions(module, where)])
    if type(module) is torch_modules(torch).Residual:
        return Residual(*[_from_torch_layer(inner, torch, w) for inner, w in positions(module.block, where)])
    table = from_torch_table(torch)
    convert = table.get(type(module))
    if convert is None:
        described = f"{type(module).__module__}.{type(module).__name__}"
        lazy = getattr(module, "has_uninitialized_params", None)
        if callable(lazy) and lazy():
            raise TypeError(f"from_torch: {where} is a {described} whose parameters are not made yet (a lazy "
                            "module); run one forward pass first, which makes them")
        names = [_torch_name(cls) for cls in (*table, torch_modules(torch).Residual, torch.nn.Sequential)]
        raise refusal("from_torch", where, described, "nnscratch layer", sorted(names[:-2]) + names[-2:])
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
    or one such module. Parameters keep their dtype (float32 or float64). A tensor the nnscratch
    layer cannot hold as it is (on the meta device, of another dtype or shape, sparse) is a
    ``ValueError`` naming the module and where it sits.
    """
    torch = import_torch()
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"from_torch: expected a torch.nn.Module, got {type(module).__name__}")
    layer = _from_torch_layer(module, torch, "module")
    return layer if isinstance(layer, Sequential) else Sequential(layer)
