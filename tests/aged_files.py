"""Files and folders with a past modification time, for the tests of stale temp-file cleanup."""

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
