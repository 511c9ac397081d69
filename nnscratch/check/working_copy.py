"""The layer a gradient check works on: a float64 deep copy, and the calls it makes on it.

The check never touches the layer it is given. ``float64_copy`` deep-copies it and swaps every float
parameter (and delta buffer, and buffer such as BatchNorm's running statistics) for a float64 twin
wherever the copy refers to it, so that central differences run in float64 even for a float32 layer;
the original's buffers are never written, whatever forward does to the copy's. ``Runner`` calls
forward and backward on that copy with fresh copies of the inputs and checks that what comes back
follows the layer protocol.

Stochastic layers (Dropout): every forward of the check must see the same random draws, or the
numerical and analytical gradients would describe different functions. The rule, which a user's
layer can follow too: keep your randomness in a numpy ``Generator`` (or legacy ``RandomState``)
that the layer holds, e.g. ``self.rng``. ``Runner`` records the state of every generator it finds
in the copy (in its attributes, lists, dicts and tuples, through containers) and puts it back
before every forward, so each forward draws the same numbers. Draws from ``np.random``'s global
functions cannot be rewound; such a layer fails the check's "same output twice" test.
"""

from __future__ import annotations

import copy
import types

import numpy as np

from .report import GradientCheckError, layer_name

# -- promotion to float64 --------------------------------------------------------------------
# Objects whose __dict__ is code, not layer state.
_NOT_WALKED = (type, types.FunctionType, types.MethodType, types.BuiltinFunctionType, types.ModuleType)


def _promote_graph(obj, replacements: dict, memo: dict):
    """Return ``obj`` with every array whose id is in ``replacements`` swapped for its float64 twin.

    Lists, dicts and object ``__dict__``s are updated in place; tuples are rebuilt. ``memo`` (id ->
    result) keeps shared objects shared and stops cycles.
    """
    key = id(obj)
    if key in replacements:
        return replacements[key]
    if key in memo:
        return memo[key]
    if isinstance(obj, np.ndarray) or isinstance(obj, (str, bytes, int, float, complex, type(None))):
        return obj
    memo[key] = obj
    if isinstance(obj, list):
        for i, item in enumerate(obj):
            new = _promote_graph(item, replacements, memo)
            if new is not item:
                obj[i] = new
    elif isinstance(obj, dict):
        for k, item in list(obj.items()):
            new = _promote_graph(item, replacements, memo)
            if new is not item:
                obj[k] = new
    elif isinstance(obj, tuple):
        items = [_promote_graph(item, replacements, memo) for item in obj]
        if any(new is not old for new, old in zip(items, obj)):
            memo[key] = type(obj)(*items) if hasattr(obj, "_fields") else type(obj)(items)
    elif not isinstance(obj, _NOT_WALKED) and hasattr(obj, "__dict__"):
        attrs = vars(obj)
        for k, item in list(attrs.items()):
            new = _promote_graph(item, replacements, memo)
            if new is not item:
                attrs[k] = new  # bypasses property setters: we only swap like for like
    return memo[key]


def float64_copy(layer, name: str):
    """Deep-copy ``layer`` and make every float parameter (and delta buffer) float64 in the copy."""
    try:
        work = copy.deepcopy(layer)
    except Exception as error:
        raise TypeError(f"sanity_check: cannot deep-copy layer {name} to check it: {error}") from None
    originals = {id(p) for p in parameters_of(layer) + buffers_of(layer)}
    if work is layer or any(id(p) in originals for p in parameters_of(work) + buffers_of(work)):
        raise TypeError(
            f"sanity_check: copy.deepcopy({name}) shares parameter or buffer arrays with the original; "
            "the check needs an independent copy so as to leave the layer untouched"
        )
    replacements = {}
    for p in parameters_of(work) + _delta_buffers(work) + buffers_of(work):
        if p.dtype.kind == "f" and p.dtype != np.float64:
            replacements[id(p)] = p.astype(np.float64)
    if replacements:
        _promote_graph(work, replacements, {})
    for i, p in enumerate(parameters_of(work)):
        if p.dtype != np.float64:
            raise TypeError(
                f"sanity_check: parameter {i} of {name} is {p.dtype} and could not be made float64 "
                "(parameters must be float arrays the layer holds, not fresh copies)"
            )
    return work


def parameters_of(layer) -> list:
    """``layer.parameters`` validated: a list of arrays (a missing attribute counts as empty)."""
    items = getattr(layer, "parameters", None)
    if items is None:
        return []
    if not isinstance(items, (list, tuple)):
        raise TypeError(
            f"sanity_check: {layer_name(layer)}.parameters must be a list of arrays, got {type(items).__name__}"
        )
    for i, item in enumerate(items):
        if not isinstance(item, np.ndarray):
            raise TypeError(
                f"sanity_check: {layer_name(layer)}.parameters[{i}] must be a numpy array, got {type(item).__name__}"
            )
    return list(items)


