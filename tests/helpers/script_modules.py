"""The scripts in scripts/ are not a package: tests load one by its path, as a module of its own."""

import importlib.util
import os
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def load_script(file_name: str):
    """scripts/<file_name> run as a fresh module (its own folder goes on sys.path as it starts)."""
    path = SCRIPTS / file_name
    spec = importlib.util.spec_from_file_location(f"{path.stem}_script", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def children_running(code: str) -> list:
    """Ids of this process's live children whose command line holds ``code`` (Linux /proc; [] elsewhere)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if int(fields[1]) == os.getpid() and fields[0] != "Z" and code in cmdline:
            found.append(int(stat.parent.name))
    return found


def usage_error(entry, argv: list, capsys) -> str:
    """What a script's ``entry(argv)`` (its parse_args or main) printed on stderr; it must exit with
    argparse's code 2."""
    with pytest.raises(SystemExit) as exit_info:
        entry(argv)
    assert exit_info.value.code == 2
    return capsys.readouterr().err
