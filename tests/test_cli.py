"""The command-line entry points: dispatch, and --version from the one place the version is written."""

import importlib.metadata
import re

import pytest

import nnscratch
from nnscratch import cli


@pytest.mark.parametrize("entry, prog", [(cli.main, "nnscratch"), (cli.train_mnist_main, "train-mnist")])
def test_version_prints_the_package_version_and_exits_0(entry, prog, capsys):
    with pytest.raises(SystemExit) as exit_info:
        entry(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"{prog} {nnscratch.__version__}\n"


def test_the_installed_metadata_has_the_same_version():
    # pyproject.toml reads it from nnscratch.__version__ (dynamic), so the two cannot drift apart.
    assert importlib.metadata.version("nnscratch") == nnscratch.__version__
    assert re.fullmatch(r"\d+\.\d+\.\d+", nnscratch.__version__)


def test_every_command_is_reachable_by_its_name():
    parser = cli.build_parser()
    required = {"sanity-check": ["Linear"], "predict": ["model.npz", "digit.png"],
                "report": ["model.npz", "--out", "r.png"], "export": ["model.npz", "model.onnx"], "generate": ["model.npz"]}
    for name in cli.COMMANDS:
        args = parser.parse_args([name, *required.get(name, [])])
        assert args.command == name and callable(args.run)
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["train-cifar"])
    assert exit_info.value.code == 2
