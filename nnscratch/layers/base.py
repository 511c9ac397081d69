"""The layer protocol, and a small base class of conveniences.

The protocol is all a layer needs; any plain class with these four members works everywhere in
nnscratch (inside ``Sequential``, with the optimizers, with ``sanity_check``):

- ``forward(x, *args) -> y``: compute the output and cache what backward needs. Extra args are
  for layers that need them (loss targets); other layers ignore them.
- ``backward(delta) -> delta_x``: given dL/dy, return dL/dx, and *set* (overwrite, never
  accumulate) the gradient of every parameter in ``parameters_deltas``.
- ``parameters``: list of arrays, updated in place by optimizers.
- ``parameters_deltas``: list of arrays aligned with ``parameters``.

Two optional members, for layers that need them (a plain class without them keeps working):

- ``training``, ``train(mode=True)`` and ``eval()``: the mode. Dropout and BatchNorm behave
  differently in training and in evaluation; ``fit`` trains in train mode, ``evaluate`` and
  ``predict`` run in eval mode. ``train``/``eval`` return the layer. A container (anything with
  a ``layers`` list, such as ``Sequential``) passes the mode on to every child that has ``train``.
- ``buffers``: list of arrays that are state but not trained (BatchNorm's running statistics).
  ``save``/``load`` round-trip them like parameters; optimizers never touch them; ``sanity_check``
  leaves them as it found them.

And one optional member for layers that keep memory from one call to the next:

- ``release_memory()``: drop what the layer keeps between calls only to be fast or for the next
  backward (convolution plans, recycled buffers, the last forward's cache); the next forward
  rebuilds it. ``predict`` and ``evaluate`` call it on every layer that has it (walking containers
  through their ``layers``) when they finish, so the memory their large batches took goes back;
  ``fit`` keeps its training-size buffers. Call it yourself after a large forward of your own.

``Layer`` adds a name, ``__call__``, a readable repr, ``output_shape`` for summaries and
``config`` for saving, plus the checks that turn bad input into clear ``ValueError``s.
"""

from __future__ import annotations

import contextlib

import numpy as np

from .. import seeding
from ..kernels import aligned, heap


