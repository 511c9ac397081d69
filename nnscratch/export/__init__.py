"""Converters: a model handed to ONNX Runtime, and to PyTorch and back.

    nn.export_onnx(model, "model.onnx", input_shape=(1, 28, 28))   # one sample's shape, no batch axis
    twin = nn.to_torch(model)        # a torch.nn.Sequential computing the same function
    model = nn.from_torch(twin)      # a new nnscratch Sequential with the module's weights

The modules:

- ``common.py``: what the converters share: ``ConverterTable`` (one converter per layer class, the
  ``@table.converts(...)`` decorator, the refusal of a layer without one), the walk over the
  containers (``Sequential``, ``Residual``) with each layer's position, and ``convertible``, which
  drops the trailing losses by ``inference_model``'s rule and refuses what cannot convert before
  any work.
- ``onnx.py``: ``export_onnx``, ``build_onnx``, ``supported_layers``: the graph, its walk, the file.
- ``onnx_layers.py``: ``CONVERTERS``, one ONNX converter per layer class.
- ``torch.py``: ``to_torch`` and ``TO_TORCH``, one PyTorch twin per layer class.
- ``torch_modules.py``: ``import_torch``, and ``torch_modules``, the twins PyTorch lacks
  (``GlobalAvgPool2D``, ``Residual``, the positions, ``MultiHeadAttention``, ``TransformerBlock``).
- ``from_pytorch.py``: ``from_torch``, the walk back from PyTorch.
- ``from_pytorch_layers.py``: one nnscratch layer per PyTorch module class, its tensors read by
  ``read``, which refuses what a layer cannot hold.

Adding a converter for a new layer class (``Embedding``, say): write one function per direction and
register it; the walks, the refusals and the loss rule need nothing.

1. ONNX, in ``onnx_layers.py``: ``@CONVERTERS.converts(layers.Embedding)`` on a function
   ``(graph, layer, x, shape) -> output name`` that adds the layer's nodes with
   ``graph.node(op, inputs, hint, **attributes)`` and its weights with ``graph.weight(hint, array)``;
   ``shape`` is one sample's shape with a batch axis of 1. (A model whose first layer declares
   ``integer_input``, as Embedding does, gets an int64 input from ``build_onnx``.)
2. PyTorch, in ``torch.py``: ``@TO_TORCH.converts(layers.Embedding)`` on ``(layer, torch) ->
   module``, holding copies of the weights (``_with_weights``).
3. Back from PyTorch, in ``from_pytorch_layers.py``: an entry ``nn.Embedding: converter(module,
   where) -> layer`` in ``from_torch_table``, reading each tensor with ``read(module, where, name, shape)``
   and refusing a setting the layer lacks with ``require(...)``.
4. A case in ``tests/helpers/interop_cases.py``: tests/export/ then runs the layer through ONNX
   Runtime and PyTorch both ways, and fails while a table lacks it.

A new container (a layer holding layers, like ``Residual``) is opened by the walks rather than
converted: add it to ``common.CONTAINERS`` and to the walk of each module.
"""

from .from_pytorch import from_torch
from .onnx import OPSET, build_onnx, export_onnx, supported_layers
from .torch import to_torch
from .torch_modules import torch_modules

__all__ = ["export_onnx", "build_onnx", "supported_layers", "OPSET", "to_torch", "from_torch", "torch_modules"]
