"""kernels/parallel.halves: the work split along the first axis between a helper thread and the caller
gives the very same numbers as the work done whole, in the layers that use it too; errors and
concurrent callers are handled; small or single-core work is never split."""

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


def test_each_half_is_done_once_on_two_threads_when_it_pays(monkeypatch):
    monkeypatch.setattr(parallel, "cores", lambda: 2)
    x = np.arange(2 * parallel.MIN_SIZE, dtype=np.float64).reshape(64, -1)
    out = np.zeros_like(x)
    seen = []

    def square(rows, result):
        seen.append((threading.get_ident(), rows.shape[0]))
        np.multiply(rows, rows, out=result)

    parallel.halves(square, x, out)
    np.testing.assert_array_equal(out, x * x)
    assert sorted(rows for _, rows in seen) == [32, 32]
    assert len({thread for thread, _ in seen}) == 2 and threading.get_ident() in {thread for thread, _ in seen}


@pytest.mark.parametrize("cores_, shape", [(1, (64, 1024)), (2, (64, 100)), (2, (1, 1 << 16))],
                         ids=["one core", "too small", "one row"])
def test_work_that_does_not_pay_runs_whole_here(monkeypatch, cores_, shape):
    monkeypatch.setattr(parallel, "cores", lambda: cores_)
    calls = []
    parallel.halves(lambda a: calls.append((threading.get_ident(), a.shape)), np.zeros(shape))
    assert calls == [(threading.get_ident(), shape)]


@pytest.mark.parametrize("failing", ["helper", "caller", "both"])
def test_an_error_in_either_half_is_raised_here_after_both_are_done(monkeypatch, failing):
    monkeypatch.setattr(parallel, "cores", lambda: 2)
    x = np.zeros((4, parallel.MIN_SIZE))
    done = []

    def work(rows):
        first = rows.base is x and rows.ctypes.data == x.ctypes.data  # the helper's half starts at row 0
        if failing == "both" or (failing == "helper") == first:
            raise ValueError("helper half" if first else "caller half")
        done.append(first)

    with pytest.raises(ValueError, match="caller half" if failing != "helper" else "helper half"):
        parallel.halves(work, x)
    assert done == ([False] if failing == "helper" else [True] if failing == "caller" else [])
    y = np.zeros_like(x)  # and the helper is free again: the next call splits as usual
    parallel.halves(lambda a, b: np.add(a, 1, out=b), x, y)
    np.testing.assert_array_equal(y, 1.0)


def test_concurrent_callers_each_get_their_work_done(monkeypatch):
    monkeypatch.setattr(parallel, "cores", lambda: 2)
    results, errors = {}, []

    def caller(index):
        try:
            for repeat in range(20):
                x = np.full((8, parallel.MIN_SIZE // 4), float(index * 100 + repeat))
                y = np.empty_like(x)
                parallel.halves(lambda a, b: np.multiply(a, 2, out=b), x, y)
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


# -- the layers: the same numbers on one core and on two ----------------------------------------------
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
def test_layers_give_the_same_numbers_on_one_core_and_on_two(monkeypatch, name, make, shape, kwargs):
    rng = np.random.default_rng(1)
    x, delta = rng.standard_normal(shape, dtype=np.float32), rng.standard_normal(shape, dtype=np.float32)
    results, handed = {}, []
    helper = parallel._get_helper
    monkeypatch.setattr(parallel, "_get_helper", lambda: handed.append(1) or helper())
    for count in (1, 2):
        monkeypatch.setattr(parallel, "cores", lambda count=count: count)
        results[count] = _run(make, x, delta, **kwargs)
    assert len(handed) >= 2  # forward and backward split their work on two cores
    assert len(results[1]) == len(results[2])
    for one, two in zip(results[1], results[2]):
        np.testing.assert_array_equal(one, two)
