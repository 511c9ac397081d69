"""Every command's outputs against its inputs and against special files (nnscratch/commands/common.py's
one rule), and an output that cannot be written after all: one line, what could be done still done.

The collisions are refused before any work: nothing read from the network, the input unchanged.
"""

from __future__ import annotations

import os
import re
import stat
from types import SimpleNamespace

import numpy as np
import pytest

import nnscratch as nn
from nnscratch.cli import main
from nnscratch.data import download_mnist

Image = pytest.importorskip("PIL.Image")
MNIST = "t10k-labels-idx1-ubyte"


@pytest.fixture
def run_files(synthetic_mnist, tmp_path):
    """A checkpoint, two digit images and a cached (synthetic) MNIST: what the commands read."""
    download_mnist(synthetic_mnist.data_dir, mirrors=[synthetic_mnist.url], progress=False)
    synthetic_mnist.url.requests.clear()
    nn.save(nn.Sequential(nn.Flatten(), nn.Linear(784, 10, rng=0)), tmp_path / "ck.npz")
    for name in ("a.png", "b.png"):
        pixels = np.full((40, 30), 255, dtype=np.uint8)
        pixels[5:35, 12:18] = 0
        Image.fromarray(pixels).save(tmp_path / name)
    data = ["--data-dir", str(synthetic_mnist.data_dir), "--mirror", synthetic_mnist.url, "--quiet"]
    return SimpleNamespace(dir=tmp_path, ck=str(tmp_path / "ck.npz"), a=str(tmp_path / "a.png"),
                           b=str(tmp_path / "b.png"), mnist=str(synthetic_mnist.data_dir / MNIST), data=data,
                           server=synthetic_mnist.url)


# (what, argv with OUT where the output goes, the option, the input it collides with, its label)
COLLISIONS = [
    ("predict", lambda f, out: ["predict", f.ck, f.a, "--show-input", out], "--show-input", "ck", "the checkpoint"),
    ("predict", lambda f, out: ["predict", f.ck, f.a, f.b, "--show-input", out], "--show-input", "a", "the image"),
    ("predict", lambda f, out: ["predict", f.ck, f.a, f.b, "--show-input", out], "--show-input", "b", "the image"),
    ("report", lambda f, out: ["report", f.ck, "--out", out, *f.data], "--out", "ck", "the checkpoint"),
    ("report", lambda f, out: ["report", f.ck, "--out", out, *f.data], "--out", "mnist", "the MNIST file"),
    ("export", lambda f, out: ["export", f.ck, out], "OUT", "ck", "the checkpoint"),
    ("train-mnist", lambda f, out: ["train-mnist", *f.data, "--plot", out], "--plot", "mnist", "the MNIST file"),
    ("train-mnist", lambda f, out: ["train-mnist", *f.data, "--metrics", out], "--metrics", "mnist", "the MNIST file"),
    ("train-mnist", lambda f, out: ["train-mnist", *f.data, "--save", out], "--save", "mnist", "the MNIST file"),
]


def spell(path: str, spelling: str, directory) -> str:
    """Another name for the same file: itself, a symbolic or hard link to it, a path through ``..``."""
    if spelling == "symlink":
        os.symlink(path, directory / "link")
        return str(directory / "link")
    if spelling == "hardlink":
        os.link(path, directory / "hard")
        return str(directory / "hard")
    if spelling == "dotdot":
        os.mkdir(os.path.join(os.path.dirname(path), "x"))
        return os.path.join(os.path.dirname(path), "x", "..", os.path.basename(path))
    return path


@pytest.mark.parametrize("spelling", ["same", "symlink", "hardlink", "dotdot"])
@pytest.mark.parametrize("command, argv, option, input_name, label", COLLISIONS,
                         ids=[f"{c[0]}-{c[2]}-{c[3]}" for c in COLLISIONS])
def test_no_output_replaces_an_input_however_it_is_spelled(run_files, capsys, spelling, command, argv, option,
                                                           input_name, label):
    if command in ("report", "train-mnist") and option in ("--out", "--plot"):
        pytest.importorskip("matplotlib")
    target = getattr(run_files, input_name)
    before = open(target, "rb").read()
    out = spell(target, spelling, run_files.dir)
    assert main(argv(run_files, out)) == 2
    captured = capsys.readouterr()
    prefix = {"export": "nnscratch export"}.get(command, command)
    assert captured.err == f"{prefix}: error: {label} {target} and {option} {out} name the same file; " \
                           "give each its own path\n"
    assert captured.out == ""
    assert open(target, "rb").read() == before and run_files.server.requests == []


