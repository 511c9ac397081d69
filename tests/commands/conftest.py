"""Fixtures of the command tests."""

from __future__ import annotations

import sys

import pytest


@pytest.fixture
def write_module(tmp_path, monkeypatch):
    """``write_module(name, text)``: a module of that name, importable for this test only (in a folder
    put first on sys.path, and dropped from sys.modules after); returns the name."""
    names = []

    def write(name: str, text: str) -> str:
        (tmp_path / f"{name}.py").write_text(text)
        names.append(name)
        return name

    monkeypatch.syspath_prepend(str(tmp_path))
    yield write
    for name in names:
        sys.modules.pop(name, None)


@pytest.fixture
def text_file(tmp_path):
    """``text_file(name, text)``: a UTF-8 file of that name holding ``text``, in the test's folder."""

    def write(name: str, text: str):
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def text(text_file):
    """A small text to train on (``helpers.text_runs.TEXT``), as a file."""
    from helpers.text_runs import TEXT

    return text_file("richard.txt", TEXT)
