"""``save`` and ``load``: a model (and optionally its optimizer) to one ``.npz`` file and back, by
the rules of ``nnscratch.io.format``, reading through ``nnscratch.io.archive``, with the classes of
``nnscratch.io.registry`` (the format itself is described in ``nnscratch.io``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..atomic_file import atomic_write
from . import registry
from .archive import Archive
from .format import FORMAT, MAX_HEADER_CHARS, VERSION, Checker, header_text, parse_header, what


@dataclass
class Checkpoint:
    """What ``load_checkpoint`` returns: the model, its optimizer (None if none was saved, else
    rebuilt on ``model`` with its state), the epoch (None if none was saved) and the metadata."""

    model: object
    optimizer: object = None
    epoch: int | None = None
    metadata: dict = field(default_factory=dict)


def save(model, path, optimizer=None, epoch=None, metadata=None) -> Path:
    """Write ``model`` (and optionally ``optimizer``, ``epoch``, ``metadata``) to ``path``, atomically.

    ``path`` is used as given (no ``.npz`` is appended). Everything is checked with the rules
    ``load`` applies before a byte is written; the file is written to a temporary file in the same
    directory, loaded back, and only then moved over ``path`` (``nnscratch.atomic_file``), so a
    crash or a bad model never replaces a good checkpoint with one that cannot be loaded.
    ``metadata`` is any dict of standard JSON (dicts, whose keys come back as text, lists, str,
    int, finite float, bool, None), returned by ``load_checkpoint``. Returns the path.

    Raises:
        TypeError: a layer is not a built-in nnscratch layer, or metadata holds something JSON
            cannot (a NumPy array, say); the message gives its key path, as ``metadata['a'][0]``.
        ValueError: metadata holds a non-finite number (NaN or infinity: standard JSON has none;
            the message gives its key path), or what would be written breaks a rule of ``load``
            (epoch=-5, a parameter swapped for an array of another shape or dtype, a header larger
            than ``nnscratch.io.format.MAX_HEADER_CHARS``, ...). The bound holds train-mnist's
            longest history (10,000 epochs) with room to spare; the history of a longer ``fit``
            belongs in a file of its own (``json.dump``), not in ``metadata``.
    """
    if metadata is not None and not isinstance(metadata, dict):
        raise TypeError(f"save: metadata must be a dict, got {type(metadata).__name__}")
    if isinstance(epoch, np.integer):
        epoch = int(epoch)
    classes = registry.layer_classes()
    path = Path(path)
    parameters = list(model.parameters)
    buffers = list(getattr(model, "buffers", []))
    header = {
        "format": FORMAT,
        "version": VERSION,
        "architecture": registry.describe(model, "model", classes),
        "parameters": [{"shape": list(np.shape(p)), "dtype": np.asarray(p).dtype.name} for p in parameters],
        "buffers": [{"shape": list(np.shape(b)), "dtype": np.asarray(b).dtype.name} for b in buffers],
        "optimizer": None,
        "epoch": epoch,
        "metadata": metadata if metadata is not None else {},
    }
    arrays = {f"param.{i}": np.asarray(p) for i, p in enumerate(parameters)}
    arrays.update({f"buffer.{i}": np.asarray(b) for i, b in enumerate(buffers)})
    if optimizer is not None:
        header["optimizer"], optimizer_arrays = registry.describe_optimizer(optimizer, model)
        arrays.update(optimizer_arrays)
    text = header_text(header)
    checker = Checker("save: ")
    # What load will see: the header as JSON gives it back (tuples become lists, and so on).
    written = json.loads(text)
    checker.header(written)
    if len(text) > MAX_HEADER_CHARS:
        checker.fail(f"the header would be {len(text):,} characters, load reads at most {MAX_HEADER_CHARS:,}: "
                     "keep a long history (fit's, over thousands of epochs) in a file of its own, not in metadata")
    expected = checker.expected_arrays(written, classes)
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


def load_checkpoint(path) -> Checkpoint:
    """Read a file written by ``save``: the model with its weights, the optimizer, epoch and metadata.

    Every size is checked against the file before anything is allocated (see ``nnscratch.io``).

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not a complete, consistent nnscratch checkpoint, or not a regular
            file (the message names it and says what is wrong).
    """
    path = Path(path)
    checker = Checker(f"{path}: ")
    classes = registry.layer_classes()
    with Archive(path, checker) as archive:
        if "header" not in archive.members:
            checker.fail("not an nnscratch checkpoint: no 'header' text entry")
        header = parse_header(archive.text("header", MAX_HEADER_CHARS), checker)
        checker.header(header)
        expected = checker.expected_arrays(header, classes)
        unexpected = sorted(set(archive.members) - set(expected) - {"header"})
        if unexpected:
            checker.fail(f"unexpected arrays in the checkpoint: {', '.join(unexpected)[:200]}")
        missing = sorted(set(expected) - set(archive.members))
        if missing:
            checker.fail(f"{what(missing[0])}: the array {missing[0]!r} is missing")
        archive.check_total(archive.members)
        layouts = {}
        for name, spec in expected.items():
            shape, dtype, fortran_order, offset = archive.npy_header(name)
            checker.array(name, shape, dtype, spec)
            layouts[name] = (fortran_order, offset)

        # Every size is now known to match the file: build, then read the members straight in.
        try:
            model = registry.build(header["architecture"], classes)
        except (TypeError, ValueError, OverflowError) as error:
            checker.fail(f"cannot rebuild the model: {error}")
        for prefix, arrays in (("param", model.parameters), ("buffer", list(getattr(model, "buffers", [])))):
            actual = [(a.shape, a.dtype) for a in arrays]
            if actual != [spec for name, spec in expected.items() if name.startswith(f"{prefix}.")]:
                checker.fail(f"the layers built have {what(prefix + '.').strip()}s {actual!r:.200}, "
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
            optimizer = registry.build_optimizer(header["optimizer"], state, model, checker)
    return Checkpoint(model=model, optimizer=optimizer, epoch=header.get("epoch"), metadata=header["metadata"])


def load(path):
    """The model saved in ``path`` by ``save``, with its weights (see ``load_checkpoint`` for the rest)."""
    return load_checkpoint(path).model
