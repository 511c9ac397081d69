"""The HTTP machinery under the MNIST downloader: one GET streamed to a file, bounded in time and speed.

- Retries: urllib3's ``Retry``, mounted on the session through requests' ``HTTPAdapter``, retries
  refused or dropped connections, 429 and 5xx (``RETRIES`` times, backoff ``BACKOFF``,
  ``Retry-After`` honoured up to ``MAX_RETRY_AFTER``). A server that stays silent (no connection,
  or no answer, within ``TIMEOUT``) is not asked again: another try would wait as long.
- A watchdog per transfer (``Watchdog``) ends it when its deadline passes, or when it runs slower
  than ``SPEED_LIMIT`` bytes/s over ``SPEED_TIME`` seconds (curl's ``--speed-limit`` and
  ``--speed-time``): a mirror that trickles a byte every few seconds never stays silent long
  enough for ``TIMEOUT``, so only these stop it. It shuts the transfer's sockets down, which ends
  even a read that is blocked; ``new_session`` makes every connection show its socket to the
  watchdog of the transfer running in its thread.

The mirror policy (which mirror for which file, verification, installing) is ``download.py``'s.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections import deque

import requests
import requests.adapters
import urllib3
import urllib3.connection
from tqdm import tqdm
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError, ReadTimeoutError
from urllib3.util.retry import Retry

# (connect, read) seconds: read is the longest silence allowed between two chunks, not the whole
# transfer. A timeout is not retried and ends the mirror for the remaining files.
TIMEOUT = (4.0, 15.0)
# Extra attempts after a refused or dropped connection, 429 or 5xx; the waits are 0, 2*BACKOFF,
# 4*BACKOFF... (urllib3's formula), so a closed port costs under a second before the next mirror.
RETRIES = 2
BACKOFF = 0.25
MAX_RETRY_AFTER = 5.0  # cap on a server's Retry-After, in seconds
# The least speed a transfer must keep: under SPEED_LIMIT bytes/s over the last SPEED_TIME seconds
# (the headers' time included), it is given up. A useless mirror is left within half a minute,
# while any link that can fetch MNIST's 10 MB within the deadline is far above 1 kB/s.
SPEED_LIMIT = 1024
SPEED_TIME = 30.0
RETRY_STATUSES = (429, 500, 502, 503, 504)


class FetchError(Exception):
    """One mirror could not deliver one file; ``reason`` says why in a few words.

    ``unreachable`` is true when the failure cost time (a server that could not be reached, stayed
    silent, was too slow or ran out of time), so the caller skips that mirror for the other files.
    """

    def __init__(self, reason: str, unreachable: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.unreachable = unreachable


class BodyLost(FetchError):
    """The connection broke, or the body ended early, after the response began: worth another try.
    ``cause`` is the urllib3 error it counts as for ``Retry.increment``."""

    def __init__(self, reason: str, cause: Exception):
        super().__init__(reason)
        self.cause = cause


# -- the watchdog: a deadline and a minimum speed per transfer -------------------------------------
class Watchdog:
    """Ends one transfer when ``seconds`` pass, or when it gets fewer than ``speed_limit`` bytes/s
    over ``speed_time`` seconds: the sockets it watches are shut down, and ``reason`` says which.

    Use it as a context manager around the transfer, calling ``received(n)`` for each chunk.
    """

    def __init__(self, seconds: float, speed_limit: float | None = None, speed_time: float | None = None):
        self.seconds = seconds
        self.speed_limit = SPEED_LIMIT if speed_limit is None else speed_limit
        self.speed_time = SPEED_TIME if speed_time is None else speed_time
        self.start = time.monotonic()
        self.expires = self.start + seconds
        self.total = 0  # bytes received so far
        self.reason = None  # "deadline" or "speed" once it has fired
        self._marks = deque([(self.start, 0)])  # (time, total) samples, for the speed over a window
        self._sockets: list = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True, name="nnscratch-download-watchdog")

    @property
    def expired(self) -> bool:
        return self.reason is not None

    def remaining(self) -> float:
        return max(0.0, self.expires - time.monotonic())

    def received(self, count: int) -> None:
        self.total += count

    def watch(self, sock) -> None:
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                _shut(sock)

    def window(self) -> tuple:
        """(bytes, seconds) of the window the speed rule looked at last: from the latest check at or
        before ``speed_time`` seconds ago, up to that check."""
        (since, then), (now, total) = self._marks[0], self._marks[-1]
        return total - then, now - since

    def _watch(self) -> None:
        tick = max(0.01, min(1.0, self.speed_time / 10))
        while not self._stop.wait(min(tick, max(0.0, self.expires - time.monotonic()))):
            now = time.monotonic()
            if now >= self.expires:
                return self._fire("deadline")
            self._marks.append((now, self.total))
            while len(self._marks) > 1 and self._marks[1][0] <= now - self.speed_time:
                self._marks.popleft()  # the first mark stays at or before the window's start
            since, then = self._marks[0]
            if now - self.start >= self.speed_time and self.total - then < self.speed_limit * (now - since):
                return self._fire("speed")

    def _fire(self, reason: str) -> None:
        with self._lock:
            self.reason = reason
            for sock in self._sockets:
                _shut(sock)

    def __enter__(self) -> Watchdog:
        _current.watchdog = self
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        _current.watchdog = None


def _shut(sock) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:  # already closed
        pass


_current = threading.local()  # the watchdog of the transfer running in this thread


def _watch(connection) -> None:
    watchdog = getattr(_current, "watchdog", None)
    if watchdog is not None and connection.sock is not None:
        watchdog.watch(connection.sock)


class _Watched:
    """A connection that shows its socket to the watchdog of the transfer running in its thread."""

    def connect(self):
        super().connect()
        _watch(self)

    def request(self, *args, **kwargs):
        _watch(self)  # a kept-alive connection, reused by a later transfer
        return super().request(*args, **kwargs)


class _WatchedHTTPConnection(_Watched, urllib3.connection.HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, urllib3.connection.HTTPSConnection):
    pass


class _WatchedHTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _WatchedAdapter(requests.adapters.HTTPAdapter):
    """requests' adapter, its connections watched by the running transfer's watchdog."""

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


# -- retries: urllib3's, within the watchdog's bounds ----------------------------------------------
class WatchedRetry(Retry):
    """urllib3's ``Retry``, except that a silent server (a connect or read timeout) and a transfer
    its watchdog ended are not tried again, and no wait outlasts ``MAX_RETRY_AFTER`` or the deadline."""

    def increment(self, method=None, url=None, response=None, error=None, _pool=None, _stacktrace=None):
        watchdog = getattr(_current, "watchdog", None)
        if isinstance(error, ReadTimeoutError):
            raise error  # as Retry(read=False) does: requests reports it as a ReadTimeout
        silent = isinstance(error, ConnectTimeoutError) and not isinstance(error, NewConnectionError)
        if silent or (watchdog is not None and watchdog.expired):
            raise MaxRetryError(_pool, url, error)
        return super().increment(method, url, response, error, _pool, _stacktrace)

    def get_retry_after(self, response):
        wait = super().get_retry_after(response)
        return None if wait is None else min(wait, MAX_RETRY_AFTER, _time_left())

    def get_backoff_time(self) -> float:
        return min(super().get_backoff_time(), _time_left())


def _time_left() -> float:
    watchdog = getattr(_current, "watchdog", None)
    return float("inf") if watchdog is None else watchdog.remaining()


def retry_policy() -> WatchedRetry:
    """The retries of every request and of a body cut short (``download.fetch_verified``)."""
    return WatchedRetry(total=None, connect=RETRIES, read=RETRIES, status=RETRIES, other=0, backoff_factor=BACKOFF,
                        status_forcelist=RETRY_STATUSES, raise_on_status=False, respect_retry_after_header=True)


def new_session() -> requests.Session:
    """A session whose connections a watchdog can cut off, retrying with ``retry_policy``."""
    session = requests.Session()
    session.mount("http://", _WatchedAdapter(max_retries=retry_policy()))
    session.mount("https://", _WatchedAdapter(max_retries=retry_policy()))
    # identity: the .gz bytes as stored, so Content-Length matches what we count
    session.headers.update({"User-Agent": "nnscratch", "Accept-Encoding": "identity"})
    return session


# -- one GET into a file ----------------------------------------------------------------------------
def _short(error: Exception) -> str:
    """The useful part of a requests/urllib3 error ("Connection refused", not the whole repr chain)."""
    text = str(error)
    found = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    if found:
        return found.group(1).strip()
    return text if len(text) <= 160 else text[:160] + "..."


def watchdog_failure(watchdog: Watchdog, total=None) -> FetchError:
    """Why the watchdog ended the transfer, with the bytes received, as a FetchError."""
    got = f"{watchdog.total}{'' if total is None else f' of {total}'} bytes received"
    if watchdog.reason == "speed":
        count, seconds = watchdog.window()
        return FetchError(f"too slow: {count} bytes in the last {seconds:.1f} s, under {watchdog.speed_limit:g} "
                          f"bytes/s ({got})", unreachable=True)
    return FetchError(f"gave up after the {watchdog.seconds:g} s deadline for one file, {got} (set "
                      "NNSCRATCH_DOWNLOAD_DEADLINE or --deadline for a slow link)", unreachable=True)


def stream_to(session, url: str, path, watchdog: Watchdog, max_bytes: int, progress: bool = True,
              label: str = "") -> None:
    """GET ``url`` into the file ``path`` within ``watchdog``'s bounds, at most ``max_bytes``.

    Raises ``FetchError`` when the mirror cannot deliver (``BodyLost`` when the body was cut short,
    worth another try). An ``OSError`` writing ``path`` (a full disk) is this machine's failure, not
    the mirror's, and goes up as it is.
    """
    if watchdog.expired or not watchdog.remaining():
        raise watchdog_failure(watchdog)
    timeout = tuple(max(0.001, min(limit, watchdog.remaining())) for limit in TIMEOUT)
    try:
        response = session.get(url, stream=True, timeout=timeout)
    except requests.RequestException as error:
        if watchdog.expired:
            raise watchdog_failure(watchdog) from None
        if isinstance(error, requests.ConnectTimeout):
            raise FetchError(f"cannot connect: no answer within {timeout[0]:g} s", unreachable=True) from None
        if isinstance(error, requests.ReadTimeout):
            raise FetchError(f"no response within {timeout[1]:g} s", unreachable=True) from None
        if isinstance(error, requests.ConnectionError):
            raise FetchError(f"cannot connect ({_short(error)}) ({RETRIES + 1} attempts)", unreachable=True) from None
        raise FetchError(f"request failed ({_short(error)})") from None
    with response:
        retries = getattr(response.raw, "retries", None)
        attempts = 1 + len(retries.history) if retries is not None else 1
        if response.status_code != 200:
            tried = f" ({attempts} attempts)" if attempts > 1 else ""
            raise FetchError(f"HTTP {response.status_code} {response.reason or ''}".strip() + tried)
        length = response.headers.get("Content-Length", "")
        total = int(length) if length.isdigit() and "Content-Encoding" not in response.headers else None
        if total is not None and total > max_bytes:
            raise FetchError(f"server announces {total} bytes, more than the expected file may have ({max_bytes >> 20} MiB)")
        _copy_body(response, path, watchdog, max_bytes, total, progress, label, timeout[1])


def _copy_body(response, path, watchdog: Watchdog, max_bytes: int, total, progress: bool, label: str,
               silence: float) -> None:
    # The same shape as download.install_verified's loop (read, count, bound, write), deliberately
    # apart: a socket's read fails in other ways than a gzip stream's, each with its own reason.
    received = 0
    of = f" of {total}" if total is not None else ""
    with open(path, "wb") as f, tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=label,
                                     disable=not progress) as bar:  # fmt: skip
        while True:
            try:
                # read1: whatever one read of the socket gives, so every byte that arrived is
                # counted (and written) even when the next read fails
                chunk = response.raw.read1(1 << 16)
            except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as error:
                if watchdog.expired:
                    raise watchdog_failure(watchdog, total) from None
                if isinstance(error, (ReadTimeoutError, TimeoutError, socket.timeout)):
                    # a stall: the next attempt would wait as long again, so on to the next mirror
                    raise FetchError(f"stalled: no data for {silence:g} s after {received}{of} bytes",
                                     unreachable=True) from None
                raise BodyLost(f"connection lost after {received}{of} bytes ({_short(error)})",
                               urllib3.exceptions.ProtocolError(str(error))) from None
            watchdog.received(len(chunk))
            if watchdog.expired:
                raise watchdog_failure(watchdog, total)
            if not chunk:
                break
            received += len(chunk)
            if received > max_bytes:
                raise FetchError(f"more than {max_bytes >> 20} MiB received, not the expected file")
            f.write(chunk)
            bar.update(len(chunk))
    if total is not None and received != total:
        raise BodyLost(f"transfer truncated: {received}{of} bytes", urllib3.exceptions.ProtocolError("truncated"))
