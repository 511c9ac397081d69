"""MNIST loading: configuration, download-verify-cache on synthetic data, the cache's checks, the
training helpers, and the real files through a loopback mirror."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import requests

import nnscratch.data as data
from nnscratch.data import (
    DEFAULT_MIRRORS,
    SHA256,
    IDXFormatError,
    MNISTCacheError,
    download_mnist,
    load_mnist,
    one_hot,
    read_idx,
    resolve_data_dir,
    resolve_mirrors,
    scale_images,
    write_idx,
)

FILES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


def forbid_network(monkeypatch):
    """Make any HTTP request through requests fail the test loudly."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"network used: {args[1:]!r}")

    monkeypatch.setattr(requests.Session, "request", refuse)


def assert_same_as_synthetic(arrays, synthetic):
    x_train, y_train, x_test, y_test = arrays
    np.testing.assert_array_equal(x_train, synthetic.x_train)
    np.testing.assert_array_equal(y_train, synthetic.y_train)
    np.testing.assert_array_equal(x_test, synthetic.x_test)
    np.testing.assert_array_equal(y_test, synthetic.y_test)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.int64


# -- configuration -------------------------------------------------------------------------------
def test_resolve_data_dir_argument_then_env_then_default(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NNSCRATCH_DATA_DIR", raising=False)
    assert resolve_data_dir() == tmp_path / "data" / "mnist"
    monkeypatch.setenv("NNSCRATCH_DATA_DIR", "  ")  # blank counts as unset
    assert resolve_data_dir() == tmp_path / "data" / "mnist"
    monkeypatch.setenv("NNSCRATCH_DATA_DIR", "from-env")
    assert resolve_data_dir() == tmp_path / "from-env"
    assert resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert resolve_data_dir("~/x") == Path.home() / "x"
    with pytest.raises(TypeError, match="data_dir: expected a path .* got int"):
        resolve_data_dir(3)


def test_resolve_mirrors_argument_then_env_then_builtin(monkeypatch):
    monkeypatch.delenv("NNSCRATCH_MNIST_MIRROR", raising=False)
    assert resolve_mirrors() == DEFAULT_MIRRORS
    monkeypatch.setenv("NNSCRATCH_MNIST_MIRROR", " http://a.test/m , https://b.test/n/,")
    assert resolve_mirrors() == ["http://a.test/m/", "https://b.test/n/"]
    assert resolve_mirrors(["http://c.test/x"]) == ["http://c.test/x/"]
    assert resolve_mirrors("http://d.test/") == ["http://d.test/"]
    with pytest.raises(ValueError, match="NNSCRATCH_MNIST_MIRROR: expected an http:// or https:// base URL, got 'ftp"):
        monkeypatch.setenv("NNSCRATCH_MNIST_MIRROR", "ftp://e.test/")
        resolve_mirrors()
    with pytest.raises(ValueError, match="mirrors: expected an http:// or https:// base URL, got 'e.test'"):
        resolve_mirrors(["e.test"])
    with pytest.raises(ValueError, match="at least one"):
        resolve_mirrors([])
    with pytest.raises(TypeError, match="got int 5"):
        resolve_mirrors([5])


def test_builtin_mirrors_are_https_with_the_original_site_last():
    assert len(DEFAULT_MIRRORS) >= 3
    assert all(m.startswith("https://") for m in DEFAULT_MIRRORS[:-1])
    assert "yann.lecun.com" in DEFAULT_MIRRORS[-1]
    assert not any("yann.lecun.com" in m for m in DEFAULT_MIRRORS[:-1])
    assert all(m.endswith("/") for m in DEFAULT_MIRRORS)


def test_pinned_hashes_are_the_ones_in_the_shared_readme():
    readme = Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist" / "README.md"
    if not readme.is_file():
        pytest.skip(f"{readme} not found")
    table = dict(re.findall(r"\|\s*([a-z0-9-]+-ubyte)\s*\|\s*\d+\s*\|\s*([0-9a-f]{64})\s*\|", readme.read_text()))
    assert table == SHA256
    assert list(SHA256) == FILES
    assert data.SHA256 is data.mnist.SHA256


# -- download, verify, cache, reuse --------------------------------------------------------------
def test_download_verifies_caches_and_reuses_without_network(synthetic_mnist, monkeypatch):
    root = synthetic_mnist.data_dir
    arrays = load_mnist(root, mirrors=[synthetic_mnist.url], progress=False)
    assert_same_as_synthetic(arrays, synthetic_mnist)
    assert sorted(synthetic_mnist.url.requests) == sorted(f"/{name}.gz" for name in FILES)
    # the cache is the decompressed IDX files, hashing to the pinned sums, and nothing else
    assert sorted(os.listdir(root)) == sorted(FILES)
    for name in FILES:
        assert hashlib.sha256((root / name).read_bytes()).hexdigest() == synthetic_mnist.sha256[name]
    # second run: server gone and requests disabled, still the same data
    synthetic_mnist.url.stop()
    forbid_network(monkeypatch)
    assert_same_as_synthetic(load_mnist(root, mirrors=[synthetic_mnist.url], progress=False), synthetic_mnist)
    assert download_mnist(root, mirrors=[synthetic_mnist.url], progress=False) == root
    assert len(synthetic_mnist.url.requests) == 4


def test_environment_variables_choose_dir_and_mirror(synthetic_mnist, monkeypatch):
    monkeypatch.setenv("NNSCRATCH_DATA_DIR", str(synthetic_mnist.data_dir))
    monkeypatch.setenv("NNSCRATCH_MNIST_MIRROR", synthetic_mnist.url)
    assert download_mnist(progress=False) == synthetic_mnist.data_dir
    assert_same_as_synthetic(load_mnist(progress=False), synthetic_mnist)


def test_progress_bar_counts_bytes_on_stderr(synthetic_mnist, capsys):
    download_mnist(synthetic_mnist.data_dir, mirrors=[synthetic_mnist.url], progress=True)
    err = capsys.readouterr().err
    size = (synthetic_mnist.directory / "t10k-labels-idx1-ubyte.gz").stat().st_size
    assert size < 1000  # so tqdm shows the plain byte count
    assert "train-images-idx3-ubyte" in err and "B/s" in err
    assert "t10k-labels-idx1-ubyte: 100%" in err and f"{size:.1f}/{size:.1f}" in err  # bytes of the .gz


def test_force_downloads_again(synthetic_mnist):
    download_mnist(synthetic_mnist.data_dir, mirrors=[synthetic_mnist.url], progress=False)
    download_mnist(synthetic_mnist.data_dir, mirrors=[synthetic_mnist.url], force=True, progress=False)
    assert len(synthetic_mnist.url.requests) == 8


def test_files_put_in_the_data_dir_by_hand_are_used_without_network(synthetic_mnist, monkeypatch):
    root = synthetic_mnist.data_dir
    shutil.copytree(synthetic_mnist.directory, root)
    forbid_network(monkeypatch)
    assert_same_as_synthetic(load_mnist(root, mirrors=[synthetic_mnist.url], progress=False), synthetic_mnist)
    # the user's archives stay, next to the verified cache
    assert sorted(os.listdir(root)) == sorted(FILES + [f"{name}.gz" for name in FILES])


def test_a_bad_hand_placed_archive_is_left_alone_and_downloaded_instead(synthetic_mnist):
    root = synthetic_mnist.data_dir
    root.mkdir()
    (root / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not gzip")
    assert_same_as_synthetic(load_mnist(root, mirrors=[synthetic_mnist.url], progress=False), synthetic_mnist)
    assert (root / "t10k-labels-idx1-ubyte.gz").read_bytes() == b"not gzip"
    assert "/t10k-labels-idx1-ubyte.gz" in synthetic_mnist.url.requests


# -- the cache is verified on load ----------------------------------------------------------------
def damage(path: Path, how: str):
    content = bytearray(path.read_bytes())
    if how == "truncate":
        path.write_bytes(bytes(content[: len(content) - 100]))
    else:
        content[len(content) // 2] ^= 0xFF
        path.write_bytes(bytes(content))


def test_damaged_cache_is_repaired_by_a_download(synthetic_mnist):
    root = synthetic_mnist.data_dir
    download_mnist(root, mirrors=[synthetic_mnist.url], progress=False)
    damage(root / "train-images-idx3-ubyte", "truncate")
    damage(root / "t10k-labels-idx1-ubyte", "flip")
    arrays = load_mnist(root, mirrors=[synthetic_mnist.url], progress=False)
    assert_same_as_synthetic(arrays, synthetic_mnist)
    assert synthetic_mnist.url.requests[4:] == ["/train-images-idx3-ubyte.gz", "/t10k-labels-idx1-ubyte.gz"]
    assert sorted(os.listdir(root)) == sorted(FILES)


@pytest.mark.parametrize("how", ["truncate", "flip"])
def test_bad_cache_without_download_names_the_file_and_the_fix(synthetic_mnist, how):
    root = synthetic_mnist.data_dir
    download_mnist(root, mirrors=[synthetic_mnist.url], progress=False)
    damage(root / "train-labels-idx1-ubyte", how)
    before = (root / "train-labels-idx1-ubyte").read_bytes()
    with pytest.raises(MNISTCacheError, match="train-labels-idx1-ubyte is altered or truncated") as caught:
        load_mnist(root, download=False)
    assert isinstance(caught.value, ValueError)
    assert f"nnscratch download-mnist --force --data-dir {root}" in str(caught.value)
    assert (root / "train-labels-idx1-ubyte").read_bytes() == before  # reported, not deleted
    assert len(synthetic_mnist.url.requests) == 4


def test_a_cache_file_replaced_by_an_empty_directory_is_fetched_again(synthetic_mnist):
    root = synthetic_mnist.data_dir
    download_mnist(root, mirrors=[synthetic_mnist.url], progress=False)
    path = root / "train-labels-idx1-ubyte"
    path.unlink()
    path.mkdir()
    with pytest.raises(MNISTCacheError, match=r"train-labels-idx1-ubyte is not a regular file\. Run `nnscratch"):
        load_mnist(root, download=False)
    arrays = load_mnist(root, mirrors=[synthetic_mnist.url], progress=False)
    assert_same_as_synthetic(arrays, synthetic_mnist)
    assert synthetic_mnist.url.requests[4:] == ["/train-labels-idx1-ubyte.gz"]
    assert path.is_file()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
@pytest.mark.parametrize("how", ["fifo", "symlink to a fifo"])
def test_a_fifo_where_a_cache_file_belongs_is_refused_not_read_nor_replaced(synthetic_mnist, tmp_path, how):
    root = synthetic_mnist.data_dir
    download_mnist(root, mirrors=[synthetic_mnist.url], progress=False)
    path = root / "train-labels-idx1-ubyte"
    path.unlink()
    fifo = tmp_path / "fifo" if how == "symlink to a fifo" else path
    os.mkfifo(fifo)
    if fifo != path:
        os.symlink(fifo, path)
    with pytest.raises(MNISTCacheError, match=r"train-labels-idx1-ubyte is not a regular file\. Run `nnscratch"):
        load_mnist(root, download=False)  # refused, not read (a FIFO would block)
    for force in (False, True):
        with pytest.raises(MNISTCacheError, match=re.escape(
                f"MNIST file {path} is not a regular file but a FIFO, which is never replaced by one; move it away")):
            download_mnist(root, mirrors=[synthetic_mnist.url], force=force, progress=False)
    assert stat.S_ISFIFO(os.stat(path).st_mode) and os.path.islink(path) == (fifo != path)
    assert synthetic_mnist.url.requests[4:] == []  # refused before any download


def test_a_directory_with_files_in_it_is_left_alone_and_named(synthetic_mnist):
    root = synthetic_mnist.data_dir
    download_mnist(root, mirrors=[synthetic_mnist.url], progress=False)
    path = root / "train-labels-idx1-ubyte"
    path.unlink()
    path.mkdir()
    (path / "notes.txt").write_text("mine")
    with pytest.raises(MNISTCacheError, match=r"train-labels-idx1-ubyte is a directory with files in it, not the MNIST file"):
        load_mnist(root, mirrors=[synthetic_mnist.url], progress=False)
    assert (path / "notes.txt").read_text() == "mine"


def test_an_oversized_cache_file_is_refused_without_reading_it(synthetic_mnist, monkeypatch):
    root = synthetic_mnist.data_dir
    download_mnist(root, mirrors=[synthetic_mnist.url], progress=False)
    monkeypatch.setattr(data.download, "MAX_BYTES", 10_000)  # the synthetic images are 470 kB
    with pytest.raises(MNISTCacheError, match=r"train-images-idx3-ubyte is 470416 bytes, far more than MNIST's"):
        load_mnist(root, download=False)


def test_missing_cache_without_download_says_how_to_fetch(tmp_path):
    with pytest.raises(MNISTCacheError, match=r"train-images-idx3-ubyte is missing\. Run `nnscratch download-mnist"):
        load_mnist(tmp_path / "empty", download=False)
    assert not (tmp_path / "empty").exists()


def serve_patched(synthetic, http_server, monkeypatch, **arrays):
    """Serve synthetic MNIST with some arrays replaced, and pin the hashes of what is served."""
    directory = synthetic.directory.parent / "patched"
    shutil.copytree(synthetic.directory, directory)
    for name, array in arrays.items():
        name = name.replace("_", "-")
        raw = write_idx(directory / name, array).read_bytes()
        write_idx(directory / f"{name}.gz", array)
        monkeypatch.setitem(SHA256, name, hashlib.sha256(raw).hexdigest())
    return http_server(directory)


def test_labels_outside_0_to_9_are_rejected(synthetic_mnist, http_server, monkeypatch):
    labels = synthetic_mnist.y_test.copy()
    labels[7] = 10
    url = serve_patched(synthetic_mnist, http_server, monkeypatch, t10k_labels_idx1_ubyte=labels)
    with pytest.raises(IDXFormatError, match="t10k-labels-idx1-ubyte .* labels must be 0-9, found 10"):
        load_mnist(synthetic_mnist.data_dir, mirrors=[url], progress=False)


def test_image_and_label_counts_must_match(synthetic_mnist, http_server, monkeypatch):
    url = serve_patched(synthetic_mnist, http_server, monkeypatch, train_labels_idx1_ubyte=synthetic_mnist.y_train[:-1])
    with pytest.raises(IDXFormatError, match="600 images but 599 labels"):
        load_mnist(synthetic_mnist.data_dir, mirrors=[url], progress=False)


def test_loaded_arrays_are_writable_and_independent(synthetic_mnist):
    x_train, y_train, _, _ = load_mnist(synthetic_mnist.data_dir, mirrors=[synthetic_mnist.url], progress=False)
    x_train[0, 0, 0] = 255  # in-place augmentation must not touch the cache
    y_train[0] = 3
    again = load_mnist(synthetic_mnist.data_dir, download=False)
    assert again[0][0, 0, 0] == synthetic_mnist.x_train[0, 0, 0]


# -- helpers for training -------------------------------------------------------------------------
def test_scale_images_matches_a_naive_loop():
    x = np.array([[0, 1, 127], [128, 254, 255]], dtype=np.uint8)
    scaled = scale_images(x)
    assert scaled.dtype == np.float32 and scaled.shape == (2, 3)
    for i in range(2):
        for j in range(3):
            assert scaled[i, j] == np.float32(int(x[i, j]) / 255.0)
    assert scaled.min() == 0.0 and scaled.max() == 1.0
    assert scale_images(x, dtype=np.float64)[1, 2] == 1.0
    with pytest.raises(TypeError, match="expected uint8 pixels 0-255, got an array of float32"):
        scale_images(scaled)
    with pytest.raises(TypeError, match="dtype must be a float type, got int32"):
        scale_images(x, dtype=np.int32)


def test_one_hot_matches_a_naive_loop():
    labels = np.array([3, 0, 9, 3], dtype=np.int64)
    encoded = one_hot(labels)
    assert encoded.shape == (4, 10) and encoded.dtype == np.float32
    for i, label in enumerate(labels):
        for k in range(10):
            assert encoded[i, k] == (1.0 if k == label else 0.0)
    assert one_hot(np.array([1], np.uint8), num_classes=2, dtype=np.float64).tolist() == [[0.0, 1.0]]
    assert one_hot(np.array([], np.int64)).shape == (0, 10)


@pytest.mark.parametrize(
    "labels, kwargs, error, match",
    [
        ([0, 10], {}, ValueError, r"labels must be in \[0, 10\), got values from 0 to 10"),
        ([-1, 2], {}, ValueError, "from -1 to 2"),
        ([0.0, 1.0], {}, TypeError, "labels must be integers, got an array of float64"),
        ([[0, 1]], {}, ValueError, r"1-D \(N,\), got shape \(1, 2\)"),
        ([0], {"num_classes": 0}, ValueError, "num_classes must be a positive int, got 0"),
        ([0], {"num_classes": True}, ValueError, "num_classes must be a positive int"),
    ],
)
def test_one_hot_errors(labels, kwargs, error, match):
    with pytest.raises(error, match=match):
        one_hot(np.array(labels), **kwargs)


# -- the real files --------------------------------------------------------------------------------
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]  # shared README
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
MNIST_BYTES = 47040016 + 60008 + 7840016 + 10008

MEASURE = """
import json, sys, time, tracemalloc
from nnscratch.data import load_mnist
tracemalloc.start()
start = time.perf_counter()
arrays = load_mnist(sys.argv[1], download=False)
seconds = [time.perf_counter() - start]
peak = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
del arrays
for _ in range(2):  # best of three: the time of the code, not of a busy machine
    start = time.perf_counter()
    arrays = load_mnist(sys.argv[1], download=False)
    seconds.append(time.perf_counter() - start)
print(json.dumps({"seconds": min(seconds), "peak": peak, "held": sum(a.nbytes for a in arrays)}))
"""


@pytest.mark.slow
def test_real_mnist_through_a_loopback_mirror(mnist_mirror, tmp_path, monkeypatch):
    root = tmp_path / "mnist"
    x_train, y_train, x_test, y_test = load_mnist(root, mirrors=[mnist_mirror], progress=False)
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert x_train.dtype == np.uint8 and y_train.shape == (60000,) and y_test.shape == (10000,)
    assert np.bincount(y_train).tolist() == TRAIN_COUNTS
    assert np.bincount(y_test).tolist() == TEST_COUNTS
    assert y_train[:3].tolist() == [5, 0, 4] and y_test[:3].tolist() == [7, 2, 1]  # the famous first digits
    assert x_train.max() == 255 and x_train.min() == 0
    np.testing.assert_array_equal(read_idx(root / "t10k-labels-idx1-ubyte"), y_test)
    # from the cache, in a fresh process: under a second, and at most ~2x the data in memory
    forbid_network(monkeypatch)
    out = subprocess.run([sys.executable, "-c", MEASURE, str(root)], capture_output=True, text=True, check=True)
    measured = json.loads(out.stdout)
    assert measured["held"] == 70000 * 28 * 28 + 70000 * 8  # uint8 images, int64 labels
    assert measured["peak"] < 2 * MNIST_BYTES, measured
    assert measured["seconds"] < 1.0, measured
