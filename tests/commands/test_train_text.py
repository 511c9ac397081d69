"""The train-text command end to end, in-process, on small texts with small settings (the rnn preset,
batches of a few windows): what it prints and writes. Its options, text, loop and checkpoint record
are tested beside their modules (test_train_text_options.py, test_train_text_data.py,
test_train_text_loop.py, test_text_checkpoint.py)."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import nnscratch as nn
from nnscratch.cli import main, train_text_main
from nnscratch.data.text import CharCorpus, LineCorpus
from nnscratch.text_presets import PRESETS
from nnscratch.text_training import TextTraining, seeded

VERSE = ("Shall I compare thee to a summer's day?\nThou art more lovely and more temperate:\n"
         "Rough winds do shake the darling buds of May,\nAnd summer's lease hath all too short a date;\n") * 12
NAMES = ["emma", "olivia", "ava", "isabella", "sophia", "mia", "charlotte", "amelia", "harper", "evelyn", "abigail",
         "emily", "ella", "elizabeth", "camila", "luna", "sofia", "avery", "mila", "aria", "scarlett", "penelope",
         "layla", "chloe", "victoria", "madison", "eleanor", "grace", "nora", "riley"]
METRIC_KEYS = {"config", "history", "iterations", "validation_loss", "validation_bits_per_char", "validation_split",
               "train_seconds", "tokens_per_second", "vocabulary", "sample"}
SMALL = ["--model", "rnn", "--iters", "30", "--eval-interval", "10", "--batch-size", "4", "--block-size", "16",
         "--threads", "1", "--quiet"]


@pytest.fixture
def verse(text_file):
    return text_file("verse.txt", VERSE)


@pytest.fixture
def names(tmp_path):
    path = tmp_path / "names.txt"
    path.write_text("\n".join(NAMES * 2 + [n[::-1] for n in NAMES]) + "\n")
    return path


def run(*argv, data_dir=None):
    """train-text's exit code, with a data directory that no test shares."""
    return train_text_main([*map(str, argv), *(["--data-dir", str(data_dir)] if data_dir else [])])


def test_trains_reports_the_whole_split_loss_and_a_sample(verse, tmp_path, capsys):
    save, metrics = tmp_path / "m.npz", tmp_path / "metrics.json"
    assert run(verse, *SMALL, "--save", save, "--metrics", metrics) == 0
    out = capsys.readouterr().out.splitlines()
    found = re.fullmatch(r"validation loss (\d\.\d{4}) nats per character \((\d\.\d{4}) bits\) over the whole validation "
                         r"split \(([\d,]+) characters\); rnn, 30 iterations, [\d.]+ s training", out[0])
    assert found, out[0]
    assert out[1] == "sample (300 characters, temperature 0.8):"
    sample = "\n".join(out[2:])
    assert len(sample) == 300 - (sample.endswith("\n")) and set(sample) <= set(VERSE)
    corpus = CharCorpus(VERSE)
    assert int(found.group(3).replace(",", "")) == len(corpus.validation)
    # the loss printed is the loss of the saved weights over the whole validation split, recomputed
    checkpoint = nn.load_checkpoint(save)
    training = TextTraining(checkpoint.model, checkpoint.optimizer, corpus, seeded(0)[1], batch_size=4,
                            block_size=16, schedule=lambda i: 0.1, max_grad_norm=5.0, seed=0)
    assert abs(training.validation_loss() - float(found.group(1))) < 5e-5
    assert math.isclose(float(found.group(2)), float(found.group(1)) / math.log(2), abs_tol=2e-4)
    data = json.loads(metrics.read_text())
    assert set(data) == METRIC_KEYS
    assert data["sample"] == sample and data["iterations"] == 30 and data["vocabulary"] == "".join(sorted(set(VERSE)))
    assert [r["iter"] for r in data["history"]] == [10, 20, 30]
    assert data["config"]["text"]["characters"] == len(VERSE) and data["config"]["text"]["source"] == str(verse)
    record = checkpoint.metadata["train_text"]
    assert record["iteration"] == 30 and record["validation_loss"] == data["validation_loss"]
    assert record["vocabulary"] == data["vocabulary"] and record["known_lines"] is None


def test_the_nnscratch_dispatch_and_the_presets_defaults(verse, tmp_path, capsys):
    assert main(["train-text", str(verse), "--model", "gru", "--iters", "3", "--eval-interval", "2", "--quiet",
                 "--metrics", str(tmp_path / "m.json")]) == 0
    config = json.loads((tmp_path / "m.json").read_text())["config"]
    preset = PRESETS["gru"]
    assert (config["batch_size"], config["block_size"], config["lr"], config["seed"]) == (
        preset.batch_size, preset.block_size, preset.lr, 0)
    assert [r["iter"] for r in json.loads((tmp_path / "m.json").read_text())["history"]] == [2, 3]


