"""Fetching files from mirrors so that nothing unverified ever sits under its final name.

One attempt: stream ``mirror + name`` to a temporary file in the destination directory (with a
progress bar), decompress it if it is gzip, hash the decompressed bytes with SHA-256, and only
when the hash matches the pinned one ``os.replace`` the result onto the final name.

The mirror policy (``fetch_all``): mirrors are tried in order for each file. A mirror whose failure
cost time (unreachable, silent, too slow, out of time) is skipped for the remaining files; one that
answered at once but could not deliver that file (404, bad content) is still asked for the others.

Every file from every mirror has a deadline (``DEADLINE``, ``$NNSCRATCH_DOWNLOAD_DEADLINE`` or the
``deadline`` argument, from ``MIN_DEADLINE`` to ``MAX_DEADLINE`` seconds), all its attempts
included, and a minimum speed: the HTTP machinery (the watchdog, the retries by urllib3's
``Retry``) is ``nnscratch.data.http``'s.

A process killed outright (SIGKILL, power loss) cannot delete its temporary files, so the next
download of the same file deletes such leftovers once they are clearly stale (``STALE_AFTER``).
The temporary files, their names and the final replace are ``nnscratch.atomic_file``'s.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from pathlib import Path
from urllib.parse import urlsplit

from urllib3.exceptions import MaxRetryError

from .. import atomic_file
from ..atomic_file import STALE_AFTER, atomic_write, scratch_file
from .http import BodyLost, FetchError, Watchdog, new_session, retry_policy, stream_to

__all__ = ["FetchError", "MNISTDownloadError", "fetch_all", "fetch_first", "fetch_verified", "install_verified", "new_session",
           "remove_stale_temporaries", "resolve_deadline", "resolve_mirrors", "sha256_of"]

# Public mirrors of the four MNIST files, tried in this order. The original site comes last:
# it now often refuses downloads (403) and serves plain HTTP.
DEFAULT_MIRRORS = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
]
MIRROR_ENV = "NNSCRATCH_MNIST_MIRROR"
# Seconds one mirror may take for one file, every attempt included. MNIST's largest file is 9.9 MB:
# five minutes is 33 kB/s, and a mirror slower than that is dropped for the remaining files too.
DEADLINE = 300.0
DEADLINE_ENV = "NNSCRATCH_DOWNLOAD_DEADLINE"
MIN_DEADLINE = 0.1  # below this nothing arrives; above MAX_DEADLINE (a day) a deadline means nothing
MAX_DEADLINE = 86400.0
# No MNIST file is near this size, compressed or not: a mirror serving more is wrong (or hostile)
# and must not fill the disk.
MAX_BYTES = 256 << 20
_CHUNK = 1 << 20


SKIPPED = "skipped: unreachable for an earlier file"


class MNISTDownloadError(RuntimeError):
    """Every mirror failed for at least one file; ``str(error)`` is the complete user-facing message.

    Attributes: ``data_dir`` (Path), ``missing`` (file names not obtained) and ``failures``, a list
    of ``(mirror, file name, reason)`` in the order they were tried.
    """

    def __init__(self, data_dir: Path, missing: list[str], failures: list[tuple[str, str, str]]):
        self.data_dir = Path(data_dir)
        self.missing = list(missing)
        self.failures = list(failures)
        super().__init__(self._message())

    def _message(self) -> str:
        lines = [f"Could not download MNIST into {self.data_dir}: no mirror delivered {', '.join(self.missing)}."]
        lines.append("Tried, in order:")
        tried = [(mirror, name, reason) for mirror, name, reason in self.failures if reason != SKIPPED]
        for mirror, name, reason in tried:
            lines.append(f"  {mirror}{name}: {reason}")
        if len(tried) < len(self.failures):
            lines.append("  (a mirror that could not be reached was not tried again for the later files)")
        lines.append("To fix it, either:")
        lines.append(
            "  - give a mirror that works: nnscratch download-mnist --mirror URL (a base URL to which the "
            f"file names are appended; repeat --mirror to try several, or set {MIRROR_ENV}=URL1,URL2), or"
        )
        lines.append(
            f"  - download the files yourself and put them in {self.data_dir} (gzipped .gz or decompressed): "
            + ", ".join(self.missing)
        )
        return "\n".join(lines)


def resolve_mirrors(mirrors=None, env: str | None = None, defaults=None, folders: bool = True) -> list[str]:
    """The mirrors to try, in order: the argument, else ``$env`` (comma-separated; MNIST's
    ``$NNSCRATCH_MNIST_MIRROR`` unless given), else ``defaults`` (MNIST's ``DEFAULT_MIRRORS`` unless
    given). With ``folders`` each is a base URL and gets a trailing slash; without, each is kept as
    given (the URL of one file, as tiny shakespeare's mirrors may be)."""
    env = MIRROR_ENV if env is None else env
    if mirrors is None:
        text = os.environ.get(env, "")
        mirrors = [m.strip() for m in text.split(",") if m.strip()] or list(DEFAULT_MIRRORS if defaults is None
                                                                           else defaults)
        origin = f"${env}" if text.strip() else "DEFAULT_MIRRORS"
    else:
        origin = "mirrors"
        if isinstance(mirrors, str):
            mirrors = [mirrors]
        mirrors = list(mirrors)
        if not mirrors:
            raise ValueError("mirrors: expected at least one base URL, got an empty list")
    result = []
    for mirror in mirrors:
        if not isinstance(mirror, str):
            raise TypeError(f"{origin}: expected URLs as strings, got {type(mirror).__name__} {mirror!r}")
        parts = urlsplit(mirror)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"{origin}: expected an http:// or https:// base URL, got {mirror!r}")
        result.append(mirror if mirror.endswith("/") or not folders else mirror + "/")
    return result


