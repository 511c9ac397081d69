"""``nnscratch download-mnist``: exit codes, the one message on stderr, quiet mode, and the
real command line in a subprocess."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import pytest

from nnscratch import cli
from nnscratch.commands import download_mnist as command

FILES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


def test_options_and_their_defaults():
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    args = parser.parse_args([])
    assert (args.data_dir, args.mirrors, args.force, args.quiet) == (None, None, False, False)
    args = parser.parse_args(["--data-dir", "d", "--mirror", "http://b.test/", "--mirror", "http://a.test/",
                              "--force", "--quiet"])
    assert args.data_dir == "d" and args.mirrors == ["http://b.test/", "http://a.test/"]  # order kept
    assert args.force and args.quiet
    assert isinstance(command.HELP, str) and "\n" not in command.HELP


def test_every_mirror_failing_exits_1_with_one_message_and_no_traceback(dead_url, tmp_path, capsys):
    root = tmp_path / "mnist"
    second = dead_url.replace("127.0.0.1", "localhost")
    code = cli.main(["download-mnist", "--data-dir", str(root), "--mirror", dead_url, "--mirror", second])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert err.startswith(f"Could not download MNIST into {root}: no mirror delivered train-images-idx3-ubyte.gz")
    assert f"{dead_url}train-images-idx3-ubyte.gz: cannot connect" in err
    assert f"{second}train-images-idx3-ubyte.gz: cannot connect" in err
    assert "--mirror URL" in err and f"put them in {root}" in err
    assert "Traceback" not in err


def test_success_then_cache_with_quiet(synthetic_mnist, capsys):
    argv = ["download-mnist", "--data-dir", str(synthetic_mnist.data_dir), "--mirror", synthetic_mnist.url]
    assert cli.main(argv + ["--quiet"]) == 0
    out, err = capsys.readouterr()
    assert out == f"MNIST is ready in {synthetic_mnist.data_dir} (4 files, SHA-256 verified)\n"
    assert err == ""  # --quiet: no progress bars
    assert sorted(os.listdir(synthetic_mnist.data_dir)) == sorted(FILES)
    synthetic_mnist.url.stop()
    assert cli.main(argv) == 0  # from the cache: the stopped server is not needed
    assert len(synthetic_mnist.url.requests) == 4
    assert cli.main(argv + ["--force"]) == 1  # --force must go to the (now stopped) mirror


def test_progress_bars_without_quiet(synthetic_mnist, capsys):
    assert cli.main(["download-mnist", "--data-dir", str(synthetic_mnist.data_dir),
                     "--mirror", synthetic_mnist.url]) == 0
    err = capsys.readouterr().err
    assert all(f"{name}: 100%" in err for name in FILES)


def test_mirror_from_the_environment(dead_url, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("NNSCRATCH_MNIST_MIRROR", dead_url)
    monkeypatch.setenv("NNSCRATCH_DATA_DIR", str(tmp_path / "env-dir"))
    assert cli.main(["download-mnist", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert f"into {tmp_path / 'env-dir'}:" in err and f"{dead_url}train-images-idx3-ubyte.gz" in err


def test_a_malformed_mirror_exits_2_with_one_line(tmp_path, capsys):
    assert cli.main(["download-mnist", "--data-dir", str(tmp_path), "--mirror", "ftp://x.test/"]) == 2
    err = capsys.readouterr().err
    assert err == "download-mnist: error: mirrors: expected an http:// or https:// base URL, got 'ftp://x.test/'\n"


def test_an_unwritable_data_dir_exits_1_with_one_line(tmp_path, dead_url, capsys):
    (tmp_path / "file").write_text("a file, not a directory")
    assert cli.main(["download-mnist", "--data-dir", str(tmp_path / "file" / "mnist"), "--mirror", dead_url]) == 1
    err = capsys.readouterr().err
    assert err == f"download-mnist: {tmp_path / 'file' / 'mnist'}: Not a directory\n"


def run_module(*args, cwd):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NNSCRATCH_")}
    return subprocess.run([sys.executable, "-m", "nnscratch", "download-mnist", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_subprocess_every_mirror_failing(dead_url, tmp_path):
    result = run_module("--mirror", dead_url, cwd=tmp_path)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith(f"Could not download MNIST into {tmp_path / 'data' / 'mnist'}:")
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_subprocess_real_files_then_cache(mnist_mirror, dead_url, tmp_path):
    result = run_module("--data-dir", "here", "--mirror", mnist_mirror, "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"MNIST is ready in {tmp_path / 'here'} (4 files, SHA-256 verified)\n"
    assert sorted(os.listdir(tmp_path / "here")) == sorted(FILES)
    # second run: cache only; the only mirror given is dead, and it is not needed
    result = run_module("--data-dir", "here", "--mirror", dead_url, cwd=tmp_path)
    assert result.returncode == 0 and result.stderr == ""


@pytest.mark.parametrize("argv, env, message", [
    (["--deadline", "soon"], None, "download-mnist: error: --deadline: expected a number of seconds, got 'soon'\n"),
    (["--deadline", "0"], None, "download-mnist: error: --deadline: expected a number of seconds from 0.1 to 86400 "
                                "(a day), got 0.0\n"),
    (["--deadline", "1e10"], None, "download-mnist: error: --deadline: expected a number of seconds from 0.1 to "
                                   "86400 (a day), got 10000000000.0\n"),
    (["--deadline", "0.0001"], None, "download-mnist: error: --deadline: expected a number of seconds from 0.1 to "
                                     "86400 (a day), got 0.0001\n"),
    ([], "1e10", "download-mnist: error: $NNSCRATCH_DOWNLOAD_DEADLINE: expected a number of seconds from 0.1 to "
                 "86400 (a day), got 10000000000.0\n"),
    ([], "x", "download-mnist: error: $NNSCRATCH_DOWNLOAD_DEADLINE: expected a number of seconds, got 'x'\n"),
])
def test_a_bad_deadline_exits_2_with_one_line_before_any_download(tmp_path, dead_url, capsys, monkeypatch,
                                                                  argv, env, message):
    if env is not None:
        monkeypatch.setenv("NNSCRATCH_DOWNLOAD_DEADLINE", env)
    assert cli.main(["download-mnist", "--data-dir", str(tmp_path / "d"), "--mirror", dead_url, *argv]) == 2
    assert capsys.readouterr().err == message
    assert not (tmp_path / "d").exists()


def test_the_deadline_option_reaches_the_download(synthetic_mnist, http_server, capsys):
    trickling = http_server(synthetic_mnist.directory, faults={"train-images-idx3-ubyte.gz": "trickle"})
    assert cli.main(["download-mnist", "--data-dir", str(synthetic_mnist.data_dir), "--mirror", trickling,
                     "--deadline", "0.3", "--quiet"]) == 1
    assert "train-images-idx3-ubyte.gz: gave up after the 0.3 s deadline for one file" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["download-mnist", "report"])
def test_ctrl_c_during_a_download_is_one_line_exit_130_and_no_leftover(synthetic_mnist, http_server, tmp_path,
                                                                       command):
    import signal
    import time

    import nnscratch as nn

    if command == "report":
        pytest.importorskip("matplotlib")
    trickling = http_server(synthetic_mnist.directory, faults={f"{name}.gz": "trickle" for name in FILES})
    root = tmp_path / "mnist"
    data = ["--data-dir", str(root), "--mirror", trickling, "--quiet"]
    nn.save(nn.Sequential(nn.Linear(784, 10, rng=0)), tmp_path / "m.npz")
    argv = data if command == "download-mnist" else [str(tmp_path / "m.npz"), "--out", str(tmp_path / "r.png"), *data]
    env = {k: v for k, v in os.environ.items() if not k.startswith("NNSCRATCH_")}
    process = subprocess.Popen([sys.executable, "-m", "nnscratch", command, *argv], env=env, cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not trickling.sent.get("train-images-idx3-ubyte.gz") and time.monotonic() < deadline:
        time.sleep(0.05)  # until the transfer is under way
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130 and out == ""
    assert err == f"{command}: interrupted\n"
    assert os.listdir(root) == []  # the transfer's temporary file is gone
    assert not (tmp_path / "r.png").exists()