class Layer:
    """Base class for built-in layers: protocol defaults and conveniences.

    Subclasses set ``self.parameters`` / ``self.parameters_deltas`` (and ``self.buffers``; all empty
    by default) and implement ``forward`` and ``backward``.
    """

    # A class attribute, so every subclass has it even if its __init__ never calls Layer's.
    training: bool = True

    def __init__(self):
        self.parameters: list[np.ndarray] = []
        self.parameters_deltas: list[np.ndarray] = []
        self.buffers: list[np.ndarray] = []

    # -- train / eval mode --------------------------------------------------------------------
    def train(self, mode=True):
        """Set training mode (``mode=False``: eval mode); returns the layer."""
        self.training = check_mode(self.name, mode)
        return self

    def eval(self):
        """Set eval mode, ``train(False)``; returns the layer."""
        return self.train(False)

    # -- the protocol -------------------------------------------------------------------------
    def forward(self, x, *args):
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def backward(self, delta):
        raise NotImplementedError(f"{type(self).__name__} does not implement backward")

    # -- conveniences -------------------------------------------------------------------------
    def __call__(self, x, *args):
        return self.forward(x, *args)

    @property
    def name(self) -> str:
        return type(self).__name__

    def config(self) -> dict:
        """Constructor arguments, JSON-serialisable, so ``type(self)(**config())`` rebuilds it."""
        return {}

    @classmethod
    def parameter_specs(cls, **config) -> list:
        """The (shape, dtype) of each parameter of ``cls(**config)``, computed without building it.

        ``load`` checks a checkpoint's sizes against these before any layer allocates its weights
        (see io.py), so a small file asking for a huge layer is refused instead of built. Validates
        ``config`` as ``__init__`` does. Layers with parameters override it; the default is none.
        """
        return []

    @classmethod
    def buffer_specs(cls, **config) -> list:
        """Like ``parameter_specs``, for ``buffers``: layers with buffers override it."""
        return []

    def output_shape(self, input_shape: tuple) -> tuple:
        """Shape of the output for an input of ``input_shape`` (batch axis included).

        The default runs forward on zeros; layers override it when that is wasteful or when
        forward needs more than ``x``.
        """
        return output_shape_by_running(self, input_shape)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{self.name}({args})"

    # -- input checks shared by the layers ----------------------------------------------------
    def _check_input(self, x, ndim: int | None = None, layout: str = "") -> None:
        """The one check every layer makes of its input: a numpy array of real numbers (of ``ndim``
        axes, laid out as ``layout`` says, when given)."""
        check_input_array(self.name, x)
        if ndim is not None:
            self._check_ndim(x.shape, ndim, layout)

    def _check_ndim(self, shape: tuple, ndim: int, layout: str) -> None:
        """An input shape (an array's, or one given to ``output_shape``) must have ``ndim`` axes."""
        if len(shape) != ndim:
            raise ValueError(f"{self.name}: expected a {ndim}-D input ({layout}), got shape {tuple(shape)}")

    def _check_delta(self, delta, expected_shape: tuple) -> np.ndarray:
        delta = np.asarray(delta)
        if delta.shape != tuple(expected_shape):
            raise ValueError(
                f"{self.name}.backward: expected delta of shape {tuple(expected_shape)} "
                f"(the shape of the last output), got {delta.shape}"
            )
        return delta

    def _check_parameters_in_place(self, *names: str) -> None:
        """The named attributes ("weight", "bias") must still be ``parameters[0]``, ``parameters[1]``.

        Optimizers update the arrays in ``parameters``. A layer whose ``weight`` was rebound to a new
        array would compute with that array while the optimizer went on updating the old one, and
        training would silently do nothing; so that is an error, with the fix in its message. (Only
        the last names may be None, as a bias is.)
        """
        parameters = self.parameters
        for index, name in enumerate(names):
            array = getattr(self, name)
            if array is None or (index < len(parameters) and array is parameters[index]):
                continue
            if index >= len(parameters):
                raise ValueError(
                    f"{self.name}: {name} is set, but the layer was built without it ({name}=False); "
                    f"build it with {name}=True to train one"
                )
            raise ValueError(
                f"{self.name}: {name} is not the array in parameters (was layer.{name} assigned a new "
                f"array?); optimizers update parameters, so assign into it instead: "
                f"layer.{name}[...] = new_values"
            )

    def _delta_buffers(self) -> list:
        """``parameters_deltas``, for backward to overwrite in place: first remade (zeros, 64-byte
        aligned, in the same list) if they no longer match ``parameters`` in count, shape or dtype, as
        after a user swapped the parameters for float64 copies."""
        deltas = self.parameters_deltas
        stale = len(deltas) != len(self.parameters) or any(
            not isinstance(d, np.ndarray) or d.shape != p.shape or d.dtype != p.dtype
            for d, p in zip(deltas, self.parameters)
        )
        if stale:
            deltas[:] = [aligned.zeros_like(p) for p in self.parameters]
        return deltas

    # The attributes forward fills for backward (names); release_memory() sets them back to None.
    _caches: tuple = ()
    # The attributes that hold memory kept only for speed: stores of recycled buffers (dicts, see
    # kernels/buffers.py) and plans. release_memory() empties them, and a copy of the layer
    # (copy.deepcopy, pickle, sanity_check's working copy) starts without them.
    _stores: tuple = ()

    def release_memory(self) -> None:
        """Drop what the layer keeps between calls (see the module docstring): the attributes named
        in ``_caches`` and ``_stores``; the next forward rebuilds what it needs."""
        for name in self._caches:
            setattr(self, name, None)
        for name in self._stores:
            setattr(self, name, _emptied(getattr(self, name)))

    def __getstate__(self) -> dict:
        """What a copy takes (``copy.deepcopy``, pickle): everything but the ``_stores``, which are the
        size of the batches the layer served and which its own first forward rebuilds."""
        state = self.__dict__.copy()
        for name in self._stores:
            if name in state:
                state[name] = _emptied(state[name])
        return state

    def _check_forward_called(self, cached) -> None:
        if cached is None:
            raise RuntimeError(f"{self.name}.backward called before forward")


