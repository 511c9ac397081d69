"""``sanity-check --layer``: the class is checked against the layer protocol before anything calls it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from nnscratch.cli import main


MODULE = textwrap.dedent(
    """
    import pathlib

    MARKER = pathlib.Path({marker!r})


    class Builds:
        \"\"\"Writes MARKER when built: the test sees whether the class was called.\"\"\"

        def __init__(self):
            MARKER.write_text("built")


    class NoBackward(Builds):
        def forward(self, x, *args):
            return x


    class MethodParameters(Builds):
        def forward(self, x, *args):
            return x

        def backward(self, delta):
            return delta

        def parameters(self):
            return []


    class NeedsTargets(Builds):
        parameters, parameters_deltas = [], []

        def forward(self, x, targets):
            return x

        def backward(self, delta):
            return delta


    class TakesNoTargets(NeedsTargets):
        def forward(self, x):
            return x


    class PropertyParameters:
        \"\"\"parameters as a property, as a container has them: a layer.\"\"\"

        @property
        def parameters(self):
            return []

        @property
        def parameters_deltas(self):
            return []

        def forward(self, x, *args):
            return 2 * x

        def backward(self, delta):
            return 2 * delta


    class StaticForward(PropertyParameters):
        @staticmethod
        def forward(x, targets):
            return 2 * x
    """
)


@pytest.fixture
def module(write_module, tmp_path):
    marker = tmp_path / "built"
    return write_module("builds_layers", MODULE.format(marker=str(marker))), marker


@pytest.mark.parametrize("name, targets, message", [
    ("NoBackward", [], "does not follow the layer protocol (forward, backward, parameters, parameters_deltas): "
                       "missing backward; it was not built"),
    ("MethodParameters", [], "missing parameters as a list; it was not built"),
    ("NeedsTargets", [], ".forward(x, targets) needs targets; give --targets"),
    ("TakesNoTargets", ["--targets", "integer"], ".forward(x) takes no targets, only the input"),
])
def test_a_class_that_is_not_a_layer_is_refused_before_it_is_built(capsys, module, name, targets, message):
    name_of_module, marker = module
    code = main(["sanity-check", "--layer", f"{name_of_module}:{name}", "--input-shape", "3,4", *targets])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not marker.exists()  # __init__ never ran


@pytest.mark.parametrize("name, targets", [("PropertyParameters", []), ("StaticForward", ["--targets", "integer"])])
def test_properties_and_static_forwards_pass_the_class_check(capsys, module, name, targets):
    code = main(["sanity-check", "--layer", f"{module[0]}:{name}", "--input-shape", "3,4", *targets, "--quiet"])
    assert code == 0, capsys.readouterr()


def test_popen_given_a_command_runs_nothing(tmp_path):
    # the example, as a user would type it, in a folder of its own
    argv = [sys.executable, "-m", "nnscratch", "sanity-check", "--layer", "subprocess:Popen",
            "--args", json.dumps({"args": ["touch", "pwned"]}), "--input-shape", "2,3"]
    done = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.returncode == 2 and done.stdout == "" and "Traceback" not in done.stderr
    assert done.stderr.strip() == (
        "nnscratch sanity-check: error: --layer: subprocess:Popen does not follow the layer protocol (forward, "
        "backward, parameters, parameters_deltas): missing forward, backward; it was not built")
    assert list(tmp_path.iterdir()) == []  # no pwned, nothing at all


def test_the_help_says_that_layer_imports_and_so_runs_the_module(capsys):
    with pytest.raises(SystemExit):
        main(["sanity-check", "--help"])
    assert "importing the module runs its code, as any import does" in " ".join(capsys.readouterr().out.split())


# -- --layer runs layer classes only ----------------------------------------------------------
def test_layer_refuses_functions_without_calling_them(capsys, tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("x")
    marker = tmp_path / "ran"
    cases = [("os:system", {"command": f"touch {marker}"}, "builtin_function_or_method"),
             ("shutil:rmtree", {"path": str(victim)}, "function")]
    for spec, kwargs, kind in cases:
        assert main(["sanity-check", "--layer", spec, "--args", json.dumps(kwargs), "--input-shape", "2,3"]) == 2
        err = capsys.readouterr().err
        assert f"nnscratch sanity-check: error: --layer: {spec} is a {kind}, not a class; --layer takes a layer class" in err
    assert not marker.exists() and (victim / "keep.txt").read_text() == "x"


def test_a_module_that_exits_on_import_is_an_error_not_a_pass(capsys, tmp_path, monkeypatch):
    (tmp_path / "exits_on_import.py").write_text("import sys\nsys.exit(0)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        code = main(["sanity-check", "--layer", "exits_on_import:Anything", "--input-shape", "2,3"])
    finally:
        sys.modules.pop("exits_on_import", None)
    captured = capsys.readouterr()
    assert code == 2
    assert "--layer: importing module 'exits_on_import' exited (sys.exit(0)); --layer takes a module" in captured.err
    assert "passed" not in captured.out


def test_a_layer_that_exits_in_forward_fails_its_check(capsys, tmp_path, monkeypatch):
    (tmp_path / "exits_in_forward.py").write_text(
        "import sys\n\nclass Quits:\n    parameters, parameters_deltas = [], []\n\n"
        "    def forward(self, x, *args):\n        sys.exit(0)\n\n    def backward(self, delta):\n        return delta\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        code = main(["sanity-check", "--layer", "exits_in_forward:Quits", "--input-shape", "2,3", "--quiet"])
    finally:
        sys.modules.pop("exits_in_forward", None)
    out = capsys.readouterr().out
    assert code == 1
    assert "FAIL exits_in_forward:Quits [input (2, 3)" in out and "SystemExit: 0" in out
