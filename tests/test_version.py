"""The version (nnscratch/version.py), written once: pyproject.toml reads it from there, the package
re-exports it, and the installed metadata says the same."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

import nnscratch
from nnscratch import version

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def test_one_version_everywhere():
    assert re.fullmatch(r"\d+\.\d+\.\d+", version.__version__)  # PEP 440 release: major.minor.patch
    assert nnscratch.__version__ == version.__version__
    assert importlib.metadata.version("nnscratch") == version.__version__


def test_pyproject_reads_it_from_the_module_and_writes_none_of_its_own():
    project = tomllib.loads(PYPROJECT.read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "nnscratch.version.__version__"}
