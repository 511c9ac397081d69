"""The fenced code blocks of a Markdown page, and running a page's Python blocks in one namespace.

Shared by tests/docs/test_docs.py (the site's pages under docs/) and tests/docs/test_readme.py (README.md).
A page says what its blocks need in an HTML comment, invisible on the site:
``<!-- docs-test: needs mnist torch onnx onnxruntime -->``. ``mnist`` is a loopback mirror of the
real MNIST files (the ``mnist_mirror`` fixture); any other word is a package that must import.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# A fence opens at the start of a line with ``` and an optional language, and closes with ``` alone.
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.S | re.M)
NEEDS = re.compile(r"<!--\s*docs-test:\s*needs\s+([\w\s-]+?)\s*-->")
# What a fence may be tagged with: Python runs; the others are shell commands, program output or config.
LANGUAGES = {"python", "bash", "text", "yaml", "json"}


@dataclass
class Block:
    language: str
    code: str
    line: int  # the line of the block's first line of code, 1-based


def blocks(path: Path) -> list[Block]:
    text = path.read_text()
    return [Block(match.group(1).strip(), match.group(2), text.count("\n", 0, match.start(2)) + 1)
            for match in FENCE.finditer(text)]  # fmt: skip


def python_blocks(path: Path) -> list[Block]:
    return [block for block in blocks(path) if block.language == "python"]


def needs(path: Path) -> list[str]:
    return [word for match in NEEDS.finditer(path.read_text()) for word in match.group(1).split()]


def provide(path: Path, request, monkeypatch, tmp_path) -> None:
    """Skip (saying why) without a package the page needs; serve MNIST on loopback if it needs that."""
    for need in needs(path):
        if need == "mnist":
            mirror = request.getfixturevalue("mnist_mirror")  # skips, saying why, without the files
            monkeypatch.setenv("NNSCRATCH_MNIST_MIRROR", mirror)
            monkeypatch.setenv("NNSCRATCH_DATA_DIR", str(tmp_path / "mnist"))
        elif importlib.util.find_spec(need) is None:
            pytest.skip(f"{path.name}'s examples need {need}, which is not installed")


def table_problems(path: Path) -> list[str]:
    """Markdown tables that would not render as one table: a header without its ``|---|`` line, or a
    row whose indentation or number of cells differs from its header's (it would render outside)."""
    problems, lines, index = [], _outside_fences(path.read_text()), 0
    while index < len(lines):
        if not lines[index].lstrip().startswith("|"):
            index += 1
            continue
        start = index
        while index < len(lines) and lines[index].lstrip().startswith("|"):
            index += 1
        rows = lines[start:index]
        if len(rows) < 2 or not re.fullmatch(r"\s*\|(\s*:?-+:?\s*\|)+\s*", rows[1]):
            problems.append(f"{path.name}:{start + 1}: a table row without a header and |---| line above it")
            continue
        indent, cells = _indent(rows[0]), _cells(rows[0])
        for offset, row in enumerate(rows[1:], 1):
            if _indent(row) != indent or _cells(row) != cells:
                problems.append(f"{path.name}:{start + offset + 1}: {_cells(row)} cells at indent {_indent(row)}, "
                                f"its table's header has {cells} at indent {indent}")
    return problems


def _outside_fences(text: str) -> list[str]:
    """The page's lines, those inside fenced blocks blanked (so a line count stays a line number)."""
    lines, inside = [], False
    for line in text.split("\n"):
        if line.lstrip().startswith("```"):
            inside = not inside
            lines.append("")
        else:
            lines.append("" if inside else line)
    return lines


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _cells(row: str) -> int:
    """The number of cells: the row's | outside inline code and not escaped, less the outer two."""
    without_code = re.sub(r"`[^`]*`", "", row.strip())
    return len(re.findall(r"(?<!\\)\|", without_code)) - 1


def run_page(path: Path, namespace: dict | None = None) -> dict:
    """Run every Python block of the page in order, in one namespace; a traceback names the page's line."""
    namespace = {"__name__": f"docs:{path.name}"} if namespace is None else namespace
    for block in python_blocks(path):
        code = "\n" * (block.line - 1) + block.code  # so tracebacks point at the page's own lines
        exec(compile(code, str(path), "exec"), namespace)
    return namespace
