"""kernels/buffers.py: recycled result arrays and arrays laid out in a given memory order."""

import numpy as np

from nnscratch.kernels.recycle import copy_in_order, empty_in_order, memory_order, recycled_empty


def test_recycled_empty_never_hands_out_an_array_still_held():
    store = {}
    first = recycled_empty(store, "y", (3, 4), np.float32)
    address = first.ctypes.data
    view = first.T[1:]  # a view keeps the memory alive, and held
    del first
    second = recycled_empty(store, "y", (3, 4), np.float32)
    assert not np.shares_memory(second, view)
    del view
    third = recycled_empty(store, "y", (3, 4), np.float32)  # the first one is free again
    assert third.ctypes.data == address and not np.shares_memory(third, second)
    assert recycled_empty(store, "y", (4, 3), np.float32).shape == (4, 3)  # new shape: new array
    assert recycled_empty(store, "y", (3, 4), np.float64).dtype == np.float64


def test_memory_order_and_arrays_laid_out_in_it():
    x = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    channel_major = np.ascontiguousarray(x.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    assert memory_order(x) == (0, 1, 2, 3) and memory_order(channel_major) == (1, 0, 2, 3)
    empty = empty_in_order((2, 3, 4, 5), (1, 0, 2, 3), np.float64)
    assert empty.shape == (2, 3, 4, 5) and empty.transpose(1, 0, 2, 3).flags.c_contiguous
    copy = copy_in_order(x, (1, 0, 2, 3))
    np.testing.assert_array_equal(copy, x)
    assert memory_order(copy) == (1, 0, 2, 3) and not np.shares_memory(copy, x)
    store = {}
    recycled = copy_in_order(x, (1, 0, 2, 3), store, "delta")
    assert store["delta"][0].shape == (3, 2, 4, 5) and np.shares_memory(recycled, store["delta"][0])
