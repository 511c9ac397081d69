"""Handing freed memory back to the operating system (nnscratch/kernels/heap.py): malloc_trim found
once in glibc and called with 0, and nothing done (False) where the C library has none."""

from __future__ import annotations

import ctypes
import sys

import numpy as np
import pytest

from nnscratch.kernels import heap


@pytest.fixture
def unset(monkeypatch):
    """heap as at import: malloc_trim not looked up yet (put back after the test)."""
    monkeypatch.setattr(heap, "_malloc_trim", heap._UNSET)


def test_malloc_trim_is_looked_up_once_and_called_with_zero(unset, monkeypatch):
    calls, lookups = [], []

    def fake_trim(pad):
        calls.append(pad)
        return 1

    monkeypatch.setattr(heap, "_find_malloc_trim", lambda: lookups.append(1) or fake_trim)
    assert heap.trim() is True and heap.trim() is True
    assert calls == [0, 0] and lookups == [1]


def test_trim_is_false_when_nothing_was_released(unset, monkeypatch):
    monkeypatch.setattr(heap, "_find_malloc_trim", lambda: (lambda pad: 0))
    assert heap.trim() is False


def test_without_malloc_trim_trim_does_nothing_and_says_so(unset, monkeypatch):
    monkeypatch.setattr(heap, "_find_malloc_trim", lambda: None)
    assert heap.trim() is False


@pytest.mark.parametrize("platform", ["darwin", "win32"])
def test_other_systems_have_no_malloc_trim(monkeypatch, platform):
    monkeypatch.setattr(sys, "platform", platform)
    assert heap._find_malloc_trim() is None


def test_a_c_library_without_the_symbol_is_not_glibc(monkeypatch):
    class NoTrim:
        def __init__(self, name):
            pass

        def __getattr__(self, name):
            raise AttributeError(name)

    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(ctypes, "CDLL", NoTrim)
    assert heap._find_malloc_trim() is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="malloc_trim is glibc's (Linux)")
def test_on_glibc_the_real_function_is_found_typed_and_runs(unset):
    try:
        ctypes.CDLL(None).malloc_trim
    except AttributeError:
        pytest.skip("this Linux's C library is not glibc")
    function = heap._find_malloc_trim()
    assert function.argtypes == [ctypes.c_size_t] and function.restype is ctypes.c_int
    blocks = [np.ones(1 << 20) for _ in range(8)]  # 64 MB freed below: something to hand back
    del blocks
    assert isinstance(heap.trim(), bool)
