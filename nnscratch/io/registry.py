"""The classes a checkpoint may name, how a header describes each, and how each is rebuilt from it.

- **Layers**: the built-in layers (``nnscratch.layers.__all__``) under their names, and their
  textbook twins (``nnscratch.reference.__all__``) as ``reference.<name>`` (the plain names mean the
  fast layers). Each is described as ``{"class": name, "config": layer.config()}`` and rebuilt as
  ``cls(**config)``. Its parameter and buffer shapes come from its ``parameter_specs`` and
  ``buffer_specs`` classmethods, by arithmetic, before anything is built (``specs``).
- **Layers that are containers**: a built-in layer class that keeps its children in ``layers``
  (a ``Sequential`` subclass with hyperparameters of its own, such as a Transformer block) is a
  layer like the others: described by its config, never by its children, rebuilt as
  ``cls(**config)``. It must have ``parameter_specs``, its children's shapes in order.
- **Containers**: ``Sequential`` and ``Residual`` themselves, described as ``{"class": name,
  "layers": [...]}`` and rebuilt as ``cls(*layers)``.
- **Optimizers**: SGD, Adam, AdamW, RMSprop and Adagrad, with the constructor arguments that
  rebuild each (read back from its attributes), its step count and the names of its state arrays.

Only these classes are ever instantiated, and a class is matched exactly: a subclass of a
built-in layer is not that layer, and ``save`` refuses it.
"""

from __future__ import annotations

import inspect
import json

import numpy as np

from .. import layers as _layers
from .. import reference as _reference
from ..containers import Container, Residual, Sequential
from ..optim import SGD, Adagrad, Adam, AdamW, RMSprop
from ..protocol import Layer

# optimizer class -> the constructor arguments that rebuild it (read back from its attributes);
# OPTIONAL_SETTINGS are written only when they differ from their default, so files that predate them
# load (and save again) as they were.
OPTIONAL_SETTINGS = {"decay_matrices_only": False}
OPTIMIZERS = {
    "SGD": (SGD, ("lr", "momentum", "weight_decay", "nesterov")),
    "Adam": (Adam, ("lr", "betas", "eps", "weight_decay")),
    "AdamW": (AdamW, ("lr", "betas", "eps", "weight_decay")),
    "RMSprop": (RMSprop, ("lr", "alpha", "eps", "momentum", "weight_decay", "centered")),
    "Adagrad": (Adagrad, ("lr", "eps", "weight_decay")),
}
# Containers described by their children: {"class": name, "layers": [...]}, rebuilt as cls(*layers).
CONTAINERS = {"Sequential": Sequential, "Residual": Residual}


def layer_classes() -> dict:
    """The layer classes a checkpoint may name: ``{name: class}``, read from the packages'
    ``__all__`` at each call (so the table is always what the packages export)."""
    classes = {}
    for prefix, module in (("", _layers), ("reference.", _reference)):
        for name in module.__all__:
            cls = getattr(module, name)
            if (isinstance(cls, type) and issubclass(cls, (Layer, Container))
                    and cls not in (Layer, Container, *CONTAINERS.values())):
                classes[prefix + name] = cls
    return classes


def known_names(classes: dict) -> str:
    """Every class name a checkpoint may hold, for messages."""
    return f"{', '.join(sorted(classes))}, {', '.join(CONTAINERS)}"


def _none(**config) -> list:
    return []


def specs(cls, config: dict) -> tuple[list, list]:
    """``([(shape, dtype)] of the parameters, [(shape, dtype)] of the buffers)`` that
    ``cls(**config)`` would have, by arithmetic: nothing is built.

    A layer class without ``parameter_specs`` (or ``buffer_specs``) has no parameters (or buffers)
    whatever its config: the activations, ``Flatten``, the losses. A container class has its
    children's parameters, so it must say which. Bad config is the classmethods' ``TypeError``
    or ``ValueError``, as the constructor would raise it.
    """
    if issubclass(cls, Container) and not hasattr(cls, "parameter_specs"):
        raise TypeError(
            f"{cls.__name__} is a container saved by its config, so it needs a parameter_specs classmethod "
            "giving its layers' parameter shapes in order"
        )
    return getattr(cls, "parameter_specs", _none)(**config), getattr(cls, "buffer_specs", _none)(**config)


