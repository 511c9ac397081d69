"""No import cycles: every module imports first in a fresh interpreter, and the import graph, read
from the source, has no cycle between modules or between packages (lazy imports inside functions
included). And the public surface: every subpackage the README shows works after ``import nnscratch``."""

from __future__ import annotations

import ast
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import nnscratch

PACKAGE = Path(nnscratch.__file__).resolve().parent


def _modules() -> dict:
    """{dotted name: (path, is a package)} for every module of nnscratch."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


MODULES = _modules()


def _imported(name: str, is_package: bool, node) -> list:
    """The nnscratch modules an import statement of module ``name`` runs."""
    if isinstance(node, ast.Import):
        targets = [alias.name for alias in node.names]
    else:
        base = name.split(".") if is_package else name.split(".")[:-1]
        if node.level:
            base = base[: len(base) - (node.level - 1)]
            prefix = ".".join(base + ([node.module] if node.module else []))
        else:
            prefix = node.module or ""
        # "from pkg import sub" runs pkg.sub when sub is a module, else only pkg
        targets = [f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in MODULES else prefix for a in node.names]
    found = set()
    for target in targets:
        if target == "nnscratch" and name != "nnscratch":
            # the public API itself (``import nnscratch`` inside a function, say): every package comes
            # with it, so this is an edge to the root whichever package the importer lives in
            found.add(target)
        parts = target.split(".")
        for i in range(1, len(parts) + 1):
            module = ".".join(parts[:i])
            # a package the importer lives in is already being imported when it runs: no new edge
            if module in MODULES and module != name and not name.startswith(module + "."):
                found.add(module)
    return sorted(found)


def _graph() -> dict:
    graph = {}
    for name, (path, is_package) in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        graph[name] = {m for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
                       for m in _imported(name, is_package, node)}
    return graph


def _cycles(graph: dict) -> list:
    """The strongly connected groups of more than one node (Tarjan), each sorted."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in graph:
        if node not in index:
            visit(node)
    return groups


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_imports_itself_back_through_others():
    assert _cycles(_graph()) == []


def test_no_two_packages_import_each_other():
    def package(name: str) -> str:
        parts = name.split(".")
        return ".".join(parts[:2]) if len(parts) > 1 and (PACKAGE / parts[1]).is_dir() else name

    packages: dict = {}
    for name, imports in _graph().items():
        packages.setdefault(package(name), set()).update(package(m) for m in imports if package(m) != package(name))
    assert _cycles(packages) == []


@pytest.mark.slow
def test_every_module_imports_first_in_a_fresh_interpreter():
    def first_import(name: str):
        done = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True, text=True)
        return name, done.returncode, done.stderr.strip().splitlines()[-1:] if done.returncode else []

    names = [name for name in MODULES if name != "nnscratch.__main__"]  # importing it runs the command line
    with ThreadPoolExecutor(max_workers=4) as pool:
        failures = [result for result in pool.map(first_import, names) if result[1]]
    assert failures == []
    assert len(MODULES) > 50


def test_the_subpackages_and_exceptions_work_after_a_plain_import():
    code = ("import nnscratch\n"
            "assert callable(nnscratch.data.load_mnist) and callable(nnscratch.metrics.confusion_matrix)\n"
            "assert callable(nnscratch.reference.Conv2D) and callable(nnscratch.init.kaiming_uniform_)\n"
            "assert callable(nnscratch.schedules.cosine)\n"
            "for name in ('NonFiniteLossError', 'GradientCheckError', 'IDXFormatError', 'MNISTCacheError',\n"
            "             'MNISTDownloadError'):\n"
            "    assert issubclass(getattr(nnscratch, name), Exception), name\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_every_public_name_is_there_once():
    assert len(nnscratch.__all__) == len(set(nnscratch.__all__))
    missing = [name for name in nnscratch.__all__ if not hasattr(nnscratch, name)]
    assert missing == []
    assert set(nnscratch.layers.__all__) <= set(nnscratch.__all__)
