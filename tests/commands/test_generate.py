"""nnscratch generate: text streamed from a train-text checkpoint, lines that are new, and one line for
every option or checkpoint it cannot use."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest

import nnscratch as nn
from nnscratch.cli import main, train_text_main

TEXT = ("To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n"
        "The slings and arrows of outrageous fortune,\nOr to take arms against a sea of troubles\n") * 10
NAMES = ["anna", "bob", "carl", "dora", "emil", "fred", "gina", "hugo", "ida", "jan", "kim", "lea", "max", "nina",
         "otto", "paul", "rosa", "sam", "tina", "ute", "vera", "will", "xena", "yann", "zoe"]
TRAIN = ["--model", "rnn", "--iters", "40", "--eval-interval", "20", "--batch-size", "8", "--threads", "1", "--quiet"]


@pytest.fixture(scope="module")
def text_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("text")
    (folder / "t.txt").write_text(TEXT)
    assert train_text_main([str(folder / "t.txt"), *TRAIN, "--block-size", "16", "--save", str(folder / "t.npz"),
                            "--metrics", str(folder / "m.json")]) == 0
    return folder / "t.npz"


@pytest.fixture(scope="module")
def line_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lines")
    (folder / "names.txt").write_text("\n".join(NAMES * 4) + "\n")
    assert train_text_main([str(folder / "names.txt"), "--lines", *TRAIN, "--save", str(folder / "n.npz")]) == 0
    return folder / "n.npz"


def generate(*argv):
    return main(["generate", *map(str, argv)])


def test_writes_the_prompt_then_the_tokens_the_same_for_a_seed(text_model, capsys):
    assert generate(text_model, "--prompt", "To be", "--tokens", 80, "--seed", 5) == 0
    first = capsys.readouterr().out
    assert first.startswith("To be") and len(first.rstrip("\n")) >= 85 and len(first) <= 86
    assert set(first) <= set(TEXT)
    assert generate(text_model, "--prompt", "To be", "--tokens", 80, "--seed", 5) == 0
    assert capsys.readouterr().out == first
    assert generate(text_model, "--prompt", "To be", "--tokens", 80, "--seed", 6) == 0
    assert capsys.readouterr().out != first


def test_the_sample_train_text_printed_is_generates_default(text_model, capsys):
    metrics = text_model.parent / "m.json"
    import json

    sample = json.loads(metrics.read_text())["sample"]
    assert generate(text_model, "--tokens", 300, "--temperature", 0.8) == 0
    assert capsys.readouterr().out.rstrip("\n") == sample.rstrip("\n")


def test_characters_are_flushed_as_they_are_drawn(text_model, monkeypatch):
    class Recorder(io.StringIO):
        def __init__(self):
            super().__init__()
            self.flushed = []

        def flush(self):
            self.flushed.append(self.getvalue())

    recorder = Recorder()
    monkeypatch.setattr("sys.stdout", recorder)
    assert generate(text_model, "--prompt", "Or", "--tokens", 20) == 0
    lengths = [len(text) for text in recorder.flushed]
    assert lengths[:21] == list(range(2, 23))  # the prompt, then one more character at each flush


def test_top_k_1_writes_the_most_likely_text_whatever_the_seed(text_model, capsys):
    outputs = set()
    for seed in (1, 2, 3):
        assert generate(text_model, "--prompt", "The ", "--tokens", 40, "--top-k", 1, "--seed", seed) == 0
        outputs.add(capsys.readouterr().out)
    assert len(outputs) == 1


def test_a_line_model_writes_new_lines_and_says_what_it_dropped(line_model, capsys):
    assert generate(line_model, "--count", 6, "--seed", 2) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert len(lines) == 6 and len(set(lines)) == 6 and not set(lines) & set(NAMES)
    assert all(line and set(line) <= set("".join(NAMES)) for line in lines)
    found = re.fullmatch(r"generate: 6 new lines from (\d+) drawn; dropped (.*)\n", captured.err)
    assert found, captured.err
    dropped = dict((what, int(n)) for n, what in re.findall(r"(\d+) (in the training text|drawn before|empty|not ended"
                                                           r" within \d+ characters)", found.group(2)))
    assert int(found.group(1)) == 6 + sum(dropped.values())


def test_keep_known_keeps_training_lines_and_the_prompt_begins_each(line_model, capsys):
    assert generate(line_model, "--count", 10, "--keep-known", "--seed", 0, "--prompt", "a") == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 10 and all(line.startswith("a") for line in lines)
    assert set(lines) & set(NAMES)  # known lines kept: "anna" is among them


@pytest.mark.parametrize("argv, message", [
    (["--tokens", "0"], r"--tokens must be >= 1, got 0"),
    (["--tokens", "x"], r"--tokens must be an int, got 'x'"),
    (["--tokens", "2000000"], r"--tokens must be at most 1,000,000, got 2000000"),
    (["--temperature", "0"], r"--temperature must be a number > 0 and at most 100, got 0"),
    (["--temperature", "nan"], r"--temperature must be a number > 0 and at most 100, got nan"),
    (["--top-k", "0"], r"--top-k must be >= 1, got 0"),
    (["--top-k", "500"], r"--top-k must be at most \d+, got 500"),
    (["--seed", "-1"], r"--seed must be >= 0, got -1"),
    (["--count", "3"], r"--count is for a line model \(train-text --lines\); this model writes text: use --tokens"),
    (["--prompt", "To bé"], r"--prompt has the character 'é' \(at position 4\), which is not in the model's vocabulary"),
])
def test_bad_options_are_one_line(text_model, capsys, argv, message):
    assert generate(text_model, *argv) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and re.fullmatch(rf"generate: error: {message}.*\n", captured.err), captured.err


@pytest.mark.parametrize("argv, message", [
    (["--tokens", "1e3"], "--tokens must be an int, got '1e3'"),
    (["--top-k", str(2**21)], "--top-k must be at most 1,048,576, got 2097152"),
    (["--temperature", "inf"], "--temperature must be a number > 0 and at most 100, got inf"),
    (["--seed", "9" * 400], "--seed must be at most 18,446,744,073,709,551,615, got 999999999999...(400 digits)"),
])
def test_numbers_are_bounded_before_the_checkpoint_is_read(tmp_path, capsys, argv, message):
    assert generate(tmp_path / "absent.npz", *argv) == 2
    assert capsys.readouterr().err == f"generate: error: {message}\n"


@pytest.mark.skipif(not __import__("os").path.exists("/dev/full"), reason="no /dev/full here")
def test_a_full_standard_output_is_one_line_and_exit_1(text_model):
    import subprocess
    import sys

    with open("/dev/full", "w") as full:
        result = subprocess.run([sys.executable, "-m", "nnscratch", "generate", str(text_model), "--tokens", "5000"],
                                stdout=full, stderr=subprocess.PIPE, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr == "generate: could not write the text to the standard output: No space left on device\n"


def test_a_line_model_refuses_tokens_and_a_prompt_with_a_line_break(line_model, capsys):
    assert generate(line_model, "--tokens", 5) == 2
    assert "--tokens is for a text model; this is a line model (train-text --lines): use --count" in capsys.readouterr().err
    assert generate(line_model, "--prompt", "a\nb") == 2
    assert "it cannot hold a line break" in capsys.readouterr().err


def test_a_checkpoint_that_is_not_a_text_model_is_refused(tmp_path, capsys):
    path = tmp_path / "mlp.npz"
    nn.save(nn.Sequential(nn.Linear(4, 2), nn.SoftmaxCrossEntropy(), nn.Mean()), path, metadata={"train_mnist": {}})
    assert generate(path) == 2
    assert capsys.readouterr().err == (f"generate: error: {path}: not a text model: this checkpoint was not written by "
                                       "train-text --save\n")
    assert generate(tmp_path / "none.npz") == 2
    assert "no such checkpoint" in capsys.readouterr().err
    (tmp_path / "junk.npz").write_bytes(b"junk")
    assert generate(tmp_path / "junk.npz") == 2
    assert len(capsys.readouterr().err.splitlines()) == 1


def test_broken_weights_and_a_broken_record_are_refused(text_model, tmp_path, capsys):
    checkpoint = nn.load_checkpoint(text_model)
    checkpoint.model.parameters[0][0, 0] = np.nan
    path = tmp_path / "nan.npz"
    nn.save(checkpoint.model, path, metadata=checkpoint.metadata)
    assert generate(path) == 2
    assert "NaN or infinite (did the training diverge?)" in capsys.readouterr().err
    checkpoint = nn.load_checkpoint(text_model)
    checkpoint.metadata["train_text"]["vocabulary"] = "ba"
    nn.save(checkpoint.model, path, metadata=checkpoint.metadata)
    assert generate(path) == 2
    assert "its vocabulary is not usable" in capsys.readouterr().err


def test_the_highest_temperature_the_option_allows_is_sampled(text_model, capsys):
    # --temperature is "in (0, 100]": 100 itself must write text, not fail inside the sampler
    assert generate(text_model, "--tokens", 30, "--temperature", 100, "--seed", 3) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and len(captured.out.rstrip("\n")) == 30 and set(captured.out) <= set(TEXT)


def test_a_line_prompt_longer_than_any_line_the_model_writes_is_a_bad_option(line_model, capsys):
    longest = nn.load_checkpoint(line_model).metadata["train_text"]["config"]["block_size"] - 1
    assert generate(line_model, "--prompt", "a" * (longest + 1), "--count", 2) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == (
        f"generate: error: --prompt has {longest + 1} characters; this line model writes lines of at most "
        f"{longest}\n")
    assert generate(line_model, "--prompt", "a" * longest, "--count", 1, "--keep-known") in (0, 1)  # may be kept


def test_a_tampered_record_that_the_network_cannot_follow_is_refused(text_model, line_model, tmp_path, capsys):
    path = tmp_path / "tampered.npz"
    checkpoint = nn.load_checkpoint(line_model)  # a line model's vocabulary always holds the line marker
    record = checkpoint.metadata["train_text"]
    record["vocabulary"] = "".join(sorted(record["vocabulary"].replace("\n", "~")))
    nn.save(checkpoint.model, path, metadata=checkpoint.metadata)
    assert generate(path, "--count", 2) == 2
    assert capsys.readouterr().err == (f"generate: error: {path}: it is a line model, and its vocabulary has no line "
                                       "marker ('\\n')\n")
    gpt = tmp_path / "gpt.npz"
    assert train_text_main([str(text_model.parent / "t.txt"), "--iters", "1", "--block-size", "8", "--batch-size",
                            "2", "--threads", "1", "--quiet", "--save", str(gpt)]) == 0
    capsys.readouterr()
    checkpoint = nn.load_checkpoint(gpt)  # a context longer than the positions the transformer has
    checkpoint.metadata["train_text"]["config"]["block_size"] = 9
    nn.save(checkpoint.model, path, metadata=checkpoint.metadata)
    assert generate(path, "--tokens", 20) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith(f"generate: error: {path}: Sampler: the model cannot read "
                                                          "a context of 9 ids (")
    assert captured.err.count("\n") == 1


def test_a_closed_standard_output_is_one_line_and_exit_1(text_model, line_model, capsys, monkeypatch):
    # `generate ... >&-`: Python's sys.stdout is None; text mode died with an AttributeError traceback,
    # line mode wrote its lines nowhere and exited 0
    import sys

    monkeypatch.setattr(sys, "stdout", None)
    for model, argv in ((text_model, ["--tokens", "5"]), (line_model, ["--count", "2"])):
        assert generate(model, *argv) == 1
        assert capsys.readouterr().err == "generate: the standard output is closed: nowhere to write the text\n"


def test_a_line_model_with_nothing_new_to_write_gives_up_soon(tmp_path, capsys):
    # it drew 50 lines per line asked for: --count 1000 of a model that only knows "ab" drew 50,100
    (tmp_path / "ab.txt").write_text("ab\n" * 100)
    assert train_text_main([str(tmp_path / "ab.txt"), "--lines", *TRAIN, "--save", str(tmp_path / "ab.npz")]) == 0
    capsys.readouterr()
    assert generate(tmp_path / "ab.npz", "--count", 1000) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == ("generate: 0 new lines from 1,000 drawn; dropped 1,000 in the training text\n"
                            "generate: stopped when 1,000 lines drawn in a row gave nothing new, with 0 of the 1,000 "
                            "new ones asked for\n")
