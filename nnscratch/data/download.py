"""Fetching a file from mirrors so that nothing unverified ever sits under its final name.

One attempt: stream ``mirror + name`` to a temporary file in the destination directory (with a
progress bar), decompress it if it is gzip, hash the decompressed bytes with SHA-256, and only
when the hash matches the pinned one ``os.replace`` the result onto the final name. Connection
errors, 429 and 5xx are retried with a short, bounded backoff; anything else moves on to the next
mirror (timeouts too: see ``TIMEOUT``). The caller (``nnscratch.data.mnist``) decides which mirrors to try for which file.

Every file from every mirror has a total deadline (``DEADLINE``, ``$NNSCRATCH_DOWNLOAD_DEADLINE``
or the ``deadline`` argument), all its attempts included: a server that trickles a byte every few
seconds, or sends its header lines slowly, never gets below ``TIMEOUT``'s silence limit, so only a
deadline on the whole transfer stops it. When it passes, a watchdog thread shuts the connection's
socket down (``new_session`` sets that up), which ends even a read that is blocked.

A process killed outright (SIGKILL, power loss) cannot delete its temporary files, so the next
download of the same file deletes such leftovers once they are clearly stale (``STALE_AFTER``).
The temporary files, their names and the final replace are ``nnscratch.atomic_file``'s.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import re
import socket
import threading
import time
import zlib
from pathlib import Path
from urllib.parse import urlsplit

import requests
import requests.adapters
import urllib3
import urllib3.connection
from tqdm import tqdm

from .. import atomic_file
from ..atomic_file import STALE_AFTER, atomic_write, scratch_file

# Public mirrors of the four MNIST files, tried in this order. The original site comes last:
# it now often refuses downloads (403) and serves plain HTTP.
DEFAULT_MIRRORS = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
]
MIRROR_ENV = "NNSCRATCH_MNIST_MIRROR"

# (connect, read) seconds: read is the longest silence allowed between two chunks, not the
# whole transfer, so a slow but live mirror still finishes. A timeout is not retried and ends
# the mirror for the remaining files, so a blackholed or stalled mirror costs one timeout.
TIMEOUT = (4.0, 15.0)
# Extra attempts per file and mirror after a refused or dropped connection, 429 or 5xx; the waits
# are BACKOFF, 2*BACKOFF, ... so a closed port costs under a second before the next mirror.
RETRIES = 2
BACKOFF = 0.25
MAX_RETRY_AFTER = 5.0  # cap on a server's Retry-After, in seconds
# Seconds one mirror may take for one file, every attempt included. MNIST's largest file is 9.9 MB:
# five minutes is 33 kB/s, far below any working link, and a mirror slower than that is dropped
# for the remaining files too.
DEADLINE = 300.0
DEADLINE_ENV = "NNSCRATCH_DOWNLOAD_DEADLINE"
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


class FetchError(Exception):
    """One mirror could not deliver one file; ``reason`` says why in a few words.

    ``unreachable`` is true when the server could not be reached at all, so the caller can skip
    that mirror for the remaining files instead of paying its timeouts again.
    """

    def __init__(self, reason: str, unreachable: bool = False, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.unreachable = unreachable
        self.retry_after = retry_after


class _Retryable(FetchError):
    """A failure worth another attempt at the same mirror (connection error, 429, 5xx)."""


def resolve_mirrors(mirrors=None) -> list[str]:
    """The mirrors to try, in order: the argument, else ``$NNSCRATCH_MNIST_MIRROR`` (comma-separated),
    else ``DEFAULT_MIRRORS``. Each is a base URL and gets a trailing slash."""
    if mirrors is None:
        env = os.environ.get(MIRROR_ENV, "")
        mirrors = [m.strip() for m in env.split(",") if m.strip()] or list(DEFAULT_MIRRORS)
        origin = f"${MIRROR_ENV}" if env.strip() else "DEFAULT_MIRRORS"
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
        result.append(mirror if mirror.endswith("/") else mirror + "/")
    return result


def resolve_deadline(deadline=None) -> float:
    """The deadline in seconds: the argument, else ``$NNSCRATCH_DOWNLOAD_DEADLINE``, else ``DEADLINE``."""
    origin = "deadline"
    if deadline is None:
        text = os.environ.get(DEADLINE_ENV, "").strip()
        if not text:
            return DEADLINE
        origin = f"${DEADLINE_ENV}"
        try:
            deadline = float(text)
        except ValueError:
            raise ValueError(f"{origin}: expected a number of seconds, got {text!r}") from None
    if isinstance(deadline, bool) or not isinstance(deadline, (int, float)):
        raise TypeError(f"{origin}: expected a number of seconds, got {type(deadline).__name__} {deadline!r}")
    if not (math.isfinite(deadline) and deadline > 0):
        raise ValueError(f"{origin}: expected a finite number of seconds > 0, got {deadline!r}")
    return float(deadline)


# -- the deadline's watchdog -------------------------------------------------------------------------
class _Watchdog:
    """The deadline of one file from one mirror: when it passes, the sockets of the connections it
    watches are shut down, so that a read blocked on a trickling server returns at once."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.expires = time.monotonic() + seconds
        self.expired = False
        self._sockets: list = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def remaining(self) -> float:
        return max(0.0, self.expires - time.monotonic())

    def watch(self, sock) -> None:
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                _shut(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shut(sock)

    def __enter__(self):
        _current.watchdog = self
        self._timer.start()
        return self

    def __exit__(self, *exc):
        self._timer.cancel()
        _current.watchdog = None


def _shut(sock) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:  # already closed
        pass


_current = threading.local()  # the watchdog of the fetch running in this thread


def _watch(connection) -> None:
    watchdog = getattr(_current, "watchdog", None)
    if watchdog is not None and connection.sock is not None:
        watchdog.watch(connection.sock)


class _WatchedHTTPConnection(urllib3.connection.HTTPConnection):
    def connect(self):
        super().connect()
        _watch(self)

    def request(self, *args, **kwargs):
        _watch(self)  # a kept-alive connection, reused by a later fetch
        return super().request(*args, **kwargs)


class _WatchedHTTPSConnection(urllib3.connection.HTTPSConnection):
    def connect(self):
        super().connect()
        _watch(self)

    def request(self, *args, **kwargs):
        _watch(self)
        return super().request(*args, **kwargs)


class _WatchedHTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _WatchedAdapter(requests.adapters.HTTPAdapter):
    """requests' adapter, its connections watched by the running fetch's deadline."""

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


def new_session() -> requests.Session:
    """A session for ``fetch_verified``: its connections can be cut off at a fetch's deadline."""
    session = requests.Session()
    session.mount("http://", _WatchedAdapter())
    session.mount("https://", _WatchedAdapter())
    # identity: the .gz bytes as stored, so Content-Length matches what we count
    session.headers.update({"User-Agent": "nnscratch", "Accept-Encoding": "identity"})
    return session


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
                raise FetchError(f"content larger than {MAX_BYTES >> 20} MiB, not an MNIST file")
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
    leftover: a live one writes its temporary file at least every ``TIMEOUT[1]`` seconds and waits at
    most ``MAX_RETRY_AFTER`` between attempts.
    """
    atomic_file.remove_stale_temporaries(dest, max_age, suffixes)


def _short(error: Exception) -> str:
    """The useful part of a requests/urllib3 error ("Connection refused", not the whole repr chain)."""
    text = str(error)
    found = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    if found:
        return found.group(1).strip()
    if isinstance(error, requests.Timeout):
        return "timed out"
    return text if len(text) <= 160 else text[:160] + "..."


def _retry_after(response) -> float | None:
    value = response.headers.get("Retry-After", "")
    return min(float(value), MAX_RETRY_AFTER) if value.strip().isdigit() else None


def _over(watchdog: _Watchdog, received: int, total) -> FetchError:
    of = f" of {total}" if total is not None else ""
    return FetchError(f"gave up after the {watchdog.seconds:g} s deadline for one file, {received}{of} bytes received "
                      f"(set {DEADLINE_ENV} or --deadline for a slow link)", unreachable=True)


def _stream_to(session, url: str, path: Path, progress: bool, label: str, watchdog: _Watchdog) -> None:
    """One GET of ``url`` into ``path`` within ``watchdog``'s deadline; raises ``_Retryable`` or ``FetchError``."""
    left = watchdog.remaining()
    try:
        response = session.get(url, stream=True, timeout=(min(TIMEOUT[0], left), min(TIMEOUT[1], left)))
    # Timeouts are not retried: a server silent for that long rarely answers the next time, and
    # retrying would multiply the wait for a dead mirror from seconds to minutes.
    except requests.RequestException as error:
        if watchdog.expired:
            raise _over(watchdog, 0, None) from None
        if isinstance(error, requests.ConnectTimeout):
            raise FetchError(f"cannot connect: no answer within {min(TIMEOUT[0], left):g} s", unreachable=True) from None
        if isinstance(error, requests.ReadTimeout):
            raise FetchError(f"no response within {min(TIMEOUT[1], left):g} s", unreachable=True) from None
        if isinstance(error, requests.ConnectionError):
            raise _Retryable(f"cannot connect ({_short(error)})", unreachable=True) from None
        raise FetchError(f"request failed ({_short(error)})") from None
    with response:
        status = f"HTTP {response.status_code} {response.reason or ''}".strip()
        if response.status_code == 429 or response.status_code >= 500:
            raise _Retryable(status, retry_after=_retry_after(response))
        if response.status_code != 200:
            raise FetchError(status)
        length = response.headers.get("Content-Length", "")
        total = int(length) if length.isdigit() and "Content-Encoding" not in response.headers else None
        if total is not None and total > MAX_BYTES:
            raise FetchError(f"server announces {total} bytes, more than an MNIST file ({MAX_BYTES >> 20} MiB)")
        received = 0
        of = f" of {total}" if total is not None else ""
        with open(path, "wb") as f, tqdm(
            total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=label, disable=not progress
        ) as bar:
            while True:
                try:
                    # read1: whatever one read of the socket gives, so every byte that arrived is
                    # counted (and written) even when the next read fails
                    chunk = response.raw.read1(1 << 16)
                except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as error:
                    if watchdog.expired:
                        raise _over(watchdog, received, total) from None
                    if isinstance(error, (urllib3.exceptions.ReadTimeoutError, TimeoutError, socket.timeout)):
                        # a stall: the next attempt would wait as long again, so on to the next mirror
                        raise FetchError(f"stalled: no data for {min(TIMEOUT[1], left):g} s after {received}{of} "
                                         "bytes", unreachable=True) from None
                    raise _Retryable(f"connection lost after {received}{of} bytes ({_short(error)})") from None
                if watchdog.expired or (chunk and not watchdog.remaining()):
                    raise _over(watchdog, received + len(chunk), total)
                if not chunk:
                    break
                received += len(chunk)
                if received > MAX_BYTES:
                    raise FetchError(f"more than {MAX_BYTES >> 20} MiB received, not an MNIST file")
                f.write(chunk)  # outside the try: a full disk is this machine's failure, not the mirror's
                bar.update(len(chunk))
        if total is not None and received != total:
            raise _Retryable(f"transfer truncated: {received}{of} bytes")


def fetch_verified(session, url: str, expected_sha256: str, dest: Path, progress: bool = True,
                   deadline: float | None = None) -> None:
    """Download ``url``, verify its (decompressed) content and install it as ``dest``.

    Retries refused or dropped connections, 429 and 5xx up to ``RETRIES`` times with backoff, all
    within ``deadline`` seconds (``resolve_deadline``); raises ``FetchError`` when this mirror cannot
    deliver (``unreachable`` when it stalled or ran out of time, so the caller drops it). Temporary
    files never outlive the call, and stale ones left by an earlier call that was killed are
    deleted first. A session from ``new_session`` lets the deadline cut a blocked read short;
    with another, the deadline is checked between reads only.
    """
    remove_stale_temporaries(dest)
    label = dest.name
    with _Watchdog(resolve_deadline(deadline)) as watchdog:
        for attempt in range(RETRIES + 1):
            try:
                with scratch_file(dest, "download") as tmp:
                    _stream_to(session, url, tmp, progress, label, watchdog)
                    install_verified(tmp, expected_sha256, dest)
                return
            except _Retryable as error:
                wait = error.retry_after if error.retry_after is not None else BACKOFF * 2**attempt
                if attempt == RETRIES or wait >= watchdog.remaining():
                    attempts = f"{attempt + 1} attempts" if attempt else "1 attempt"
                    raise FetchError(f"{error.reason} ({attempts})", unreachable=error.unreachable) from None
                time.sleep(wait)