def test_two_outputs_of_one_run_naming_one_file_are_refused(run_files, capsys):
    out = run_files.dir / "m.json"
    assert main(["train-mnist", *run_files.data, "--metrics", str(out), "--save", str(out)]) == 2
    assert capsys.readouterr().err == (f"train-mnist: error: --save {out} and --metrics {out} name the same file; "
                                       "give each its own path\n")


# -- special files: never replaced by a regular file ---------------------------------------------
OUTPUTS = [
    ("predict", lambda f, out: ["predict", f.ck, f.a, "--show-input", out], "--show-input"),
    ("report", lambda f, out: ["report", f.ck, "--out", out, *f.data], "--out"),
    ("export", lambda f, out: ["export", f.ck, out], "OUT"),
    ("train-mnist", lambda f, out: ["train-mnist", *f.data, "--metrics", out], "--metrics"),
    ("train-mnist", lambda f, out: ["train-mnist", *f.data, "--plot", out], "--plot"),
    ("train-mnist", lambda f, out: ["train-mnist", *f.data, "--save", out], "--save"),
]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
@pytest.mark.parametrize("special", ["fifo", "symlink to /dev/null"])
@pytest.mark.parametrize("command, argv, option", OUTPUTS, ids=[f"{c[0]}-{c[2]}" for c in OUTPUTS])
def test_a_fifo_or_device_is_never_replaced_by_an_output(run_files, capsys, special, command, argv, option):
    if option in ("--out", "--plot"):
        pytest.importorskip("matplotlib")
    out = run_files.dir / "node"
    if special == "fifo":
        os.mkfifo(out)
    else:
        os.symlink(os.devnull, out)
    assert main(argv(run_files, str(out))) == 2
    kind = "FIFO" if special == "fifo" else "character device"
    prefix = {"export": "nnscratch export"}.get(command, command)
    assert capsys.readouterr().err == (f"{prefix}: error: {option} {out}: not a regular file but a {kind}, "
                                       "which is never replaced by one\n")
    assert (stat.S_ISFIFO if special == "fifo" else stat.S_ISCHR)(os.stat(out).st_mode)
    assert os.path.islink(out) == (special != "fifo") and run_files.server.requests == []


@pytest.mark.parametrize("command, argv, option", OUTPUTS, ids=[f"{c[0]}-{c[2]}" for c in OUTPUTS])
def test_an_output_through_a_symbolic_link_is_written_to_its_target_and_the_link_stays(run_files, capsys, command,
                                                                                      argv, option):
    # Renaming a finished file over the link would replace the link itself (/dev/stdout, when
    # standard output goes to a file, is one): the output goes where the link points.
    if option in ("--out", "--plot"):
        pytest.importorskip("matplotlib")
    if command == "export":
        pytest.importorskip("onnx")
    (run_files.dir / "kept").mkdir()
    target = run_files.dir / "kept" / "out"
    target.write_bytes(b"old")
    link = run_files.dir / "link"
    os.symlink(os.path.join("kept", "out"), link)
    extra = {"train-mnist": ["--model", "softmax", "--epochs", "1"], "export": ["--input-shape", "1,28,28"]}.get(command, [])
    assert main([*argv(run_files, str(link)), *extra]) == 0, capsys.readouterr().err
    assert os.readlink(link) == os.path.join("kept", "out") and target.read_bytes() != b"old"
    assert sorted(os.listdir(run_files.dir / "kept")) == ["out"]  # no temporary left beside it


def test_a_loop_of_symbolic_links_is_refused_and_kept(run_files, capsys):
    loop = run_files.dir / "a-link"
    os.symlink("b-link", loop)
    os.symlink("a-link", run_files.dir / "b-link")
    assert main(["predict", run_files.ck, run_files.a, "--show-input", str(loop)]) == 2
    assert capsys.readouterr().err == (f"predict: error: --show-input {loop}: a symbolic link that leads to no file "
                                       "(a loop of links)\n")
    assert os.readlink(loop) == "b-link"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_download_mnist_refuses_to_replace_a_fifo_in_the_data_directory(synthetic_mnist, capsys):
    root = synthetic_mnist.data_dir
    root.mkdir()
    os.mkfifo(root / MNIST)
    assert main(["download-mnist", "--data-dir", str(root), "--mirror", synthetic_mnist.url, "--quiet"]) == 1
    assert capsys.readouterr().err == (f"MNIST file {root / MNIST} is not a regular file but a FIFO, which is never "
                                       "replaced by one; move it away and run again\n")
    assert stat.S_ISFIFO(os.stat(root / MNIST).st_mode) and synthetic_mnist.url.requests == []


