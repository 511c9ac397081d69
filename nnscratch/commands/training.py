"""What the training commands (``train-mnist``, ``train-text``) do the same way.

- SIGTERM stops a run as Ctrl-C does (``sigterm_as_interrupt``), so both save their last complete
  state; the exit code is 130 for Ctrl-C and 143 for SIGTERM, as shells report them.
- Numeric options are read from text by the command (``read_numbers``), not by argparse, so that a
  bad value gets one line naming the option rather than the usage block; each is then bounded
  (``check_int_range``) before any work.
- ``Outputs`` writes each output file; one that cannot be written (a full disk, a read-only folder)
  is one line naming it and the cause, the file it would have replaced is left as it was, the run
  goes on, and the command exits 1 at the end.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

from ..atomic_file import atomic_write
from .common import UsageError, write_failed

MAX_THREADS = 1024


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so that it stops as Ctrl-C does (saving included)."""


def interrupt_exit_code(interrupt: KeyboardInterrupt) -> int:
    """128 + the signal's number, as shells report it: 130 for Ctrl-C (SIGINT), 143 for SIGTERM."""
    return 128 + (signal.SIGTERM if isinstance(interrupt, Terminated) else signal.SIGINT)


def stopped(interrupt: KeyboardInterrupt) -> str:
    return "terminated" if isinstance(interrupt, Terminated) else "interrupted"


@contextmanager
def sigterm_as_interrupt():
    """While the block runs, SIGTERM raises ``Terminated`` (only the main thread can take signals)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum, frame):
        raise Terminated

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_training(name: str, body, args) -> int:
    """``body(args)``'s exit code, SIGTERM taken as Ctrl-C; a ``UsageError`` is one line and 2, an
    interruption the body did not handle one line and 130 (143 for SIGTERM)."""
    try:
        with sigterm_as_interrupt():
            return body(args)
    except UsageError as error:
        print(f"{name}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as interrupt:
        print(f"{name}: {stopped(interrupt)}", file=sys.stderr)
        return interrupt_exit_code(interrupt)


# -- numeric options -----------------------------------------------------------------------------
def read_numbers(args, kinds: dict) -> None:
    """Turn the numeric options of ``kinds`` ({dest: int or float}) from text into numbers, in place."""
    for name, kind in kinds.items():
        text = getattr(args, name)
        if text is None:
            continue
        try:
            setattr(args, name, kind(text))
        except ValueError:  # int() of more than 4300 digits too
            expected = "an int" if kind is int else "a number"
            raise UsageError(f"--{name.replace('_', '-')} must be {expected}, got {text!r:.40}") from None


def read_threads(text):
    """``--threads``: "auto" or a thread count from 1 to ``MAX_THREADS`` (not part of a run's
    configuration: a resumed run may use another)."""
    return read_count("--threads", text, MAX_THREADS)


def read_count(option: str, text, most: int):
    """An option that is "auto" or a count from 1 to ``most`` (``--threads``, ``--processes``)."""
    if text is None or text == "auto":
        return "auto"
    try:
        count = int(text)
    except (TypeError, ValueError):
        raise UsageError(f"{option} must be auto or an int from 1 to {most}, got {text!r:.40}") from None
    if not 1 <= count <= most:
        raise UsageError(f"{option} must be auto or an int from 1 to {most}, got {number_text(count)}")
    return count


def number_text(value) -> str:
    """An int as text, a long one cut short: a 400-digit option is named, not printed in full."""
    text = str(value)
    return text if len(text) <= 24 else f"{text[:12]}...({len(text)} digits)"


def check_int_range(option: str, value: int, low: int, high: int) -> None:
    if value < low:
        raise UsageError(f"{option} must be >= {low:,}, got {number_text(value)}")
    if value > high:
        raise UsageError(f"{option} must be at most {high:,}, got {number_text(value)}")


# -- outputs -------------------------------------------------------------------------------------
class Outputs:
    """The output files of one run, by option name ("save", "metrics", ...), already checked.

    ``write(name, what, writer, *arguments)`` calls ``writer(*arguments, path)``; an ``OSError`` is one
    line (``write_failed``) and the run goes on. ``failed`` lists what could not be written.
    """

    def __init__(self, command: str, paths: dict):
        self.command, self.paths, self.failed = command, dict(paths), []

    def __contains__(self, name: str) -> bool:
        return name in self.paths

    def __getitem__(self, name: str) -> Path:
        return self.paths[name]

    def write(self, name: str, what: str, writer, *arguments) -> bool:
        path = self.paths[name]
        try:
            writer(*arguments, path)
            return True
        except OSError as error:
            write_failed(self.command, what, path, error)
            self.failed.append(name)
            return False


def write_json(data: dict, path: Path) -> None:
    """``data`` as indented standard JSON (no NaN), written atomically."""
    text = json.dumps(data, indent=2, allow_nan=False) + "\n"
    with atomic_write(path) as f:  # also deletes the temporaries of runs killed while writing it
        f.write(text.encode())


def read_resume(path):
    """The checkpoint ``--resume`` names; every reason it cannot be read is a one-line UsageError.

    ``common.read_checkpoint``'s twin for an option: its messages name ``--resume``, as a training
    command's every other option message names its option."""
    from ..io import load_checkpoint

    try:
        return load_checkpoint(path)
    except FileNotFoundError:
        raise UsageError(f"--resume {path}: no such file") from None
    except (OSError, ValueError) as error:
        raise UsageError(f"--resume: {error}") from None
