"""Checkpoints: ``save`` a model (and optionally its optimizer) to one ``.npz``, ``load`` it back.

The file is a plain, uncompressed NumPy ``.npz`` archive (a zip of ``.npy`` members) that never
needs pickle:

- ``header``: a JSON string: format name and version, the architecture (layer class names, with
  ``reference.<name>`` for the textbook twins in ``nnscratch.reference``, and constructor arguments;
  containers such as ``Sequential`` as ``{"class", "layers": [...]}``), the shape and dtype of every
  parameter, the optimizer's class, hyperparameters and step count, the epoch, and free-form metadata.
- ``param.<i>``: the model's parameters, in the order of ``model.parameters``.
- ``buffer.<i>``: the model's buffers (state saved but not trained, such as BatchNorm's running
  statistics), in the order of ``model.buffers``; the header lists their shapes and dtypes too.
- ``optimizer.<key>``: the optimizer's state arrays (``velocity.<i>`` for SGD, ``m.<i>``/``v.<i>``
  for Adam and AdamW, ``square_avg.<i>`` etc. for RMSprop, ``sum_squares.<i>`` for Adagrad), as
  given by ``optimizer.state_dict()``.

Loading trusts nothing in the file, and costs at most a small multiple of the file's size:

1. Only a regular file is opened (a FIFO would block); the zip directory is read, and every member
   must be stored uncompressed (as ``save`` writes them), so no member holds more bytes than it
   takes on disk.
2. The header is size-bounded before it is read, then bounded in nesting and number of layers.
3. The parameter and buffer shapes are computed from the architecture by arithmetic
   (``parameter_specs``/``buffer_specs`` of each layer class, no layer built yet) and checked against the header, the member names and each
   member's ``.npy`` header and size. Only then are the layers built and the members the header
   names read into them, in bounded chunks.

Only built-in nnscratch layers and optimizers are ever instantiated, looked up by name in fixed
tables. Anything else - junk, a truncated file, an unknown layer, a mismatched shape - is a
``ValueError`` naming the file. ``save`` checks what it is about to write with the same rules,
writes a temporary file, loads that back, and only then moves it over the target.
"""

from __future__ import annotations

import inspect
import io
import json
import math
import os
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import layers as _layers
from . import reference as _reference
from .atomic_file import atomic_write
from .protocol import Layer
from .optim import SGD, Adagrad, Adam, AdamW, RMSprop
from .containers import Residual, Sequential

FORMAT = "nnscratch-checkpoint"
VERSION = 1
# optimizer class -> the constructor arguments that rebuild it (read back from its attributes)
_OPTIMIZERS = {
    "SGD": (SGD, ("lr", "momentum", "weight_decay", "nesterov")),
    "Adam": (Adam, ("lr", "betas", "eps", "weight_decay")),
    "AdamW": (AdamW, ("lr", "betas", "eps", "weight_decay")),
    "RMSprop": (RMSprop, ("lr", "alpha", "eps", "momentum", "weight_decay", "centered")),
    "Adagrad": (Adagrad, ("lr", "eps", "weight_decay")),
}
# Containers: described as {"class": name, "layers": [...]}, rebuilt as cls(*layers); the instance
# has a ``layers`` list.
_CONTAINERS = {"Sequential": Sequential, "Residual": Residual}

# Bounds on what a header may ask for. A real header is a few kB (the MNIST CNN's: 1.5 kB).
MAX_HEADER_CHARS = 1 << 20
MAX_LAYERS = 10_000
MAX_DEPTH = 32
MAX_NDIM = 8
_NPY_HEADER_BYTES = 4096  # np.save writes 128; anything much larger is not ours
_CHUNK = 1 << 20  # bytes read from a member at a time


def _layer_classes() -> dict:
    """The classes a checkpoint may name: the built-in layers (``nnscratch.layers.__all__``) under
    their names, and their textbook twins (``nnscratch.reference.__all__``) as ``reference.<name>``
    (the plain names mean the fast layers)."""
    classes = {}
    for prefix, module in (("", _layers), ("reference.", _reference)):
        for name in module.__all__:
            cls = getattr(module, name)
            if isinstance(cls, type) and issubclass(cls, Layer) and cls is not Layer:
                classes[prefix + name] = cls
    return classes


