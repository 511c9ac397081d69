"""The bounded archive reader (nnscratch/io/archive.py): junk, truncated, compressed, oversized and
special files are refused with a ValueError naming the file, before anything large is allocated."""

import os
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nnscratch.io import load, load_checkpoint, save

from helpers.checkpoint_files import (header_for, linear_file, npy, npy_claiming, peak_of, perturb, small_net, write_zip,
                              zeros_after)


def test_junk_empty_and_truncated_files(tmp_path, checkpoint_path):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(os.urandom(500))
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    truncated = tmp_path / "truncated.npz"
    data = checkpoint_path.read_bytes()
    for path, content in ((junk, None), (empty, None), (truncated, data[: len(data) // 2])):
        if content is not None:
            path.write_bytes(content)
        with pytest.raises(ValueError, match=rf"{path.name}: not .*nnscratch checkpoint"):
            load(path)
    # every truncation point fails cleanly, never with another exception or a half-loaded model
    for cut in range(0, len(data), max(1, len(data) // 40)):
        truncated.write_bytes(data[:cut])
        with pytest.raises(ValueError, match="truncated.npz"):
            load(truncated)


def test_other_npz_and_npy_files(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros(3))
    with pytest.raises(ValueError, match=r"a\.npy: .*single \.npy array"):
        load(tmp_path / "a.npy")
    np.savez(tmp_path / "b.npz", x=np.zeros(3))
    with pytest.raises(ValueError, match=r"b\.npz: not an nnscratch checkpoint: no 'header'"):
        load(tmp_path / "b.npz")
    np.savez(tmp_path / "c.npz", header=np.array([{"format": "nnscratch-checkpoint"}], dtype=object))
    with pytest.raises(ValueError, match=r"c\.npz: .*pickle"):  # never unpickled
        load(tmp_path / "c.npz")
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing.npz")


@pytest.mark.parametrize("n", [12000, 10**9])
def test_a_small_file_asking_for_a_huge_layer_allocates_nothing(tmp_path, n):
    path = linear_file(tmp_path / "huge.npz", n, n)
    assert path.stat().st_size < 8192
    raised, peak, _ = peak_of(lambda: load(path))
    assert isinstance(raised, ValueError) and "huge.npz: " in str(raised)
    assert f"its .npy header announces ({n}, {n}) float32" in str(raised)
    assert peak < 1 << 20  # Linear(12000, 12000) used to allocate 2.2 GB here


def test_a_member_claiming_more_bytes_than_the_file_has_is_refused_unread(tmp_path):
    path = linear_file(tmp_path / "liar.npz", 3, 4, member=npy(np.zeros((3, 4), np.float32)))
    data = bytearray(path.read_bytes())
    entry = data.rindex(b"param.0.npy") - 46  # its central directory entry: 46 bytes, then the name
    assert data[entry : entry + 4] == b"PK\x01\x02"
    data[entry + 20 : entry + 28] = (10**9).to_bytes(4, "little") * 2  # stored size and size: 1 GB
    path.write_bytes(data)
    raised, peak, _ = peak_of(lambda: load(path))
    assert isinstance(raised, ValueError)
    assert f"liar.npz: the member 'param.0' says it holds 1000000000 bytes, the file has {len(data)}" in str(raised)
    assert peak < 1 << 20


def test_a_deflated_member_is_refused_before_it_is_decompressed(tmp_path):
    path = tmp_path / "bomb.npz"
    architecture = {"class": "Sequential", "layers": [
        {"class": "Linear", "config": {"in_features": 4096, "out_features": 4096, "bias": False}}]}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("header.npy", header_for(architecture, [{"shape": [4096, 4096], "dtype": "float32"}]),
                         compress_type=zipfile.ZIP_STORED)
        with archive.open("param.0.npy", "w") as f:  # 64 MiB of zeros deflate to 64 kB
            zeros_after(npy_claiming((4096, 4096)), 128 + (64 << 20))(f)
    assert path.stat().st_size < 1 << 20
    raised, peak, _ = peak_of(lambda: load(path))
    assert isinstance(raised, ValueError)
    assert "bomb.npz: the member 'param.0' is compressed; checkpoints are stored uncompressed" in str(raised)
    assert peak < 1 << 20


def test_members_the_header_does_not_name_are_never_read(tmp_path, checkpoint_path):
    with zipfile.ZipFile(checkpoint_path, "a", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("junk.npy", bytes(10 << 20))
    raised, peak, _ = peak_of(lambda: load(checkpoint_path))
    assert isinstance(raised, ValueError) and "unexpected arrays in the checkpoint: junk" in str(raised)
    assert peak < 1 << 20


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_fifo_or_a_directory_is_refused_not_waited_on(tmp_path):
    os.mkfifo(tmp_path / "pipe.npz")
    with pytest.raises(ValueError, match=r"pipe\.npz: not a regular file \(a FIFO"):
        load(tmp_path / "pipe.npz")
    (tmp_path / "dir.npz").mkdir()
    with pytest.raises(ValueError, match=r"dir\.npz: not a regular file \(a directory\)"):
        load(tmp_path / "dir.npz")


def test_a_device_is_refused_not_read():
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero on this platform")
    with pytest.raises(ValueError, match=r"/dev/zero: not a regular file \(a FIFO, device or socket"):
        load("/dev/zero")


def test_duplicate_and_fortran_order_members(tmp_path, checkpoint_path):
    with pytest.warns(UserWarning, match="Duplicate name"):
        with zipfile.ZipFile(checkpoint_path, "a") as archive:
            archive.writestr("param.0.npy", npy(np.zeros((3, 4), np.float32)))
    with pytest.raises(ValueError, match=r"good\.npz: not an nnscratch checkpoint: the member 'param\.0' appears twice"):
        load(checkpoint_path)
    net = small_net()
    perturb(net)
    with np.load(save(net, tmp_path / "f.npz")) as archive:
        arrays = {k: archive[k] for k in archive.files}
    arrays["param.0"] = np.asfortranarray(arrays["param.0"])
    with open(tmp_path / "f.npz", "wb") as f:
        np.savez(f, **arrays)
    np.testing.assert_array_equal(load(tmp_path / "f.npz").parameters[0], net.parameters[0])


member_data = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda a: npy(a), st.sampled_from([
        np.zeros((3, 4), np.float64), np.zeros((4, 3), np.float32), np.zeros((3, 4), ">f4"), np.zeros((3, 4), np.int32),
        np.array([1, "x"], dtype=object), np.zeros(3, [("a", "f4")]), np.array("text"), np.zeros((3, 4, 1), np.float32),
        np.zeros((), np.float32)])),
    st.builds(lambda shape, dtype: npy_claiming(shape, dtype), st.lists(st.integers(0, 2**40), max_size=9),
              st.sampled_from(["<f4", "<U5", "|O", "<f8", "V8"])),
    st.builds(lambda data, cut: data[:cut], st.just(npy(np.ones((3, 4), np.float32))), st.integers(0, 200)),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(["header", "param.0", "param.1", "optimizer.m.0", "optimizer.v.2"]), data=member_data)
def test_fuzzed_members_load_or_fail_with_a_value_error(checkpoint_path, name, data):
    good = checkpoint_path.read_bytes()
    with np.load(checkpoint_path) as archive:
        members = {k: npy(archive[k]) for k in archive.files}
    members[name] = data
    path = write_zip(checkpoint_path.with_name("fuzz.npz"), members)
    try:
        load_checkpoint(path)
    except ValueError as error:
        assert str(error).startswith(f"{path}: ")
    else:  # only a member equal in shape, dtype and validity could load
        assert name != "header"
    assert checkpoint_path.read_bytes() == good
