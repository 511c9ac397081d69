"""What the check reads from a layer besides the protocol: integer-id input, and sample independence.

Two optional class attributes, which any layer may declare (a plain class included):

- ``integer_input = True``: the layer's input x holds integer ids (an embedding). ``sanity_check``
  passes x to forward as it is (no float64 cast), reports the input as skipped ("integer ids have
  no gradient"), and checks every parameter as usual; the layer's backward returns None. A
  container (anything with a ``layers`` list, such as ``Sequential``) takes ids when its first
  layer does.
- ``independent_samples = True`` or ``False``: whether sample i's output depends on sample i's
  input alone (true of most layers; false of BatchNorm in training mode, whose batch statistics
  mix the samples, and of ``Mean``, which has no sample axis). The check looks for a gradient that
  leaks from one sample to another only in a layer that says it is independent, so that a
  BatchNorm is never told it leaks. Layers that do not declare it: the built-in layers (and classes
  derived from them) follow the table in ``independent_samples`` below; a container is independent
  when all its layers are, and not when one of them is not; any other class is not probed.

The built-in layers declare neither attribute today; this module holds their rule instead. The
layer files can declare it later (``Mean.independent_samples = False``, BatchNorm as a property of
``training``), and this table then shrinks to the default.
"""

from __future__ import annotations

from .. import layers, reference
from ..protocol import Layer


def takes_integer_ids(layer) -> bool:
    """True when ``layer`` (or the first layer of a container) declares ``integer_input = True``."""
    declared = getattr(layer, "integer_input", None)
    if isinstance(declared, bool):
        return declared
    children = getattr(layer, "layers", None)
    if isinstance(children, (list, tuple)) and children:
        return takes_integer_ids(children[0])
    return False


def _builtin_rule(layer):
    """The rule for a class derived from a built-in nnscratch layer: True, False or None (not one)."""
    batch_norms = (layers.BatchNorm1D, layers.BatchNorm2D, reference.BatchNorm1D, reference.BatchNorm2D)
    if isinstance(layer, batch_norms):
        return not getattr(layer, "training", True)  # batch statistics in training mode
    if isinstance(layer, layers.Mean):
        return False  # one value for the whole batch
    for cls in type(layer).__mro__:  # the nearest nnscratch class that is a layer of its own
        if cls.__module__.startswith("nnscratch.") and cls is not Layer and cls is not object:
            return True
    return None


def independent_samples(layer):
    """Whether sample i's output should depend on sample i's input alone: True, False, or None when
    the layer does not say (then the check does not probe it). See the module docstring."""
    declared = getattr(layer, "independent_samples", None)
    if isinstance(declared, bool):
        return declared
    children = getattr(layer, "layers", None)
    if isinstance(children, (list, tuple)) and children:
        verdicts = [independent_samples(child) for child in children]
        if any(v is False for v in verdicts):
            return False
        return True if all(v is True for v in verdicts) else None
    return _builtin_rule(layer)
