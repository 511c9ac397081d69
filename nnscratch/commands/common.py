"""What several commands check the same way: an output path, and a checkpoint to run on digits."""

from __future__ import annotations

import tempfile
from pathlib import Path


class UsageError(Exception):
    """A bad option or checkpoint: printed as one line, exit code 2."""


def check_output_path(option: str, path) -> Path:
    """The path's directory must exist and take a new file: checked by writing one, before any work."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise UsageError(f"{option} {path}: is a directory, expected a file path")
    directory = path.parent
    if not directory.is_dir():
        raise UsageError(f"{option} {path}: the directory {directory} does not exist")
    try:
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".train-mnist-check-"):
            pass
    except OSError as error:
        raise UsageError(f"{option} {path}: cannot write in {directory} ({error.strerror or error})") from None
    return path


def load_classifier(path):
    """(checkpoint, its model without the loss, the shape one digit takes for it); UsageError if unusable."""
    from ..inference import digit_input_shape, inference_model
    from ..io import load_checkpoint

    try:
        checkpoint = load_checkpoint(path)
    except FileNotFoundError:
        raise UsageError(f"{path}: no such checkpoint") from None
    except (OSError, ValueError) as error:
        raise UsageError(f"{error}" if str(path) in str(error) else f"{path}: {error}") from None
    try:
        model = inference_model(checkpoint.model)
        return checkpoint, model, digit_input_shape(model)
    except ValueError as error:
        raise UsageError(f"{path}: {error}") from None
