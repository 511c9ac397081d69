"""What every command does the same way: its outputs checked against its inputs, its failures as
one line, paths shown printably, and a checkpoint to run on digits.

The rule for outputs, for every command and every output option: checked before any work,
``check_outputs`` refuses an output that

- names a directory, or a file in a directory that does not exist or cannot be written;
- is not a regular file (a FIFO, a device node, a socket: an output never replaces one);
- is the same file as one of the command's inputs (its checkpoint, its images, the MNIST files it
  reads) or as another of its outputs, however it is spelled: symbolic links, ``..``, relative
  paths and hard links all count (``same_file``).

An output given as a symbolic link is written to the file the link points to; the link stays.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from ..atomic_file import NotRegularFileError, atomic_write, check_replaceable

INTERRUPTED = 130  # 128 + SIGINT, as shells report a Ctrl-C


class UsageError(Exception):
    """A bad option or checkpoint: printed as one line, exit code 2."""


def run_command(name: str, body, args) -> int:
    """``body(args)``'s exit code; a ``UsageError`` is one line and 2, Ctrl-C one line and 130."""
    try:
        return body(args)
    except UsageError as error:
        print(f"{name}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return INTERRUPTED


def shown(path) -> str:
    """A path as text that any terminal or strict JSON reader takes: bytes of a file name that are
    not valid in the locale's encoding (kept by Python as surrogates) appear as \\xNN."""
    text = os.fspath(path)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    if not any("\udc80" <= c <= "\udcff" for c in text):
        return text
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def same_file(a, b) -> bool:
    """Whether two paths name one file: the same path once symlinks and ``..`` are resolved, or
    (both existing) the same inode, as hard links are."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):  # one of them does not exist (yet): only the resolved paths can tell
        return False


def check_output_path(option: str, path) -> Path:
    """The path to write: the path's directory must exist and take a new file, checked by writing
    one, and the path must be new or a regular file: all before any work. UsageError otherwise.

    A symbolic link is written through: the path returned is the file it points to, which gets the
    same checks. An output is written beside its path and renamed over it (``atomic_write``), which
    would replace the link itself with a regular file: a link a user keeps, or /dev/stdout when
    standard output goes to a file."""
    given = Path(path).expanduser()
    path = Path(os.path.realpath(given)) if given.is_symlink() else given
    if path.is_symlink():  # realpath stops where links go round in a loop
        raise UsageError(f"{option} {shown(given)}: a symbolic link that leads to no file (a loop of links)")
    if path.is_dir():
        raise UsageError(f"{option} {shown(given)}: is a directory, expected a file path")
    directory = path.parent
    if not directory.is_dir():
        raise UsageError(f"{option} {shown(given)}: the directory {shown(directory)} does not exist")
    try:
        check_replaceable(path)
    except NotRegularFileError as error:
        raise UsageError(f"{option} {shown(given)}: {error.strerror}") from None
    try:
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".nnscratch-check-"):
            pass
    except OSError as error:
        raise UsageError(f"{option} {shown(given)}: cannot write in {shown(directory)} ({error.strerror or error})") from None
    return path


def check_outputs(outputs, inputs=()) -> dict:
    """``{option: Path to write}`` for the ``(option, path)`` pairs of ``outputs`` whose path is not
    None, each checked by ``check_output_path`` and against every ``(label, path)`` of ``inputs`` and
    every earlier output (``same_file``); ``UsageError`` names the two spellings of one file."""
    checked, given = {}, {}
    for option, path in outputs:
        if path is None:
            continue
        written = check_output_path(option, path)
        for label, other in [*inputs, *given.items()]:
            if same_file(written, Path(other).expanduser()):
                raise UsageError(f"{label} {shown(other)} and {option} {shown(Path(path).expanduser())} name the "
                                 "same file; give each its own path")
        checked[option], given[option] = written, path
    return checked


def mnist_inputs(data_dir) -> list:
    """``(label, path)`` of every file an MNIST load reads in ``data_dir`` (as ``resolve_data_dir``
    finds it): the four files and the ``.gz`` archives a user may place beside them."""
    from ..data.mnist import FILES, resolve_data_dir

    root = resolve_data_dir(data_dir)
    return [("the MNIST file", root / name) for base in FILES for name in (base, f"{base}.gz")]


def read_deadline(text):
    """``--deadline``: None (not given: ``$NNSCRATCH_DOWNLOAD_DEADLINE``, else the default), or the
    seconds one mirror may take for one file, bounded by ``download.resolve_deadline``; ValueError
    naming the option otherwise."""
    from ..data.download import resolve_deadline

    if text is None:
        return None
    try:
        return resolve_deadline(float(text), origin="--deadline")
    except ValueError as error:
        raise ValueError(error if "--deadline" in str(error) else
                         f"--deadline: expected a number of seconds, got {text!r:.40}") from None


def os_error_text(error: OSError) -> str:
    """An OSError as "PATH: cause" (the cause alone when it names no file), without Errno numbers."""
    cause = error.strerror or str(error)
    return f"{shown(error.filename)}: {cause}" if error.filename else cause


def stdout_failed(command: str, what: str, error: OSError) -> int:
    """The exit code once writing ``what`` to stdout failed: 0 for a reader that left (``... | head``
    has what it wanted), else 1 after one line on stderr (stdout redirected to a full disk, say).
    Stdout then leads nowhere, so that Python's own flush at exit does not fail loudly."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    if isinstance(error, BrokenPipeError):
        return 0
    print(f"{command}: could not write {what} to the standard output: {error.strerror or error}", file=sys.stderr)
    return 1


def write_failed(command: str, what: str, path, error: OSError) -> None:
    """One line on stderr for an output that could not be written, naming it and the cause."""
    unchanged = "; the previous file there is unchanged" if os.path.lexists(path) else ""
    print(f"{command}: could not write {what} {shown(path)}: {error.strerror or error}{unchanged}", file=sys.stderr)


def save_figure(figure, path: Path) -> None:
    """A matplotlib ``figure`` as a PNG at ``path``, written atomically; the figure is closed either way."""
    import matplotlib.pyplot as plt

    try:
        with atomic_write(path) as f:
            figure.savefig(f, format="png", dpi=100)
    finally:
        plt.close(figure)


def read_checkpoint(path):
    """``load_checkpoint(path)``, with every reason it cannot be read as a one-line UsageError."""
    from ..io import load_checkpoint

    try:
        return load_checkpoint(path)
    except FileNotFoundError:
        raise UsageError(f"{shown(path)}: no such checkpoint") from None
    except (OSError, ValueError) as error:
        raise UsageError(f"{error}" if str(path) in str(error) else f"{shown(path)}: {error}") from None


def load_classifier(path):
    """(checkpoint, its model without the loss, the shape one digit takes for it); UsageError if unusable.

    A model with NaN or infinite weights is unusable too: whatever the input, its scores mean nothing.
    """
    from ..inference import digit_input_shape, inference_model

    checkpoint = read_checkpoint(path)
    check_finite_weights(path, checkpoint.model)
    try:
        model = inference_model(checkpoint.model)
        return checkpoint, model, digit_input_shape(model)
    except ValueError as error:
        raise UsageError(f"{shown(path)}: {error}") from None


def check_finite_weights(path, model, consequence="its predictions would mean nothing") -> None:
    """UsageError when some parameter of ``model`` holds NaN or an infinity (a diverged run's weights)."""
    import numpy as np

    parameters = model.parameters
    bad = [p for p in parameters if not np.isfinite(p).all()]
    if bad:
        values = sum(int(p.size - np.count_nonzero(np.isfinite(p))) for p in bad)
        values_are = f"{values:,} weight values in {len(bad)} of its {len(parameters)} parameter arrays are"
        if values == 1:
            values_are = f"1 weight value in 1 of its {len(parameters)} parameter arrays is"
        raise UsageError(f"{shown(path)}: {values_are} NaN or infinite (did the training diverge?): {consequence}")
