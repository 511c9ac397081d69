"""The mirror policy: dead and altered mirrors, fall-over to the next mirror, the final message, the
deadline's bounds, and nothing unverified left on disk. (Retries, timeouts, the deadline and the
speed rule of one transfer: test_http.py.)"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import stat
import time

import numpy as np
import pytest

from nnscratch.data import MNISTDownloadError, download_mnist, load_mnist, write_idx
from nnscratch.data import download as download_module
from helpers.aged_files import aged, near_misses, snapshot

FILES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
GZ = [f"{name}.gz" for name in FILES]


def listing(directory):
    """Every entry of the directory, hidden temporary files included."""
    return sorted(os.listdir(directory)) if directory.exists() else []


def copy_with(synthetic, tmp_path, name, content: bytes):
    """A copy of the synthetic mirror's directory with one file's bytes replaced."""
    directory = tmp_path / f"mirror-{len(listing(tmp_path))}"
    shutil.copytree(synthetic.directory, directory)
    (directory / name).write_bytes(content)
    return directory


def load_and_check(synthetic, mirrors):
    arrays = load_mnist(synthetic.data_dir, mirrors=mirrors, progress=False)
    for got, want in zip(arrays, [synthetic.x_train, synthetic.y_train, synthetic.x_test, synthetic.y_test]):
        np.testing.assert_array_equal(got, want)


# -- dead and stalled mirrors ----------------------------------------------------------------------
def test_dead_mirror_fails_fast_with_the_whole_story(dead_url, tmp_path):
    root = tmp_path / "mnist"
    start = time.perf_counter()
    with pytest.raises(MNISTDownloadError) as caught:
        download_mnist(root, mirrors=[dead_url], progress=False)
    elapsed = time.perf_counter() - start
    error = caught.value
    assert isinstance(error, RuntimeError)
    assert elapsed < 3.0, f"a closed port took {elapsed:.1f} s to give up on"
    assert error.missing == GZ
    assert error.failures[0] == (dead_url, GZ[0], "cannot connect (Connection refused) (3 attempts)")
    assert [f[2] for f in error.failures[1:]] == ["skipped: unreachable for an earlier file"] * 3
    message = str(error)
    assert message.startswith(f"Could not download MNIST into {root}: no mirror delivered {', '.join(GZ)}.")
    assert f"{dead_url}{GZ[0]}: cannot connect (Connection refused)" in message
    assert "nnscratch download-mnist --mirror URL" in message and "NNSCRATCH_MNIST_MIRROR" in message
    assert f"put them in {root} (gzipped .gz or decompressed): {', '.join(GZ)}" in message
    assert message.count(dead_url) == 1  # the skipped files are one note, not one line each
    assert "not tried again for the later files" in message
    assert listing(root) == []


def test_falls_over_from_a_dead_mirror_to_the_next(dead_url, synthetic_mnist):
    start = time.perf_counter()
    load_and_check(synthetic_mnist, [dead_url, synthetic_mnist.url])
    assert time.perf_counter() - start < 3.0
    assert sorted(synthetic_mnist.url.requests) == sorted(f"/{gz}" for gz in GZ)
    assert listing(synthetic_mnist.data_dir) == sorted(FILES)


# -- bad content -------------------------------------------------------------------------------------
def test_altered_content_is_rejected_and_the_next_mirror_used(synthetic_mnist, http_server, tmp_path, sleeps):
    labels = synthetic_mnist.y_train.copy()
    labels[0] = (labels[0] + 1) % 10  # still a valid IDX file and valid gzip: only the hash can tell
    write_idx(tmp_path / "altered.gz", labels)
    altered = http_server(copy_with(synthetic_mnist, tmp_path, GZ[1], (tmp_path / "altered.gz").read_bytes()))
    with pytest.raises(MNISTDownloadError) as caught:
        download_mnist(synthetic_mnist.data_dir, mirrors=[altered], progress=False)
    served = hashlib.sha256(gzip.decompress((tmp_path / "altered.gz").read_bytes())).hexdigest()
    reason = (f"content is altered or truncated: SHA-256 of the 608 decompressed bytes is {served[:16]}..., "
              f"expected {synthetic_mnist.sha256[FILES[1]][:16]}...")
    assert caught.value.failures == [(altered, GZ[1], reason)]
    assert altered.requests.count(f"/{GZ[1]}") == 1 and sleeps == []  # content errors are not retried
    assert listing(synthetic_mnist.data_dir) == sorted(FILES[:1] + FILES[2:])
    load_and_check(synthetic_mnist, [altered, synthetic_mnist.url])
    assert synthetic_mnist.url.requests == [f"/{GZ[1]}"]


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"\x1f\x8b\x08\x00" + b"garbage" * 10, "not valid gzip"),
        (b"<html>Moved</html>", "content is altered or truncated"),  # not gzip: taken as raw IDX, hash fails
        (None, "content is altered or truncated"),  # a gzip cut short, served with a consistent length
    ],
)
def test_broken_archives_are_rejected(synthetic_mnist, http_server, tmp_path, content, reason):
    if content is None:
        content = (synthetic_mnist.directory / GZ[2]).read_bytes()[:-20]
        reason = "not valid gzip"
    bad = http_server(copy_with(synthetic_mnist, tmp_path, GZ[2], content))
    with pytest.raises(MNISTDownloadError, match=rf"{GZ[2]}: {reason}"):
        download_mnist(synthetic_mnist.data_dir, mirrors=[bad], progress=False)
    assert listing(synthetic_mnist.data_dir) == sorted(FILES[:2] + FILES[3:])


def test_a_mirror_serving_uncompressed_files_is_fine(synthetic_mnist, http_server, tmp_path):
    raw = gzip.decompress((synthetic_mnist.directory / GZ[0]).read_bytes())
    plain = http_server(copy_with(synthetic_mnist, tmp_path, GZ[0], raw))
    load_and_check(synthetic_mnist, [plain])


def test_oversized_content_is_refused_before_it_fills_the_disk(synthetic_mnist, monkeypatch):
    monkeypatch.setattr(download_module, "MAX_BYTES", 1000)
    with pytest.raises(MNISTDownloadError, match=rf"{GZ[0]}: server announces \d+ bytes, more than the expected file may have"):
        download_mnist(synthetic_mnist.data_dir, mirrors=[synthetic_mnist.url], progress=False)


def test_failed_forced_download_keeps_the_good_cache(synthetic_mnist, dead_url):
    load_and_check(synthetic_mnist, [synthetic_mnist.url])
    before = {name: (synthetic_mnist.data_dir / name).read_bytes() for name in FILES}
    with pytest.raises(MNISTDownloadError):
        download_mnist(synthetic_mnist.data_dir, mirrors=[dead_url], force=True, progress=False)
    assert {name: (synthetic_mnist.data_dir / name).read_bytes() for name in FILES} == before
    assert listing(synthetic_mnist.data_dir) == sorted(FILES)


def test_downloaded_files_get_the_permissions_the_umask_gives_a_new_file(synthetic_mnist, umask):
    umask(0o027)  # the verified copy starts as a 0o600 temporary file; the installed file must not stay so
    load_and_check(synthetic_mnist, [synthetic_mnist.url])
    assert {name: stat.S_IMODE((synthetic_mnist.data_dir / name).stat().st_mode) for name in FILES} == dict.fromkeys(FILES, 0o640)


# -- leftovers of killed downloads -------------------------------------------------------------------


def test_stale_leftovers_of_killed_downloads_are_removed_by_the_next_download(synthetic_mnist):
    root = synthetic_mnist.data_dir
    root.mkdir()
    hour = download_module.STALE_AFTER
    stale = [
        aged(root / f".{FILES[0]}.x7k_2q9a.download", 2 * hour),  # killed while transferring
        aged(root / f".{FILES[1]}.0abc1def.part", hour + 60),  # killed while writing the verified copy
        aged(root / f".{FILES[2]}.zzzzzzzz.download", 30 * 24 * hour),
    ]
    kept = {
        # another process downloading into the same directory right now
        aged(root / f".{FILES[0]}.fr3sh0ne.download", hour - 60, b"in progress"),
        aged(root / f".{FILES[3]}.abcd1234.part", 5, b"in progress"),
        # not ours: other names, other shapes of name, a directory
        aged(root / "notes.txt", 2 * hour, b"mine"),
        aged(root / f".{FILES[0]}.download", 2 * hour, b"no random part"),
        *near_misses(root, FILES[0], "download", 2 * hour),
        aged(root / f".{FILES[1]}.abcd1234.part", 2 * hour, None),
    }
    before = snapshot(kept)

    load_and_check(synthetic_mnist, [synthetic_mnist.url])

    assert not any(path.exists() for path in stale)
    assert snapshot(kept) == before
    assert listing(root) == sorted(FILES + [path.name for path in kept])


def test_leftovers_stay_until_something_is_downloaded(synthetic_mnist):
    load_and_check(synthetic_mnist, [synthetic_mnist.url])
    leftover = aged(synthetic_mnist.data_dir / f".{FILES[0]}.x7k_2q9a.download", 2 * download_module.STALE_AFTER)
    load_and_check(synthetic_mnist, [synthetic_mnist.url])  # from the cache: no download, nothing touched
    assert leftover.exists() and synthetic_mnist.url.requests == [f"/{gz}" for gz in GZ]
    download_mnist(synthetic_mnist.data_dir, mirrors=[synthetic_mnist.url], force=True, progress=False)
    assert not leftover.exists()


def test_other_writers_remove_only_their_own_suffix(tmp_path):
    # train-mnist's --metrics and --plot write through .NAME.<random>.part and ask for that suffix only.
    hour = download_module.STALE_AFTER
    dest = tmp_path / "metrics.json"
    part = aged(tmp_path / ".metrics.json.abcd1234.part", 2 * hour)
    transfer = aged(tmp_path / ".metrics.json.abcd1234.download", 2 * hour)
    fresh = aged(tmp_path / ".metrics.json.fr3sh0ne.part", hour - 60)
    download_module.remove_stale_temporaries(dest, suffixes=("part",))
    assert not part.exists() and transfer.exists() and fresh.exists()
    download_module.remove_stale_temporaries(dest)  # a download's suffixes, both
    assert listing(tmp_path) == [fresh.name]


@pytest.mark.parametrize("error", [PermissionError(13, "Permission denied"), FileNotFoundError(2, "gone")])
def test_a_leftover_that_cannot_be_removed_does_not_stop_the_download(synthetic_mnist, monkeypatch, error):
    root = synthetic_mnist.data_dir
    root.mkdir()
    stuck = aged(root / f".{FILES[0]}.x7k_2q9a.download", 2 * download_module.STALE_AFTER)
    real_unlink, refused = os.unlink, []

    def unlink(path, *args, **kwargs):
        if os.fspath(path) == os.fspath(stuck):
            refused.append(path)
            raise error
        return real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", unlink)
    load_and_check(synthetic_mnist, [synthetic_mnist.url])
    assert refused and stuck.exists()
    assert listing(root) == sorted(FILES + [stuck.name])


def test_the_deadline_comes_from_the_argument_the_environment_or_the_default(monkeypatch):
    monkeypatch.delenv(download_module.DEADLINE_ENV, raising=False)
    assert download_module.resolve_deadline() == download_module.DEADLINE == 300.0
    monkeypatch.setenv(download_module.DEADLINE_ENV, "12.5")
    assert download_module.resolve_deadline() == 12.5
    assert download_module.resolve_deadline(3) == 3.0
    monkeypatch.setenv(download_module.DEADLINE_ENV, "soon")
    with pytest.raises(ValueError, match=r"\$NNSCRATCH_DOWNLOAD_DEADLINE: expected a number of seconds, got 'soon'"):
        download_module.resolve_deadline()
    for bad, error in ((0, ValueError), (-1, ValueError), (float("inf"), ValueError), ("5", TypeError), (True, TypeError)):
        with pytest.raises(error, match="deadline: expected a"):
            download_module.resolve_deadline(bad)


@pytest.mark.parametrize("value", [1e10, 86400.5, 0.0001, 0.09, float("nan"), 10**400, -0.0])
def test_a_deadline_out_of_range_is_one_clear_error(monkeypatch, value):
    # 1e10 used to kill the watchdog thread (beyond threading's TIMEOUT_MAX) and leave no deadline at
    # all; 0.0001 used to reach requests as "Invalid timeout (0.0, 0.0)"
    with pytest.raises(ValueError) as caught:
        download_module.resolve_deadline(value)
    assert str(caught.value) == ("deadline: expected a number of seconds from 0.1 to 86400 (a day), "
                                 f"got {value!r:.40}")
    monkeypatch.setenv(download_module.DEADLINE_ENV, str(value))
    with pytest.raises(ValueError, match=r"^\$NNSCRATCH_DOWNLOAD_DEADLINE: expected a number of seconds from 0\.1"):
        download_module.resolve_deadline()


def test_the_smallest_deadline_fails_cleanly_never_with_requests_own_message(synthetic_mnist, http_server):
    trickling = http_server(synthetic_mnist.directory, faults={gz: "trickle" for gz in GZ})
    with pytest.raises(MNISTDownloadError) as caught:
        download_mnist(synthetic_mnist.data_dir, mirrors=[trickling], progress=False, deadline=0.1)
    assert caught.value.failures[0][2].startswith("gave up after the 0.1 s deadline for one file, ")
    assert "Invalid timeout" not in str(caught.value)
