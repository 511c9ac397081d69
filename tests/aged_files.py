"""Files and folders with a past modification time, for the tests of stale temp-file cleanup, and a
snapshot to show the ones that must be kept were left exactly as they were."""

from __future__ import annotations

import os
import time


def aged(path, seconds, content=b"half a file"):
    """Write ``path`` (a directory when content is None) last modified ``seconds`` ago; return it."""
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    then = time.time() - seconds
    os.utime(path, (then, then))
    return path


def snapshot(paths) -> dict:
    """Each path's content (None for a directory) and modification time: equal later if untouched."""
    return {path: (path.read_bytes() if path.is_file() else None, path.stat().st_mtime) for path in paths}