# -- a full disk, a read-only folder: one line naming the file and the cause ----------------------
def test_predict_on_a_full_disk_still_prints_its_predictions(run_files, small_filesystem, capsys):
    out = small_filesystem(full=True) / "seen.png"
    assert main(["predict", run_files.ck, run_files.a, "--show-input", str(out)]) == 1
    captured = capsys.readouterr()
    assert re.fullmatch(rf"{re.escape(run_files.a)}: \d \(.*%\), \d \(.*%\), \d \(.*%\)\n", captured.out)
    assert captured.err == f"predict: could not write --show-input {out}: No space left on device\n"
    assert os.listdir(out.parent) == ["filler"]  # no temporary left behind


def test_predict_into_a_read_only_folder_is_refused_before_any_work(run_files, small_filesystem, capsys):
    folder = small_filesystem(read_only=True)
    assert main(["predict", run_files.ck, run_files.a, "--show-input", str(folder / "seen.png")]) == 2
    assert capsys.readouterr().err == (f"predict: error: --show-input {folder / 'seen.png'}: cannot write in {folder} "
                                       "(Read-only file system)\n")


def test_predict_whose_folder_turns_read_only_after_the_check_still_prints(run_files, capsys, monkeypatch):
    import errno

    from nnscratch import atomic_file

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    out = run_files.dir / "seen.png"
    out.write_bytes(b"old")
    monkeypatch.setattr(atomic_file, "_create_beside", read_only)  # after check_outputs' own test file
    assert main(["predict", run_files.ck, run_files.a, "--show-input", str(out), "--json"]) == 1
    captured = capsys.readouterr()
    assert '"file": ' in captured.out and '"top": ' in captured.out
    assert captured.err == (f"predict: could not write --show-input {out}: Read-only file system; "
                            "the previous file there is unchanged\n")
    assert out.read_bytes() == b"old"


def test_report_on_a_full_disk_still_prints_the_accuracy(run_files, small_filesystem, capsys):
    pytest.importorskip("matplotlib")
    out = small_filesystem(full=True) / "report.png"
    assert main(["report", run_files.ck, "--out", str(out), *run_files.data]) == 1
    captured = capsys.readouterr()
    assert re.fullmatch(r"report: test accuracy \d+\.\d\d% \(\d+/100\)\n", captured.out)
    assert captured.err == f"report: could not write --out {out}: No space left on device\n"
    assert os.listdir(out.parent) == ["filler"]


def test_export_on_a_full_disk_is_one_line(run_files, small_filesystem, capsys):
    pytest.importorskip("onnx")
    out = small_filesystem(full=True) / "m.onnx"
    assert main(["export", run_files.ck, str(out), "--input-shape", "1,28,28"]) == 1
    assert capsys.readouterr().err == f"nnscratch export: could not write OUT {out}: No space left on device\n"
    assert os.listdir(out.parent) == ["filler"]


def test_train_mnist_metrics_on_a_full_disk_is_one_line_and_the_run_reports(run_files, small_filesystem, capsys):
    out = small_filesystem(full=True) / "metrics.json"
    argv = ["train-mnist", *run_files.data, "--model", "softmax", "--epochs", "1", "--metrics", str(out)]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert re.fullmatch(r"test accuracy: \d+\.\d\d% .*\n", captured.out)
    assert captured.err == f"train-mnist: could not write the metrics {out}: No space left on device\n"


def test_download_mnist_on_a_full_disk_names_the_file_and_the_cause(synthetic_mnist, small_filesystem, capsys):
    root = small_filesystem(full=True)
    assert main(["download-mnist", "--data-dir", str(root), "--mirror", synthetic_mnist.url, "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err == f"download-mnist: {root / 'train-images-idx3-ubyte'}: No space left on device\n"
    assert sorted(os.listdir(root)) == ["filler"]
    assert synthetic_mnist.url.requests == ["/train-images-idx3-ubyte.gz"]  # not retried: the disk, not the mirror
