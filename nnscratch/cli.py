"""The commands: ``nnscratch <command>`` and the ``train-mnist`` and ``train-text`` shortcuts.

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
    "train-text": "train_text",
    "generate": "generate",
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


def _shortcut(name: str, argv=None) -> int:
    """A console script that runs one command, as ``nnscratch NAME`` does."""
    module = _command(name)
    parser = argparse.ArgumentParser(prog=name, description=module.HELP)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    module.add_arguments(parser)
    return module.run(parser.parse_args(argv))


def train_mnist_main(argv=None) -> int:
    """The ``train-mnist`` console script: the same as ``nnscratch train-mnist``."""
    return _shortcut("train-mnist", argv)


def train_text_main(argv=None) -> int:
    """The ``train-text`` console script: the same as ``nnscratch train-text``."""
    return _shortcut("train-text", argv)
