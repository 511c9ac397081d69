"""nnscratch.parallel: a batch shared by several processes gives the whole batch's loss and gradients
(against the same network run alone), with ignored targets weighted right; what would differ per
process is refused; a worker that fails or dies is a clear error; nothing is left running."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

import nnscratch as nn
from nnscratch.data.text import IGNORE_INDEX
from nnscratch.parallel import DataParallel, WorkerError, leaves
from nnscratch.text_presets import gpt
from nnscratch.text_training import counted_targets

VOCAB, CONTEXT = 11, 8


def small_gpt(seed=0):
    net = gpt(VOCAB, CONTEXT, rng=np.random.default_rng(seed), dim=16, num_heads=2, num_layers=2)
    return net[:-2], net[-2:]


def batch(rows=5, seed=1, ignored=()):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, VOCAB, (rows, CONTEXT))
    y = rng.integers(0, VOCAB, (rows, CONTEXT))
    for row, first in ignored:  # line mode's padding: the row's targets from ``first`` on are ignored
        y[row, first:] = IGNORE_INDEX
    return x, y


def gradients(model, loss) -> list:
    return [d.copy() for layer in (model, loss) for inner in leaves(layer) for d in inner.parameters_deltas]


def test_two_processes_give_the_whole_batch_s_loss_and_gradients():
    # rows of unequal counted targets: the slices' means must be weighted by their counts
    x, y = batch(rows=5, ignored=[(0, 2), (1, 7), (4, 0)])
    model, loss = small_gpt()
    value = float(loss.forward(model.forward(x), y))
    model.backward(loss.backward(1.0), input_delta=False)
    expected = gradients(model, loss)
    model2, loss2 = small_gpt()
    with DataParallel(model2, loss2, 2, counted_targets, where="test") as parallel:
        assert len(parallel._workers) == 1
        shared = parallel.step(x, y)
        evaluated = parallel.loss_of(x, y)
    assert shared == pytest.approx(value, rel=1e-5)
    assert evaluated == pytest.approx(value, rel=1e-5)  # no dropout: eval mode computes the same
    got = gradients(model2, loss2)
    assert len(got) == len(expected) > 10
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-6)


def test_the_workers_see_the_weights_as_they_are_at_each_step():
    x, y = batch(rows=4)
    model, loss = small_gpt()
    model2, loss2 = small_gpt()
    with DataParallel(model2, loss2, 2, counted_targets, where="test") as parallel:
        parallel.step(x, y)
        for a, b in zip(model.parameters, model2.parameters):  # both change the same way after the first step
            a *= 0.5
            b *= 0.5
        value = parallel.step(x, y)
    assert value == pytest.approx(float(loss.forward(model.forward(x), y)), rel=1e-5)


def test_an_answer_left_by_an_interrupted_call_is_not_taken_for_the_next_one(monkeypatch):
    # Ctrl-C while the main process waited, caught inside the block: the next call read the old answer
    x, y = batch(rows=4)
    x2, y2 = batch(rows=4, seed=2)
    model, loss = small_gpt()
    real_answer = DataParallel._answer

    def interrupted(self, *args, **kwargs):
        monkeypatch.setattr(DataParallel, "_answer", real_answer)
        raise KeyboardInterrupt

    with DataParallel(model, loss, 2, counted_targets, where="test") as parallel:
        monkeypatch.setattr(DataParallel, "_answer", interrupted)
        with pytest.raises(KeyboardInterrupt):
            parallel.step(x, y)
        evaluated = parallel.loss_of(x2, y2)
        value = parallel.step(x2, y2)
    model2, loss2 = small_gpt()
    expected = float(loss2.forward(model2.forward(x2), y2))
    model2.backward(loss2.backward(1.0), input_delta=False)
    assert evaluated == pytest.approx(expected, rel=1e-5) and value == pytest.approx(expected, rel=1e-5)
    for a, b in zip(gradients(model, loss), gradients(model2, loss2)):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-6)


def test_a_sigterm_to_every_process_is_the_main_process_s_interrupt_not_a_dead_worker(monkeypatch):
    # a SIGTERM to the process group (timeout, a batch system) kills the workers as it reaches the main one
    # in the middle of its own slice: the worker's death, read after, masked the interrupt (exit 1, no save)
    x, y = batch(rows=4)
    model, loss = small_gpt()

    def own_part(self, *args):
        process = self._workers[0][0]
        os.kill(process.pid, signal.SIGKILL)
        process.join(10)
        raise KeyboardInterrupt

    with DataParallel(model, loss, 2, counted_targets, where="test") as parallel:
        monkeypatch.setattr(DataParallel, "_own_part", own_part)
        with pytest.raises(KeyboardInterrupt):
            parallel.step(x, y)


def test_a_slice_with_nothing_counted_adds_nothing():
    x, y = batch(rows=4, ignored=[(2, 0), (3, 0)])  # the worker's rows: all ignored
    model, loss = small_gpt()
    value = float(loss.forward(model.forward(x[:2]), y[:2]))
    model.backward(loss.backward(1.0), input_delta=False)
    model2, loss2 = small_gpt()
    with DataParallel(model2, loss2, 2, counted_targets, where="test") as parallel:
        assert parallel.step(x, y) == pytest.approx(value, rel=1e-6)
    for a, b in zip(gradients(model2, loss2), gradients(model, loss)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-8)


def test_one_process_starts_nothing_and_runs_the_layers_as_they_are():
    x, y = batch(rows=3)
    model, loss = small_gpt()
    with DataParallel(model, loss, 1, counted_targets) as parallel:
        assert parallel._workers == []
        value = parallel.step(x, y)
    model2, loss2 = small_gpt()
    assert value == float(loss2.forward(model2.forward(x), y))


def test_a_worker_s_error_is_raised_as_its_own_kind_with_its_message():
    x, y = batch(rows=4)
    y[3, 0] = VOCAB + 5  # a target out of range in the worker's rows only
    model, loss = small_gpt()
    with DataParallel(model, loss, 2, counted_targets, where="test") as parallel:
        with pytest.raises(ValueError, match=r"^test: worker process nnscratch-worker-1 failed: .*16"):
            parallel.step(x, y)
        y[3, 0] = 0
        assert np.isfinite(parallel.step(x, y))  # and it goes on working


def test_a_worker_that_dies_is_a_clear_error_and_nothing_is_left_running():
    x, y = batch(rows=4)
    model, loss = small_gpt()
    parallel = DataParallel(model, loss, 2, counted_targets, where="test")
    with pytest.raises(WorkerError, match=r"test: worker process nnscratch-worker-1 exited \(code -9\) during the "
                                           r"step; try --processes 1"):
        with parallel:
            process = parallel._workers[0][0]
            os.kill(process.pid, signal.SIGKILL)
            process.join(10)
            parallel.step(x, y)
    assert parallel._workers == [] and not process.is_alive()


def test_the_workers_stop_when_the_block_ends_however_it_ends():
    model, loss = small_gpt()
    parallel = DataParallel(model, loss, 3, counted_targets, where="test")
    with pytest.raises(KeyError):
        with parallel:
            processes = [process for process, _, _ in parallel._workers]
            assert len(processes) == 2 and all(p.is_alive() for p in processes)
            parallel.loss_of(*batch(rows=3))
            raise KeyError("stop")
    assert not any(p.is_alive() for p in processes)
    parallel.close()  # again: nothing to do
    with parallel:  # and it starts again
        assert len(parallel._workers) == 2 and np.isfinite(parallel.loss_of(*batch(rows=3)))


def test_a_ctrl_c_while_the_workers_start_is_the_main_process_s_alone(monkeypatch, capfd):
    # a terminal's Ctrl-C reaches every process of the group: a worker still importing printed a traceback
    real_start = multiprocessing.context.SpawnProcess.start

    def start(self):
        real_start(self)
        os.kill(self.pid, signal.SIGINT)

    monkeypatch.setattr(multiprocessing.context.SpawnProcess, "start", start)
    x, y = batch(rows=4)
    model, loss = small_gpt()
    with DataParallel(model, loss, 2, counted_targets, where="test") as parallel:
        value = parallel.step(x, y)
    model2, loss2 = small_gpt()
    assert value == pytest.approx(float(loss2.forward(model2.forward(x), y)), rel=1e-5)
    assert capfd.readouterr().err == ""


def test_a_script_without_the_main_guard_is_told_so_in_one_line(tmp_path):
    script = tmp_path / "unguarded.py"
    script.write_text("import numpy as np, nnscratch as nn\n"
                      "from nnscratch.parallel import DataParallel, WorkerError\n"
                      "try:\n"
                      "    with DataParallel(nn.Sequential(nn.Linear(2, 2)), nn.Sequential(nn.Mean()), 2, len, where='demo'):\n"
                      "        pass\n"
                      "except WorkerError as error:\n"
                      "    print(error)\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0 and "Traceback" not in done.stderr
    assert done.stderr == (f"demo: a worker process, importing the main script {script}, was asked to start the work "
                           "again; a script that uses several processes must keep its work under if __name__ == "
                           '"__main__":\n')
    assert done.stdout == "demo: worker process nnscratch-worker-1 exited (code 1) during the start; try --processes 1\n"


def test_a_worker_that_does_not_stop_is_killed(monkeypatch):
    # a stopped worker (SIGSTOP) ignores the request and SIGTERM; multiprocessing joined it at exit forever
    monkeypatch.setattr("nnscratch.parallel.STOP_TIMEOUT", 0.3)
    model, loss = small_gpt()
    with DataParallel(model, loss, 2, counted_targets, where="test") as parallel:
        process = parallel._workers[0][0]
        os.kill(process.pid, signal.SIGSTOP)
    try:
        assert not process.is_alive() and process.exitcode == -signal.SIGKILL
        assert process not in multiprocessing.active_children()
    finally:
        if process.is_alive():
            process.kill()


def test_a_second_ctrl_c_while_the_workers_stop_still_stops_them(monkeypatch):
    model, loss = small_gpt()
    parallel = DataParallel(model, loss, 2, counted_targets, where="test").__enter__()
    process = parallel._workers[0][0]
    os.kill(process.pid, signal.SIGSTOP)  # it will not stop when asked
    real_join = type(process).join

    def join(self, timeout=None):
        monkeypatch.setattr(type(process), "join", real_join)
        raise KeyboardInterrupt

    monkeypatch.setattr(type(process), "join", join)
    try:
        with pytest.raises(KeyboardInterrupt):
            parallel.close()
        process.join(10)
        assert not process.is_alive() and process.exitcode == -signal.SIGKILL
    finally:
        if process.is_alive():
            process.kill()


def test_a_worker_without_memory_for_its_network_is_a_start_failure(monkeypatch):
    # it was a MemoryError, which train-text explains as "take a smaller --batch-size", even with auto
    import nnscratch.io.registry as registry

    real_describe = registry.describe

    def describe(layer, where, classes):  # the worker builds a network of 64 TiB
        huge = {"in_features": 1 << 22, "out_features": 1 << 22, "bias": True, "dtype": "float32"}
        return {"class": "Linear", "config": huge} if where == "model" else real_describe(layer, where, classes)

    monkeypatch.setattr(registry, "describe", describe)
    model, loss = nn.Sequential(nn.Linear(2, 2)), nn.Sequential(nn.Mean())
    with DataParallel(model, loss, 2, len, where="test", fallback=True) as parallel:
        assert parallel.processes == 1 and parallel._workers == []
        assert parallel.fallback_reason.startswith("could not start worker processes (MemoryError: test: worker process "
                                                   "nnscratch-worker-1 failed: Unable to allocate 64.0 TiB")
    with pytest.raises(WorkerError, match=r"^test: could not start worker processes \(MemoryError: .*64.0 TiB.*\); "
                                          r"try --processes 1$"):
        with DataParallel(model, loss, 2, len, where="test"):
            pass


def test_workers_that_cannot_start_fall_back_to_one_process_only_when_asked(monkeypatch):
    def refuse(self):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(DataParallel, "_start", refuse)
    x, y = batch(rows=3)
    model, loss = small_gpt()
    with DataParallel(model, loss, 2, counted_targets, fallback=True) as parallel:
        assert parallel.processes == 1 and parallel._workers == []
        assert parallel.fallback_reason == "could not start worker processes (OSError: [Errno 28] No space left on device)"
        value = parallel.step(x, y)
    model2, loss2 = small_gpt()
    assert value == float(loss2.forward(model2.forward(x), y))
    with pytest.raises(WorkerError, match=r"^train-text: could not start worker processes \(OSError: \[Errno 28\] No "
                                          r"space left on device\); try --processes 1$"):
        with DataParallel(model, loss, 2, counted_targets):
            pass


@pytest.mark.parametrize("kwargs, kind, message", [
    ({"processes": 0}, ValueError, "DataParallel: processes must be a positive int, got 0"),
    ({"processes": "2"}, TypeError, "DataParallel: processes must be an int, got str '2'"),
    ({"threads": 0}, ValueError, "DataParallel: threads must be a positive int, got 0"),
    ({"count": 3}, TypeError, "DataParallel: count must be a function of the targets giving how many the loss "
                              "averages over, got int"),
])
def test_bad_arguments_are_named(kwargs, kind, message):
    model, loss = small_gpt()
    arguments = {"processes": 2, "count": counted_targets, **kwargs}
    with pytest.raises(kind, match=f"^{message}$"):
        DataParallel(model, loss, **arguments)
