"""Memory a layer keeps between calls, and giving it back: the release policy of the fast layers.

A fast layer keeps two kinds of memory from one call to the next:

- its *caches*: what forward keeps for backward (the last input, a mask, the winners of a max-pool);
- its *stores*: memory kept only to be fast (convolution plans, recycled result arrays: see
  ``recycle.py``), the size of the batches it served.

``KeepsMemory`` gives such a layer ``release_memory()``, which drops both (the next forward rebuilds
them), and copies (``copy.deepcopy``, ``sanity_check``'s working copy) that leave the stores behind.
``release_memory(model)`` calls it on every layer of a model, then hands the freed memory back to
the operating system (``heap.trim``); ``predict`` and ``evaluate`` call it when they finish, so the
memory their large batches took goes back, while ``fit`` keeps its training-size arrays.
``writable_deltas`` gives backward the gradient arrays it overwrites in place.
"""

from __future__ import annotations

from ..protocol import walk
from . import aligned, heap


class KeepsMemory:
    """Mixed into a layer that keeps memory between calls: names it, and drops it on request.

    The layer lists the attributes forward fills for backward in ``_caches`` (set back to None) and
    those that hold memory kept only for speed in ``_stores`` (dicts of recycled arrays, emptied, or
    plans, set to None).
    """

    _caches: tuple = ()
    _stores: tuple = ()

    def release_memory(self) -> None:
        """Drop the caches and stores; the next forward rebuilds what it needs."""
        for name in self._caches:
            setattr(self, name, None)
        for name in self._stores:
            setattr(self, name, _emptied(getattr(self, name)))

    def __getstate__(self) -> dict:
        """What a copy takes (``copy.deepcopy``, pickle): everything but the stores, which are the
        size of the batches the layer served and which its own first forward rebuilds."""
        state = self.__dict__.copy()
        for name in self._stores:
            if name in state:
                state[name] = _emptied(state[name])
        return state


def _emptied(store):
    """An empty store of the same kind: {} for a dict of arrays, None for anything else (a plan)."""
    return {} if isinstance(store, dict) else None


def release_memory(model) -> None:
    """Call ``release_memory()`` on ``model`` and every layer nested in it that has one, then hand
    the freed memory back to the operating system (``heap.trim``)."""
    for inner in walk(model):
        if isinstance(getattr(inner, "layers", None), (list, tuple)):
            continue  # a container: walk() reaches its layers, and its own method would walk again
        release = getattr(inner, "release_memory", None)
        if callable(release):
            release()
    heap.trim()


def writable_deltas(layer) -> list:
    """``layer.parameters_deltas``, for backward to overwrite in place: first remade (zeros, 64-byte
    aligned, in the same list) if they no longer match ``parameters`` in count, shape or dtype, as
    after a user swapped the parameters for float64 copies."""
    deltas, parameters = layer.parameters_deltas, layer.parameters
    stale = len(deltas) != len(parameters) or any(
        not hasattr(d, "shape") or d.shape != p.shape or d.dtype != p.dtype for d, p in zip(deltas, parameters)
    )
    if stale:
        deltas[:] = [aligned.zeros_like(p) for p in parameters]
    return deltas
