"""kernels/parallel.by_rows: work done in cache-sized blocks of rows, split between a helper thread and
the caller, gives the very same numbers as the work done whole, in the layers that use it too;
errors and concurrent callers are handled; small or single-core work stays on the calling thread."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import nnscratch as nn
from nnscratch.kernels import parallel


@pytest.fixture(params=[1, 2], ids=["one core", "two cores"])
def cores(request, monkeypatch):
    monkeypatch.setattr(parallel, "cores", lambda: request.param)
    return request.param


def _recording(x, calls):
    """A function of row blocks of ``x`` that squares them and records (thread, first row, rows)."""

    def square(rows, result):
        first = (rows.ctypes.data - x.ctypes.data) // x.strides[0]
        calls.append((threading.get_ident(), first, rows.shape[0]))
        np.multiply(rows, rows, out=result)

    return square


@pytest.mark.parametrize("cores_", [1, 2])
def test_every_row_is_done_once_in_cache_sized_blocks_on_two_threads_when_it_pays(monkeypatch, cores_):
    monkeypatch.setattr(parallel, "cores", lambda: cores_)
    x = np.arange(2 * parallel.MIN_SIZE, dtype=np.float64).reshape(64, -1)  # rows of 8 kB: 32 to a block
    out, calls = np.zeros_like(x), []
    parallel.by_rows(_recording(x, calls), x, out)
    np.testing.assert_array_equal(out, x * x)
    rows = sorted(row for _, first, count in calls for row in range(first, first + count))
    assert rows == list(range(64))
    assert all(count <= parallel.BLOCK_BYTES // (8 * x.shape[1]) for _, _, count in calls)
    threads = {thread for thread, _, _ in calls}
    assert threading.get_ident() in threads and len(threads) == cores_
    if cores_ == 2:  # the helper takes the first half, the caller the second
        assert {first < 32 for thread, first, _ in calls if thread != threading.get_ident()} == {True}


@pytest.mark.parametrize("shape", [(64, 100), (1, 1 << 16)], ids=["too small", "one row"])
def test_work_that_does_not_pay_stays_on_this_thread(monkeypatch, shape):
    monkeypatch.setattr(parallel, "cores", lambda: 2)
    x, calls = np.zeros(shape), []
    parallel.by_rows(_recording(x, calls), x, np.empty_like(x))
    assert {thread for thread, _, _ in calls} == {threading.get_ident()}
    assert sum(count for _, _, count in calls) == shape[0]


@pytest.mark.parametrize("failing", ["helper", "caller", "both"])
def test_an_error_in_either_half_is_raised_here_after_both_are_done(monkeypatch, failing):
    monkeypatch.setattr(parallel, "cores", lambda: 2)
    x = np.zeros((8, parallel.MIN_SIZE))  # rows of 256 kB: a block each, four to a half
    done = []

    def work(rows):
        helper = threading.get_ident() != main
        if failing == "both" or (failing == "helper") == helper:
            raise ValueError("helper half" if helper else "caller half")
        done.append(helper)

    main = threading.get_ident()
    with pytest.raises(ValueError, match="caller half" if failing != "helper" else "helper half"):
        parallel.by_rows(work, x)
    # the half that did not fail went on to its end (each half stops at its own first error)
    assert done == ([False] * 4 if failing == "helper" else [True] * 4 if failing == "caller" else [])
    y = np.zeros_like(x)  # and the helper is free again: the next call splits as usual
    parallel.by_rows(lambda a, b: np.add(a, 1, out=b), x, y)
    np.testing.assert_array_equal(y, 1.0)


def test_concurrent_callers_each_get_their_work_done(monkeypatch):
    monkeypatch.setattr(parallel, "cores", lambda: 2)
    results, errors = {}, []

    def caller(index):
        try:
            for repeat in range(20):
                x = np.full((8, parallel.MIN_SIZE // 4), float(index * 100 + repeat))
                y = np.empty_like(x)
                parallel.by_rows(lambda a, b: np.multiply(a, 2, out=b), x, y)
                results[index, repeat] = bool((y == 2 * x).all())
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(results) == 80 and all(results.values())


def test_cores_is_numpy_blas_thread_count():
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, user_api="blas"):
        assert parallel.cores() == 1
    with threadpool_limits(2, user_api="blas"):
        assert parallel.cores() == 2


# -- the layers: the same numbers whole, in blocks of rows and on two cores -----------------------------
def _run(make, x, delta, **kwargs):
    layer = make()
    y = layer.forward(x, **kwargs)
    dx = layer.backward(delta)
    return [y.copy(), dx.copy()] + [d.copy() for d in layer.parameters_deltas]


@pytest.mark.parametrize("name, make, shape, kwargs", [
    ("GELU", nn.GELU, (12, 64, 512), {}),
    ("LayerNorm", lambda: nn.LayerNorm(128), (12, 64, 128), {}),
    ("attention, causal", lambda: nn.MultiHeadAttention(128, 4, causal=True, rng=0), (12, 64, 128), {}),
    ("attention, padding", lambda: nn.MultiHeadAttention(64, 2, rng=0), (9, 64, 64),
     {"key_padding_mask": np.random.default_rng(5).random((9, 64)) < 0.3}),
    ("attention, dropout", lambda: nn.MultiHeadAttention(64, 4, causal=True, dropout=0.2, rng=0), (8, 48, 64), {}),
    ("block", lambda: nn.TransformerBlock(64, 4, dropout=0.1, rng=0), (8, 48, 64), {}),
])  # fmt: skip
def test_layers_give_the_same_numbers_whole_in_blocks_and_on_two_cores(monkeypatch, name, make, shape, kwargs):
    rng = np.random.default_rng(1)
    x, delta = rng.standard_normal(shape, dtype=np.float32), rng.standard_normal(shape, dtype=np.float32)
    results, handed = {}, []
    helper = parallel._get_helper
    monkeypatch.setattr(parallel, "_get_helper", lambda: handed.append(1) or helper())
    for count, block in [(1, 1 << 40), (1, parallel.BLOCK_BYTES), (2, parallel.BLOCK_BYTES)]:
        monkeypatch.setattr(parallel, "cores", lambda count=count: count)
        monkeypatch.setattr(parallel, "BLOCK_BYTES", block)
        results[count, block] = _run(make, x, delta, **kwargs)
    assert len(handed) >= 2  # forward and backward split their work on two cores
    whole, *others = results.values()
    for other in others:
        assert len(other) == len(whole)
        for a, b in zip(whole, other):
            np.testing.assert_array_equal(a, b)
