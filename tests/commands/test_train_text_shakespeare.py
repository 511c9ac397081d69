"""train-text without a FILE: tiny shakespeare downloaded on first use from a loopback mirror of the
shared copy, cached, checked; and the default model, the transformer, resumed bit for bit."""

from __future__ import annotations

import re

import numpy as np
import pytest

import nnscratch as nn
from nnscratch.cli import train_text_main
from nnscratch.text_training import TextTraining

FEW = ["--model", "rnn", "--iters", "4", "--eval-interval", "2", "--batch-size", "2", "--block-size", "8",
       "--threads", "1", "--quiet"]


def run(*argv):
    return train_text_main([str(a) for a in argv])


def test_tiny_shakespeare_is_downloaded_once_then_read_from_the_cache(text_mirror, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("NNSCRATCH_TEXT_DIR", raising=False)
    assert run(*FEW, "--data-dir", tmp_path / "text", "--mirror", text_mirror, "--save", tmp_path / "m.npz") == 0
    out = capsys.readouterr().out
    assert re.match(r"validation loss \d\.\d{4} nats per character \(\d\.\d{4} bits\) over the whole validation split "
                    r"\(111,540 characters\); rnn, 4 iterations", out)
    assert text_mirror.requests == ["/tinyshakespeare.txt"]
    assert (tmp_path / "text" / "tinyshakespeare.txt").stat().st_size == 1_115_394
    config = nn.load_checkpoint(tmp_path / "m.npz").metadata["train_text"]["config"]
    assert config["text"] == {"source": "tinyshakespeare", "characters": 1_115_394,
                              "sha256": "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"}
    # again, and resumed: the cache, no request
    assert run("--resume", tmp_path / "m.npz", "--iters", "6", "--data-dir", tmp_path / "text", "--mirror",
               text_mirror, "--quiet") == 0
    assert text_mirror.requests == ["/tinyshakespeare.txt"]


def test_a_dead_mirror_is_the_download_message_and_exit_1(dead_url, tmp_path, capsys):
    assert run(*FEW, "--data-dir", tmp_path, "--mirror", dead_url) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"Could not download tiny shakespeare into {tmp_path / 'tinyshakespeare.txt'}: no mirror "
                          "delivered it.\nTried, in order:\n")
    assert f"  {dead_url}tinyshakespeare.txt: cannot connect" in err and "Traceback" not in err


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


def test_a_trickling_mirror_is_left_for_the_next_within_the_deadline(text_mirror, http_server, tmp_path, capsys):
    slow = http_server(text_mirror.directory, faults={"tinyshakespeare.txt": "trickle"}, trickle_interval=0.5)
    assert run(*FEW, "--data-dir", tmp_path, "--mirror", slow, "--mirror", text_mirror, "--deadline", "1") == 0
    assert text_mirror.requests == ["/tinyshakespeare.txt"]
    assert (tmp_path / "tinyshakespeare.txt").stat().st_size == 1_115_394


def test_ctrl_c_during_the_download_is_one_line_and_130(text_mirror, tmp_path, capsys, monkeypatch):
    from nnscratch.data import download

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(download, "fetch_verified", interrupted)
    assert run(*FEW, "--data-dir", tmp_path, "--mirror", text_mirror) == 130
    assert capsys.readouterr().err == "train-text: interrupted\n"
    assert list(tmp_path.iterdir()) == []


def test_the_transformer_resumed_after_an_interrupt_equals_the_run_bit_for_bit(tmp_path, monkeypatch, capsys):
    text = tmp_path / "t.txt"
    text.write_text("O Romeo, Romeo, wherefore art thou Romeo?\nDeny thy father and refuse thy name.\n" * 30)
    small = ["--iters", "9", "--eval-interval", "3", "--batch-size", "3", "--block-size", "16", "--threads", "1",
             "--quiet"]
    assert run(text, *small, "--save", tmp_path / "whole.npz") == 0
    real_step = TextTraining.step

    def step(self, index):
        if index == 5:
            raise KeyboardInterrupt
        return real_step(self, index)

    monkeypatch.setattr(TextTraining, "step", step)
    assert run(text, *small, "--save", tmp_path / "part.npz") == 130
    monkeypatch.undo()
    assert run("--resume", tmp_path / "part.npz", "--threads", "1", "--quiet", "--save", tmp_path / "end.npz") == 0
    whole, end = (nn.load_checkpoint(tmp_path / f"{name}.npz") for name in ("whole", "end"))
    assert end.metadata["train_text"]["config"]["model"] == "transformer"
    for a, b in zip(whole.model.parameters, end.model.parameters):
        np.testing.assert_array_equal(a, b)
    for key, value in whole.optimizer.state_dict().items():
        np.testing.assert_array_equal(value, end.optimizer.state_dict()[key])


@pytest.mark.slow
def test_the_default_transformer_learns_tiny_shakespeare(text_mirror, tmp_path, capsys):
    """200 iterations of the default recipe bring the whole-split loss from ln(65) = 4.17 below 2.6."""
    assert run("--iters", "200", "--data-dir", tmp_path, "--mirror", text_mirror, "--quiet") == 0
    loss = float(re.match(r"validation loss (\d\.\d+)", capsys.readouterr().out).group(1))
    assert loss < 2.6
