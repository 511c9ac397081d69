"""The layer protocol, and ``Layer``, a small base class of conveniences for following it.

The protocol is all a layer needs; any plain class with these four members works everywhere in
nnscratch (inside ``Sequential``, with the optimizers, with ``sanity_check``, with ``fit``):

- ``forward(x, *args) -> y``: compute the output and cache what backward needs. Extra args are
  for layers that need them (loss targets); other layers ignore them.
- ``backward(delta) -> delta_x``: given dL/dy, return dL/dx, and *set* (overwrite, never
  accumulate) the gradient of every parameter in ``parameters_deltas``.
- ``parameters``: list of arrays, updated in place by optimizers.
- ``parameters_deltas``: list of arrays aligned with ``parameters``.

Optional members, for layers that need them (a plain class without them keeps working):

- ``training``, ``train(mode=True)`` and ``eval()``: the mode. Dropout and BatchNorm behave
  differently in training and in evaluation; ``fit`` trains in train mode, ``evaluate`` and
  ``predict`` run in eval mode. ``train``/``eval`` return the layer. A container (anything with
  a ``layers`` list, such as ``Sequential``) passes the mode on to every child that has ``train``.
- ``buffers``: list of arrays that are state but not trained (BatchNorm's running statistics).
  ``save``/``load`` round-trip them like parameters; optimizers never touch them; ``sanity_check``
  leaves them as it found them.
- ``integer_input = True``: the layer's input is integer ids (``Embedding``). Ids have no gradient,
  so ``backward`` returns None; ``sanity_check`` checks the parameters only and says the input was
  skipped, and ``Sequential`` passes the attribute on from its first layer.
- ``release_memory()``: drop what the layer keeps between calls only to be fast or for the next
  backward; ``predict`` and ``evaluate`` call it when they finish (nnscratch/kernels/memory.py).

``Layer`` adds a name, ``__call__``, a readable repr, ``output_shape`` for summaries and
``config`` for saving, plus the checks that turn bad input into clear ``ValueError``s.
"""

from __future__ import annotations

import contextlib

import numpy as np

from .validation import check_input_array, check_mode

PROTOCOL = ("forward", "backward", "parameters", "parameters_deltas")


class Layer:
    """Base class for built-in layers: protocol defaults and conveniences.

    Subclasses set ``self.parameters`` / ``self.parameters_deltas`` (and ``self.buffers``; all empty
    by default) and implement ``forward`` and ``backward``.
    """

    # A class attribute, so every subclass has it even if its __init__ never calls Layer's.
    training: bool = True
    # Whether forward takes a numpy masked array (Mean does: the per-token losses of a cross-entropy
    # with ignored tokens); every other layer refuses one, whose mask it would silently ignore.
    takes_masked_input: bool = False

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

    def output_shape(self, input_shape: tuple) -> tuple:
        """Shape of the output for an input of ``input_shape`` (batch axis included).

        The default runs forward on zeros; layers override it when that is wasteful or when
        forward needs more than ``x``.
        """
        return output_shape_by_running(self, input_shape)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{self.name}({args})"

    # -- the checks every layer makes ---------------------------------------------------------
    def _check_input(self, x, ndim: int | None = None, layout: str = "") -> None:
        """The one check every layer makes of its input: a numpy array of real numbers (of ``ndim``
        axes, laid out as ``layout`` says, when given)."""
        check_input_array(self.name, x, masked_ok=self.takes_masked_input)
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

    def _check_forward_called(self, cached) -> None:
        if cached is None:
            raise RuntimeError(f"{self.name}.backward called before forward")

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


def check_protocol(index: int, layer, container: str) -> None:
    """A container's ``index``-th layer must follow the layer protocol: a ``TypeError`` naming what it lacks."""
    missing = [member for member in PROTOCOL if not hasattr(layer, member)]
    if missing:
        raise TypeError(
            f"{container}: layer {index} ({type(layer).__name__}) does not follow the layer protocol, "
            f"expected forward, backward, parameters and parameters_deltas; missing {', '.join(missing)}"
        )


def layer_name(layer) -> str:
    """The name a layer goes by in messages: its ``name`` attribute if a string, else its class."""
    name = getattr(layer, "name", None)
    return name if isinstance(name, str) and name else type(layer).__name__


def layer_class_name(cls) -> str:
    """``Conv2D``, or ``reference.Conv2D`` for a textbook twin: how a user names the class."""
    prefix = "reference." if cls.__module__.startswith("nnscratch.reference") else ""
    return prefix + cls.__name__


def with_context(error: Exception, where: str) -> Exception:
    """The same kind of error with the layer's position in front of its message."""
    message = f"{where}: {error}"
    for kind in (type(error), ValueError if isinstance(error, ValueError) else TypeError):
        try:
            return kind(message)
        except TypeError:  # an exception class with a constructor of its own
            continue
    return error


# -- walking containers ---------------------------------------------------------------------------
def children(layer) -> list:
    """The layers inside a container (anything with a ``layers`` list); [] for any other layer."""
    inner = getattr(layer, "layers", None)
    return list(inner) if isinstance(inner, (list, tuple)) else []


def walk(layer, opens=None):
    """``layer``, then every layer nested inside it through containers, depth first.

    ``opens(container) -> bool`` picks the containers to walk into (default: all of them); the
    containers themselves are yielded too."""
    yield layer
    if opens is None or opens(layer):
        for child in children(layer):
            yield from walk(child, opens)


# -- modes ----------------------------------------------------------------------------------------
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


# -- shapes ---------------------------------------------------------------------------------------
def output_shape_by_running(layer, input_shape: tuple) -> tuple:
    """The output shape of any protocol layer, found by running forward on zeros of its dtype."""
    dtype = layer.parameters[0].dtype if layer.parameters else np.float32
    return np.shape(layer.forward(np.zeros(input_shape, dtype=dtype)))


def layer_output_shape(layer, shape: tuple) -> tuple:
    """``layer.output_shape(shape)`` where the layer has one, else found by running it."""
    if hasattr(layer, "output_shape"):
        return tuple(layer.output_shape(shape))
    return output_shape_by_running(layer, shape)  # a plain protocol class
