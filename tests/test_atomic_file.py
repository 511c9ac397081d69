"""atomic_write and scratch_file: replaced whole or not at all, no temporary left behind, the umask's
permissions, and stale leftovers of killed writes removed while live ones are kept."""

from __future__ import annotations

import contextlib
import os
import re
import stat

import pytest

from nnscratch import atomic_file
from nnscratch.atomic_file import STALE_AFTER, atomic_write, current_umask, remove_stale_temporaries, scratch_file
from helpers.aged_files import aged, near_misses


def listing(directory):
    """Every entry of the directory, hidden temporary files included."""
    return sorted(os.listdir(directory))


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


# -- whole or not at all -----------------------------------------------------------------------------
def test_success_replaces_the_target_only_at_the_end_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    with atomic_write(path) as f:
        f.write(b"new ")
        temporary = [name for name in listing(tmp_path) if name != "out.bin"]
        # beside the target, so os.replace is a rename within one file system
        assert len(temporary) == 1 and re.fullmatch(r"\.out\.bin\.[a-z0-9_]{8}\.part", temporary[0])
        f.write(b"content")
        assert path.read_bytes() == b"old"  # readers see the old file while the new one is written
    assert path.read_bytes() == b"new content"
    assert listing(tmp_path) == ["out.bin"]


def test_a_new_target_is_created_and_str_paths_work(tmp_path):
    with atomic_write(str(tmp_path / "new.bin")) as f:
        f.write(b"data")
    assert (tmp_path / "new.bin").read_bytes() == b"data" and listing(tmp_path) == ["new.bin"]


def test_the_file_is_fsynced_before_the_replace_and_its_directory_after(tmp_path, monkeypatch):
    events, real_fsync, real_replace = [], os.fsync, os.replace

    def fsync(fd):
        synced = os.fstat(fd)
        is_directory = stat.S_ISDIR(synced.st_mode) and synced.st_ino == os.stat(tmp_path).st_ino
        events.append("fsync directory" if is_directory else "fsync file")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", lambda a, b: events.append("replace") or real_replace(a, b))
    with atomic_write(tmp_path / "out.bin") as f:
        f.write(b"data")
    assert events == ["fsync file", "replace", "fsync directory"]


def test_a_directory_that_cannot_be_synced_does_not_fail_the_write(tmp_path, monkeypatch):
    real_fsync = os.fsync

    def fsync(fd):
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(22, "Invalid argument")  # as some file systems answer for directories
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with atomic_write(tmp_path / "out.bin") as f:
        f.write(b"data")
    assert (tmp_path / "out.bin").read_bytes() == b"data" and listing(tmp_path) == ["out.bin"]


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_an_exception_leaves_the_old_target_untouched_and_no_temporary(tmp_path, error):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    os.chmod(path, 0o640)
    before = os.stat(path)
    with pytest.raises(type(error)):
        with atomic_write(path) as f:
            f.write(b"half of the new")
            raise error
    assert path.read_bytes() == b"old" and mode(path) == 0o640 and os.stat(path).st_ino == before.st_ino
    assert listing(tmp_path) == ["out.bin"]


def test_an_exception_with_no_old_target_leaves_nothing(tmp_path):
    with pytest.raises(ValueError, match="bad data"):
        with atomic_write(tmp_path / "out.bin"):
            raise ValueError("bad data")
    assert listing(tmp_path) == []


def test_a_failing_replace_deletes_the_temporary_and_raises_its_error(tmp_path):
    target = tmp_path / "a-directory"
    target.mkdir()
    (target / "inside").write_bytes(b"x")  # os.replace cannot put a file over a non-empty directory
    with pytest.raises(OSError):
        with atomic_write(target) as f:
            f.write(b"data")
    assert listing(tmp_path) == ["a-directory"] and listing(target) == ["inside"]


# -- permissions -------------------------------------------------------------------------------------
@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664), (0o077, 0o600)])
def test_the_file_gets_the_permissions_the_umask_gives_a_new_file(tmp_path, umask, mask, expected):
    umask(mask)
    path = tmp_path / "out.bin"
    with atomic_write(path) as f:
        f.write(b"data")
    assert mode(path) == expected
    # the same as a plain open() would give, not mkstemp's 0o600
    with open(tmp_path / "plain.bin", "wb"):
        pass
    assert mode(path) == mode(tmp_path / "plain.bin")


