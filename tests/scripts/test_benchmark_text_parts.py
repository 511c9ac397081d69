"""scripts/benchmark_text_parts.py: a step's time split by layer class adds up to the step, and the
timers are gone afterwards (the classes and the module as they were)."""

from __future__ import annotations

import math

import pytest

import nnscratch as nn
from nnscratch import text_training
from nnscratch.data.text import CharCorpus
from helpers.script_modules import load_script

TEXT = ("Full fathom five thy father lies;\nOf his bones are coral made;\n"
        "Those are pearls that were his eyes:\nNothing of him that doth fade\n") * 10


@pytest.fixture(scope="module")
def parts():
    return load_script("benchmark_text_parts.py")


def test_the_parts_add_up_to_the_step_and_the_timers_go(parts):
    bench = parts.bench
    corpus = CharCorpus(TEXT)
    config = {**bench.recipe("rnn", corpus, 6), "block_size": 12, "batch_size": 4}
    training, _ = bench.nnscratch_run("rnn", corpus, config, seed=0)
    forward, clip = nn.RNN.forward, text_training.clip_grad_norm
    result = parts.nnscratch_parts(training, steps=4, warmup=2)
    step = result.pop("step")
    assert {"RNN forward", "RNN backward", "Linear forward", "Embedding backward", "clip_grad_norm", "Adagrad step",
            "the batch of windows", "the rest (containers, the loop)"} <= set(result)
    assert math.isclose(sum(result.values()), step, rel_tol=1e-9) and all(v >= 0 for v in result.values())
    assert nn.RNN.forward is forward and text_training.clip_grad_norm is clip
    assert "step" not in vars(training.optimizer) and "batch" not in vars(training.corpus)


def test_the_command_prints_the_nnscratch_side(parts, tmp_path, capsys):
    path = tmp_path / "t.txt"
    path.write_text(TEXT)
    assert parts.main([str(path), "--model", "rnn", "--steps", "3", "--warmup", "1", "--threads", "1",
                       "--no-torch"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("nnscratch, 1 threads: ") and "ms a step over 3 steps" in out and "RNN backward" in out


def test_pytorchs_side_is_timed_and_profiled_by_op(parts, tmp_path, capsys):
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    path = tmp_path / "t.txt"
    path.write_text(TEXT)
    try:
        assert parts.main([str(path), "--model", "rnn", "--steps", "2", "--warmup", "1", "--threads", "1"]) == 0
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert "PyTorch, 1 threads: " in out and "ms a step (without the profiler); its ops:" in out
    assert "aten::" in out and "Self CPU" in out