def _class_key(layer, classes: dict) -> str | None:
    """The name ``classes`` gives ``layer``'s exact class (a subclass is not its parent), or None."""
    return next((key for key, cls in classes.items() if cls is type(layer)), None)


@dataclass
class Checkpoint:
    """What ``load_checkpoint`` returns: the model, its optimizer (None if none was saved, else
    rebuilt on ``model`` with its state), the epoch (None if none was saved) and the metadata."""

    model: object
    optimizer: object = None
    epoch: int | None = None
    metadata: dict = field(default_factory=dict)


# -- the rules, shared by save and load --------------------------------------------------------
class _Checker:
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
        if epoch is not None and not _is_count(epoch):
            self.fail(f"the checkpoint's epoch must be a non-negative int, got {epoch!r:.50}")
        optimizer = header.get("optimizer")
        if optimizer is not None:
            self.optimizer_header(optimizer)

    def optimizer_header(self, header) -> None:
        name = header.get("class") if isinstance(header, dict) else None
        if not isinstance(name, str) or name not in _OPTIMIZERS:
            self.fail(f"unknown optimizer {name!r:.100}; expected one of {', '.join(_OPTIMIZERS)}")
        keys = _OPTIMIZERS[name][1]
        config, steps, state = header.get("config"), header.get("steps"), header.get("state")
        if not isinstance(config, dict) or set(config) != set(keys):
            self.fail(f"the {name} optimizer's config must have exactly {', '.join(keys)}, got {config!r:.200}")
        if not _is_count(steps):
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
            if name in _CONTAINERS:
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
                    f"layers ({', '.join(sorted(classes))}, {', '.join(_CONTAINERS)})"
                )
            config = description.get("config", {})
            if not isinstance(config, dict):
                self.fail(f"{where} ({name}): config must be a dict, got {config!r:.200}")
            try:
                # a layer class without these has no parameters (or buffers) whatever its config
                layer_specs = getattr(classes[name], "parameter_specs", lambda **_: [])(**config)
                layer_buffers = getattr(classes[name], "buffer_specs", lambda **_: [])(**config)
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
                    or [_exact_int(n) for n in info["shape"]] != list(shape) or info.get("dtype") != dtype.name):
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
            cls = _OPTIMIZERS[optimizer["class"]][0]
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
            self.fail(f"{_what(name)}: expected shape {expected[0]} {expected[1]}, the file holds {tuple(shape)} {dtype}")


def _what(name: str) -> str:
    """How a message names an array: "parameter 3", "buffer 0", "optimizer state m.1"."""
    kind, _, rest = name.partition(".")
    return {"param": "parameter", "buffer": "buffer", "optimizer": "optimizer state"}.get(kind, kind) + " " + rest


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _exact_int(value):
    """An int stays an int; anything else (True, 3.0, "3") becomes something no int equals."""
    return value if isinstance(value, int) and not isinstance(value, bool) else object()


