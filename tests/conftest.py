"""Shared fixtures: loopback HTTP servers (with injectable faults), the real MNIST files as a
loopback mirror, small synthetic MNIST, and a guard that fails any test reaching beyond loopback.

- ``http_server(directory, faults=None, trickle_interval=...)`` -> URL of a threaded server on
  127.0.0.1 (a ``str`` with ``.requests``, the paths asked for in order, ``.directory`` and
  ``.stop()``). ``faults`` maps a file name to a fault for every request (``503``; ``429`` with
  Retry-After 0, ``"429:N"`` with Retry-After N; ``"truncate"``; ``"stall"``; ``"stall-midway"``:
  half the file then silence; ``"trickle"``: one byte every ``trickle_interval`` s,
  ``TRICKLE_INTERVAL`` unless given; ``"slow-headers"``: the status line, then header bytes at that
  pace), or to a list of faults for the first requests, after which the file is served normally.
  ``.sent`` counts the body bytes sent per file.
- ``dead_url``: a loopback URL whose port is closed.
- ``sleeps``: the list of waits urllib3's ``Retry`` made, instead of making them.
- ``mnist_mirror``: URL serving ``../shared/data/mnist`` or ``$NNSCRATCH_TEST_MNIST`` (skips when absent).
- ``text_mirror``: URL serving ``../shared/data/text`` (tiny shakespeare, names.txt) or
  ``$NNSCRATCH_TEST_TEXT`` (skips when tiny shakespeare is absent).
- ``synthetic_mnist``: 600 train / 100 test learnable 28x28 images served as MNIST ``.gz`` files,
  with ``nnscratch.data.mnist.SHA256`` patched to their hashes; see ``SyntheticMNIST``.
- ``full_disk(name, after=0)``: writes of the file ``name`` through ``atomic_file`` fail with ENOSPC
  from the (after+1)-th on.
- ``umask(mask)``: sets the process umask for the rest of the test; the old one is restored after.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import ipaddress
import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from nnscratch.data import mnist as mnist_module
from nnscratch.data.idx import write_idx

# The real MNIST files beside the checkout; $NNSCRATCH_TEST_MNIST names another folder (a git worktree
# elsewhere, a CI cache).
SHARED_MNIST = Path(
    os.environ.get("NNSCRATCH_TEST_MNIST") or Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
)
SHARED_TEXT = Path(
    os.environ.get("NNSCRATCH_TEST_TEXT") or Path(__file__).resolve().parents[2] / "shared" / "data" / "text"
)
MNIST_GZ = [f"{name}.gz" for name in mnist_module.FILES]
TRICKLE_INTERVAL = 0.02  # seconds between the bytes of the "trickle" and "slow-headers" faults


# -- file permissions ---------------------------------------------------------------------------
@pytest.fixture
def umask():
    """``umask(0o027)`` sets the process umask for the rest of the test; the old one comes back after."""
    original = os.umask(0o022)
    os.umask(original)
    yield os.umask
    os.umask(original)


# -- no network beyond loopback -----------------------------------------------------------------
def _is_loopback(host) -> bool:
    if isinstance(host, bytes):
        host = host.decode()
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False  # a host name: resolving it is already network access


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch):
    """Fail the test if anything in it tries to resolve or connect to a non-loopback address."""
    blocked = []
    real_getaddrinfo, real_connect = socket.getaddrinfo, socket.socket.connect

    def getaddrinfo(host, *args, **kwargs):
        if host is not None and not _is_loopback(host):
            blocked.append(str(host))
            raise OSError(f"tests/conftest.py blocks network access to {host!r} (loopback only)")
        return real_getaddrinfo(host, *args, **kwargs)

    def connect(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
            blocked.append(str(address[0]))
            raise OSError(f"tests/conftest.py blocks network access to {address[0]!r} (loopback only)")
        return real_connect(sock, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    yield
    if blocked:
        pytest.fail(f"the test tried to reach non-loopback addresses: {sorted(set(blocked))}")


# -- loopback HTTP servers ----------------------------------------------------------------------
class ServerURL(str):
    """The base URL (with trailing slash) of a running test server, plus its request log."""

    requests: list
    stop: callable


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves a directory quietly, records each request and applies the configured faults."""

    def log_message(self, format, *args):  # keep test output clean
        pass

    def do_GET(self):
        name = self.path.lstrip("/").split("?")[0]
        with self.server.lock:
            self.server.requests.append(self.path)
            fault = self.server.faults.get(name)
            if isinstance(fault, list):
                fault = fault.pop(0) if fault else None
        if fault is None:
            return super().do_GET()
        if isinstance(fault, str) and fault.startswith("429:"):  # "429:N": Retry-After N seconds
            fault, retry_after = 429, fault[4:]
        else:
            retry_after = "0"
        if isinstance(fault, int):
            self.send_response(fault)
            if fault == 429:
                self.send_header("Retry-After", retry_after)
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif fault == "truncate":
            # announce the whole file, send half, hang up: a connection lost mid-file
            data = (Path(self.directory) / name).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
        elif fault == "stall":
            self.server.stopping.wait(30)  # accept, then never answer
        elif fault in ("stall-midway", "trickle"):
            data = (Path(self.directory) / name).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if fault == "stall-midway":
                self._send(name, data[: len(data) // 2])
                self.server.stopping.wait(30)
            else:
                for index in range(len(data)):
                    if self.server.stopping.wait(self.server.trickle_interval) or not self._send(name, data[index : index + 1]):
                        break
        elif fault == "slow-headers":
            self.wfile.write(b"HTTP/1.1 200 OK\r\n")
            for byte in b"X-Padding: " + b"x" * 100_000:
                if self.server.stopping.wait(self.server.trickle_interval):
                    break
                try:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                except OSError:  # the client gave up
                    break
        else:
            raise ValueError(f"http_server: unknown fault {fault!r} for {name}")


    def _send(self, name: str, data: bytes) -> bool:
        """Send body bytes now and count them in ``server.sent``; False once the client is gone."""
        try:
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:
            self.close_connection = True
            return False
        with self.server.lock:
            self.server.sent[name] = self.server.sent.get(name, 0) + len(data)
        return True


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):  # clients hanging up are part of the tests
        pass


@pytest.fixture
def http_server():
    """Factory: ``http_server(directory, faults=None, trickle_interval=...) -> URL``; every server stops
    after the test."""
    servers = []

    def serve(directory, faults=None, trickle_interval=TRICKLE_INTERVAL) -> ServerURL:
        handler = functools.partial(_Handler, directory=str(directory))
        server = _Server(("127.0.0.1", 0), handler)
        server.requests, server.lock, server.stopping, server.sent = [], threading.Lock(), threading.Event(), {}
        server.trickle_interval = trickle_interval
        server.faults = {name: list(f) if isinstance(f, list) else f for name, f in (faults or {}).items()}
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        stopped = []

        def stop():
            if not stopped:
                stopped.append(True)
                server.stopping.set()
                server.shutdown()
                server.server_close()
                thread.join(5)

        url = ServerURL(f"http://127.0.0.1:{server.server_address[1]}/")
        url.requests, url.stop, url.sent, url.directory = server.requests, stop, server.sent, Path(directory)
        servers.append(stop)
        return url

    yield serve
    for stop in servers:
        stop()


@pytest.fixture
def sleeps(monkeypatch):
    """Record the waits of urllib3's ``Retry`` (backoff, Retry-After) instead of sleeping through them."""
    import types

    import urllib3.util.retry

    waits = []
    monkeypatch.setattr(urllib3.util.retry, "time", types.SimpleNamespace(sleep=waits.append))
    return waits


@pytest.fixture
def dead_url():
    """A loopback base URL on a port nobody listens on (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@pytest.fixture
def mnist_mirror(http_server):
    """URL of a loopback mirror of the real MNIST files in ``../shared/data/mnist``."""
    missing = [name for name in MNIST_GZ if not (SHARED_MNIST / name).is_file()]
    if missing:
        pytest.skip(f"real MNIST files not found in {SHARED_MNIST} (missing {', '.join(missing)})")
    return http_server(SHARED_MNIST)


@pytest.fixture
def text_mirror(http_server):
    """URL of a loopback mirror of the text corpora in ``../shared/data/text``."""
    if not (SHARED_TEXT / "tinyshakespeare.txt").is_file():
        pytest.skip(f"tiny shakespeare not found in {SHARED_TEXT}")
    return http_server(SHARED_TEXT)


# -- synthetic MNIST ----------------------------------------------------------------------------
def make_synthetic_mnist(n_train=600, n_test=100, seed=0):
    """Learnable MNIST look-alikes: noise plus a bright 6x6 square whose place encodes the class.

    Class k puts its square in cell (k // 5, k % 5) of a 2x5 grid, jittered by up to 1 pixel.

    Shape:
        x (n, 28, 28) uint8, y (n,) uint8 with every class present (n >= 10).
    """
    rng = np.random.default_rng(seed)

    def make(n):
        y = rng.permutation(np.arange(n) % 10).astype(np.uint8)
        x = rng.integers(0, 40, size=(n, 28, 28), dtype=np.uint8)
        for i, k in enumerate(y):
            top = 14 * (k // 5) + 4 + rng.integers(-1, 2)
            left = 5 * (k % 5) + 1 + rng.integers(-1, 2)
            x[i, top : top + 6, left : left + 6] = rng.integers(180, 256, size=(6, 6))
        return x, y

    x_train, y_train = make(n_train)
    x_test, y_test = make(n_test)
    return x_train, y_train, x_test, y_test


@dataclass
class SyntheticMNIST:
    """What ``synthetic_mnist`` made: ``url`` (its mirror), ``directory`` (the served .gz files),
    ``data_dir`` (a path for the cache, not yet created), the arrays (labels uint8 as stored) and
    ``sha256`` (the patched hashes of the decompressed files)."""

    url: ServerURL
    directory: Path
    data_dir: Path
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    sha256: dict


@pytest.fixture
def synthetic_mnist(tmp_path, http_server, monkeypatch):
    """Synthetic MNIST ``.gz`` files on a loopback mirror, with ``SHA256`` patched to match."""
    directory = tmp_path / "mirror"
    directory.mkdir()
    x_train, y_train, x_test, y_test = make_synthetic_mnist()
    contents = {
        "train-images-idx3-ubyte": x_train,
        "train-labels-idx1-ubyte": y_train,
        "t10k-images-idx3-ubyte": x_test,
        "t10k-labels-idx1-ubyte": y_test,
    }
    sha256 = {}
    for name, array in contents.items():
        path = write_idx(directory / f"{name}.gz", array)
        sha256[name] = hashlib.sha256(gzip.decompress(path.read_bytes())).hexdigest()
        # setitem, not setattr: every holder of the dict (nnscratch.data.SHA256 too) sees the change
        monkeypatch.setitem(mnist_module.SHA256, name, sha256[name])
    data_dir = tmp_path / "cache"
    return SyntheticMNIST(
        url=http_server(directory),
        directory=directory,
        data_dir=data_dir,
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        sha256=sha256,
    )


@pytest.fixture
def full_disk(monkeypatch):
    """``full_disk(name, after=0)``: writing a file named ``name`` fails with ENOSPC from its
    (after+1)-th write on, at the fsync that makes it durable, as a full file system fails."""
    import errno

    import nnscratch.atomic_file as atomic_file

    real_fsync, writes, limits = os.fsync, {}, {}

    def fsync(fd):
        target = os.readlink(f"/proc/self/fd/{fd}") if os.path.exists(f"/proc/self/fd/{fd}") else ""
        for name, after in limits.items():
            if f"/.{name}." in target:  # atomic_write's temporary .NAME.<random>.part
                writes[name] = writes.get(name, 0) + 1
                if writes[name] > after:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(fd)

    def install(name, after=0):
        if not os.path.exists("/proc/self/fd"):
            pytest.skip("needs /proc/self/fd to tell the files apart")
        limits[name] = after
        monkeypatch.setattr(atomic_file.os, "fsync", fsync)
        return writes

    return install


# -- real file-system conditions: a full disk, a read-only folder ---------------------------------
@pytest.fixture
def small_filesystem(tmp_path):
    """``small_filesystem(full=False, read_only=False)`` -> a directory on a new 64 KiB tmpfs (needs
    root, else the test skips): ``full`` fills it up, so that writing a file fails with ENOSPC as on
    a full disk; ``read_only`` remounts it read-only (root bypasses file permissions, not that).
    Unmounted after the test."""
    import errno
    import subprocess

    mounted = []

    def make(full=False, read_only=False) -> Path:
        directory = tmp_path / f"fs{len(mounted)}"
        directory.mkdir()
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(directory)],
                                capture_output=True, text=True)
        if result.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here (root needed): {result.stderr.strip()}")
        mounted.append(directory)
        if full:
            fd = os.open(directory / "filler", os.O_WRONLY | os.O_CREAT)
            try:
                while os.write(fd, b"\0" * 4096):
                    pass
            except OSError as error:
                assert error.errno == errno.ENOSPC
            finally:
                os.close(fd)
        if read_only:
            subprocess.run(["mount", "-o", "remount,ro", str(directory)], check=True)
        return directory

    yield make
    for directory in reversed(mounted):
        subprocess.run(["umount", str(directory)], check=False)
