"""train-mnist's options (nnscratch/commands/train_mnist_options.py), all checked before any work: bad
values and contradicting or doubled outputs are one line and exit 2; numeric options are bounded, so
that no value, however large, reaches the run as an OverflowError; --resume refuses a checkpoint
whose configuration or training metadata does not fit."""

from __future__ import annotations

import math
import os
import re

import pytest

import nnscratch as nn
from nnscratch.cli import main, train_mnist_main
from nnscratch.commands.train_mnist_options import INT_RANGES
from nnscratch.presets import SCHEDULES, make_schedule

from helpers.train_mnist_runs import options, run_to_params


HUGE = "1" + "0" * 400


@pytest.mark.parametrize("argv, message", [
    (["--epochs", HUGE, "--schedule", "step"], r"--epochs must be at most 10,000, got 100000000000\.\.\.\(401 digits\)"),
    (["--epochs", "10001"], "--epochs must be at most 10,000, got 10001"),
    (["--batch-size", HUGE], r"--batch-size must be at most 1,000,000, got 100000000000\.\.\.\(401 digits\)"),
    (["--limit", HUGE], "--limit must be at most 1,000,000, got 100000000000"),
    (["--seed", HUGE], "--seed must be at most 18,446,744,073,709,551,615, got 100000000000"),
    (["--seed", str(2**64)], "--seed must be at most 18,446,744,073,709,551,615, got 18446744073709551616"),
    (["--shift", HUGE], "--shift must be between 0 and 8 pixels, got 100000000000"),
    (["--threads", HUGE], r"--threads must be auto or an int from 1 to 1024, got 100000000000\.\.\.\(401 digits\)"),
    (["--epochs", "9" * 5000], r"--epochs must be an int, got '9{30}"),  # beyond int()'s 4300 digits
    (["--lr", HUGE], "--lr must be a finite number > 0, got inf"),
    (["--lr", "1e-400"], "--lr must be a finite number > 0, got 0"),
    (["--weight-decay", HUGE], "--weight-decay must be a finite number >= 0, got inf"),
    (["--momentum", "nan", "--optimizer", "sgd"], r"--momentum must be in \[0, 1\), got nan"),
])  # fmt: skip
def test_every_numeric_option_is_bounded_before_any_work(synthetic_mnist, capsys, argv, message):
    assert train_mnist_main(options(synthetic_mnist, *argv)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"train-mnist: error: ") and len(err) < 300 and err.count("\n") == 1
    assert re.search(message, err), err
    assert synthetic_mnist.url.requests == [] and not synthetic_mnist.data_dir.exists()


@pytest.mark.parametrize("schedule", sorted(SCHEDULES))
@pytest.mark.parametrize("lr", [1e-300, 3e-3, 1e300])
def test_every_schedule_of_every_allowed_run_gives_finite_rates(schedule, lr):
    low, high = INT_RANGES["epochs"]
    for epochs in (low, 1, 7, high):
        rule = make_schedule(schedule, lr, epochs)
        if rule is None:
            continue
        for t in (0.0, 0.5, epochs / 2, max(epochs - 1e-9, 0.0), epochs, 2 * epochs + 1):
            rate = rule(t)
            assert math.isfinite(rate) and 0 <= rate <= lr * (1 + 1e-12), (schedule, lr, epochs, t, rate)


