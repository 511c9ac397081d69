"""nnscratch.parallel_worker: what a network must be for every process to compute the same thing
(refused by name otherwise), and a worker whose main process is gone leaves quietly."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import nnscratch as nn
from nnscratch.parallel import DataParallel
from nnscratch.parallel_worker import check_network
from nnscratch.text_training import counted_targets


@pytest.mark.parametrize("layer, words", [
    (nn.Dropout(0.1), "Dropout with dropout 0.1"),
    (nn.MultiHeadAttention(8, 2, dropout=0.2), "MultiHeadAttention with dropout 0.2"),
    (nn.LSTM(8, 8, stateful=True), "stateful LSTM"),
    # its running statistics would be updated from one slice in the main process, never in the workers'
    (nn.BatchNorm1D(8), "BatchNorm1D, whose running statistics each process would update"),
])
def test_what_would_differ_from_process_to_process_is_refused(layer, words):
    with pytest.raises(ValueError, match=f"train-text: the network has a {words}.*--processes 1"):
        check_network("train-text", nn.Sequential(layer))
    check_network("train-text", nn.Sequential(nn.Dropout(0.0), nn.LSTM(8, 8), nn.LayerNorm(8)))  # the same everywhere
    DataParallel(nn.Sequential(layer), nn.Sequential(), 1, counted_targets)  # one process: anything goes


class Scale(nn.Layer):
    """A layer of the user's own: y = x * weight."""

    def __init__(self):
        super().__init__()
        self.weight = np.ones(4, np.float32)
        self.parameters, self.parameters_deltas = [self.weight], [np.zeros(4, np.float32)]


def test_a_layer_no_worker_can_build_is_refused_by_name():
    # it was describe's TypeError, which spoke of save and advised np.savez
    with pytest.raises(TypeError, match=r"^test: the network has a Scale, which the worker processes cannot build: .*"
                                        r"nnscratch's own layers only. Use one process \(--processes 1\)$"):
        DataParallel(nn.Sequential(nn.Linear(4, 4), Scale()), nn.Sequential(nn.Mean()), 2, len, where="test")

    class Stack(nn.Sequential):  # a container of one's own
        pass

    with pytest.raises(TypeError, match=r"^test: the network has a Stack, which the worker processes cannot build"):
        DataParallel(nn.Sequential(Stack(nn.Linear(4, 4))), nn.Sequential(nn.Mean()), 2, len, where="test")
    DataParallel(nn.Sequential(Scale()), nn.Sequential(), 1, len)  # one process builds nothing


def test_the_workers_of_a_killed_main_process_leave_quietly(tmp_path):
    # the OOM killer's SIGKILL: each worker, waiting for its next message, printed an EOFError's traceback
    script = tmp_path / "killed.py"
    script.write_text("import sys, time, nnscratch as nn\n"
                      "from nnscratch.parallel import DataParallel\n"
                      "if __name__ == '__main__':\n"
                      "    with DataParallel(nn.Sequential(nn.Linear(2, 2)), nn.Sequential(nn.Mean()), 3, len) as parallel:\n"
                      "        print([p.pid for p, _, _ in parallel._workers], flush=True)\n"
                      "        time.sleep(60)\n")
    child = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pids = child.stdout.readline()
    child.kill()
    _, err = child.communicate(timeout=60)  # its stderr ends when the workers' copies of it close
    assert pids.startswith("[") and err == ""
