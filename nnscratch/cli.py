"""The commands: ``nnscratch <command>`` and the ``train-mnist`` shortcut.

Each command lives in its own module under ``nnscratch/commands/`` with ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> exit code``. This file only dispatches.
"""

from __future__ import annotations

import argparse
import importlib

from .version import __version__

# command name -> module under nnscratch.commands
COMMANDS = {
    "train-mnist": "train_mnist",
    "download-mnist": "download_mnist",
    "sanity-check": "sanity_check",
    "predict": "predict",
    "export": "export",
    "report": "report",
}


def _command(name: str):
    return importlib.import_module(f"nnscratch.commands.{COMMANDS[name]}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nnscratch", description="nnscratch: a neural-network framework from scratch on NumPy."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        module = _command(name)
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(run=module.run)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


def train_mnist_main(argv=None) -> int:
    """The ``train-mnist`` console script: the same as ``nnscratch train-mnist``."""
    module = _command("train-mnist")
    parser = argparse.ArgumentParser(prog="train-mnist", description=module.HELP)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    module.add_arguments(parser)
    return module.run(parser.parse_args(argv))