def test_resume_refuses_a_contradicting_configuration(synthetic_mnist, tmp_path, capsys):
    path, _ = run_to_params(synthetic_mnist, tmp_path, "a", "--epochs", "1")
    capsys.readouterr()
    synthetic_mnist.url.requests.clear()
    assert train_mnist_main(options(synthetic_mnist, "--resume", str(path), "--model", "cnn")) == 2
    assert "--model cnn contradicts the checkpoint" in capsys.readouterr().err
    assert train_mnist_main(options(synthetic_mnist, "--resume", str(path), "--lr", "0.5")) == 2
    assert "--lr 0.5 contradicts the checkpoint" in capsys.readouterr().err
    foreign = tmp_path / "foreign.npz"
    nn.save(nn.Sequential(nn.Linear(784, 10), nn.SoftmaxCrossEntropy(), nn.Mean()), foreign)
    assert train_mnist_main(options(synthetic_mnist, "--resume", str(foreign))) == 2
    assert "was not written by train-mnist --save" in capsys.readouterr().err
    assert synthetic_mnist.url.requests == []


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--epochs", "-1"], "--epochs must be >= 0, got -1"),
        (["--lr", "0"], "--lr must be a finite number > 0, got 0"),
        (["--lr", "-0.1"], "--lr must be a finite number > 0, got -0.1"),
        (["--lr", "nan"], "--lr must be a finite number > 0, got nan"),
        (["--batch-size", "0"], "--batch-size must be >= 1, got 0"),
        (["--momentum", "1"], r"--momentum must be in \[0, 1\), got 1"),
        (["--momentum", "0.9"], "--momentum applies to --optimizer sgd or rmsprop only, got --optimizer adam"),
        (["--momentum", "0.9", "--optimizer", "adagrad"], "--momentum applies to --optimizer sgd or rmsprop only"),
        (["--momentum", "0.9", "--optimizer", "adamw"], "--momentum applies to --optimizer sgd or rmsprop only"),
        (["--weight-decay", "-1"], "--weight-decay must be a finite number >= 0"),
        (["--limit", "0"], "--limit must be >= 1, got 0"),
        (["--shift", "-1"], "--shift must be between 0 and 8 pixels, got -1"),
        (["--epochs", "x"], "--epochs must be an int, got 'x'"),
        (["--batch-size", "2.5"], r"--batch-size must be an int, got '2\.5'"),
        (["--lr", "fast"], "--lr must be a number, got 'fast'"),
        (["--momentum", "high"], "--momentum must be a number, got 'high'"),
        (["--weight-decay", "1e-4x"], "--weight-decay must be a number, got '1e-4x'"),
        (["--shift", "1.0"], r"--shift must be an int, got '1\.0'"),
        (["--seed", "x"], "--seed must be an int, got 'x'"),
        (["--seed", "-1"], "--seed must be >= 0, got -1"),
        (["--limit", ""], "--limit must be an int, got ''"),
        (["--threads", "0"], "--threads must be auto or an int from 1 to 1024, got 0"),
        (["--threads", "many"], "--threads must be auto or an int from 1 to 1024, got 'many'"),
        (["--save", "{tmp}/no/such/dir/m.npz"], "--save .*m.npz: the directory .*dir does not exist"),
        (["--save", "{tmp}"], "--save .*: is a directory, expected a file path"),
        (["--metrics", "{tmp}/missing/m.json"], "--metrics .*does not exist"),
        (["--resume", "{tmp}/none.npz"], "--resume .*none.npz: no such file"),
        (["--resume", "{tmp}/junk.npz"], r"--resume: .*junk\.npz: not a readable nnscratch checkpoint"),
    ],
)
def test_invalid_options_fail_before_any_work(synthetic_mnist, tmp_path, capsys, argv, message):
    (tmp_path / "junk.npz").write_bytes(b"junk" * 100)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert train_mnist_main(options(synthetic_mnist, *argv)) == 2
    err = capsys.readouterr().err
    assert re.search(f"train-mnist: error: {message}", err), err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1  # one line, no usage block
    assert synthetic_mnist.url.requests == []  # nothing downloaded: the check came first
    assert not synthetic_mnist.data_dir.exists()


@pytest.mark.parametrize("argv, expected", [([], "auto"), (["--threads", "auto"], "auto"), (["--threads", "2"], 2)])
def test_threads_option_reaches_fit(synthetic_mnist, monkeypatch, argv, expected):
    import nnscratch.train

    real_fit, seen = nnscratch.train.fit, []

    def spy(*args, threads, **kwargs):
        seen.append(threads)
        return real_fit(*args, threads=threads, **kwargs)

    monkeypatch.setattr(nnscratch.train, "fit", spy)
    assert train_mnist_main(options(synthetic_mnist, "--model", "softmax", "--epochs", "1", *argv)) == 0
    assert seen == [expected]


def test_unknown_model_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as info:
        train_mnist_main(["--model", "resnet"])
    assert info.value.code == 2
    assert "invalid choice: 'resnet'" in capsys.readouterr().err


def test_help_says_what_each_schedule_does_and_lists_every_optimizer(capsys):
    from nnscratch.presets import OPTIMIZERS, SCHEDULES

    with pytest.raises(SystemExit) as exit_info:
        main(["train-mnist", "--help"])
    assert exit_info.value.code == 0
    text = "".join(capsys.readouterr().out.split())  # argparse wraps lines, even after a hyphen
    assert "{" + ",".join(OPTIMIZERS) + "}" in text and "{" + ",".join(SCHEDULES) + "}" in text
    for name, what in SCHEDULES.items():
        assert "".join(f"{name}: {what}".split()) in text


