"""The layer a gradient check works on: a float64 deep copy, and the calls it makes on it.

The check never touches the layer it is given. ``float64_copy`` deep-copies it and swaps every float
parameter (and delta buffer, and buffer such as BatchNorm's running statistics) for a float64 twin
wherever the copy refers to it, so that central differences run in float64 even for a float32 layer;
the original's buffers are never written, whatever forward does to the copy's. (``typed_copy`` does
the same for any float dtype: the float32 probe of precision.py runs on a float32 copy.) ``Runner``
calls forward and backward on a copy with fresh copies of the inputs and checks that what comes back
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
    return typed_copy(layer, name, np.float64)


def typed_copy(layer, name: str, dtype):
    """Deep-copy ``layer`` with every float parameter, delta buffer and buffer in ``dtype``."""
    dtype = np.dtype(dtype)
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
        if p.dtype.kind == "f" and p.dtype != dtype:
            replacements[id(p)] = p.astype(dtype)
    if replacements:
        _promote_graph(work, replacements, {})
    for i, p in enumerate(parameters_of(work)):
        if p.dtype != dtype:
            raise TypeError(
                f"sanity_check: parameter {i} of {name} is {p.dtype} and could not be made {dtype} "
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


def as_float_arg(arg, dtype=np.float64):
    """Float arrays (one-hot or soft targets) go to ``dtype``; integer labels and the rest stay."""
    if isinstance(arg, np.ndarray) and arg.dtype.kind == "f":
        return arg.astype(dtype)
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
def _permuted_hint(got: tuple, want: tuple) -> str:
    """A word on a gradient whose shape is the wanted one with its axes in another order."""
    if got != want and sorted(got) == sorted(want):
        return " (the same sizes in another order: is the gradient transposed?)"
    return ""


class Runner:
    """Calls on a working copy, always with fresh copies of the inputs, and every random generator
    the copy holds rewound to the same state before each forward.

    ``integer_input``: x holds integer ids, passed as they are, and backward's return value (None:
    ids have no gradient) is not read. ``returned_dtypes`` holds the dtype of each gradient the last
    backward gave, input first (None for ids), before they were copied to float64."""

    def __init__(self, layer, name: str, x: np.ndarray, args: tuple, integer_input: bool = False,
                 dtype=np.float64):
        self.layer, self.name, self.x, self.args = layer, name, x, args
        self.integer_input, self.dtype = integer_input, np.dtype(dtype)
        self.random_states = random_states(layer)
        self.returned_dtypes: list = []

    def forward(self, x=None) -> np.ndarray:
        """forward(x) (the working x when not given) as a fresh array of the working dtype."""
        rewind(self.random_states)
        args = tuple(a.copy() if isinstance(a, np.ndarray) else a for a in self.args)
        y = self.layer.forward((self.x if x is None else x).copy(), *args)
        y_array = np.asarray(y)
        if y_array.dtype != self.dtype:
            raise TypeError(
                f"sanity_check: {self.name}.forward returned {y_array.dtype} for {self.dtype} input and "
                f"{self.dtype} parameters; the check needs {self.dtype} arithmetic (derive the dtype from the "
                "parameters or the input, not from a stored attribute)"
            )
        # Copy: a layer may return a view of its input or of an internal buffer.
        return np.array(y_array, dtype=self.dtype, copy=True)

    def backward(self, r: np.ndarray):
        """Run backward(R); return float64 copies of the input gradient (None for integer ids) and of
        every parameter delta."""
        delta = self.dtype.type(r) if r.ndim == 0 else r.astype(self.dtype)
        delta_x = self.layer.backward(delta)
        if self.integer_input:
            delta_x = None
        else:
            delta_x = np.array(delta_x, dtype=None, copy=True) if delta_x is not None else None
            if delta_x is None or delta_x.shape != self.x.shape:
                got = "None" if delta_x is None else f"shape {delta_x.shape}"
                hint = "" if delta_x is None else _permuted_hint(delta_x.shape, self.x.shape)
                raise GradientCheckError(
                    f"{self.name}: backward must return the input gradient of shape {self.x.shape} "
                    f"(the input's shape), got {got}{hint}"
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
        self.returned_dtypes = [None if delta_x is None else delta_x.dtype]
        for i, (p, d) in enumerate(zip(params, deltas)):
            d = np.asarray(d) if d is not None else None
            if d is None or d.shape != p.shape:
                got = "None" if d is None else f"shape {d.shape}"
                hint = "" if d is None else _permuted_hint(d.shape, p.shape)
                raise GradientCheckError(
                    f"{self.name}: parameters_deltas[{i}] must have the shape of parameters[{i}], "
                    f"{p.shape}, got {got}{hint}"
                )
            self.returned_dtypes.append(d.dtype)
            # Copy now: some layers overwrite their delta buffers in place on the next backward.
            copies.append(np.array(d, dtype=np.float64, copy=True))
        return None if delta_x is None else delta_x.astype(np.float64), copies
