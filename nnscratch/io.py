"""Checkpoints: ``save`` a model (and optionally its optimizer) to one ``.npz``, ``load`` it back.

The file is a plain NumPy ``.npz`` archive that never needs pickle:

- ``header``: a JSON string: format name and version, the architecture (layer class names and
  constructor arguments, nested ``Sequential`` supported), the shape and dtype of every parameter,
  the optimizer's class, hyperparameters and step count, the epoch, and free-form metadata.
- ``param.<i>``: the model's parameters, in the order of ``model.parameters``.
- ``buffer.<i>``: the model's buffers (state saved but not trained, such as BatchNorm's running
  statistics), in the order of ``model.buffers``; the header lists their shapes and dtypes too.
- ``optimizer.<key>``: the optimizer's state arrays (``velocity.<i>`` for SGD, ``m.<i>``/``v.<i>``
  for Adam), as given by ``optimizer.state_dict()``.

Loading only ever instantiates built-in nnscratch layers and optimizers, looked up by name in a
fixed table, and checks every array's name, shape and dtype before copying it in. Anything else
- junk, a truncated file, an unknown layer, a mismatched shape - is a ``ValueError`` naming the file.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import layers as _layers
from .atomic_file import atomic_write
from .optim import SGD, Adam
from .sequential import Sequential

FORMAT = "nnscratch-checkpoint"
VERSION = 1
# optimizer class -> the constructor arguments that rebuild it (read back from its attributes)
_OPTIMIZERS = {
    "SGD": (SGD, ("lr", "momentum", "weight_decay", "nesterov")),
    "Adam": (Adam, ("lr", "betas", "eps", "weight_decay")),
}


def _layer_classes() -> dict:
    """The classes a checkpoint may name: the built-in layers (``nnscratch.layers.__all__``)."""
    classes = {}
    for name in _layers.__all__:
        cls = getattr(_layers, name)
        if isinstance(cls, type) and issubclass(cls, _layers.Layer) and cls is not _layers.Layer:
            classes[name] = cls
    return classes


@dataclass
class Checkpoint:
    """What ``load_checkpoint`` returns: the model, its optimizer (None if none was saved, else
    rebuilt on ``model`` with its state), the epoch (None if none was saved) and the metadata."""

    model: object
    optimizer: object = None
    epoch: int | None = None
    metadata: dict = field(default_factory=dict)


# -- save --------------------------------------------------------------------------------------
def _describe(layer, where: str, classes: dict) -> dict:
    if type(layer) is Sequential:
        return {
            "class": "Sequential",
            "layers": [_describe(inner, f"{where}[{i}]", classes) for i, inner in enumerate(layer.layers)],
        }
    name = type(layer).__name__
    if classes.get(name) is not type(layer):
        raise TypeError(
            f"save: {where} is a {name}, which save cannot describe; a checkpoint records built-in "
            f"nnscratch layers only ({', '.join(sorted(classes))}, Sequential). Save a custom layer's "
            "parameters yourself, e.g. with np.savez"
        )
    config = layer.config()
    try:
        json.dumps(config, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise TypeError(f"save: {where} ({name}) has a config that is not JSON: {config!r} ({error})") from None
    return {"class": name, "config": config}


def _optimizer_header(optimizer, model) -> tuple[dict, dict]:
    name = type(optimizer).__name__
    if name not in _OPTIMIZERS or type(optimizer) is not _OPTIMIZERS[name][0]:
        raise TypeError(f"save: can save the state of SGD and Adam optimizers only, got {name}")
    optimized = [p for layer in optimizer.layers for p in layer.parameters]
    if [id(p) for p in optimized] != [id(p) for p in model.parameters]:
        raise ValueError(
            f"save: the {name} optimizer does not update this model's parameters "
            f"({len(optimized)} optimizer parameters, {len(model.parameters)} model parameters, "
            "or different arrays); save the model the optimizer was built on"
        )
    config = {}
    for key in _OPTIMIZERS[name][1]:
        value = getattr(optimizer, key)
        config[key] = list(value) if isinstance(value, tuple) else value
    state = optimizer.state_dict()
    steps = int(state.pop("steps"))
    arrays = {f"optimizer.{key}": np.asarray(value) for key, value in state.items()}
    return {"class": name, "config": config, "steps": steps, "state": sorted(state)}, arrays


def save(model, path, optimizer=None, epoch=None, metadata=None) -> Path:
    """Write ``model`` (and optionally ``optimizer``, ``epoch``, ``metadata``) to ``path``, atomically.

    ``path`` is used as given (no ``.npz`` is appended). The file is written to a temporary file in
    the same directory and then moved over ``path``, so a crash never leaves half a checkpoint
    (``nnscratch.atomic_file``).
    ``metadata`` is any JSON-serialisable dict, returned by ``load_checkpoint``. Returns the path.

    Raises:
        TypeError: a layer is not a built-in nnscratch layer, or metadata is not JSON.
    """
    if metadata is not None and not isinstance(metadata, dict):
        raise TypeError(f"save: metadata must be a dict, got {type(metadata).__name__}")
    classes = _layer_classes()
    path = Path(path)
    parameters = list(model.parameters)
    buffers = list(getattr(model, "buffers", []))
    header = {
        "format": FORMAT,
        "version": VERSION,
        "architecture": _describe(model, "model", classes),
        "parameters": [{"shape": list(p.shape), "dtype": p.dtype.name} for p in parameters],
        "buffers": [{"shape": list(b.shape), "dtype": b.dtype.name} for b in buffers],
        "optimizer": None,
        "epoch": None if epoch is None else int(epoch),
        "metadata": metadata if metadata is not None else {},
    }
    arrays = {f"param.{i}": p for i, p in enumerate(parameters)}
    arrays.update({f"buffer.{i}": b for i, b in enumerate(buffers)})
    if optimizer is not None:
        header["optimizer"], optimizer_arrays = _optimizer_header(optimizer, model)
        arrays.update(optimizer_arrays)
    try:
        arrays["header"] = np.array(json.dumps(header, allow_nan=False))
    except (TypeError, ValueError) as error:
        raise TypeError(f"save: metadata must be JSON-serialisable, got {metadata!r:.200} ({error})") from None

    with atomic_write(path) as f:
        np.savez(f, **arrays)
    return path


# -- load --------------------------------------------------------------------------------------
class _Reader:
    """Checks for one file: every problem becomes a ValueError that names it."""

    def __init__(self, path: Path):
        self.path = path

    def fail(self, what: str):
        raise ValueError(f"{self.path}: {what}")

    def read_arrays(self) -> dict:
        try:
            archive = np.load(self.path, allow_pickle=False)
        except (FileNotFoundError, IsADirectoryError, PermissionError):
            raise
        except Exception as error:  # numpy's format errors (pickled data refused among them)
            self.fail(f"not a readable nnscratch checkpoint (.npz): {type(error).__name__}: {error}")
        if not isinstance(archive, np.lib.npyio.NpzFile):
            self.fail("not an nnscratch checkpoint: a single .npy array, expected an .npz archive")
        try:
            with archive:
                # read everything now: a truncated member only fails when it is read
                return {name: archive[name] for name in archive.files}
        except Exception as error:  # zipfile, zlib, EOF and numpy's own format errors
            self.fail(f"not a readable nnscratch checkpoint (.npz): {type(error).__name__}: {error}")

    def header(self, arrays: dict) -> dict:
        raw = arrays.get("header")
        if raw is None or raw.dtype.kind != "U" or raw.ndim != 0:
            self.fail("not an nnscratch checkpoint: no 'header' text entry")
        try:
            header = json.loads(str(raw))
        except (ValueError, RecursionError) as error:
            self.fail(f"the checkpoint header is not valid JSON ({error})")
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            self.fail(f"not an nnscratch checkpoint: the header's format is not {FORMAT!r}")
        if header.get("version") != VERSION:
            self.fail(f"checkpoint format version {header.get('version')!r}, this nnscratch reads version {VERSION}")
        header.setdefault("buffers", [])  # files from before buffers existed have none
        for key, kind in (("architecture", dict), ("parameters", list), ("buffers", list), ("metadata", dict)):
            if not isinstance(header.get(key), kind):
                self.fail(f"the checkpoint header's {key!r} must be a {kind.__name__}")
        epoch = header.get("epoch")
        if epoch is not None and (isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0):
            self.fail(f"the checkpoint's epoch must be a non-negative int, got {epoch!r}")
        return header

    def build(self, description, where: str, classes: dict, depth: int = 0):
        if depth > 50:
            self.fail(f"{where}: Sequential nested more than 50 deep")
        if not isinstance(description, dict) or not isinstance(description.get("class"), str):
            self.fail(f"{where}: a layer must be described as {{'class': name, ...}}, got {description!r:.200}")
        name = description["class"]
        if name == "Sequential":
            inner = description.get("layers")
            if not isinstance(inner, list):
                self.fail(f"{where}: a Sequential needs a 'layers' list")
            return Sequential(*[self.build(d, f"{where}[{i}]", classes, depth + 1) for i, d in enumerate(inner)])
        if name not in classes:
            self.fail(
                f"{where}: unknown layer class {name!r:.100}; a checkpoint may only name built-in "
                f"layers ({', '.join(sorted(classes))}, Sequential)"
            )
        config = description.get("config", {})
        if not isinstance(config, dict):
            self.fail(f"{where} ({name}): config must be a dict, got {config!r:.200}")
        kwargs = dict(config)
        if "rng" in inspect.signature(classes[name]).parameters and "rng" not in kwargs:
            # The weights are overwritten next; a throwaway generator keeps loading from
            # consuming the global seed's stream (nnscratch.seed).
            kwargs["rng"] = np.random.default_rng(0)
        try:
            return classes[name](**kwargs)
        except (TypeError, ValueError) as error:
            self.fail(f"{where} ({name}): cannot rebuild it from config {config!r:.200}: {error}")

    def check_array(self, arrays: dict, key: str, shape: tuple, dtype: np.dtype, what: str) -> np.ndarray:
        if key not in arrays:
            self.fail(f"{what}: the array {key!r} is missing")
        value = arrays[key]
        if value.shape != tuple(shape) or value.dtype != dtype:
            self.fail(f"{what}: expected shape {tuple(shape)} {dtype}, the file holds {value.shape} {value.dtype}")
        return value

    def stored_arrays(self, arrays: dict, targets: list, described: list, prefix: str, what: str) -> list:
        """The file's ``<prefix>.<i>`` arrays, each checked against the header and the model's array."""
        stored = []
        for i, (p, info) in enumerate(zip(targets, described)):
            if not isinstance(info, dict) or info.get("shape") != list(p.shape) or info.get("dtype") != p.dtype.name:
                self.fail(f"{what} {i}: the architecture gives {p.shape} {p.dtype}, the header says {info!r:.200}")
            stored.append(self.check_array(arrays, f"{prefix}.{i}", p.shape, p.dtype, f"{what} {i}"))
        return stored

    def optimizer(self, header, arrays: dict, model):
        name = header.get("class") if isinstance(header, dict) else None
        if name not in _OPTIMIZERS:
            self.fail(f"unknown optimizer {name!r:.100}; expected one of {', '.join(_OPTIMIZERS)}")
        cls, keys = _OPTIMIZERS[name]
        config, steps, state_keys = header.get("config"), header.get("steps"), header.get("state")
        if not isinstance(config, dict) or set(config) != set(keys):
            self.fail(f"the {name} optimizer's config must have exactly {', '.join(keys)}, got {config!r:.200}")
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            self.fail(f"the {name} optimizer's steps must be a non-negative int, got {steps!r:.50}")
        if not isinstance(state_keys, list):
            self.fail(f"the {name} optimizer's state must list its arrays, got {state_keys!r:.200}")
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in config.items()}
        try:
            optimizer = cls(model, **kwargs)
        except (TypeError, ValueError) as error:
            self.fail(f"cannot rebuild the {name} optimizer from {config!r:.200}: {error}")
        parameters = model.parameters
        expected = {f"{buffer}.{i}" for buffer in cls._state_names for i in range(len(parameters))}
        state = {"steps": steps}
        for key in state_keys:
            if key not in expected:
                self.fail(f"the {name} optimizer's state names an unexpected array {key!r:.100}")
            p = parameters[int(key.rsplit(".", 1)[1])]
            state[key] = self.check_array(arrays, f"optimizer.{key}", p.shape, p.dtype, f"optimizer state {key}")
        try:
            optimizer.load_state_dict(state)
        except (KeyError, TypeError, ValueError) as error:
            self.fail(f"the {name} optimizer state does not fit the model: {error}")
        return optimizer


def load_checkpoint(path) -> Checkpoint:
    """Read a file written by ``save``: the model with its weights, the optimizer, epoch and metadata.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not a complete, consistent nnscratch checkpoint (the message names it).
    """
    reader = _Reader(Path(path))
    arrays = reader.read_arrays()
    header = reader.header(arrays)
    model = reader.build(header["architecture"], "model", _layer_classes())
    parameters = model.parameters
    described = header["parameters"]
    if len(described) != len(parameters):
        reader.fail(
            f"the architecture has {len(parameters)} parameters but the file describes {len(described)}"
        )
    stored = reader.stored_arrays(arrays, parameters, described, "param", "parameter")
    buffers = list(getattr(model, "buffers", []))
    if len(header["buffers"]) != len(buffers):
        reader.fail(f"the architecture has {len(buffers)} buffers but the file describes {len(header['buffers'])}")
    stored_buffers = reader.stored_arrays(arrays, buffers, header["buffers"], "buffer", "buffer")
    optimizer = None
    if header.get("optimizer") is not None:
        optimizer = reader.optimizer(header["optimizer"], arrays, model)
    known = {"header"} | {f"param.{i}" for i in range(len(parameters))} | {f"buffer.{i}" for i in range(len(buffers))}
    known |= {f"optimizer.{key}" for key in (header["optimizer"] or {}).get("state", [])}
    unexpected = sorted(set(arrays) - known)
    if unexpected:
        reader.fail(f"unexpected arrays in the checkpoint: {', '.join(unexpected)[:200]}")
    # Only now, with everything checked, copy the weights in (in place: layers keep their arrays).
    for p, value in zip(parameters + buffers, stored + stored_buffers):
        p[...] = value
    return Checkpoint(model=model, optimizer=optimizer, epoch=header.get("epoch"), metadata=header["metadata"])


def load(path):
    """The model saved in ``path`` by ``save``, with its weights (see ``load_checkpoint`` for the rest)."""
    return load_checkpoint(path).model
