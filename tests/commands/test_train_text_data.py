"""train-text's text (commands/train_text_data.py): a user's file it cannot use is one line; tiny
shakespeare downloaded on first use from a loopback mirror of the shared copy, cached, checked, a dead
or trickling mirror left for the next, Ctrl-C during the download one line."""

from __future__ import annotations

import re

import pytest

import nnscratch as nn
from helpers.text_runs import FEW, run



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


def test_a_file_name_byte_that_is_not_utf8_is_shown_as_the_other_commands_show_it(tmp_path, capsys):
    import os

    name = os.fsdecode(b"nope\xff.txt")  # the lone surrogate Python keeps for the byte 0xff
    assert run(tmp_path / name) == 2
    assert capsys.readouterr().err == f"train-text: error: {tmp_path}/nope\\xff.txt: no such file\n"


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


@pytest.mark.parametrize("longest, argv, message", [
    (70_000, [], r"the longest line has 70,000 characters: line mode needs a context of 70,001 \(the line and its "
                 r"end\), more than the 65,536 a context may have; leave out the long lines"),
    (40_000, ["--model", "rnn"], r"--batch-size 32 x a context of 40,001 \(the longest line and its end\) is more "
                                 r"than 1,048,576 characters a batch; take a smaller --batch-size or leave out the "
                                 r"long lines"),
])
def test_a_line_too_long_for_any_context_is_one_line_before_any_work(tmp_path, capsys, longest, argv, message):
    # line mode's context is the longest line + 1: one stray paragraph must not take it past the bounds the
    # options have (a step of gigabytes, and a checkpoint --resume would refuse)
    path = tmp_path / "names.txt"
    path.write_text("\n".join(["anna", "bob", "x" * longest, "carl"] * 3) + "\n")
    assert run(path, "--lines", *argv, "--iters", "1", "--save", tmp_path / "m.npz", "--quiet") == 2
    assert re.fullmatch(rf"train-text: error: {path}: {message}\n", capsys.readouterr().err)
    assert not (tmp_path / "m.npz").exists()
