"""train-text's record in a checkpoint (commands/text_checkpoint.py): --resume continues an interrupted run
bit for bit, extends a finished one, and refuses another configuration, another text, a checkpoint
that is not train-text's and every part of a bad record, in one line before any work."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import nnscratch as nn
from helpers.text_runs import RUN, TEXT, interrupt_at, run, weights



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
    (lambda m, c: m["history"][0].update(loss=-0.5), r"history record 1 has loss=-0.5, expected a finite number >= 0"),
    (lambda m, c: m["history"][1].update(seconds=-2.0), r"history record 2 has seconds=-2.0, expected a finite number >= 0"),
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