def buffers_of(layer) -> list:
    """The arrays in ``layer.buffers`` (an optional member: none when it is missing)."""
    items = getattr(layer, "buffers", None)
    if not isinstance(items, (list, tuple)):
        return []
    return [item for item in items if isinstance(item, np.ndarray)]


def _delta_buffers(layer) -> list:
    """The arrays already in ``layer.parameters_deltas`` (before backward it may hold anything)."""
    items = getattr(layer, "parameters_deltas", None)
    if not isinstance(items, (list, tuple)):
        return []
    return [item for item in items if isinstance(item, np.ndarray)]


def as_float64_arg(arg):
    """Float arrays (one-hot or soft targets) go to float64; integer labels and the rest stay."""
    if isinstance(arg, np.ndarray) and arg.dtype.kind == "f":
        return arg.astype(np.float64)
    return arg


# -- random generators, rewound before every forward -----------------------------------------
_GENERATORS = (np.random.Generator, np.random.RandomState)


def random_states(obj) -> list:
    """(generator, state) for every numpy Generator / RandomState reachable from ``obj``'s attributes,
    lists, dicts and tuples (each generator once)."""
    found, seen, stack = [], set(), [obj]
    while stack:
        item = stack.pop()
        if id(item) in seen or isinstance(item, (np.ndarray, str, bytes, int, float, complex, type(None))):
            continue
        seen.add(id(item))
        if isinstance(item, np.random.Generator):
            found.append((item, item.bit_generator.state))
        elif isinstance(item, np.random.RandomState):
            found.append((item, item.get_state()))
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif not isinstance(item, _NOT_WALKED) and hasattr(item, "__dict__"):
            stack.extend(vars(item).values())
    return found


def rewind(states: list) -> None:
    """Put every generator back in the state ``random_states`` recorded."""
    for generator, state in states:
        if isinstance(generator, np.random.Generator):
            generator.bit_generator.state = state
        else:
            generator.set_state(state)


# -- one forward / backward ------------------------------------------------------------------
class Runner:
    """Calls on the float64 working copy, always with fresh copies of the inputs, and every random
    generator the copy holds rewound to the same state before each forward."""

    def __init__(self, layer, name: str, x: np.ndarray, args: tuple):
        self.layer, self.name, self.x, self.args = layer, name, x, args
        self.random_states = random_states(layer)

    def forward(self) -> np.ndarray:
        rewind(self.random_states)
        args = tuple(a.copy() if isinstance(a, np.ndarray) else a for a in self.args)
        y = self.layer.forward(self.x.copy(), *args)
        y_array = np.asarray(y)
        if y_array.dtype != np.float64:
            raise TypeError(
                f"sanity_check: {self.name}.forward returned {y_array.dtype} for float64 input and "
                "float64 parameters; the check needs float64 arithmetic (derive the dtype from the "
                "parameters or the input, not from a stored attribute)"
            )
        # Copy: a layer may return a view of its input or of an internal buffer.
        return np.array(y_array, dtype=np.float64, copy=True)

    def backward(self, r: np.ndarray):
        """Run backward(R); return copies of the input gradient and of every parameter delta."""
        delta = np.float64(r) if r.ndim == 0 else r.copy()
        delta_x = self.layer.backward(delta)
        delta_x = np.array(delta_x, dtype=None, copy=True) if delta_x is not None else None
        if delta_x is None or delta_x.shape != self.x.shape:
            got = "None" if delta_x is None else f"shape {delta_x.shape}"
            raise GradientCheckError(
                f"{self.name}: backward must return the input gradient of shape {self.x.shape} "
                f"(the input's shape), got {got}"
            )
        params = parameters_of(self.layer)
        deltas = getattr(self.layer, "parameters_deltas", None)
        deltas = [] if deltas is None and not params else deltas
        if not isinstance(deltas, (list, tuple)):
            raise GradientCheckError(
                f"{self.name}: parameters_deltas must be a list aligned with parameters, "
                f"got {type(deltas).__name__}"
            )
        if len(deltas) != len(params):
            raise GradientCheckError(
                f"{self.name}: parameters_deltas has {len(deltas)} entries but parameters has "
                f"{len(params)}; after backward they must be aligned lists, one delta per parameter"
            )
        copies = []
        for i, (p, d) in enumerate(zip(params, deltas)):
            d = np.asarray(d) if d is not None else None
            if d is None or d.shape != p.shape:
                got = "None" if d is None else f"shape {d.shape}"
                raise GradientCheckError(
                    f"{self.name}: parameters_deltas[{i}] must have the shape of parameters[{i}], "
                    f"{p.shape}, got {got}"
                )
            # Copy now: some layers overwrite their delta buffers in place on the next backward.
            copies.append(np.array(d, dtype=np.float64, copy=True))
        return delta_x.astype(np.float64), copies