def test_same_seed_same_run_other_seed_another(verse, tmp_path, capsys):
    def metrics(seed):
        path = tmp_path / f"m{seed}.json"
        assert run(verse, *SMALL, "--seed", seed, "--metrics", path) == 0
        data = json.loads(path.read_text())
        for key in ("train_seconds", "tokens_per_second"):
            data.pop(key)
        for record in data["history"]:
            record.pop("seconds")
        return data

    assert metrics(3) == metrics(3)
    assert metrics(3)["validation_loss"] != metrics(4)["validation_loss"]


def test_progress_the_estimates_and_the_plan_go_to_stderr(verse, capsys):
    assert run(verse, *[a for a in SMALL if a != "--quiet"]) == 0
    captured = capsys.readouterr()
    assert re.search(r"train-text: rnn \([\d,]+ parameters\), iterations 1-30, batch 4, \d+ distinct characters, "
                     r"[\d,]+ training and [\d,]+ validation characters, windows of 16, seed 0", captured.err)
    estimates = re.findall(r"iteration (\d+)/30: loss \d\.\d{4}; estimates: train \d\.\d{4}, val \d\.\d{4} nats/char",
                           captured.err)
    assert estimates == ["10", "20", "30"]
    assert "Traceback" not in captured.err and captured.out.startswith("validation loss ")


def test_line_mode_trains_on_lines_and_samples_new_ones(names, tmp_path, capsys):
    save, metrics = tmp_path / "names.npz", tmp_path / "m.json"
    assert run(names, "--lines", *SMALL[:-5], "--threads", "1", "--quiet", "--save", save, "--metrics", metrics) == 0
    out = capsys.readouterr().out.splitlines()
    corpus = LineCorpus(names.read_text())
    assert re.fullmatch(rf"validation loss \d\.\d{{4}} nats per character .* over the whole validation split "
                        rf"\({len(corpus.validation_lines)} lines\); rnn, 30 iterations, .*", out[0])
    assert out[1] == "sample (new lines, temperature 0.8):"
    known = set(names.read_text().split())
    assert out[2:] and not set(out[2:]) & known and len(set(out[2:])) == len(out[2:])
    config = json.loads(metrics.read_text())["config"]
    assert config["lines"] is True and config["block_size"] == max(map(len, NAMES)) + 1
    record = nn.load_checkpoint(save).metadata["train_text"]
    assert record["known_lines"]["count"] == len(known)