# -- save --------------------------------------------------------------------------------------
def _describe(layer, where: str, classes: dict) -> dict:
    if _CONTAINERS.get(type(layer).__name__) is type(layer):
        return {"class": type(layer).__name__,
                "layers": [_describe(inner, f"{where}[{i}]", classes) for i, inner in enumerate(layer.layers)]}
    name = _class_key(layer, classes)
    if name is None:
        raise TypeError(
            f"save: {where} is a {type(layer).__name__}, which save cannot describe; a checkpoint records "
            f"built-in nnscratch layers only ({', '.join(sorted(classes))}, {', '.join(_CONTAINERS)}). Save a "
            "custom layer's parameters yourself, e.g. with np.savez"
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
        raise TypeError(f"save: can save the state of {', '.join(_OPTIMIZERS)} optimizers only, got {name}")
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
    steps = state.pop("steps")
    steps = int(steps) if isinstance(steps, np.integer) else steps
    arrays = {f"optimizer.{key}": np.asarray(value) for key, value in state.items()}
    return {"class": name, "config": config, "steps": steps, "state": sorted(state)}, arrays


def save(model, path, optimizer=None, epoch=None, metadata=None) -> Path:
    """Write ``model`` (and optionally ``optimizer``, ``epoch``, ``metadata``) to ``path``, atomically.

    ``path`` is used as given (no ``.npz`` is appended). Everything is checked with the rules
    ``load`` applies before a byte is written; the file is written to a temporary file in the same
    directory, loaded back, and only then moved over ``path`` (``nnscratch.atomic_file``), so a
    crash or a bad model never replaces a good checkpoint with one that cannot be loaded.
    ``metadata`` is any JSON-serialisable dict, returned by ``load_checkpoint``. Returns the path.

    Raises:
        TypeError: a layer is not a built-in nnscratch layer, or metadata is not JSON.
        ValueError: what would be written breaks a rule of ``load`` (epoch=-5, a parameter swapped
            for an array of another shape or dtype, ...).
    """
    if metadata is not None and not isinstance(metadata, dict):
        raise TypeError(f"save: metadata must be a dict, got {type(metadata).__name__}")
    if isinstance(epoch, np.integer):
        epoch = int(epoch)
    classes = _layer_classes()
    path = Path(path)
    parameters = list(model.parameters)
    buffers = list(getattr(model, "buffers", []))
    header = {
        "format": FORMAT,
        "version": VERSION,
        "architecture": _describe(model, "model", classes),
        "parameters": [{"shape": list(np.shape(p)), "dtype": np.asarray(p).dtype.name} for p in parameters],
        "buffers": [{"shape": list(np.shape(b)), "dtype": np.asarray(b).dtype.name} for b in buffers],
        "optimizer": None,
        "epoch": epoch,
        "metadata": metadata if metadata is not None else {},
    }
    arrays = {f"param.{i}": np.asarray(p) for i, p in enumerate(parameters)}
    arrays.update({f"buffer.{i}": np.asarray(b) for i, b in enumerate(buffers)})
    if optimizer is not None:
        header["optimizer"], optimizer_arrays = _optimizer_header(optimizer, model)
        arrays.update(optimizer_arrays)
    try:
        text = json.dumps(header, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise TypeError(f"save: metadata must be JSON-serialisable, got {metadata!r:.200} ({error})") from None
    checker = _Checker("save: ")
    # What load will see: the header as JSON gives it back (tuples become lists, and so on).
    checker.header(json.loads(text))
    if len(text) > MAX_HEADER_CHARS:
        checker.fail(f"the header would be {len(text)} characters, load reads at most {MAX_HEADER_CHARS}")
    expected = checker.expected_arrays(json.loads(text), classes)
    for name, value in arrays.items():
        if name not in expected:
            checker.fail(f"unexpected array {name}")
        checker.array(name, value.shape, value.dtype, expected[name])
    arrays["header"] = np.array(text)

    with atomic_write(path, check=_load_back) as f:
        np.savez(f, **arrays)
    return path


def _load_back(path) -> None:
    """Load a file just written; a failure is an internal error: save and load disagree."""
    try:
        load_checkpoint(path)
    except ValueError as error:
        raise RuntimeError(f"save: the file written does not load back ({error}); nothing was replaced") from error


# -- load --------------------------------------------------------------------------------------
class _Archive:
    """The members of an uncompressed zip, read one at a time and never beyond their stated size."""

    def __init__(self, path: Path, checker: _Checker):
        self.checker = checker
        self.file = _open_regular(path, checker)
        try:
            self.size = os.fstat(self.file.fileno()).st_size
            self.zip = zipfile.ZipFile(self.file)
            infos = self.zip.infolist()
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, NotImplementedError) as error:
            self.file.seek(0)
            magic = self.file.read(6)
            self.close()
            if magic == b"\x93NUMPY":
                checker.fail("not an nnscratch checkpoint: a single .npy array, expected an .npz archive")
            checker.fail(f"not a readable nnscratch checkpoint (.npz): {type(error).__name__}: {error}")
        self.members = {}
        for info in infos:
            name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            if name in self.members:
                self.close()
                checker.fail(f"not an nnscratch checkpoint: the member {name!r:.100} appears twice")
            self.members[name] = info

    def close(self):
        self.file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _info(self, name: str) -> zipfile.ZipInfo:
        info = self.members[name]
        if info.compress_type != zipfile.ZIP_STORED or info.compress_size != info.file_size:
            self.checker.fail(
                f"the member {name!r} is compressed; checkpoints are stored uncompressed (as save writes "
                "them), so that loading one costs no more memory than its size on disk"
            )
        if info.file_size > self.size:
            self.checker.fail(f"the member {name!r} says it holds {info.file_size} bytes, the file has {self.size}")
        return info

    def check_total(self, names) -> None:
        """The members to be read fit in the file together (no two share bytes: no zip bomb)."""
        total = sum(self._info(name).file_size for name in names)
        if total > self.size:
            self.checker.fail(f"the members say they hold {total} bytes, more than the file's {self.size}")

    def npy_header(self, name: str) -> tuple:
        """(shape, dtype, fortran_order, data offset) of member ``name``, its size checked."""
        info = self._info(name)
        try:
            with self.zip.open(info) as member:
                start = io.BytesIO(member.read(min(info.file_size, _NPY_HEADER_BYTES)))
            version = np.lib.format.read_magic(start)
            if version == (1, 0):
                shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(start, _NPY_HEADER_BYTES)
            elif version == (2, 0):
                shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(start, _NPY_HEADER_BYTES)
            else:
                raise ValueError(f"unsupported .npy version {version}")
        except Exception as error:  # zipfile, zlib and numpy's own format errors, all of them
            self.checker.fail(f"the member {name!r} is not .npy data: {type(error).__name__}: {error}")
        if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None:
            self.checker.fail(f"the member {name!r} holds {dtype} data, not plain numbers or text (object arrays would need pickle, which is never used)")
        if len(shape) > MAX_NDIM:
            self.checker.fail(f"the member {name!r} has {len(shape)} dimensions")
        offset = start.tell()
        if info.file_size - offset != math.prod(shape) * dtype.itemsize:
            self.checker.fail(
                f"the member {name!r} holds {info.file_size - offset} bytes of data, its .npy header "
                f"announces {shape} {dtype} ({math.prod(shape) * dtype.itemsize} bytes)"
            )
        return shape, dtype, fortran_order, offset

    def read_into(self, name: str, out: np.ndarray, fortran_order: bool, offset: int) -> None:
        """Fill ``out`` (C order, of the member's shape and dtype) with the member's data."""
        info = self._info(name)
        # A Fortran-order member holds the transpose's bytes in C order.
        staging = np.empty(out.shape[::-1], out.dtype) if fortran_order and out.ndim > 1 else out
        buffer = memoryview(staging.reshape(-1).view(np.uint8))
        try:
            with self.zip.open(info) as member:
                member.read(offset)
                done = 0
                while done < len(buffer):
                    got = member.readinto(buffer[done : done + _CHUNK])
                    if not got:
                        raise EOFError(f"{done} of {len(buffer)} bytes")
                    done += got
                if member.read(1):  # also makes zipfile check the CRC
                    raise ValueError("more data than announced")
        except Exception as error:  # truncation, CRC mismatch, I/O errors
            self.checker.fail(f"the member {name!r} cannot be read: {type(error).__name__}: {error}")
        if staging is not out:
            out[...] = staging.T

    def text(self, name: str, max_chars: int) -> str:
        info = self._info(name)
        if info.file_size > _NPY_HEADER_BYTES + 4 * max_chars:
            self.checker.fail(f"the {name} is {info.file_size} bytes, more than a checkpoint's header may be")
        shape, dtype, _, offset = self.npy_header(name)
        if dtype.kind != "U" or shape != ():
            self.checker.fail(f"not an nnscratch checkpoint: the {name} is {shape} {dtype}, not text")
        if dtype.itemsize > 4 * max_chars:
            self.checker.fail(f"the {name} has {dtype.itemsize // 4} characters, more than {max_chars}")
        value = np.empty((), dtype)
        self.read_into(name, value, False, offset)
        try:
            return str(value[()])
        except (ValueError, UnicodeError) as error:
            self.checker.fail(f"the {name} is not valid text: {error}")


def _open_regular(path: Path, checker: _Checker):
    """Open ``path`` for reading if it is a regular file; a FIFO or device is refused, not waited on."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except IsADirectoryError:
        checker.fail("not a regular file (a directory)")
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            checker.fail("not a regular file (a directory)")
        if not stat.S_ISREG(mode):
            checker.fail("not a regular file (a FIFO, device or socket cannot be a checkpoint)")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _parse_json(text: str, checker: _Checker):
    def refuse_constant(name):
        raise ValueError(f"{name} is not JSON")

    try:
        return json.loads(text, parse_constant=refuse_constant)
    except (ValueError, RecursionError) as error:
        checker.fail(f"the checkpoint header is not valid JSON ({type(error).__name__}: {str(error)[:200]})")


def _build(description, classes: dict):
    """The layers of an architecture that ``layer_specs`` has checked."""
    name = description["class"]
    if name in _CONTAINERS:
        return _CONTAINERS[name](*[_build(inner, classes) for inner in description["layers"]])
    kwargs = dict(description.get("config", {}))
    if "rng" in inspect.signature(classes[name]).parameters and "rng" not in kwargs:
        # The weights are overwritten next; a throwaway generator keeps loading from
        # consuming the global seed's stream (nnscratch.seed).
        kwargs["rng"] = np.random.default_rng(0)
    return classes[name](**kwargs)


def load_checkpoint(path) -> Checkpoint:
    """Read a file written by ``save``: the model with its weights, the optimizer, epoch and metadata.

    Every size is checked against the file before anything is allocated (see the module docstring).

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not a complete, consistent nnscratch checkpoint, or not a regular
            file (the message names it and says what is wrong).
    """
    path = Path(path)
    checker = _Checker(f"{path}: ")
    classes = _layer_classes()
    with _Archive(path, checker) as archive:
        if "header" not in archive.members:
            checker.fail("not an nnscratch checkpoint: no 'header' text entry")
        header = _parse_json(archive.text("header", MAX_HEADER_CHARS), checker)
        checker.header(header)
        expected = checker.expected_arrays(header, classes)
        unexpected = sorted(set(archive.members) - set(expected) - {"header"})
        if unexpected:
            checker.fail(f"unexpected arrays in the checkpoint: {', '.join(unexpected)[:200]}")
        missing = sorted(set(expected) - set(archive.members))
        if missing:
            checker.fail(f"{_what(missing[0])}: the array {missing[0]!r} is missing")
        archive.check_total(archive.members)
        layouts = {}
        for name, spec in expected.items():
            shape, dtype, fortran_order, offset = archive.npy_header(name)
            checker.array(name, shape, dtype, spec)
            layouts[name] = (fortran_order, offset)

        # Every size is now known to match the file: build, then read the members straight in.
        try:
            model = _build(header["architecture"], classes)
        except (TypeError, ValueError, OverflowError) as error:
            checker.fail(f"cannot rebuild the model: {error}")
        for prefix, arrays in (("param", model.parameters), ("buffer", list(getattr(model, "buffers", [])))):
            actual = [(a.shape, a.dtype) for a in arrays]
            if actual != [spec for name, spec in expected.items() if name.startswith(f"{prefix}.")]:
                checker.fail(f"the layers built have {_what(prefix + '.').strip()}s {actual!r:.200}, "
                             "not what their classes' parameter_specs/buffer_specs said")
            for i, array in enumerate(arrays):  # in place: the layers keep their arrays
                archive.read_into(f"{prefix}.{i}", array, *layouts[f"{prefix}.{i}"])
        optimizer = None
        if header.get("optimizer") is not None:
            state = {"steps": header["optimizer"]["steps"]}
            for key in header["optimizer"]["state"]:
                shape, dtype = expected[f"optimizer.{key}"]
                state[key] = np.empty(shape, dtype)
                archive.read_into(f"optimizer.{key}", state[key], *layouts[f"optimizer.{key}"])
            optimizer = _rebuild_optimizer(header["optimizer"], state, model, checker)
    return Checkpoint(model=model, optimizer=optimizer, epoch=header.get("epoch"), metadata=header["metadata"])


def _rebuild_optimizer(header: dict, state: dict, model, checker: _Checker):
    name = header["class"]
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in header["config"].items()}
    try:
        optimizer = _OPTIMIZERS[name][0](model, **kwargs)
    except (TypeError, ValueError) as error:
        checker.fail(f"cannot rebuild the {name} optimizer from {header['config']!r:.200}: {error}")
    try:
        optimizer.load_state_dict(state)
    except (KeyError, TypeError, ValueError) as error:
        checker.fail(f"the {name} optimizer state does not fit the model: {error}")
    return optimizer


def load(path):
    """The model saved in ``path`` by ``save``, with its weights (see ``load_checkpoint`` for the rest)."""
    return load_checkpoint(path).model
