"""kernels/rows: work done in cache-sized blocks of rows gives the very same numbers as the work done
whole, in the layers that use it too; every row is done once; work memory is the thread's own and
kept between calls (unless it is large)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import nnscratch as nn
from nnscratch.kernels import rows as kernel_rows


def _recording(x, calls):
    """A function of row blocks of ``x`` that squares them and records (first row, rows)."""

    def square(block, result):
        first = (block.ctypes.data - x.ctypes.data) // x.strides[0]
        calls.append((first, block.shape[0]))
        np.multiply(block, block, out=result)

    return square


@pytest.mark.parametrize("shape, per_block", [((64, 8192), 4), ((100, 7), 100), ((3, 1 << 17), 1)],
                         ids=["blocks of 4 rows", "one block", "rows larger than a block"])
def test_every_row_is_done_once_in_cache_sized_blocks(shape, per_block):
    x = np.arange(np.prod(shape), dtype=np.float64).reshape(shape)
    out, calls = np.zeros_like(x), []
    kernel_rows.by_rows(_recording(x, calls), x, out)
    np.testing.assert_array_equal(out, x * x)
    assert [first for first, _ in calls] == list(range(0, shape[0], per_block))
    assert sum(count for _, count in calls) == shape[0] and max(count for _, count in calls) == per_block


def test_a_scalar_or_single_row_is_one_call():
    for x in (np.array(3.0), np.ones((1, 1 << 20))):
        calls = []
        kernel_rows.by_rows(lambda a: calls.append(a.shape), x)
        assert calls == [x.shape]


def test_scratch_is_the_threads_own_kept_between_calls_unless_large():
    like = np.zeros((4, 5), np.float32)
    a = kernel_rows.scratch("test", like)
    assert a.shape == (4, 5) and a.dtype == np.float32
    assert np.shares_memory(a, kernel_rows.scratch("test", np.zeros((2, 3), np.float32)))  # kept, reused
    assert not np.shares_memory(a, kernel_rows.scratch("other", like))  # another name: its own
    assert not np.shares_memory(a, kernel_rows.scratch("test", like.astype(np.float64)))  # another dtype
    other = []
    thread = threading.Thread(target=lambda: other.append(kernel_rows.scratch("test", like)))
    thread.start()
    thread.join()
    assert not np.shares_memory(a, other[0])  # another thread: its own
    huge = np.zeros(kernel_rows.MAX_SCRATCH_BYTES // 4 + 1, np.float32)
    assert not np.shares_memory(kernel_rows.scratch("huge", huge), kernel_rows.scratch("huge", huge))


# -- the layers: the same numbers whole and in blocks of rows -----------------------------------------
def _run(make, x, delta, **kwargs):
    layer = make()
    y = layer.forward(x, **kwargs)
    dx = layer.backward(delta)
    return [y.copy(), dx.copy()] + [d.copy() for d in layer.parameters_deltas]


@pytest.mark.parametrize("name, make, shape, kwargs", [
    ("GELU", nn.GELU, (12, 64, 512), {}),
    ("GELU, channel-major", nn.GELU, "channel-major", {}),
    ("LayerNorm", lambda: nn.LayerNorm(128), (12, 64, 128), {}),
    ("attention, causal", lambda: nn.MultiHeadAttention(128, 4, causal=True, rng=0), (12, 64, 128), {}),
    ("attention, padding", lambda: nn.MultiHeadAttention(64, 2, rng=0), (9, 64, 64),
     {"key_padding_mask": np.random.default_rng(5).random((9, 64)) < 0.3}),
    ("attention, dropout", lambda: nn.MultiHeadAttention(64, 4, causal=True, dropout=0.2, rng=0), (8, 48, 64), {}),
    ("block", lambda: nn.TransformerBlock(64, 4, dropout=0.1, rng=0), (8, 48, 64), {}),
])  # fmt: skip
def test_layers_give_the_same_numbers_whole_and_in_blocks(monkeypatch, name, make, shape, kwargs):
    rng = np.random.default_rng(1)
    if shape == "channel-major":  # Conv2D's (C, N, H, W) memory behind an (N, C, H, W) view
        x = rng.standard_normal((16, 32, 16, 16), dtype=np.float32).transpose(1, 0, 2, 3)
    else:
        x = rng.standard_normal(shape, dtype=np.float32)
    delta = rng.standard_normal(x.shape, dtype=np.float32)
    results = {}
    for block in (1 << 40, kernel_rows.BLOCK_BYTES, 1 << 12):  # whole, as measured best, small blocks
        monkeypatch.setattr(kernel_rows, "BLOCK_BYTES", block)
        results[block] = _run(make, x, delta, **kwargs)
    whole, *others = results.values()
    for other in others:
        assert len(other) == len(whole)
        for a, b in zip(whole, other):
            np.testing.assert_array_equal(a, b)