def test_plot_writes_a_png(verse, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    plot = tmp_path / "loss.png"
    assert run(verse, *SMALL, "--plot", plot) == 0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_help_says_what_each_model_is(capsys):
    with pytest.raises(SystemExit):
        train_text_main(["--help"])
    out = capsys.readouterr().out
    for preset in PRESETS.values():
        assert preset.summary[:40] in " ".join(out.split())
    assert "nats per character" in out and "exit codes: 0 done" in out


def test_the_console_script_runs():
    found = subprocess.run([sys.executable, "-c", "from nnscratch.cli import train_text_main; train_text_main()",
                            "--version"], capture_output=True, text=True)
    assert found.returncode == 0 and found.stdout.startswith("train-text ")


def test_a_reader_that_leaves_or_a_full_stdout_is_no_traceback(verse, tmp_path):
    argv = [sys.executable, "-m", "nnscratch", "train-text", str(verse), *SMALL, "--save", str(tmp_path / "m.npz")]
    reader_gone = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    reader_gone.stdout.close()  # as `train-text | head` once head has its lines
    assert reader_gone.wait(timeout=120) == 0 and reader_gone.stderr.read() == ""
    assert (tmp_path / "m.npz").is_file()
    if not os.path.exists("/dev/full"):
        return
    with open("/dev/full", "w") as full:
        result = subprocess.run(argv, stdout=full, stderr=subprocess.PIPE, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr == "train-text: could not write the result to the standard output: No space left on device\n"


def test_out_of_memory_is_one_line(verse, monkeypatch, capsys):
    def step(self, index):
        raise MemoryError

    monkeypatch.setattr(TextTraining, "step", step)
    assert run(verse, *SMALL) == 1
    err = capsys.readouterr().err
    assert err == "train-text: out of memory: take a smaller --batch-size (now 4) or --block-size (now 16)\n"


def test_nothing_to_train_still_reports(verse, tmp_path, capsys):
    assert run(verse, *SMALL, "--iters", "0", "--metrics", tmp_path / "m.json") == 0
    assert capsys.readouterr().out.startswith("validation loss ")
    data = json.loads((tmp_path / "m.json").read_text())
    assert data["iterations"] == 0 and data["history"] == [] and data["tokens_per_second"] is None
    assert np.isfinite(data["validation_loss"])


@pytest.mark.slow
def test_the_default_transformer_learns_tiny_shakespeare(text_mirror, tmp_path, capsys):
    """200 iterations of the default recipe bring the whole-split loss from ln(65) = 4.17 below 2.6."""
    assert run("--iters", "200", "--data-dir", tmp_path, "--mirror", text_mirror, "--quiet") == 0
    loss = float(re.match(r"validation loss (\d\.\d+)", capsys.readouterr().out).group(1))
    assert loss < 2.6


def test_the_line_sample_of_a_model_that_only_repeats_its_lines_is_bounded(monkeypatch):
    # it drew 50 x 300 + 100 lines for a 300-character sample: 9 minutes after 11 s of training for a
    # transformer that had learnt its two lines of 60 characters
    from nnscratch.commands import train_text
    from nnscratch.commands.text_checkpoint import known_lines
    from nnscratch.data.text import Vocabulary

    vocabulary, line = Vocabulary("\nab"), "ab" * 30

    class Repeats:
        layers, calls = [], 0

        def forward(self, ids):
            Repeats.calls += 1
            written = ids.shape[1] - 1  # the ids read so far: the start marker, then the line
            logits = np.full((*ids.shape, 3), -1e4, np.float32)
            logits[..., 0 if written == len(line) else vocabulary.chars.index(line[written])] = 0.0
            return logits

    class Training:
        model = Repeats()

    class Corpus:
        pass

    Corpus.vocabulary = vocabulary
    config = {"block_size": 61, "seed": 0, "lines": True}
    assert train_text._sample(Training(), config, Corpus(), known_lines([line])) == ""
    assert Repeats.calls <= train_text.SAMPLE_DRAWN + 61  # the characters drawn in all, the last line finished


def test_a_resume_asked_for_fewer_iterations_than_done_reports_the_iterations_done(verse, tmp_path, capsys):
    # the model has 30 iterations behind it; the summary said "rnn, 10 iterations"
    assert train_text_main([str(verse), *SMALL, "--save", str(tmp_path / "m.npz")]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert train_text_main(["--resume", str(tmp_path / "m.npz"), "--iters", "10", "--quiet"]) == 0
    again = capsys.readouterr().out.splitlines()[0]
    untimed = [re.sub(r"[\d.]+ s training$", "", line) for line in (first, again)]
    assert "; rnn, 30 iterations, " in first
    assert untimed[0] == untimed[1]  # the same model, the same loss


def test_an_empty_line_sample_says_why(tmp_path, capsys):
    # a model that only writes its training lines printed "sample (new lines, ...):" over an empty line
    (tmp_path / "ab.txt").write_text("ab\n" * 100)
    assert train_text_main([str(tmp_path / "ab.txt"), "--lines", *SMALL]) == 0
    out = capsys.readouterr().out
    assert out.endswith("sample (new lines, temperature 0.8):\n(none: no line that is not in the text, within the "
                        "3,000 characters drawn)\n")


def test_two_processes_train_the_same_model_as_one(verse, tmp_path, capsys):
    """Each batch split between two processes: the same run as one process's, up to rounding (a few
    steps: rounding differences grow as training goes on)."""
    def result(*fixed):
        path = tmp_path / f"m{len(fixed)}{fixed[-1]}.json"
        assert run(verse, *SMALL[:2], "--iters", "6", "--eval-interval", "3", *SMALL[6:10], *fixed,
                   "--metrics", path) == 0
        return json.loads(path.read_text()), capsys.readouterr().err

    (one, _), (two, err) = result("--processes", "1"), result("--processes", "2")
    assert "batch 4 shared by 2 processes," in err
    assert two["validation_loss"] == pytest.approx(one["validation_loss"], rel=1e-5)
    for a, b in zip(one["history"], two["history"]):
        assert b["val_loss"] == pytest.approx(a["val_loss"], rel=1e-5)


def test_a_worker_process_that_dies_is_one_line(verse, monkeypatch, capsys):
    import signal

    real_step = TextTraining.step

    def step(self, index):
        if index == 3:
            os.kill(self.parallel._workers[0][0].pid, signal.SIGKILL)
            self.parallel._workers[0][0].join(10)
        return real_step(self, index)

    monkeypatch.setattr(TextTraining, "step", step)
    assert run(verse, *SMALL[:-3], "--processes", "2", "--quiet") == 1
    assert capsys.readouterr().err == ("train-text: worker process nnscratch-worker-1 exited (code -9) during the step; "
                                       "try --processes 1\n")


def test_auto_processes_that_cannot_start_train_in_one_process(verse, monkeypatch, capsys):
    from nnscratch.parallel import DataParallel

    def refuse(self):
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(DataParallel, "_start", refuse)
    monkeypatch.setattr("nnscratch.parallel.usable_cpus", lambda: 2)
    argv = [*SMALL[:2], "--iters", "100", "--eval-interval", "50", *SMALL[6:10]]
    assert run(verse, *argv) == 0
    err = capsys.readouterr().err
    assert "batch 4 shared by 2 processes," in err
    assert ("train-text: could not start worker processes (OSError: [Errno 24] Too many open files); training in one "
            "process\n") in err
    assert run(verse, *argv, "--processes", "2") == 1  # asked for: an error
    assert capsys.readouterr().err.endswith("Too many open files); try --processes 1\n")