def _emptied(store):
    """An empty store of the same kind: {} for a dict of buffers, None for anything else (a plan)."""
    return {} if isinstance(store, dict) else None


# -- modes and buffers, for layers and containers ---------------------------------------------
def check_mode(who: str, mode) -> bool:
    """``train(mode)``'s argument must be a real bool (a string "False" would be truthy)."""
    if not isinstance(mode, (bool, np.bool_)):
        raise TypeError(f"{who}.train: mode must be True or False, got {type(mode).__name__} {mode!r}")
    return bool(mode)


def children(layer) -> list:
    """The layers inside a container (anything with a ``layers`` list); [] for any other layer."""
    inner = getattr(layer, "layers", None)
    return list(inner) if isinstance(inner, (list, tuple)) else []


def walk(layer):
    """``layer``, then every layer nested inside it through containers, depth first."""
    yield layer
    for child in children(layer):
        yield from walk(child)


class Container:
    """What every container of layers (``Sequential``, a residual block, ...) does the same way.

    The subclass keeps its children in ``self.layers``. ``train``/``eval`` set the container's own
    ``training`` and pass the mode on to every child that has ``train`` (a plain protocol layer
    without it is left alone); ``buffers`` concatenates the children's, in order. A subclass that
    also has a ``name`` gets the rest: ``parameters``/``parameters_deltas`` (its layers', in order),
    ``__call__``, ``len``, iteration, an empty ``config`` and a repr listing its layers.
    """

    training: bool = True

    def train(self, mode=True):
        """Set training mode (``mode=False``: eval mode) here and in every child; returns self."""
        mode = check_mode(getattr(self, "name", type(self).__name__), mode)
        self.training = mode
        for child in children(self):
            if callable(getattr(child, "train", None)):
                child.train(mode)
        return self

    def eval(self):
        """Set eval mode, ``train(False)``, here and in every child; returns self."""
        return self.train(False)

    @property
    def buffers(self) -> list:
        return [b for child in children(self) for b in getattr(child, "buffers", [])]

    def release_memory(self) -> None:
        """``release_memory()`` on every layer nested in the container that has it."""
        release_memory(self)

    @property
    def parameters(self) -> list:
        return [p for layer in self.layers for p in layer.parameters]

    @property
    def parameters_deltas(self) -> list:
        return [d for layer in self.layers for d in layer.parameters_deltas]

    def forward_layers(self, x, *args):
        """Run ``x`` through the layers in order; an error says which layer of the container raised it."""
        for index, layer in enumerate(self.layers):
            try:
                x = layer.forward(x, *args)
            except (ValueError, TypeError) as error:
                raise with_context(error, f"in layer {index} ({layer_name(layer)}) of {self.name}") from error
        return x

    def __call__(self, x, *args):
        return self.forward(x, *args)

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    def config(self) -> dict:
        return {}

    def __repr__(self) -> str:
        lines = [f"{self.name}("]
        for index, layer in enumerate(self.layers):
            inner = repr(layer).replace("\n", "\n  ")
            lines.append(f"  ({index}): {inner}")
        lines.append(")")
        return "\n".join(lines)


def layer_name(layer) -> str:
    return getattr(layer, "name", None) or type(layer).__name__


def layer_class_name(cls) -> str:
    """``Conv2D``, or ``reference.Conv2D`` for a textbook twin: how a user names the class."""
    prefix = "reference." if cls.__module__.startswith("nnscratch.reference") else ""
    return prefix + cls.__name__


