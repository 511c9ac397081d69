"""Output files that are never seen half-written: a temporary file beside the target, then ``os.replace``.

    with atomic_write(path) as f:      # f: a binary file open on .NAME.<random>.part beside path
        np.savez(f, **arrays)          # path appears, complete, only when the block ends normally

When the ``with`` block ends normally, the data is flushed and fsynced, the file gets the
permissions a plain ``open(path, "wb")`` would give a new file (0o666 minus the umask, where
``mkstemp`` gives 0o600), and ``os.replace`` renames it over ``path``. The temporary file is in the
same directory, so that rename stays on one file system and is atomic: a reader sees the old file or
the new one, never part of either. When the block raises (KeyboardInterrupt included), the temporary
file is deleted, ``path`` is left exactly as it was, and the exception goes on.

Only a regular file is ever replaced: a FIFO, a device node or a directory at ``path`` (or where a
symbolic link there points) is refused with ``NotRegularFileError``, never swapped for a regular file.

A process killed outright (SIGKILL, power loss) cannot delete its temporary file. So every write
first deletes the leftovers of earlier writes of the same path, once they are clearly stale
(``remove_stale_temporaries``, ``STALE_AFTER``). ``scratch_file`` names a temporary the same way
for data that is checked before anything is installed (the MNIST downloader's transfer).
"""

from __future__ import annotations

import errno
import os
import re
import stat
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

# Seconds after its last write that a temporary file counts as a leftover of a killed process. A
# live writer here modifies its temporary file every few seconds at most (the downloader: see
# download.py), so an hour never mistakes another process's write of the same file, going on right
# now, for a leftover.
STALE_AFTER = 3600.0
# The suffix of atomic_write's temporaries: .NAME.<random>.part
PART = "part"
# Where Linux (4.7 and later) shows the umask without anyone having to change it.
_PROC_STATUS = "/proc/self/status"


class NotRegularFileError(OSError):
    """``path`` exists and is not a regular file: writing a file there would replace a FIFO, a device
    node or a directory. ``strerror`` says which; ``filename`` is the path."""

    def __init__(self, path, kind: str):
        code = errno.EISDIR if kind == "directory" else errno.EINVAL
        super().__init__(code, f"not a regular file but a {kind}, which is never replaced by one", str(path))


def file_kind(mode: int) -> str:
    """What a ``stat`` mode is, in words: "regular file", "directory", "FIFO", "character device", ..."""
    kinds = ((stat.S_ISREG, "regular file"), (stat.S_ISDIR, "directory"), (stat.S_ISFIFO, "FIFO"),
             (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"), (stat.S_ISSOCK, "socket"),
             (stat.S_ISLNK, "symbolic link"))  # fmt: skip
    return next((name for test, name in kinds if test(mode)), "special file")


def check_replaceable(path) -> None:
    """Raise ``NotRegularFileError`` when ``path`` (a symbolic link followed) exists and is not a
    regular file; a new path, or one that cannot be examined, is left for the write to judge."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return
    if not stat.S_ISREG(mode):
        raise NotRegularFileError(path, file_kind(mode))


def _create_beside(path: Path, suffix: str) -> tuple[int, Path]:
    """A new file ``.NAME.<random>.SUFFIX`` beside ``path`` (mode 0o600), as (open fd, its path)."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".{suffix}")
    return fd, Path(name)


def _discard(path: Path) -> None:
    """Delete a temporary file of ours; a failure here must not hide the error being handled."""
    try:
        os.unlink(path)
    except OSError:
        pass


def remove_stale_temporaries(dest, max_age: float = STALE_AFTER, suffixes=(PART,)) -> None:
    """Delete the temporary files of earlier writes of ``dest`` by processes killed mid-way.

    They are the regular files beside ``dest`` named ``.NAME.<random>.SUFFIX``, ``<random>`` being
    the 8 characters ``tempfile.mkstemp`` adds and SUFFIX one of ``suffixes``, last modified more
    than ``max_age`` seconds ago. Anything else, and any file that cannot be examined or removed,
    is left alone: this never raises.
    """
    dest = Path(dest)
    pattern = re.compile(rf"\.{re.escape(dest.name)}\.[a-z0-9_]{{8}}\.({'|'.join(map(re.escape, suffixes))})")
    oldest = time.time() - max_age
    try:
        with os.scandir(dest.parent) as listing:
            entries = list(listing)
    except OSError:
        return
    for entry in entries:
        if not pattern.fullmatch(entry.name):
            continue
        try:
            if entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_mtime < oldest:
                os.unlink(entry.path)
        except OSError:  # gone already (another process cleaned up), or not ours to remove
            pass


def current_umask() -> int:
    """The process's umask, e.g. 0o022.

    Read from ``/proc/self/status`` where it is there (Linux). Elsewhere ``os.umask`` is the only
    way, and it sets a value to return the old one: it is set back at once, and meanwhile holds
    0o022 rather than 0, so a file another thread creates in that instant is not world-writable.
    """
    try:
        with open(_PROC_STATUS, "rb") as status:
            for line in status:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_write(path, check=None):
    """Open a temporary file beside ``path`` for binary writing; on success it replaces ``path``.

    Raises ``NotRegularFileError`` (an ``OSError``) before anything is written when ``path`` is
    not a regular file (``check_replaceable``). Stale leftovers of earlier killed writes of
    ``path`` are deleted first. On success the file is
    fsynced, given mode 0o666 & ~umask, passed to ``check(temporary path)`` if given (which raises
    to refuse it, e.g. a checkpoint that does not load back), and moved over ``path`` with
    ``os.replace``; then the directory is fsynced so that the rename is durable too. On any
    exception the temporary file is deleted, ``path`` is untouched, and the exception propagates.
    """
    path = Path(path)
    check_replaceable(path)
    remove_stale_temporaries(path, suffixes=(PART,))
    fd, tmp = _create_beside(path, PART)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~current_umask())
        if check is not None:
            check(tmp)
        os.replace(tmp, path)
    except BaseException:
        _discard(tmp)
        raise
    _sync_directory(path.parent)


def _sync_directory(directory: Path) -> None:
    """fsync a directory, so that a rename in it survives a power loss, not only the file's data.

    Best effort: where a directory cannot be opened or synced (Windows, some network file systems)
    the rename is still atomic, only its durability is left to the operating system.
    """
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def scratch_file(beside, suffix: str):
    """The path of a new empty file ``.NAME.<random>.SUFFIX`` beside ``beside``, deleted at the end.

    For intermediate data that is checked before anything is installed, e.g. a download streamed
    here and then verified into ``atomic_write``. It is deleted however the block ends; its name
    lets ``remove_stale_temporaries(beside, suffixes=(suffix,))`` find it after a kill.
    """
    fd, tmp = _create_beside(Path(beside), suffix)
    os.close(fd)
    try:
        yield tmp
    finally:
        _discard(tmp)
