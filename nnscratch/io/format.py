"""The checkpoint format's rules (the format is described in ``nnscratch.io``): the header's
structure, the bounds on what it may ask for, and ``Checker``, the checks ``save`` and ``load``
share, so that ``save`` never writes a file that ``load`` would refuse.
"""

from __future__ import annotations

import json
import math

import numpy as np

from . import registry

FORMAT = "nnscratch-checkpoint"
VERSION = 1

# Bounds on what a header may ask for. The model's part of a header is small (the MNIST CNN's:
# 1.5 kB); what grows is the caller's metadata. An epoch of train-mnist's history takes at most 233
# characters (165 is typical), and train-mnist runs at most 10,000 epochs (its --epochs bound), so
# 4 Mi characters hold its longest run with 1.7 times room to spare (tests/io/test_format.py saves
# and loads that history). The member holds 4 bytes a character (16 MiB at the bound), and parsing
# JSON costs at most about 36 bytes of memory a character (a list of tiny objects holding tiny
# lists, the worst case measured; a history costs about 2): a header at the bound costs at most
# about 150 MB to read.
MAX_HEADER_CHARS = 1 << 22
MAX_LAYERS = 10_000
MAX_DEPTH = 32


class Checker:
    """The checks of a header and its arrays; every problem is a ValueError starting with ``prefix``
    (the file's name when loading, "save: " when saving)."""

    def __init__(self, prefix: str):
        self.prefix = prefix

    def fail(self, what: str):
        raise ValueError(f"{self.prefix}{what}")

    def header(self, header) -> None:
        """The header's structure and scalar values (not yet its layers' configurations)."""
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            self.fail(f"not an nnscratch checkpoint: the header's format is not {FORMAT!r}")
        if header.get("version") != VERSION or isinstance(header.get("version"), bool):
            self.fail(f"checkpoint format version {header.get('version')!r:.50}, this nnscratch reads version {VERSION}")
        header.setdefault("buffers", [])  # files from before buffers existed have none
        for key, kind in (("architecture", dict), ("parameters", list), ("buffers", list), ("metadata", dict)):
            if not isinstance(header.get(key), kind):
                self.fail(f"the checkpoint header's {key!r} must be a {kind.__name__}")
        epoch = header.get("epoch")
        if epoch is not None and not is_count(epoch):
            self.fail(f"the checkpoint's epoch must be a non-negative int, got {epoch!r:.50}")
        optimizer = header.get("optimizer")
        if optimizer is not None:
            self.optimizer_header(optimizer)

    def optimizer_header(self, header) -> None:
        optimizers = registry.OPTIMIZERS
        name = header.get("class") if isinstance(header, dict) else None
        if not isinstance(name, str) or name not in optimizers:
            self.fail(f"unknown optimizer {name!r:.100}; expected one of {', '.join(optimizers)}")
        keys = optimizers[name][1]
        config, steps, state = header.get("config"), header.get("steps"), header.get("state")
        if not isinstance(config, dict) or not set(keys) <= set(config) <= {*keys, *registry.OPTIONAL_SETTINGS}:
            self.fail(f"the {name} optimizer's config must have exactly {', '.join(keys)} (and may have "
                      f"{', '.join(registry.OPTIONAL_SETTINGS)}), got {config!r:.200}")
        if not is_count(steps):
            self.fail(f"the {name} optimizer's steps must be a non-negative int, got {steps!r:.50}")
        if not isinstance(state, list) or not all(isinstance(key, str) for key in state):
            self.fail(f"the {name} optimizer's state must list its arrays' names, got {state!r:.200}")

    def layer_specs(self, description, classes: dict) -> tuple[list, list]:
        """[(shape, dtype, where)] of the architecture's parameters, and of its buffers, by
        arithmetic: nothing is built."""
        specs, buffer_specs, count = [], [], 0
        # An explicit stack, not recursion: depth and width are bounded as they are walked.
        stack = [(description, "model", 0)]
        while stack:
            description, where, depth = stack.pop()
            count += 1
            if count > MAX_LAYERS:
                self.fail(f"the architecture has more than {MAX_LAYERS} layers")
            if depth > MAX_DEPTH:
                self.fail(f"{where}: containers nested more than {MAX_DEPTH} deep")
            if not isinstance(description, dict) or not isinstance(description.get("class"), str):
                self.fail(f"{where}: a layer must be described as {{'class': name, ...}}, got {description!r:.200}")
            name = description["class"]
            if name in registry.CONTAINERS:
                inner = description.get("layers")
                if not isinstance(inner, list):
                    self.fail(f"{where}: a {name} needs a 'layers' list")
                if len(inner) > MAX_LAYERS:
                    self.fail(f"the architecture has more than {MAX_LAYERS} layers")
                stack.extend((d, f"{where}[{i}]", depth + 1) for i, d in reversed(list(enumerate(inner))))
                continue
            if name not in classes:
                self.fail(
                    f"{where}: unknown layer class {name!r:.100}; a checkpoint may only name built-in "
                    f"layers ({registry.known_names(classes)})"
                )
            config = description.get("config", {})
            if not isinstance(config, dict):
                self.fail(f"{where} ({name}): config must be a dict, got {config!r:.200}")
            try:
                layer_specs, layer_buffers = registry.specs(classes[name], config)
            except (TypeError, ValueError, OverflowError) as error:
                self.fail(f"{where} ({name}): cannot rebuild it from config {config!r:.200}: {error}")
            specs.extend((tuple(shape), np.dtype(dtype), f"{where}, {name}") for shape, dtype in layer_specs)
            buffer_specs.extend((tuple(shape), np.dtype(dtype), f"{where}, {name}") for shape, dtype in layer_buffers)
        return specs, buffer_specs

    def described(self, specs: list, described: list, prefix: str, what: str) -> dict:
        """{"<prefix>.<i>": (shape, dtype)} from ``specs``, each checked against the header's entry."""
        if len(described) != len(specs):
            self.fail(f"the architecture has {len(specs)} {what}s but the file describes {len(described)}")
        expected = {}
        for i, ((shape, dtype, where), info) in enumerate(zip(specs, described)):
            if (not isinstance(info, dict) or not isinstance(info.get("shape"), list)
                    or [exact_int(n) for n in info["shape"]] != list(shape) or info.get("dtype") != dtype.name):
                self.fail(f"{what} {i}: the architecture gives {shape} {dtype}, the header says {info!r:.200} ({where})")
            expected[f"{prefix}.{i}"] = (shape, dtype)
        return expected

    def expected_arrays(self, header: dict, classes: dict) -> dict:
        """{array name: (shape, dtype)} that a file with this header holds, checked against it."""
        specs, buffer_specs = self.layer_specs(header["architecture"], classes)
        expected = self.described(specs, header["parameters"], "param", "parameter")
        expected.update(self.described(buffer_specs, header["buffers"], "buffer", "buffer"))
        optimizer = header.get("optimizer")
        if optimizer is not None:
            cls = registry.OPTIMIZERS[optimizer["class"]][0]
            names = {f"{buffer}.{i}": i for buffer in cls._state_names for i in range(len(specs))}
            for key in optimizer["state"]:
                if key not in names:
                    self.fail(f"the {optimizer['class']} optimizer's state names an unexpected array {key!r:.100}")
                if f"optimizer.{key}" in expected:
                    self.fail(f"the {optimizer['class']} optimizer's state names {key!r} twice")
                expected[f"optimizer.{key}"] = specs[names[key]][:2]
        return expected

    def array(self, name: str, shape: tuple, dtype: np.dtype, expected: tuple) -> None:
        if tuple(shape) != expected[0] or dtype != expected[1]:
            self.fail(f"{what(name)}: expected shape {expected[0]} {expected[1]}, the file holds {tuple(shape)} {dtype}")


