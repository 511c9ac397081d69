"""What every optimizer shares: its source's parameters checked, per-parameter state arrays, scratch
arrays kept between steps, weight decay, and the state a checkpoint saves."""

from __future__ import annotations

import numpy as np

from ..kernels import aligned
from ..validation import check_parameter_dtype


def source_layers(owner: str, source) -> list:
    """The layers of an optimizer's source (a layer, a Sequential or a list of layers), checked."""
    layers = list(source) if isinstance(source, (list, tuple)) else [source]
    for layer in layers:
        if not (hasattr(layer, "parameters") and hasattr(layer, "parameters_deltas")):
            raise TypeError(
                f"{owner}: expected a layer, a Sequential or a list of layers "
                f"(objects with parameters and parameters_deltas), got {type(layer).__name__}"
            )
    return layers


class Optimizer:
    """Shared plumbing: find the parameters of the source, check them, keep per-parameter state."""

    def __init__(self, source):
        self.layers = source_layers(type(self).__name__, source)
        for index, p in enumerate(p for layer in self.layers for p in layer.parameters):
            check_parameter_dtype(type(self).__name__, index, p)
        self.steps = 0  # number of updates done; Adam's bias correction uses it
        self._work: dict = {}  # scratch arrays for _update, by (dtype, slot)

    def _pairs(self):
        params = [p for layer in self.layers for p in layer.parameters]
        deltas = [d for layer in self.layers for d in layer.parameters_deltas]
        if len(params) != len(deltas):
            raise ValueError(
                f"{type(self).__name__}: {len(params)} parameters but {len(deltas)} parameters_deltas; "
                "every parameter needs its delta (has backward been called?)"
            )
        for index, (p, d) in enumerate(zip(params, deltas)):
            check_parameter_dtype(type(self).__name__, index, p)  # a parameter may have been swapped since
            if np.shape(d) != p.shape:
                raise ValueError(
                    f"{type(self).__name__}: parameter {index} has shape {p.shape} "
                    f"but its delta has shape {np.shape(d)}"
                )
        return params, deltas

    def _state_arrays(self, name: str, params) -> list:
        """Per-parameter state arrays (velocities, moments), made on first use, zero-filled, in each
        parameter's dtype."""
        arrays = getattr(self, name, None)
        if arrays is None or [a.shape for a in arrays] != [p.shape for p in params]:
            arrays = [aligned.zeros_like(p) for p in params]
            setattr(self, name, arrays)
        return arrays

    def _scratch(self, p, slot: int = 0) -> np.ndarray:
        """A work array in p's shape and dtype: a view of one buffer per dtype and slot, kept
        between steps (slot 1 holds the weight-decayed gradient while slot 0 is in use).

        Updating through it, instead of through a fresh temporary per product, saves an allocation
        and keeps the memory in cache from step to step (SGD's step: 83 us instead of 100 for the
        benchmark MLP). Every view starts at the buffer's start, which is 64-byte aligned.
        """
        key = (p.dtype, slot)
        work = self._work.get(key)
        if work is None or work.size < p.size:
            work = self._work[key] = aligned.empty(p.size, p.dtype)
        return work[: p.size].reshape(p.shape)

    # Weight decay on every parameter (PyTorch's default), or, with decay_matrices_only=True, on the
    # parameters of two or more axes only (the weights of Linear, Conv2D, Embedding, attention) and not
    # on biases or normalization gains, as nanoGPT and most Transformer recipes do.
    decay_matrices_only: bool = False

    def _decays(self, p) -> bool:
        return bool(self.weight_decay) and (p.ndim >= 2 or not self.decay_matrices_only)

    def _gradient(self, p, d) -> np.ndarray:
        """g = d + weight_decay * p (L2 weight decay as PyTorch adds it), in scratch slot 1; d itself
        without weight decay."""
        if not self._decays(p):
            return d
        g = self._scratch(p, 1)
        np.multiply(p, self.weight_decay, out=g)
        g += d
        return g

    def step(self) -> None:
        params, deltas = self._pairs()
        self.steps += 1
        self._update(params, deltas)

    # -- checkpoints ---------------------------------------------------------------------------
    _state_names: tuple = ()

    def state_dict(self) -> dict:
        """Arrays and counters that resume training exactly: {"steps": int, "<state>.<i>": array}."""
        state = {"steps": self.steps}
        for name in self._state_names:
            for index, array in enumerate(getattr(self, name, None) or []):
                state[f"{name}.{index}"] = array.copy()
        return state

    def load_state_dict(self, state: dict) -> None:
        params, _ = self._pairs()
        self.steps = int(state["steps"])
        for name in self._state_names:
            keys = [f"{name}.{index}" for index in range(len(params))]
            if not any(key in state for key in keys):
                setattr(self, name, None)
                continue
            arrays = []
            for key, p in zip(keys, params):
                if key not in state:
                    raise ValueError(f"{type(self).__name__}: optimizer state is missing {key!r}")
                value = np.asarray(state[key])
                if value.shape != p.shape:
                    raise ValueError(
                        f"{type(self).__name__}: optimizer state {key!r} has shape {value.shape}, "
                        f"expected {p.shape}"
                    )
                arrays.append(aligned.copy(value.astype(p.dtype, copy=False)))
            setattr(self, name, arrays)