# -- no output over another file of the run ----------------------------------------------------
@pytest.mark.parametrize("first, second, spelling", [
    ("--save", "--metrics", "same"), ("--resume", "--metrics", "same"), ("--resume", "--save", "relative"),
    ("--metrics", "--plot", "symlink"), ("--save", "--plot", "dotdot"), ("--resume", "--plot", "hardlink"),
])
def test_two_options_naming_one_file_are_refused_before_any_work(synthetic_mnist, tmp_path, monkeypatch, capsys,
                                                                 first, second, spelling):
    if second == "--plot":
        pytest.importorskip("matplotlib")
    target = tmp_path / "run.out"
    if first == "--resume":
        run_to_params(synthetic_mnist, tmp_path, "run", "--model", "softmax", "--epochs", "1")
        os.replace(tmp_path / "run.npz", target)
        capsys.readouterr()
        synthetic_mnist.url.requests.clear()
    before = target.read_bytes() if target.exists() else None
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    other = {"same": str(target), "relative": "../run.out", "dotdot": str(tmp_path / "sub" / ".." / "run.out")}.get(spelling)
    if spelling == "symlink":
        other = str(tmp_path / "link.out")
        os.symlink(target, other)
    if spelling == "hardlink":
        other = str(tmp_path / "hard.out")
        os.link(target, other)
    assert train_mnist_main(options(synthetic_mnist, first, str(target), second, other)) == 2
    err = capsys.readouterr().err
    assert f"train-mnist: error: {first} {target} and {second} {other} name the same file; give each its own path" in err
    assert len(err.strip().splitlines()) == 1
    assert synthetic_mnist.url.requests == []
    assert (target.read_bytes() if target.exists() else None) == before


# -- --resume checks the training metadata before any work --------------------------------------
def edit_metadata(path, change):
    """Rewrite a checkpoint's train_mnist metadata (or its model) through save, keeping the rest."""
    checkpoint = nn.load_checkpoint(path)
    keep_optimizer = change(checkpoint.metadata["train_mnist"], checkpoint) != "no optimizer"
    nn.save(checkpoint.model, path, optimizer=checkpoint.optimizer if keep_optimizer else None,
            epoch=checkpoint.epoch, metadata=checkpoint.metadata)


@pytest.mark.parametrize("change, message", [
    (lambda m, c: m["config"].update(batch_size="50"), r"the checkpoint's config has batch_size='50', expected an int"),
    (lambda m, c: m["config"].update(lr=[1]), r"the checkpoint's config has lr=\[1\], expected a finite number"),
    (lambda m, c: m["config"].update(model=["mlp"]), r"this checkpoint was not written by train-mnist --save"),
    (lambda m, c: m["config"].update(schedule="linear"), r"config has schedule='linear', expected one of constant, step, exponential, cosine, warmup-cosine, one-cycle"),
    (lambda m, c: m["config"].update(batch_size=0), r"the checkpoint's config is out of range \(--batch-size must be >= 1"),
    (lambda m, c: m["config"].update(epochs=True), r"config has epochs=True, expected an int"),
    (lambda m, c: m.update(history={"a": 1}), r"the checkpoint's history must list its 1 epochs"),
    (lambda m, c: m.update(history=[]), r"the checkpoint's history must list its 1 epochs"),
    (lambda m, c: m["history"][0].update(loss="low"), r"history record 1 has loss='low', expected a finite number"),
    (lambda m, c: m["history"][0].update(accuracy=2.0), r"history record 1 has accuracy=2.0, expected a number from 0 to 1"),
    (lambda m, c: m["history"][0].update(loss=-0.5), r"history record 1 has loss=-0.5, expected a number from 0 to inf"),
    (lambda m, c: m["history"][0].update(seconds=-1.0), r"history record 1 has seconds=-1.0, expected a number from 0 to inf"),
    (lambda m, c: m["history"][0].update(epoch=2), r"history record 1 is not a train-mnist epoch record"),
    (lambda m, c: m["history"][0].pop("seconds"), r"history record 1 is not a train-mnist epoch record"),
    (lambda m, c: m.update(shuffle_state={"bit_generator": "MT19937"}), r"the shuffling state is missing or invalid"),
    (lambda m, c: m["config"].update(model="mlp"), r"the saved network is not this version's mlp preset \(its config says --model mlp\); presets change between versions"),
    (lambda m, c: m["config"].update(optimizer="adam"), r"the checkpoint holds a SGD, its config says --optimizer adam"),
    (lambda m, c: "no optimizer", r"the checkpoint holds no optimizer state"),
])
def test_resume_refuses_bad_training_metadata_before_any_work(synthetic_mnist, tmp_path, capsys, change, message):
    path, _ = run_to_params(synthetic_mnist, tmp_path, "a", "--model", "softmax", "--epochs", "1")
    edit_metadata(path, change)
    capsys.readouterr()
    synthetic_mnist.url.requests.clear()
    assert train_mnist_main(options(synthetic_mnist, "--resume", str(path), "--epochs", "2")) == 2
    err = capsys.readouterr().err
    assert re.search(rf"train-mnist: error: --resume {re.escape(str(path))}: .*{message}", err), err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert synthetic_mnist.url.requests == []  # refused before loading the data, let alone training