def what(name: str) -> str:
    """How a message names an array: "parameter 3", "buffer 0", "optimizer state m.1"."""
    kind, _, rest = name.partition(".")
    return {"param": "parameter", "buffer": "buffer", "optimizer": "optimizer state"}.get(kind, kind) + " " + rest


def is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def exact_int(value):
    """An int stays an int; anything else (True, 3.0, "3") becomes something no int equals."""
    return value if isinstance(value, int) and not isinstance(value, bool) else object()


# -- the header as text ------------------------------------------------------------------------
def parse_header(text: str, checker: Checker):
    """The header's JSON, standard JSON only (no NaN or Infinity)."""

    def refuse_constant(name):
        raise ValueError(f"{name} is not JSON")

    try:
        return json.loads(text, parse_constant=refuse_constant)
    except (ValueError, RecursionError) as error:
        checker.fail(f"the checkpoint header is not valid JSON ({type(error).__name__}: {str(error)[:200]})")


def header_text(header: dict) -> str:
    """The header as standard JSON text, for ``save``. A value JSON cannot hold is an error naming
    where it is: a ``ValueError`` for a non-finite number, a ``TypeError`` for anything not JSON."""
    try:
        return json.dumps(header, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as error:
        for key, value in header.items():
            problem = non_json(value, "metadata" if key == "metadata" else f"the header's {key!r}")
            if problem is not None:
                kind, message = problem
                raise kind(f"save: {message}") from None
        # nothing out of place, so the nesting is too deep for JSON's encoder (and for a repr)
        raise TypeError(f"save: metadata must be JSON-serialisable ({type(error).__name__}: {error})") from None


JSON_SCALARS = (str, int, bool, type(None))  # float is checked on its own: it may be non-finite
STANDARD_ONLY = "checkpoints hold standard JSON only"


def non_json(value, where: str) -> tuple[type, str] | None:
    """``(exception class, message)`` for a value in ``value`` that standard JSON cannot hold,
    named by its key path from ``where`` (``metadata['history'][3]['loss']``), or None."""
    stack, open_containers = [(value, where)], set()
    while stack:  # explicit, so that deep nesting is walked as well as JSON's encoder walked it
        value, where = stack.pop()
        if where is None:  # the end of a container, whose children have all been walked
            open_containers.discard(value)
        elif isinstance(value, float):
            if not math.isfinite(value):
                return ValueError, f"{where} is {float(value)!r}: {STANDARD_ONLY}"
        elif isinstance(value, (dict, list, tuple)):
            if id(value) in open_containers:
                return ValueError, f"{where} contains itself: {STANDARD_ONLY}"
            open_containers.add(id(value))
            stack.append((id(value), None))
            items = list(value.items() if isinstance(value, dict) else enumerate(value))
            for key, item in reversed(items):
                if isinstance(value, dict) and not isinstance(key, (*JSON_SCALARS, float)):
                    return TypeError, f"{where} has a key {key!r:.50} of type {type(key).__name__}: JSON keys are text"
                if isinstance(key, float) and not math.isfinite(key):
                    return ValueError, f"{where} has the key {key!r}: {STANDARD_ONLY}"
                stack.append((item, f"{where}[{key!r}]"))
        elif not isinstance(value, JSON_SCALARS):
            name = f"{type(value).__module__}.{type(value).__qualname__}".removeprefix("builtins.")
            return TypeError, f"{where} is a {name}, which JSON cannot hold (dicts, lists, str, int, float, bool, None)"
    return None
