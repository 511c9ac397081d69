"""train-text's guarantees: Ctrl-C saves and --resume continues bit for bit, a resumed run keeps its
configuration and text, bad options and outputs over inputs are one line before any work, a full disk
is one line, and a diverged run writes no NaN anywhere."""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest

import nnscratch as nn
from nnscratch.cli import train_text_main
from nnscratch.text_training import TextTraining

TEXT = ("Now is the winter of our discontent\nMade glorious summer by this sun of York;\n"
        "And all the clouds that lour'd upon our house\nIn the deep bosom of the ocean buried.\n") * 12
RUN = ["--model", "gru", "--iters", "24", "--eval-interval", "8", "--batch-size", "4", "--block-size", "12",
       "--threads", "1", "--quiet"]


@pytest.fixture
def text(text_file):
    return text_file("richard.txt", TEXT)


def run(*argv):
    return train_text_main([str(a) for a in argv])


def interrupt_at(monkeypatch, index, error=KeyboardInterrupt):
    real_step = TextTraining.step

    def step(self, i):
        if i == index:
            raise error
        return real_step(self, i)

    monkeypatch.setattr(TextTraining, "step", step)


def weights(path):
    return [p.copy() for p in nn.load_checkpoint(path).model.parameters]


def test_an_interrupted_run_resumed_equals_the_uninterrupted_run_bit_for_bit(text, tmp_path, monkeypatch, capsys):
    whole, parts = tmp_path / "whole.npz", tmp_path / "parts.npz"
    assert run(text, *RUN, "--save", whole, "--metrics", tmp_path / "whole.json") == 0
    interrupt_at(monkeypatch, 13)  # during the second interval: iterations 9-13 are undone
    assert run(text, *RUN, "--save", parts) == 130
    err = capsys.readouterr().err
    assert err == (f"train-text: interrupted at iteration 13; saved the state after iteration 8 to {parts} "
                   f"(continue with --resume {parts})\n")
    assert nn.load_checkpoint(parts).metadata["train_text"]["iteration"] == 8
    monkeypatch.undo()
    resumed = tmp_path / "resumed.npz"
    assert run("--resume", parts, "--save", resumed, "--threads", "1", "--quiet", "--metrics", tmp_path / "r.json") == 0
    for a, b in zip(weights(whole), weights(resumed)):
        np.testing.assert_array_equal(a, b)
    whole_metrics, resumed_metrics = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("whole", "r"))
    assert resumed_metrics["validation_loss"] == whole_metrics["validation_loss"]
    assert resumed_metrics["sample"] == whole_metrics["sample"]
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in resumed_metrics["history"]]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in whole_metrics["history"]]


def test_an_interrupt_without_save_and_sigterm(text, tmp_path, monkeypatch, capsys):
    from nnscratch.commands.training import Terminated

    interrupt_at(monkeypatch, 3)
    assert run(text, *RUN) == 130
    assert capsys.readouterr().err == "train-text: interrupted at iteration 3; nothing saved: no --save\n"
    monkeypatch.undo()
    interrupt_at(monkeypatch, 10, Terminated)
    assert run(text, *RUN, "--save", tmp_path / "t.npz") == 143
    assert "train-text: terminated at iteration 10; saved the state after iteration 8" in capsys.readouterr().err


def test_resume_extends_a_finished_run(text, tmp_path, capsys):
    path = tmp_path / "m.npz"
    assert run(text, *RUN, "--save", path) == 0
    assert run("--resume", path, "--iters", "32", "--save", tmp_path / "more.npz", "--quiet") == 0
    record = nn.load_checkpoint(tmp_path / "more.npz").metadata["train_text"]
    assert record["iteration"] == 32 and [r["iter"] for r in record["history"]] == [8, 16, 24, 32]


@pytest.mark.parametrize("argv, message", [
    (["--batch-size", "5"], r"--batch-size 5 contradicts the checkpoint .* \(batch_size 4\); a resumed run keeps"),
    (["--model", "lstm"], r"--model lstm contradicts the checkpoint .* \(model gru\)"),
    (["--lines"], r"--lines contradicts the checkpoint .* \(lines False\)"),
])
def test_resume_refuses_a_contradicting_configuration(text, tmp_path, capsys, argv, message):
    path = tmp_path / "m.npz"
    assert run(text, *RUN, "--save", path) == 0
    capsys.readouterr()
    assert run("--resume", path, *argv) == 2
    err = capsys.readouterr().err
    assert re.fullmatch(rf"train-text: error: {message}.*\n", err), err


def test_resume_refuses_another_text_and_a_checkpoint_that_is_not_train_texts(text, tmp_path, capsys):
    path = tmp_path / "m.npz"
    assert run(text, *RUN, "--save", path) == 0
    other = tmp_path / "other.txt"
    other.write_text(TEXT.upper())
    capsys.readouterr()
    assert run(other, "--resume", path) == 2
    assert "is not the one the checkpoint was trained on: its SHA-256 is" in capsys.readouterr().err
    foreign = tmp_path / "foreign.npz"
    nn.save(nn.Sequential(nn.Linear(2, 2), nn.SoftmaxCrossEntropy(), nn.Mean()), foreign)
    assert run(text, "--resume", foreign) == 2
    assert capsys.readouterr().err == (f"train-text: error: --resume {foreign}: not a text model: this checkpoint was "
                                       "not written by train-text --save\n")