def resolve_deadline(deadline=None, origin: str = "deadline") -> float:
    """The deadline in seconds: the argument, else ``$NNSCRATCH_DOWNLOAD_DEADLINE``, else ``DEADLINE``;
    from ``MIN_DEADLINE`` to ``MAX_DEADLINE``, else a ValueError naming ``origin`` (or the variable)."""
    if deadline is None:
        text = os.environ.get(DEADLINE_ENV, "").strip()
        if not text:
            return DEADLINE
        origin = f"${DEADLINE_ENV}"
        try:
            deadline = float(text)
        except ValueError:
            raise ValueError(f"{origin}: expected a number of seconds, got {text!r:.40}") from None
    if isinstance(deadline, bool) or not isinstance(deadline, (int, float)):
        raise TypeError(f"{origin}: expected a number of seconds, got {type(deadline).__name__} {deadline!r:.40}")
    if not MIN_DEADLINE <= deadline <= MAX_DEADLINE:  # NaN fails too; no float() of a huge int
        raise ValueError(f"{origin}: expected a number of seconds from {MIN_DEADLINE:g} to {MAX_DEADLINE:g} "
                         f"(a day), got {deadline!r:.40}")
    return float(deadline)


def sha256_of(path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def install_verified(source: Path, expected_sha256: str, dest: Path) -> None:
    """Decompress ``source`` (if gzip) into ``dest`` when its content hashes to ``expected_sha256``.

    The output goes to a temporary file beside ``dest`` (``atomic_write``) that replaces it only
    once verified; on any failure ``dest`` is untouched and ``FetchError`` says why.
    """
    with open(source, "rb") as f:
        compressed = f.read(2) == b"\x1f\x8b"
    digest, size = hashlib.sha256(), 0
    with atomic_write(dest) as out, (gzip.open if compressed else open)(source, "rb") as src:
        while True:
            try:
                chunk = src.read(_CHUNK)
            except (OSError, EOFError, zlib.error) as error:
                raise FetchError(f"not valid gzip ({error})") from None
            if not chunk:
                break
            size += len(chunk)
            if size > MAX_BYTES:
                raise FetchError(f"content larger than {MAX_BYTES >> 20} MiB, not the expected file")
            digest.update(chunk)
            out.write(chunk)
        if digest.hexdigest() != expected_sha256:  # raising inside the block: nothing is installed
            raise FetchError(
                f"content is altered or truncated: SHA-256 of the {size} decompressed bytes is "
                f"{digest.hexdigest()[:16]}..., expected {expected_sha256[:16]}..."
            )


def remove_stale_temporaries(dest: Path, max_age: float = STALE_AFTER, suffixes=("download", "part")) -> None:
    """``atomic_file.remove_stale_temporaries`` with a download's two suffixes by default: ``download``
    (the transfer, a ``scratch_file``) and ``part`` (the verified copy, an ``atomic_write``).

    ``STALE_AFTER``, an hour, never takes another process's download into the same directory for a
    leftover: a live one writes its temporary file at least every ``http.TIMEOUT[1]`` seconds and
    waits at most ``http.MAX_RETRY_AFTER`` between attempts.
    """
    atomic_file.remove_stale_temporaries(dest, max_age, suffixes)


def fetch_verified(session, url: str, expected_sha256: str, dest: Path, progress: bool = True,
                   deadline: float | None = None) -> None:
    """Download ``url``, verify its (decompressed) content and install it as ``dest``.

    Within ``deadline`` seconds (``resolve_deadline``) and ``http.SPEED_LIMIT``, every attempt
    included. The session's retries (``http.retry_policy``) cover the request; a body cut short is
    tried again under the same policy. Raises ``FetchError`` when this mirror cannot deliver
    (``unreachable`` when the failure cost time, so the caller drops the mirror), ``OSError`` when
    writing here fails. Temporary files never outlive the call, and stale ones left by an earlier
    call that was killed are deleted first. A session from ``new_session`` lets the watchdog cut a
    blocked read short; with another, its bounds are checked between reads only.
    """
    remove_stale_temporaries(dest)
    retry = retry_policy()
    with Watchdog(resolve_deadline(deadline)) as watchdog:
        while True:
            try:
                with scratch_file(dest, "download") as tmp:
                    stream_to(session, url, tmp, watchdog, MAX_BYTES, progress, dest.name)
                    install_verified(tmp, expected_sha256, dest)
                return
            except BodyLost as error:
                try:
                    retry = retry.increment("GET", url, error=error.cause)
                except MaxRetryError:
                    raise FetchError(f"{error.reason} ({len(retry.history) + 1} attempts)") from None
                retry.sleep()


def fetch_first(session, candidates, expected_sha256: str, dest: Path, progress: bool = True, deadline=None,
                failures=None, unreachable=None) -> bool:
    """Fetch ``dest`` from the first of ``candidates``, ``(mirror, name)`` pairs (the URL is
    ``mirror + name``), that delivers it verified (``fetch_verified``); whether one did.

    Each failure is appended to ``failures`` as ``(mirror, name, reason)``; a mirror whose failure
    cost time joins ``unreachable`` and is skipped, here and by later calls given the same set. An
    ``OSError`` writing here (a full disk) names ``dest`` and ends it all: no mirror can help.
    """
    failures = [] if failures is None else failures
    unreachable = set() if unreachable is None else unreachable
    for mirror, name in candidates:
        if mirror in unreachable:
            failures.append((mirror, name, SKIPPED))
            continue
        try:
            fetch_verified(session, f"{mirror}{name}", expected_sha256, dest, progress, deadline)
            return True
        except OSError as error:
            raise OSError(error.errno, error.strerror or str(error), str(dest)) from None
        except FetchError as error:
            failures.append((mirror, name, error.reason))
            if error.unreachable:
                unreachable.add(mirror)
    return False


def fetch_all(root: Path, names, sha256: dict, mirrors, progress: bool = True, deadline=None) -> None:
    """Fetch each of ``names`` into ``root`` from the first of ``mirrors`` that delivers it verified
    (``fetch_first`` of ``mirror + name + ".gz"``); a mirror whose failure cost time is skipped
    for the remaining files. Raises ``MNISTDownloadError`` naming what is missing and every failure;
    the files obtained stay. An ``OSError`` writing here (a full disk) names the file and ends it all."""
    mirrors = resolve_mirrors(mirrors)
    failures, missing, unreachable = [], [], set()
    with new_session() as session:
        for name in names:
            candidates = [(mirror, f"{name}.gz") for mirror in mirrors]
            if not fetch_first(session, candidates, sha256[name], root / name, progress, deadline, failures, unreachable):
                missing.append(f"{name}.gz")
    if missing:
        raise MNISTDownloadError(root, missing, failures)
