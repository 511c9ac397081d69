"""Files and folders with a past modification time, for the tests of stale temp-file cleanup: the
near misses that a cleanup must leave alone, and a snapshot to show the ones that must be kept were
left exactly as they were."""

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


def near_misses(directory, name: str, suffix: str, seconds, other_suffix: str | None = None) -> set:
    """Old entries beside ``name`` shaped almost like its temporaries ``.NAME.<8 random>.SUFFIX``.

    No leading dot, a longer suffix, a random part too short, another file's name, and a directory
    of exactly the right shape; with ``other_suffix``, also the right shape with a suffix that is
    not this writer's. A cleanup of ``name``'s stale temporaries must remove none of them.
    """
    misses = {
        aged(directory / f"{name}.abcd1234.{suffix}", seconds, b"no leading dot"),
        aged(directory / f".{name}.abcd1234.{suffix}.bak", seconds, b"a longer suffix"),
        aged(directory / f".{name}.abc.{suffix}", seconds, b"random part too short"),
        aged(directory / f".other-{name}.abcd1234.{suffix}", seconds, b"another file's"),
        aged(directory / f".{name}.zzzzzzzz.{suffix}", seconds, None),
    }
    if other_suffix is not None:
        misses.add(aged(directory / f".{name}.abcd1234.{other_suffix}", seconds, b"another suffix"))
    return misses


def snapshot(paths) -> dict:
    """Each path's content (None for a directory) and modification time: equal later if untouched."""
    return {path: (path.read_bytes() if path.is_file() else None, path.stat().st_mtime) for path in paths}