@pytest.mark.parametrize("change, message", [
    (lambda m, c: m["config"].update(batch_size="4"), r"its config has batch_size='4', expected an int from 1"),
    (lambda m, c: m["config"].update(model="gpt"), r"its config names the model 'gpt', expected one of transformer"),
    (lambda m, c: m["config"].update(lr=float("inf")), r"checkpoints hold standard JSON only"),
    (lambda m, c: m["config"]["text"].update(sha256="abc"), r"its record of the text is not train-text's"),
    (lambda m, c: m.update(iteration=-3), r"its iteration is -3, expected an int from 0"),
    (lambda m, c: m["history"][0].update(val_loss=None), r"history record 1 has val_loss=None, expected a finite"),
    (lambda m, c: m["history"][1].update(iter=8), r"history record 2 has iter=8, expected an int after the last"),
    (lambda m, c: m.update(rng_state={"bit_generator": "MT19937"}), r"the state of its training windows' generator is "
                                                                    r"invalid"),
    (lambda m, c: m.update(known_lines={"count": 1, "hashes": "00"}), r"it keeps known lines, but it is not a line"),
    (lambda m, c: m["config"].update(model="lstm"), r"the saved network is not this version's lstm model for \d+ "
                                                    r"characters and context 12"),
    (lambda m, c: c.model.parameters[2].__setitem__(0, np.nan), r"weight values in 1 of its \d+ parameter arrays are "
                                                                r"NaN or infinite"),
    (lambda m, c: "no optimizer", r"it holds no optimizer state, the gru model trains with RMSprop"),
])
def test_resume_refuses_a_bad_record_before_any_work(text, tmp_path, capsys, change, message):
    path = tmp_path / "m.npz"
    assert run(text, *RUN, "--save", path) == 0
    checkpoint = nn.load_checkpoint(path)
    try:
        keep = change(checkpoint.metadata["train_text"], checkpoint) != "no optimizer"
        nn.save(checkpoint.model, path, optimizer=checkpoint.optimizer if keep else None,
                metadata=checkpoint.metadata)
    except ValueError as error:  # what save itself refuses to write never reaches a resume
        assert re.search(message, str(error))
        return
    capsys.readouterr()
    assert run(text, "--resume", path, "--save", tmp_path / "next.npz") == 2
    err = capsys.readouterr().err
    assert re.fullmatch(rf"train-text: error: --resume {path}: .*{message}.*\n", err), err
    assert not (tmp_path / "next.npz").exists()


@pytest.mark.parametrize("argv, message", [
    (["--iters", "-1"], r"--iters must be >= 0, got -1"),
    (["--iters", "1e3"], r"--iters must be an int, got '1e3'"),
    (["--iters", "99999999999"], r"--iters must be at most 10,000,000, got 99999999999"),
    (["--batch-size", "0"], r"--batch-size must be >= 1, got 0"),
    (["--block-size", "0"], r"--block-size must be >= 1, got 0"),
    (["--block-size", "60000", "--batch-size", "60000"], r"--batch-size 60000 x --block-size 60000 is more than"),
    (["--lr", "0"], r"--lr must be a number > 0 and at most 1e\+06, got 0"),
    (["--lr", "nan"], r"--lr must be a number > 0 and at most 1e\+06, got nan"),
    (["--lr=-inf"], r"--lr must be a number > 0 and at most 1e\+06, got -inf"),
    (["--seed", "-2"], r"--seed must be >= 0, got -2"),
    (["--eval-interval", "0"], r"--eval-interval must be >= 1, got 0"),
    (["--threads", "0"], r"--threads must be auto or an int from 1 to 1024, got 0"),
    (["--block-size", "5000"], r".*richard.txt: the text is too short for windows of 5000 characters"),
])
def test_bad_options_are_one_line_before_any_work(text, tmp_path, capsys, argv, message):
    assert run(text, *argv, "--save", tmp_path / "m.npz") == 2
    err = capsys.readouterr().err
    assert re.fullmatch(rf"train-text: error: {message}.*\n", err), err
    assert not (tmp_path / "m.npz").exists()


@pytest.mark.parametrize("content, message", [
    (b"", r"the file is empty"),
    (b"zzzz", r"the text holds only the character 'z'"),
    (b"ab\xffcd", r"not UTF-8 text: byte 0xff at offset 2"),
])
def test_a_text_it_cannot_use_is_one_line(tmp_path, capsys, content, message):
    path = tmp_path / "t.txt"
    path.write_bytes(content)
    assert run(path) == 2
    assert re.fullmatch(rf"train-text: error: {path}: {message}.*\n", capsys.readouterr().err)
    assert run(tmp_path / "none.txt") == 2
    assert capsys.readouterr().err == f"train-text: error: {tmp_path / 'none.txt'}: no such file\n"


def test_no_output_may_replace_an_input(text, tmp_path, capsys):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    cached = data_dir / "tinyshakespeare.txt"
    checkpoint = tmp_path / "m.npz"
    assert run(text, *RUN, "--save", checkpoint) == 0
    (tmp_path / "x").mkdir()
    link = tmp_path / "link.txt"
    link.symlink_to(text)
    os.link(text, tmp_path / "hard.txt")
    before = text.read_bytes()
    for argv, names in [
        ([text, "--save", text], "FILE"), ([text, "--metrics", link], "FILE"), ([text, "--plot", tmp_path / "hard.txt"],
                                                                                "FILE"),
        ([text, "--data-dir", data_dir, "--metrics", cached], "the cached corpus"),
        (["--resume", checkpoint, "--save", checkpoint], "--resume"),
        ([text, "--save", tmp_path / "a.npz", "--metrics", tmp_path / "x" / ".." / "a.npz"], "--save"),
    ]:
        assert run(*argv) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"train-text: error: {names} ") and "name the same file; give each its own path" in err
        assert len(err.splitlines()) == 1
    assert text.read_bytes() == before and not cached.exists()
    assert run("--resume", checkpoint, "--metrics", text) == 2  # the checkpoint's own text, too
    assert "the text of the checkpoint" in capsys.readouterr().err


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