def test_current_umask_reads_proc_and_falls_back_to_os_umask(tmp_path, umask, monkeypatch):
    umask(0o027)
    assert current_umask() == 0o027
    monkeypatch.setattr(atomic_file, "_PROC_STATUS", str(tmp_path / "no-such-file"))
    assert current_umask() == 0o027
    assert os.umask(0o027) == 0o027  # the fallback put the umask back


# -- leftovers of killed writes ----------------------------------------------------------------------
def test_stale_leftovers_are_removed_fresh_and_foreign_ones_kept(tmp_path):
    hour = STALE_AFTER
    path = tmp_path / "out.bin"
    stale = [aged(tmp_path / ".out.bin.x7k_2q9a.part", 2 * hour), aged(tmp_path / ".out.bin.0abc1def.part", 30 * 24 * hour)]
    kept = {
        aged(tmp_path / ".out.bin.fr3sh0ne.part", hour - 60, b"another process writing it now"),
        *near_misses(tmp_path, "out.bin", "part", 2 * hour, other_suffix="download"),
    }
    with atomic_write(path) as f:
        f.write(b"data")
    assert not any(p.exists() for p in stale)
    assert listing(tmp_path) == sorted(["out.bin", *(p.name for p in kept)])


def test_remove_stale_temporaries_takes_suffixes_and_an_age_and_never_raises(tmp_path):
    dest = tmp_path / "file"
    part = aged(tmp_path / ".file.abcd1234.part", 120)
    transfer = aged(tmp_path / ".file.abcd1234.download", 120)
    remove_stale_temporaries(dest, max_age=60)  # atomic_write's suffix only, by default
    assert not part.exists() and transfer.exists()
    remove_stale_temporaries(dest, max_age=300, suffixes=("download",))
    assert transfer.exists()
    remove_stale_temporaries(dest, max_age=60, suffixes=("download",))
    assert listing(tmp_path) == []
    remove_stale_temporaries(tmp_path / "missing-dir" / "file")  # nothing to list: no error


# -- scratch files -----------------------------------------------------------------------------------
@pytest.mark.parametrize("fail", [False, True])
def test_a_scratch_file_is_named_beside_its_target_and_always_deleted(tmp_path, fail):
    with pytest.raises(RuntimeError) if fail else contextlib.nullcontext():
        with scratch_file(tmp_path / "data.gz", "download") as tmp:
            assert tmp.parent == tmp_path and re.fullmatch(r"\.data\.gz\.[a-z0-9_]{8}\.download", tmp.name)
            assert tmp.read_bytes() == b""
            tmp.write_bytes(b"being checked")
            if fail:
                raise RuntimeError("transfer failed")
    assert listing(tmp_path) == []


# -- only a regular file is ever replaced --------------------------------------------------------------
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_fifo_a_device_or_a_directory_is_refused_before_anything_is_written(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    os.symlink(os.devnull, tmp_path / "null")
    (tmp_path / "dir").mkdir()
    for name, kind in (("fifo", "FIFO"), ("null", "character device"), ("dir", "directory")):
        with pytest.raises(atomic_file.NotRegularFileError) as caught:
            with atomic_write(tmp_path / name) as f:
                f.write(b"data")
        assert isinstance(caught.value, OSError) and caught.value.filename == str(tmp_path / name)
        assert caught.value.strerror == f"not a regular file but a {kind}, which is never replaced by one"
    assert stat.S_ISFIFO(os.lstat(tmp_path / "fifo").st_mode) and os.readlink(tmp_path / "null") == os.devnull
    assert listing(tmp_path) == ["dir", "fifo", "null"]


def test_a_symlink_to_a_regular_file_is_replaced_itself_the_file_it_names_kept(tmp_path):
    (tmp_path / "real").write_bytes(b"real")
    os.symlink(tmp_path / "real", tmp_path / "link")
    with atomic_write(tmp_path / "link") as f:
        f.write(b"new")
    assert not os.path.islink(tmp_path / "link") and (tmp_path / "link").read_bytes() == b"new"
    assert (tmp_path / "real").read_bytes() == b"real"


def test_file_kind_names_each_kind():
    assert [atomic_file.file_kind(m) for m in (stat.S_IFREG, stat.S_IFDIR, stat.S_IFIFO, stat.S_IFCHR,
                                              stat.S_IFBLK, stat.S_IFSOCK, stat.S_IFLNK)] == [
        "regular file", "directory", "FIFO", "character device", "block device", "socket", "symbolic link"]
