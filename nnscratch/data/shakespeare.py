"""Tiny shakespeare (char-rnn's corpus): downloaded once, verified, cached, read as text.

The file is char-rnn's ``data/tinyshakespeare/input.txt`` (1,115,394 characters of Shakespeare's
plays, public domain), cached as ``tinyshakespeare.txt`` in the text directory (``--data-dir``,
``$NNSCRATCH_TEXT_DIR``, else ``./data/text``). Its SHA-256 is pinned: a cached file is checked on
every load, and a download is installed (atomically) only when it matches.

Mirrors: ``--mirror URL`` (repeatable, tried in order; else ``$NNSCRATCH_TEXT_MIRROR``, comma-separated;
else the canonical address). A URL whose path ends in ``/`` names a folder that holds the file as
``tinyshakespeare.txt`` (``http://host/text/`` -> ``http://host/text/tinyshakespeare.txt``, the name it
has in this cache and in the project's shared data folder); any other URL is the file itself (the
canonical address is one). The transfer is ``nnscratch.data.download``'s, with the MNIST downloader's
deadlines, minimum speed and retries.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from urllib.parse import urlsplit

from . import download as _download
from .mnist import resolve_data_dir
from .text import read_text

NAME = "tinyshakespeare.txt"
SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
SIZE = 1_115_394
CANONICAL_URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
DEFAULT_MIRRORS = [CANONICAL_URL]
MIRROR_ENV = "NNSCRATCH_TEXT_MIRROR"
DATA_DIR_ENV = "NNSCRATCH_TEXT_DIR"
DEFAULT_DATA_DIR = Path("data") / "text"


class TextDownloadError(RuntimeError):
    """No mirror delivered tiny shakespeare; ``str(error)`` is the complete user-facing message.

    ``failures``: ``(url, "", reason)`` in the order they were tried (``download.fetch_first``'s).
    """

    def __init__(self, path: Path, failures: list):
        self.path, self.failures = Path(path), list(failures)
        lines = [f"Could not download tiny shakespeare into {self.path}: no mirror delivered it.", "Tried, in order:"]
        lines += [f"  {mirror}{name}: {reason}" for mirror, name, reason in self.failures]
        lines.append("To fix it, either:")
        lines.append(f"  - give a mirror that works: --mirror URL (the file's URL, or a folder URL ending in / "
                     f"that holds it as {NAME}; repeat --mirror to try several, or set {MIRROR_ENV}=URL1,URL2), or")
        lines.append(f"  - download the file yourself from {CANONICAL_URL} and save it as {self.path}")
        super().__init__("\n".join(lines))


class TextCacheError(ValueError):
    """The cached file's place holds something that is not a regular file; the message says what to do."""


def resolve_text_dir(data_dir=None) -> Path:
    """The text directory: the argument, else ``$NNSCRATCH_TEXT_DIR``, else ``./data/text`` (absolute)."""
    if data_dir is None:
        data_dir = os.environ.get(DATA_DIR_ENV, "").strip() or DEFAULT_DATA_DIR
    return resolve_data_dir(data_dir)  # MNIST's checks of a given path


def cache_path(data_dir=None) -> Path:
    """Where the verified file is kept."""
    return resolve_text_dir(data_dir) / NAME


def file_url(mirror: str) -> str:
    """The file's URL on ``mirror``: ``mirror + "tinyshakespeare.txt"`` for a folder URL (its path ends
    in ``/``, or it has no path), else ``mirror`` itself."""
    path = urlsplit(mirror).path
    if not path:
        return f"{mirror}/{NAME}"
    return mirror + NAME if path.endswith("/") else mirror


def resolve_text_mirrors(mirrors=None) -> list:
    """The file URLs to try, in order, from ``mirrors`` (a URL or a list), else ``$NNSCRATCH_TEXT_MIRROR``,
    else the canonical address; a malformed one is a ValueError naming it."""
    resolved = _download.resolve_mirrors(mirrors, env=MIRROR_ENV, defaults=DEFAULT_MIRRORS, folders=False)
    return [file_url(mirror) for mirror in resolved]


def _verified(path: Path) -> bool:
    """Whether ``path`` is a regular file holding exactly tiny shakespeare."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return False
    if not stat.S_ISREG(info.st_mode):
        raise TextCacheError(f"{path} is not a regular file (a directory, FIFO or device); move it away and run "
                             "again, or give another --data-dir")
    return info.st_size == SIZE and _download.sha256_of(path) == SHA256


def download_tiny_shakespeare(data_dir=None, mirrors=None, progress=True, deadline=None) -> Path:
    """The path of the verified cached file, downloaded first if missing or altered.

    Mirrors are only looked at when something must be downloaded. Raises ``TextDownloadError`` when
    no mirror delivers it (within ``deadline`` seconds each: see ``download.resolve_deadline``).
    """
    path = cache_path(data_dir)
    deadline = _download.resolve_deadline(deadline)  # a bad value fails before anything is done
    if _verified(path):
        return path
    urls = resolve_text_mirrors(mirrors)
    path.parent.mkdir(parents=True, exist_ok=True)
    failures = []
    with _download.new_session() as session:
        if not _download.fetch_first(session, [(url, "") for url in urls], SHA256, path, progress, deadline, failures):
            raise TextDownloadError(path, failures)
    return path


def load_tiny_shakespeare(data_dir=None, mirrors=None, progress=True, deadline=None) -> str:
    """Tiny shakespeare as one string (1,115,394 characters), downloaded on first use."""
    return read_text(download_tiny_shakespeare(data_dir, mirrors, progress, deadline))
