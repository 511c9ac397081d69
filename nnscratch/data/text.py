"""Text for character-level language models: a file read safely, its vocabulary, and batches.

- ``read_text(path)``: a user's UTF-8 file, bounded in size, with one-line errors (``TextFileError``)
  for a missing, empty, oversized or undecodable file (the error names the byte offset).
- ``Vocabulary``: the sorted distinct characters of a text; ``encode`` and ``decode``. Its
  ``chars`` go into every checkpoint, so generating text never needs the corpus.
- ``CharCorpus``: a text as one stream of ids, split as nanoGPT splits it (the first 90% of the
  characters for training, the last 10% for validation); training batches are random windows drawn
  from a generator the caller seeds, and the validation split can be walked whole.
- ``LineCorpus``: each line one example (names, words), as makemore does: the line between two
  newline markers, padded with targets that the loss ignores; split by lines.

Shape:
    a batch is (x, y), both (B, T) int64: y is x shifted by one character (the next character of
    each position); a padded target is ``IGNORE_INDEX``.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np

from ..validation import check_int, check_number

MAX_TEXT_BYTES = 100 * 2**20  # enough for any text a CPU trains on in minutes (tiny shakespeare: 1.1 MB)
IGNORE_INDEX = -100  # the loss ignores these targets (PyTorch's default; SoftmaxCrossEntropy's too)
MARKER = "\n"  # line mode: the start and end of every line
SPLIT_SEED = 1234  # line mode: the fixed shuffle of the lines before the split, the same for every run


class TextFileError(ValueError):
    """A text file that cannot be used; the message is one line that names it."""


def read_text(path, max_bytes: int = MAX_TEXT_BYTES) -> str:
    """The text of the UTF-8 file at ``path`` (a leading byte-order mark dropped).

    Only a regular file is read (a FIFO would block), and at most ``max_bytes`` of it. Raises
    ``TextFileError`` for a missing, unreadable, empty or oversized file, one that is not UTF-8
    (naming the offset of the first bad byte), or one with fewer than two distinct characters (a
    model of one character has nothing to learn).
    """
    path = Path(path)
    max_bytes = check_int("read_text", "max_bytes", max_bytes, 1)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise TextFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise TextFileError(f"{path}: is a directory, expected a text file") from None
    except OSError as error:
        raise TextFileError(f"{path}: cannot read it ({error.strerror or error})") from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise TextFileError(f"{path}: is a directory, expected a text file")
        if not stat.S_ISREG(mode):
            raise TextFileError(f"{path}: not a regular file (a FIFO, device or socket cannot be read as a text)")
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(max_bytes + 1)
    except OSError as error:
        raise TextFileError(f"{path}: cannot read it ({error.strerror or error})") from None
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise TextFileError(f"{path}: more than {max_bytes:,} bytes, the most a text may have here")
    if not data:
        raise TextFileError(f"{path}: the file is empty")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise TextFileError(
            f"{path}: not UTF-8 text: byte 0x{data[error.start]:02x} at offset {error.start:,} "
            f"({error.reason}); save the file as UTF-8"
        ) from None
    text = text.removeprefix("\ufeff")
    if len(set(text)) < 2:
        what = "nothing but a byte-order mark" if not text else f"only the character {text[0]!r}"
        raise TextFileError(f"{path}: the text holds {what}; a language model needs at least two distinct characters")
    return text


class Vocabulary:
    """The distinct characters of a text, sorted; a character's id is its place in that order.

    ``encode(text)`` -> int64 ids, ``decode(ids)`` -> text. A character outside the vocabulary is a
    ``ValueError`` that names it and its position.
    """

    def __init__(self, chars):
        chars = list(chars)
        if len(chars) < 2 or any(not isinstance(c, str) or len(c) != 1 for c in chars):
            raise ValueError(f"Vocabulary: expected at least two single characters, got {chars!r:.200}")
        if chars != sorted(set(chars)):
            raise ValueError("Vocabulary: the characters must be distinct and sorted")
        self.chars = "".join(chars)
        self._code_points = np.array([ord(c) for c in chars], dtype=np.uint32)

    @classmethod
    def from_text(cls, text: str) -> "Vocabulary":
        return cls(sorted(set(text)))

    def __len__(self) -> int:
        return len(self.chars)

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} characters: {self.chars!r:.80})"

    def encode(self, text: str, what: str = "the text") -> np.ndarray:
        """Shape: -> (len(text),) int64 ids in [0, len(self))."""
        # surrogatepass: a lone surrogate (a byte of a command-line argument that was not UTF-8) gets
        # its code point, which no vocabulary read from UTF-8 holds, and is named below as unknown
        code_points = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        ids = np.searchsorted(self._code_points, code_points)
        unknown = (ids >= len(self)) | (self._code_points[np.minimum(ids, len(self) - 1)] != code_points)
        if unknown.any():
            where = int(np.argmax(unknown))
            undecoded = " (a byte that is not UTF-8)" if "\udc80" <= text[where] <= "\udcff" else ""
            raise ValueError(
                f"{what} has the character {text[where]!r} (at position {where}), which is not in the model's "
                f"vocabulary of {len(self)} characters: {self.chars!r:.200}{undecoded}"
            )
        return ids.astype(np.int64)

    def decode(self, ids) -> str:
        ids = np.asarray(ids)
        if ids.size and (ids.min() < 0 or ids.max() >= len(self)):
            raise ValueError(f"decode: ids must be in [0, {len(self)}), got {int(ids.min())}..{int(ids.max())}")
        return "".join(self.chars[i] for i in ids.ravel().tolist())


class CharCorpus:
    """A text as one stream of character ids, split into training (first ``train_fraction``) and
    validation (the rest), as nanoGPT splits tiny shakespeare."""

    def __init__(self, text: str, train_fraction: float = 0.9, vocabulary: Vocabulary | None = None):
        fraction = check_number("CharCorpus", "train_fraction", train_fraction, 0.0, 1.0, low_inclusive=False)
        self.vocabulary = vocabulary or Vocabulary.from_text(text)
        ids = self.vocabulary.encode(text)
        cut = int(len(ids) * fraction)
        self.train, self.validation = ids[:cut], ids[cut:]

    def check_block_size(self, block_size: int) -> int:
        """The window length must leave at least one window (and its next character) in each split."""
        block_size = check_int("CharCorpus", "block_size", block_size, 1)
        shortest = min(len(self.train), len(self.validation))
        if block_size >= shortest:
            raise ValueError(
                f"the text is too short for windows of {block_size} characters: its smaller split has "
                f"{shortest} (training {len(self.train):,}, validation {len(self.validation):,}); use a "
                "longer text or a smaller --block-size"
            )
        return block_size

    def batch(self, rng: np.random.Generator, batch_size: int, block_size: int, split: str = "train"):
        """``batch_size`` windows of ``block_size`` characters at random offsets of the split, and the
        character after each position."""
        data = self.train if split == "train" else self.validation
        starts = rng.integers(0, len(data) - block_size, size=batch_size)
        index = starts[:, None] + np.arange(block_size)
        return data[index], data[index + 1]

    def validation_batches(self, block_size: int, batch_size: int):
        """The whole validation split, every character after the first predicted exactly once, as
        consecutive windows (the last one padded with ignored targets), ``batch_size`` at a time."""
        yield from _consecutive(self.validation, block_size, batch_size)


def _consecutive(data: np.ndarray, block_size: int, batch_size: int):
    windows = -(-(len(data) - 1) // block_size)
    for first in range(0, windows, batch_size):
        count = min(batch_size, windows - first)
        x = np.zeros((count, block_size), np.int64)
        y = np.full((count, block_size), IGNORE_INDEX, np.int64)
        for row in range(count):
            start = (first + row) * block_size
            chunk = data[start : start + block_size + 1]
            x[row, : len(chunk) - 1] = chunk[:-1]
            y[row, : len(chunk) - 1] = chunk[1:]
        yield x, y


class LineCorpus:
    """Each line of a text one example, as makemore treats names: the model reads a newline (the
    start), then the line, and must predict each next character and finally the newline (the end).

    Empty lines are dropped and a trailing carriage return is removed. The lines are shuffled with
    a fixed seed (``SPLIT_SEED``, the same split for every run), then the last ``1 - train_fraction``
    of them are the validation split.
    """

    def __init__(self, text: str, train_fraction: float = 0.9, vocabulary: Vocabulary | None = None):
        fraction = check_number("LineCorpus", "train_fraction", train_fraction, 0.0, 1.0, low_inclusive=False)
        lines = [line.removesuffix("\r") for line in text.split("\n")]
        lines = [line for line in lines if line]
        if len(lines) < 2:
            raise ValueError(f"line mode needs at least two non-empty lines, got {len(lines)}")
        self.vocabulary = vocabulary or Vocabulary.from_text(MARKER + "".join(lines))
        order = np.random.default_rng(SPLIT_SEED).permutation(len(lines))
        cut = min(max(int(len(lines) * fraction), 1), len(lines) - 1)
        self.train_lines = [lines[i] for i in order[:cut]]
        self.validation_lines = [lines[i] for i in order[cut:]]
        self.longest = max(len(line) for line in lines)
        self._train = [self.vocabulary.encode(line) for line in self.train_lines]
        self._validation = [self.vocabulary.encode(line) for line in self.validation_lines]
        self._marker = int(self.vocabulary.encode(MARKER)[0])

    def check_block_size(self, block_size: int) -> int:
        """Every line and its end marker must fit in the window."""
        block_size = check_int("LineCorpus", "block_size", block_size, 1)
        if block_size < self.longest + 1:
            raise ValueError(
                f"the longest line has {self.longest} characters: line mode needs a --block-size of at least "
                f"{self.longest + 1} (the line and its end), got {block_size}"
            )
        return block_size

    def _examples(self, lines: list, block_size: int):
        x = np.full((len(lines), block_size), self._marker, np.int64)
        y = np.full((len(lines), block_size), IGNORE_INDEX, np.int64)
        for row, ids in enumerate(lines):
            x[row, 1 : len(ids) + 1] = ids
            y[row, : len(ids)] = ids
            y[row, len(ids)] = self._marker
        return x, y

    def batch(self, rng: np.random.Generator, batch_size: int, block_size: int, split: str = "train"):
        """``batch_size`` lines drawn at random, each padded to ``block_size``."""
        lines = self._train if split == "train" else self._validation
        picks = rng.integers(0, len(lines), size=batch_size)
        return self._examples([lines[i] for i in picks], block_size)

    def validation_batches(self, block_size: int, batch_size: int):
        """Every validation line once, ``batch_size`` lines at a time."""
        for first in range(0, len(self._validation), batch_size):
            yield self._examples(self._validation[first : first + batch_size], block_size)
