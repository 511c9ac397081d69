"""commands/training.py, the parts train-mnist and train-text share: numbers read from text and bounded
in one line each, SIGTERM stopping a run as Ctrl-C does (exit 143, 130), and outputs that cannot be
written reported in one line while the run goes on."""

from __future__ import annotations

import errno
import json
import math
import os
import signal
from types import SimpleNamespace

import pytest

from nnscratch.commands.common import UsageError
from nnscratch.commands.training import (
    Outputs, Terminated, check_int_range, interrupt_exit_code, number_text, read_numbers, read_threads, run_training,
    stopped, write_json,
)


def test_numbers_are_read_in_place_and_a_bad_one_names_its_option():
    args = SimpleNamespace(iters="12", lr="3e-4", batch_size=None)
    read_numbers(args, {"iters": int, "lr": float, "batch_size": int})
    assert (args.iters, args.lr, args.batch_size) == (12, 3e-4, None) and type(args.iters) is int
    with pytest.raises(UsageError, match=r"^--batch-size must be an int, got '1\.5'$"):
        read_numbers(SimpleNamespace(batch_size="1.5"), {"batch_size": int})
    with pytest.raises(UsageError, match=r"^--lr must be a number, got 'fast'$"):
        read_numbers(SimpleNamespace(lr="fast"), {"lr": float})
    with pytest.raises(UsageError, match=r"^--iters must be an int, got '9999999999"):
        read_numbers(SimpleNamespace(iters="9" * 5000), {"iters": int})  # past int()'s 4300 digits


@pytest.mark.parametrize("text, expected", [(None, "auto"), ("auto", "auto"), ("1", 1), ("1024", 1024)])
def test_threads_auto_or_a_count(text, expected):
    assert read_threads(text) == expected


@pytest.mark.parametrize("text, message", [
    ("0", "--threads must be auto or an int from 1 to 1024, got 0"),
    ("1025", "--threads must be auto or an int from 1 to 1024, got 1025"),
    ("two", "--threads must be auto or an int from 1 to 1024, got 'two'"),
    ("9" * 30, "--threads must be auto or an int from 1 to 1024, got 999999999999...(30 digits)"),
])
def test_a_bad_thread_count_is_one_line(text, message):
    with pytest.raises(UsageError) as caught:
        read_threads(text)
    assert str(caught.value) == message


def test_bounds_name_the_option_and_cut_long_numbers_short():
    check_int_range("--iters", 5, 0, 10)
    with pytest.raises(UsageError, match=r"^--iters must be >= 1, got 0$"):
        check_int_range("--iters", 0, 1, 10)
    with pytest.raises(UsageError, match=r"^--iters must be at most 10,000, got 10001$"):
        check_int_range("--iters", 10_001, 0, 10_000)
    assert number_text(10**23) == "1" + "0" * 23 and number_text(10**24) == "100000000000...(25 digits)"


def test_run_training_one_line_for_usage_errors_ctrl_c_and_sigterm(capsys):
    def bad(args):
        raise UsageError("--lr must be a number > 0")

    assert run_training("train-x", bad, None) == 2
    assert capsys.readouterr().err == "train-x: error: --lr must be a number > 0\n"

    def interrupted(args):
        raise KeyboardInterrupt

    assert run_training("train-x", interrupted, None) == 130
    assert capsys.readouterr().err == "train-x: interrupted\n"

    def terminated(args):
        os.kill(os.getpid(), signal.SIGTERM)  # the handler raises Terminated here
        raise AssertionError("SIGTERM did not stop the body")

    assert run_training("train-x", terminated, None) == 143
    assert capsys.readouterr().err == "train-x: terminated\n"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is gone after the run
    assert interrupt_exit_code(Terminated()) == 143 and stopped(Terminated()) == "terminated"
    assert interrupt_exit_code(KeyboardInterrupt()) == 130 and stopped(KeyboardInterrupt()) == "interrupted"


def test_an_output_that_cannot_be_written_is_one_line_and_the_run_goes_on(tmp_path, capsys):
    outputs = Outputs("train-x", {"metrics": tmp_path / "m.json", "save": tmp_path / "m.npz"})
    (tmp_path / "m.npz").write_text("old")

    def full(path):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    assert outputs.write("save", "the checkpoint", full) is False
    assert outputs.write("metrics", "the metrics", lambda data, path: write_json(data, path), {"loss": 1.5}) is True
    assert capsys.readouterr().err == (f"train-x: could not write the checkpoint {tmp_path / 'm.npz'}: No space left "
                                       "on device; the previous file there is unchanged\n")
    assert outputs.failed == ["save"] and "save" in outputs and "plot" not in outputs
    assert json.loads((tmp_path / "m.json").read_text()) == {"loss": 1.5}


def test_metrics_are_standard_json_only(tmp_path):
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        write_json({"loss": math.nan}, tmp_path / "m.json")
    assert not (tmp_path / "m.json").exists() and os.listdir(tmp_path) == []
