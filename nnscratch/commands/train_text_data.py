"""``train-text``'s data: the text read (a user's file, or tiny shakespeare downloaded on first use)
and cut into a corpus, checked against the run's configuration and the checkpoint it resumes."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from .common import UsageError, os_error_text, shown
from .train_text_options import TINY_SHAKESPEARE


def read_source(args, saved):
    """(text, source): the text to learn and where it came from (an absolute path, or
    ``TINY_SHAKESPEARE``); None after a one-line message when it cannot be had (a download failed)."""
    from ..data.shakespeare import TextCacheError, TextDownloadError, load_tiny_shakespeare
    from ..data.text import TextFileError, read_text

    path = args.file
    if path is None and saved is not None and saved["config"]["text"]["source"] != TINY_SHAKESPEARE:
        path = saved["config"]["text"]["source"]  # a resumed run reads the text it was trained on
    if path is not None:
        given = Path(path).expanduser()
        try:
            return read_text(given), str(given.absolute())
        except TextFileError as error:  # the path as the data layer names it, shown() as commands show paths
            raise UsageError(str(error).replace(str(given), shown(given), 1)) from None
    try:
        return load_tiny_shakespeare(args.data_dir, args.mirrors, not args.quiet, args.deadline), TINY_SHAKESPEARE
    except (TextDownloadError, TextCacheError) as error:
        print(error, file=sys.stderr)
    except (ValueError, TypeError) as error:  # a malformed --mirror or environment variable
        raise UsageError(str(error)) from None
    except OSError as error:
        print(f"train-text: the text directory: {os_error_text(error)}", file=sys.stderr)
    return None


def build_corpus(text: str, source: str, config: dict, saved):
    """The corpus of ``text`` for ``config`` (its ``block_size`` and ``text`` filled in, in place).

    A resumed run must see the very text it was trained on (the same SHA-256), with the checkpoint's
    vocabulary; a block size that leaves no window is a UsageError.
    """
    from ..data.text import CharCorpus, LineCorpus

    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    vocabulary = None
    if saved is not None:
        recorded = saved["config"]["text"]
        if digest != recorded["sha256"]:
            where = "tiny shakespeare" if source == TINY_SHAKESPEARE else shown(source)
            raise UsageError(f"the text ({where}) is not the one the checkpoint was trained on: its SHA-256 is "
                             f"{digest[:16]}..., the checkpoint's {recorded['sha256'][:16]}...")
        vocabulary = saved["vocabulary"]
    try:
        if config["lines"]:
            corpus = LineCorpus(text, vocabulary=vocabulary)
            if config["block_size"] is None:
                config["block_size"] = _line_context(corpus, config)
        else:
            corpus = CharCorpus(text, vocabulary=vocabulary)
        corpus.check_block_size(config["block_size"])
    except ValueError as error:
        raise UsageError(f"{'the text' if source == TINY_SHAKESPEARE else shown(source)}: {error}") from None
    config["text"] = {"source": source, "sha256": digest, "characters": len(text)}
    return corpus


def _line_context(corpus, config: dict) -> int:
    """Line mode's block size, the longest line + 1, within the bounds the --block-size option has."""
    from .text_checkpoint import INT_RANGES
    from .train_text_options import check_batch_memory

    context, most = corpus.longest + 1, INT_RANGES["block_size"][1]
    if context > most:
        raise ValueError(f"the longest line has {corpus.longest:,} characters: line mode needs a context of "
                         f"{context:,} (the line and its end), more than the {most:,} a context may have; leave out "
                         "the long lines")
    try:
        check_batch_memory({**config, "block_size": context}, f"a context of {context:,} (the longest line and its "
                           "end)", "take a smaller --batch-size or leave out the long lines")
    except UsageError as error:
        raise ValueError(str(error)) from None
    return context
