"""tests/ mirrors the package: every module nnscratch/<path>/<name>.py has its tests in
tests/<path>/test_<name>.py (or, where one file would be too long, in the folder tests/<path>/<name>/);
no test file is over 500 lines; helpers live in tests/helpers/, the only package under tests/ (pytest
runs in importlib mode: a tests/io/__init__.py would make a package ``io``), and no test module
imports another."""

from __future__ import annotations

import re
from pathlib import Path

import nnscratch

PACKAGE = Path(nnscratch.__file__).resolve().parent
TESTS = Path(__file__).resolve().parent
MAX_LINES = 500

# Modules without a mirrored test module, and where they are tested instead. Keep it short.
EXCEPTIONS = {
    "__main__.py": "python -m nnscratch: tests/test_cli.py and the commands' subprocess tests",
}


def all_test_modules() -> list:
    return sorted(path for path in TESTS.rglob("test_*.py") if "fixtures" not in path.parts)


def missing_tests(package: Path = PACKAGE, tests: Path = TESTS) -> list:
    """``nnscratch/<module> -> tests/<where its tests belong>`` for each module without them."""
    missing = []
    for module in sorted(package.rglob("*.py")):
        relative = module.relative_to(package)
        if module.name == "__init__.py" or str(relative) in EXCEPTIONS:
            continue  # a package's __init__ re-exports (tests/test_imports.py imports every one)
        folder = tests / relative.parent
        mirrored = folder / f"test_{module.stem}.py"
        split = folder / module.stem
        if not mirrored.is_file() and not any(split.glob("test_*.py")):
            missing.append(f"nnscratch/{relative} -> tests/{mirrored.relative_to(tests)}")
    return missing


def test_every_module_has_its_test_module_at_the_mirrored_path():
    assert missing_tests() == []


def test_the_exceptions_are_modules_that_exist():
    assert all((PACKAGE / name).is_file() for name in EXCEPTIONS)


def test_no_test_file_is_over_500_lines():
    files = sorted(path for path in TESTS.rglob("*.py") if "fixtures" not in path.parts)
    long = {str(path.relative_to(TESTS)): n for path in files if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_helpers_is_the_only_package_under_tests():
    packages = sorted(str(path.relative_to(TESTS)) for path in TESTS.rglob("__init__.py"))
    assert packages == ["helpers/__init__.py"]


def test_no_test_module_imports_another():
    importing = re.compile(r"^\s*(from|import)\s+test_\w+", re.M)
    offenders = [str(path.relative_to(TESTS)) for path in all_test_modules() if importing.search(path.read_text())]
    assert offenders == []


def test_the_layout_rule_sees_a_missing_module(tmp_path):
    # the check itself can fail: a package module without tests is reported at its mirrored path
    package = tmp_path / "nnscratch"
    (package / "kernels").mkdir(parents=True)
    for name in ("__init__.py", "kernels/__init__.py", "kernels/tested.py", "kernels/untested.py", "split.py"):
        (package / name).write_text("")
    tests = tmp_path / "tests"
    (tests / "kernels").mkdir(parents=True)
    (tests / "kernels" / "test_tested.py").write_text("")
    (tests / "split").mkdir()
    (tests / "split" / "test_part.py").write_text("")
    assert missing_tests(package, tests) == ["nnscratch/kernels/untested.py -> tests/kernels/test_untested.py"]