def check_protocol(index: int, layer, container: str) -> None:
    """A container's ``index``-th layer must follow the layer protocol: a ``TypeError`` naming what it lacks."""
    missing = [m for m in ("forward", "backward", "parameters", "parameters_deltas") if not hasattr(layer, m)]
    if missing:
        raise TypeError(
            f"{container}: layer {index} ({type(layer).__name__}) does not follow the layer protocol, "
            f"expected forward, backward, parameters and parameters_deltas; missing {', '.join(missing)}"
        )


def with_context(error: Exception, where: str) -> Exception:
    """The same kind of error with the layer's position in front of its message."""
    message = f"{where}: {error}"
    for kind in (type(error), ValueError if isinstance(error, ValueError) else TypeError):
        try:
            return kind(message)
        except TypeError:  # an exception class with a constructor of its own
            continue
    return error


def release_memory(layer) -> None:
    """Call ``release_memory()`` on ``layer`` and every layer nested in it that has one, then hand
    the freed memory back to the operating system (``kernels.heap.trim``)."""
    for inner in walk(layer):
        if isinstance(getattr(inner, "layers", None), (list, tuple)):
            continue  # a container: walk() reaches its layers, and its own method would walk again
        release = getattr(inner, "release_memory", None)
        if callable(release):
            release()
    heap.trim()


def modes(layer) -> list:
    """The ``training`` flag of ``layer`` and of every layer nested in it, to put back later with
    ``restore_modes`` (each layer its own, so a user's mix of modes survives)."""
    return [(inner, inner.training) for inner in walk(layer) if isinstance(getattr(inner, "training", None), bool)]


def restore_modes(saved: list) -> None:
    """Put back what ``modes`` recorded, layer by layer, without cascading through containers."""
    for inner, mode in saved:
        inner.training = mode


@contextlib.contextmanager
def in_mode(training: bool, *layers):
    """Run a block with ``layers`` in train (``True``) or eval (``False``) mode, then put every nested
    layer's mode back as it was, also when the block raises. Layers without ``train`` are left alone.

    ``evaluate``/``predict`` use it, and so should anything that runs a model only to look at its
    output (a shape probe in training mode would update BatchNorm's running statistics)."""
    saved = [found for layer in layers for found in modes(layer)]
    try:
        for layer in layers:
            if callable(getattr(layer, "train", None)):
                layer.train(training)
        yield
    finally:
        restore_modes(saved)


def output_shape_by_running(layer, input_shape: tuple) -> tuple:
    """The output shape of any protocol layer, found by running forward on zeros of its dtype."""
    dtype = layer.parameters[0].dtype if layer.parameters else np.float32
    return np.shape(layer.forward(np.zeros(input_shape, dtype=dtype)))


def layer_output_shape(layer, shape: tuple) -> tuple:
    """``layer.output_shape(shape)`` where the layer has one, else found by running it."""
    if hasattr(layer, "output_shape"):
        return tuple(layer.output_shape(shape))
    return output_shape_by_running(layer, shape)  # a plain protocol class


# The dtype kinds a layer computes with: bool, signed and unsigned ints, floats. Anything else would
# be cast silently or fail deep inside NumPy: complex loses its imaginary part with only a warning,
# strings are parsed as numbers, datetimes become counts of days, objects could be anything.
REAL_KINDS = "biuf"


def check_input_array(layer: str, x, of: str = "") -> None:
    """What a layer is given must be a numpy array of real numbers (``of``: what it holds, when the
    layer takes more than one kind, such as a loss's predictions). ``Layer._check_input`` runs it;
    so do a container that is no ``Layer`` and the losses, so that there is one such check."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{layer}: expected a numpy array{f' of {of}' if of else ''} as input, got {type(x).__name__}")
    check_real_array(layer, f"the {of or 'input'}", x)


def check_real_array(layer: str, what: str, array: np.ndarray) -> None:
    """An input or targets array must hold real numbers: a clear TypeError otherwise."""
    if array.dtype.kind not in REAL_KINDS:
        raise TypeError(f"{layer}: {what} must be real numbers (bool, int or float), got an array of {array.dtype}")


def check_positive_int(layer: str, name: str, value, allow_zero: bool = False) -> int:
    """Validate a size hyperparameter in ``__init__``; return it as an int."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{layer}: {name} must be an int, got {type(value).__name__} {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        expected = "a non-negative int" if allow_zero else "a positive int"
        raise ValueError(f"{layer}: {name} must be {expected}, got {value}")
    return int(value)


