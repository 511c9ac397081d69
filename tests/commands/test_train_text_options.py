"""train-text's options (commands/train_text_options.py): every bad number, mirror and deadline refused in
one line before any work, and no output over an input (the text, the cached corpus, the checkpoint)
however it is spelled."""

from __future__ import annotations

import os
import re

import pytest

from helpers.text_runs import FEW, RUN, run



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
    (["--processes", "0"], r"--processes must be auto or an int from 1 to 64, got 0"),
    (["--processes", "65"], r"--processes must be auto or an int from 1 to 64, got 65"),
    (["--processes", "two"], r"--processes must be auto or an int from 1 to 64, got 'two'"),
    (["--model", "rnn", "--block-size", "5000"], r".*richard.txt: the text is too short for windows of 5000 characters"),
])
def test_bad_options_are_one_line_before_any_work(text, tmp_path, capsys, argv, message):
    assert run(text, *argv, "--save", tmp_path / "m.npz") == 2
    err = capsys.readouterr().err
    assert re.fullmatch(rf"train-text: error: {message}.*\n", err), err
    assert not (tmp_path / "m.npz").exists()


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


def test_a_malformed_mirror_is_a_usage_error(tmp_path, capsys):
    assert run(*FEW, "--data-dir", tmp_path, "--mirror", "ftp://example.org/") == 2
    assert capsys.readouterr().err == ("train-text: error: mirrors: expected an http:// or https:// base URL, got "
                                       "'ftp://example.org/'\n")


@pytest.mark.parametrize("argv, message", [
    (["--deadline", "1e10"], "--deadline: expected a number of seconds from 0.1 to 86400 (a day), got 10000000000.0"),
    (["--deadline", "0.0001"], "--deadline: expected a number of seconds from 0.1 to 86400 (a day), got 0.0001"),
    (["--deadline", "nan"], "--deadline: expected a number of seconds from 0.1 to 86400 (a day), got nan"),
    (["--deadline", "soon"], "--deadline: expected a number of seconds, got 'soon'"),
])
def test_a_deadline_out_of_range_is_refused_before_any_request(text_mirror, tmp_path, capsys, argv, message):
    assert run(*FEW, "--data-dir", tmp_path, "--mirror", text_mirror, *argv) == 2
    assert capsys.readouterr().err == f"train-text: error: {message}\n"
    assert text_mirror.requests == [] and list(tmp_path.iterdir()) == []


def test_a_bad_mirror_variable_is_refused_even_when_the_cache_would_serve(text_mirror, tmp_path, capsys, monkeypatch):
    assert run(*FEW, "--data-dir", tmp_path, "--mirror", text_mirror) == 0
    monkeypatch.setenv("NNSCRATCH_TEXT_MIRROR", "file:///etc/")
    assert run(*FEW, "--data-dir", tmp_path) == 2
    assert capsys.readouterr().err.endswith("train-text: error: $NNSCRATCH_TEXT_MIRROR: expected an http:// or "
                                            "https:// base URL, got 'file:///etc/'\n")


def test_help_names_every_preset_and_the_validation_split_as_printed(capsys):
    from nnscratch.cli import main

    with pytest.raises(SystemExit) as stopped:
        main(["train-text", "--help"])
    assert stopped.value.code == 0
    out = capsys.readouterr().out
    for preset in ("transformer", "lstm", "gru", "rnn"):
        assert re.search(rf"^  {preset} +\S", out, re.M), preset
    assert "(the last 10% of the text, or of the lines)" in out  # argparse does not %-format an epilog
    assert "%%" not in out


def test_the_transformers_attention_weights_are_bounded_before_any_work(text, tmp_path, capsys):
    # batch x context fits the token bound, but the attention keeps batch x 4 heads x context^2 weights a block
    assert run(text, "--model", "transformer", "--batch-size", "16", "--block-size", "4096", "--save",
               tmp_path / "m.npz") == 2
    assert capsys.readouterr().err == (
        "train-text: error: --batch-size 16 x --block-size 4096 squared is more than 16,777,216 attention weights a "
        "head (the transformer keeps them for its 16 heads, 1 GiB at that bound); take smaller ones\n")
    assert not (tmp_path / "m.npz").exists()
    assert run(text, "--model", "lstm", "--batch-size", "16", "--block-size", "4096", "--iters", "0") == 2
    assert "too short for windows of 4096" in capsys.readouterr().err  # only the transformer's weights grow so


@pytest.mark.parametrize("processes, threads, iters, cpus, expected", [
    ("auto", "auto", 2000, 2, (2, 1)),  # one process per CPU, BLAS at one thread in each
    ("auto", "auto", 2000, 16, (4, 1)),  # at most MAX_AUTO_PROCESSES
    ("auto", "auto", 2000, 1, (1, "auto")),
    ("auto", "auto", 99, 2, (1, "auto")),  # too short to pay for starting a worker
    ("auto", 2, 2000, 2, (1, 2)),  # a fixed --threads keeps one process (the bit-for-bit promise)
    (3, "auto", 10, 2, (3, 1)),  # a fixed --processes is taken as it is
    (2, 2, 10, 2, (2, 2)),
    (64, "auto", 10, 2, (64, 1)),  # more than the batch's windows: DataParallel uses one per window
])
def test_how_many_processes_a_run_takes(monkeypatch, processes, threads, iters, cpus, expected):
    import argparse

    from nnscratch.commands import train_text_options

    monkeypatch.setattr("nnscratch.parallel.usable_cpus", lambda: cpus)
    args = argparse.Namespace(processes=processes, threads=threads)
    assert train_text_options.processes_for(args, {"iters": iters, "batch_size": 12}) == expected
