"""train-text's loop (commands/train_text_loop.py): Ctrl-C and SIGTERM save the last estimate's state and
--resume continues bit for bit (the transformer too), a full disk is one line with the result still
printed, and a diverged run says so and writes no NaN anywhere."""

from __future__ import annotations

import re

import numpy as np
import pytest

import nnscratch as nn
from helpers.text_runs import RUN, interrupt_at, run, weights
from nnscratch.text_training import TextTraining



def test_an_interrupt_without_save_and_sigterm(text, tmp_path, monkeypatch, capsys):
    from nnscratch.commands.training import Terminated

    interrupt_at(monkeypatch, 3)
    assert run(text, *RUN) == 130
    assert capsys.readouterr().err == "train-text: interrupted at iteration 3; nothing saved: no --save\n"
    monkeypatch.undo()
    interrupt_at(monkeypatch, 10, Terminated)
    assert run(text, *RUN, "--save", tmp_path / "t.npz") == 143
    assert "train-text: terminated at iteration 10; saved the state after iteration 8" in capsys.readouterr().err


def test_an_interrupt_while_the_workers_start_saves_the_resumed_state(text, tmp_path, monkeypatch, capsys):
    # it said "interrupted at iteration 0; nothing saved" with --save given, the run resumed at 8
    from nnscratch.parallel import DataParallel

    first, second = tmp_path / "first.npz", tmp_path / "second.npz"
    assert run(text, *RUN[:2], "--iters", "8", *RUN[4:], "--save", first) == 0

    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(DataParallel, "_start", interrupted)
    assert run("--resume", first, "--iters", "24", "--processes", "2", "--quiet", "--save", second) == 130
    assert capsys.readouterr().err == (f"train-text: interrupted at iteration 8; saved the state after iteration 8 to "
                                       f"{second} (continue with --resume {second})\n")
    for a, b in zip(weights(first), weights(second)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("fixed", [["--threads", "1"], ["--processes", "2"]])
def test_the_transformer_resumed_after_an_interrupt_equals_the_run_bit_for_bit(tmp_path, monkeypatch, capsys, fixed):
    text = tmp_path / "t.txt"
    text.write_text("O Romeo, Romeo, wherefore art thou Romeo?\nDeny thy father and refuse thy name.\n" * 30)
    small = ["--iters", "9", "--eval-interval", "3", "--batch-size", "3", "--block-size", "16", *fixed, "--quiet"]
    assert run(text, *small, "--save", tmp_path / "whole.npz") == 0
    real_step = TextTraining.step

    def step(self, index):
        if index == 5:
            raise KeyboardInterrupt
        return real_step(self, index)

    monkeypatch.setattr(TextTraining, "step", step)
    assert run(text, *small, "--save", tmp_path / "part.npz") == 130
    monkeypatch.undo()
    assert run("--resume", tmp_path / "part.npz", *fixed, "--quiet", "--save", tmp_path / "end.npz") == 0
    whole, end = (nn.load_checkpoint(tmp_path / f"{name}.npz") for name in ("whole", "end"))
    assert end.metadata["train_text"]["config"]["model"] == "transformer"
    for a, b in zip(whole.model.parameters, end.model.parameters):
        np.testing.assert_array_equal(a, b)
    for key, value in whole.optimizer.state_dict().items():
        np.testing.assert_array_equal(value, end.optimizer.state_dict()[key])


def test_a_full_disk_is_one_line_and_the_result_is_still_printed(text, tmp_path, capsys, full_disk):
    save, metrics = tmp_path / "m.npz", tmp_path / "m.json"
    metrics.write_text("old")
    full_disk("m.npz", after=1)  # the first checkpoint is written, the later ones are not
    full_disk("m.json")
    assert run(text, *RUN, "--save", save, "--metrics", metrics) == 1
    captured = capsys.readouterr()
    assert captured.out.startswith("validation loss ")
    assert (f"train-text: could not write the checkpoint {save}: No space left on device; the previous file there is "
            "unchanged\n") in captured.err
    assert f"train-text: could not write the metrics {metrics}: No space left on device" in captured.err
    assert "Traceback" not in captured.err
    assert nn.load_checkpoint(save).metadata["train_text"]["iteration"] == 8 and metrics.read_text() == "old"


def test_a_diverged_run_says_so_and_writes_no_nan(text, tmp_path, monkeypatch, capsys):
    save, metrics = tmp_path / "m.npz", tmp_path / "m.json"
    real_forward = nn.SoftmaxCrossEntropy.forward
    calls = []

    def forward(self, scores, targets):
        calls.append(1)
        value = real_forward(self, scores, targets)
        return value * np.nan if len(calls) > 16 else value  # 8 steps, the estimate's 8 batches, then NaN

    monkeypatch.setattr(nn.SoftmaxCrossEntropy, "forward", forward)
    assert run(text, *RUN, "--save", save, "--metrics", metrics) == 1
    err = capsys.readouterr().err
    assert re.search(r"train-text: training diverged: the loss is nan at iteration 9, with lr [\d.e-]+; the learning "
                     r"rate is probably too high; try a lower --lr \(now [\d.e-]+\)", err)
    assert f"train-text: {save} holds the state after iteration 8" in err
    assert not metrics.exists()
    assert all(np.isfinite(p).all() for p in weights(save))


def test_a_non_finite_estimate_is_a_divergence_too(text, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(TextTraining, "estimate", lambda self: {"train": 2.0, "val": float("inf")})
    assert run(text, *RUN, "--save", tmp_path / "m.npz") == 1
    assert ("train-text: training diverged: the estimated validation loss is inf at iteration 8; try a lower --lr"
            in capsys.readouterr().err)
    assert not (tmp_path / "m.npz").exists()


def test_a_huge_learning_rate_diverges_without_a_traceback(text, tmp_path, capsys):
    assert run(text, *RUN[:-1], "--model", "transformer", "--lr", "1e6", "--quiet", "--metrics", tmp_path / "m.json") \
        == 1
    err = capsys.readouterr().err
    assert "train-text: training diverged: " in err and "Traceback" not in err
    assert not (tmp_path / "m.json").exists()