def check_real(layer: str, name: str, value, minimum=None, strict: bool = False) -> float:
    """Validate a real-valued hyperparameter in ``__init__`` (finite, optionally >= or > ``minimum``);
    return it as a Python float, which keeps a float32 layer in float32 (a NumPy float64 would not)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{layer}: {name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{layer}: {name} must be finite, got {value}")
    if minimum is not None and (value <= minimum if strict else value < minimum):
        raise ValueError(f"{layer}: {name} must be {'>' if strict else '>='} {minimum}, got {value}")
    return value


def pair(layer: str, name: str, value, allow_zero: bool = False) -> tuple[int, int]:
    """``3 -> (3, 3)``, ``(3, 2) -> (3, 2)``, each entry validated (kernel sizes, strides, padding)."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{layer}: {name} must be an int or an (h, w) pair, got {value!r}")
        return (
            check_positive_int(layer, name, value[0], allow_zero),
            check_positive_int(layer, name, value[1], allow_zero),
        )
    size = check_positive_int(layer, name, value, allow_zero)
    return size, size


def compact(value: tuple):
    """The inverse of ``pair`` for ``config()``: ``(3, 3) -> 3``, ``(3, 2) -> [3, 2]`` (JSON has no tuples)."""
    return value[0] if value[0] == value[1] else list(value)


def check_window_fits(layer: str, shape: tuple, kernel: tuple, padding: tuple = (0, 0)) -> None:
    """A sliding-window layer's input must be at least as large as its kernel once padded."""
    (kh, kw), (ph, pw) = kernel, padding
    hp, wp = shape[2] + 2 * ph, shape[3] + 2 * pw
    if kh > hp or kw > wp:
        padded = f" after padding {(ph, pw)}" if ph or pw else ""
        size = f", {hp}x{wp} padded" if ph or pw else ""
        raise ValueError(
            f"{layer}: expected an input at least as large as the kernel {kh}x{kw}{padded}, "
            f"got x of shape {shape}{size}"
        )


# The parameter dtypes a layer accepts. float16 is refused: its 10-bit mantissa and 6e-5 smallest
# normal number lose the small gradients and updates training is made of (Adam's eps rounds to 0),
# so a float16 model would train wrong silently; wider floats (longdouble) are not portable.
DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def as_dtype(layer: str, dtype) -> np.dtype:
    """Accept float32/float64 (as dtype, type or name); anything else is a clear TypeError."""
    try:
        dt = np.dtype(dtype)
    except (TypeError, ValueError):
        raise TypeError(f"{layer}: dtype must be float32 or float64, got {dtype!r:.100}") from None
    if dt == np.float16:
        raise TypeError(
            f"{layer}: dtype float16 is not supported (too few bits for gradients and optimizer "
            "updates: training would go wrong silently); use float32"
        )
    if dt not in DTYPES:
        raise TypeError(f"{layer}: dtype must be float32 or float64, got {dt}")
    return dt


def check_bool(layer: str, name: str, value) -> bool:
    """Validate a boolean option in ``__init__``: True or False only (the string "no" is truthy)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{layer}: {name} must be True or False, got {type(value).__name__} {value!r:.100}")
    return bool(value)


def get_rng(rng) -> np.random.Generator:
    """The generator a layer initialises from: the one given, or one drawn from the global seed."""
    if rng is None:
        return seeding.default_rng()
    if isinstance(rng, (int, np.integer)):
        return np.random.default_rng(rng)
    if isinstance(rng, np.random.Generator):
        return rng
    raise TypeError(f"rng must be None, an int seed or a numpy Generator, got {type(rng).__name__}")