def class_key(layer, classes: dict) -> str | None:
    """The name ``classes`` gives ``layer``'s exact class (a subclass is not its parent), or None."""
    return next((key for key, cls in classes.items() if cls is type(layer)), None)


def describe(layer, where: str, classes: dict) -> dict:
    """The header's description of ``layer`` (``where`` names it in messages, e.g. ``model[2]``)."""
    if CONTAINERS.get(type(layer).__name__) is type(layer):
        return {"class": type(layer).__name__,
                "layers": [describe(inner, f"{where}[{i}]", classes) for i, inner in enumerate(layer.layers)]}
    name = class_key(layer, classes)
    if name is None:
        raise TypeError(
            f"save: {where} is a {type(layer).__name__}, which save cannot describe; a checkpoint records "
            f"built-in nnscratch layers only ({known_names(classes)}). Save a "
            "custom layer's parameters yourself, e.g. with np.savez"
        )
    config = layer.config()
    try:
        json.dumps(config, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise TypeError(f"save: {where} ({name}) has a config that is not JSON: {config!r} ({error})") from None
    return {"class": name, "config": config}


def build(description, classes: dict):
    """The layers of a description whose structure and specs the format's checker has accepted."""
    name = description["class"]
    if name in CONTAINERS:
        return CONTAINERS[name](*[build(inner, classes) for inner in description["layers"]])
    kwargs = dict(description.get("config", {}))
    if "rng" in inspect.signature(classes[name]).parameters and "rng" not in kwargs:
        # The weights are overwritten next; a throwaway generator keeps loading from
        # consuming the global seed's stream (nnscratch.seed).
        kwargs["rng"] = np.random.default_rng(0)
    return classes[name](**kwargs)


def describe_optimizer(optimizer, model) -> tuple[dict, dict]:
    """``(the header's description of optimizer, {member name: state array})``."""
    name = type(optimizer).__name__
    if name not in OPTIMIZERS or type(optimizer) is not OPTIMIZERS[name][0]:
        raise TypeError(f"save: can save the state of {', '.join(OPTIMIZERS)} optimizers only, got {name}")
    optimized = [p for layer in optimizer.layers for p in layer.parameters]
    if [id(p) for p in optimized] != [id(p) for p in model.parameters]:
        raise ValueError(
            f"save: the {name} optimizer does not update this model's parameters "
            f"({len(optimized)} optimizer parameters, {len(model.parameters)} model parameters, "
            "or different arrays); save the model the optimizer was built on"
        )
    config = {}
    for key in OPTIMIZERS[name][1]:
        value = getattr(optimizer, key)
        config[key] = list(value) if isinstance(value, tuple) else value
    config.update({key: getattr(optimizer, key) for key, default in OPTIONAL_SETTINGS.items()
                   if getattr(optimizer, key, default) != default})
    state = optimizer.state_dict()
    steps = state.pop("steps")
    steps = int(steps) if isinstance(steps, np.integer) else steps
    arrays = {f"optimizer.{key}": np.asarray(value) for key, value in state.items()}
    return {"class": name, "config": config, "steps": steps, "state": sorted(state)}, arrays


def build_optimizer(header: dict, state: dict, model, checker):
    """The optimizer a checked header describes, on ``model``, with ``state`` loaded into it; a
    refusal of the constructor or of ``load_state_dict`` is ``checker.fail``."""
    name = header["class"]
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in header["config"].items()}
    try:
        optimizer = OPTIMIZERS[name][0](model, **kwargs)
    except (TypeError, ValueError) as error:
        checker.fail(f"cannot rebuild the {name} optimizer from {header['config']!r:.200}: {error}")
    try:
        optimizer.load_state_dict(state)
    except (KeyError, TypeError, ValueError) as error:
        checker.fail(f"the {name} optimizer state does not fit the model: {error}")
    return optimizer
