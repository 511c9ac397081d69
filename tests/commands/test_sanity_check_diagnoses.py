"""``nnscratch sanity-check``: the diagnoses under the failing rows, ``--json``, ``--diagnose``, and
layers whose input is integer ids."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from nnscratch.cli import main
from nnscratch.check import KINDS

from helpers.sanity_check_tables import diagnosis_lines, table_rows

# The check's own gallery of broken layers, as a user's module; and two layers it has no use for.
GALLERY = Path(__file__).resolve().parents[1] / "helpers" / "gallery.py"
MORE = textwrap.dedent(
    """
    import numpy as np


    class RowMeanCentering:
        \"\"\"y = x - mean over the batch, declared per-sample: right gradients, a leaking function.\"\"\"

        independent_samples = True
        parameters, parameters_deltas = [], []

        def forward(self, x, *args):
            return x - x.mean(axis=0)

        def backward(self, delta):
            return delta - delta.mean(axis=0)


    class ReturnsNaN:
        parameters, parameters_deltas = [], []

        def forward(self, x, *args):
            return x * np.nan

        def backward(self, delta):
            return delta
    """
)


@pytest.fixture
def layers(write_module):
    write_module("more_layers", MORE)
    return write_module("gallery_layers", GALLERY.read_text())


def strict_json(text: str):
    """json.loads that refuses NaN and Infinity, as strict parsers do."""
    return json.loads(text, parse_constant=lambda name: pytest.fail(f"non-standard JSON constant {name}"))


def run(capsys, *argv):
    code = main(["sanity-check", *argv, "--quiet"])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_diagnosis_is_printed_under_the_failing_row_and_said_once(capsys, layers):
    code, out, err = run(capsys, "--layer", f"{layers}:WrongSignSigmoid", "--input-shape", "4,5")
    assert code == 1 and err == ""
    assert [r[-1] for r in table_rows(out)] == ["FAIL"]
    lines = diagnosis_lines(out)
    assert len(lines) == 1 and lines[0][0] == 0
    assert lines[0][1].startswith("wrong-sign: the analytical gradient is minus the numerical one (at (")
    assert out.count("wrong-sign:") == 1  # the FAIL line after the table is the summary only
    assert f"FAIL {layers}:WrongSignSigmoid [input (4, 5)]: WrongSignSigmoid: gradient is wrong for input" in out
    assert "docs/when-the-check-fails.md" in out


def test_json_gives_the_same_as_data(capsys, layers):
    argv = ["--layer", f"{layers}:WrongSignSigmoid", "--input-shape", "4,5"]
    code, out, _ = run(capsys, *argv)
    row = table_rows(out)[0]
    code_json, text, err = run(capsys, *argv, "--json")
    assert code_json == code == 1 and err == ""
    data = strict_json(text)
    assert data["schema"] == "nnscratch.sanity-check/1" and data["passed"] is False
    assert data["settings"] == {"eps": 1e-6, "atol": 1e-6, "rtol": 1e-5, "coords": 200, "seed": 0,
                                "diagnose": "on-failure"}
    assert data["summary"] == {"configurations": 1, "failed": 1, "tensors": 1}
    (config,) = data["configurations"]
    assert config["layer"] == f"{layers}:WrongSignSigmoid" and config["configuration"] == "input (4, 5)"
    assert config["passed"] is False and config["error"].startswith("WrongSignSigmoid: gradient is wrong")
    assert config["float32"] == "not run"
    (tensor,) = config["tensors"]
    assert tensor["tensor"] == "input" and tensor["shape"] == [4, 5] and tensor["result"] == "fail"
    assert f"{tensor['max_abs_err']:.2e}" == row[4] and tensor["coords"] == int(row[3])
    (diagnosis,) = tensor["diagnoses"]
    assert diagnosis["kind"] == "wrong-sign" and diagnosis["kind"] in KINDS and diagnosis["bug"] is True
    assert diagnosis["message"] == diagnosis_lines(out)[0][1].split(": ", 1)[1]
    assert diagnosis["evidence"]["factor"] == pytest.approx(-1)
    assert tensor["worst"]["numerical"] == pytest.approx(-tensor["worst"]["analytical"], rel=1e-6)


def test_json_of_passing_builtins_and_of_a_crash_is_standard_json(capsys, layers):
    code, text, _ = run(capsys, "Linear", "Dropout", "--json")
    data = strict_json(text)
    assert code == 0 and data["passed"] is True and data["summary"]["failed"] == 0
    assert {c["float32"].split(":")[0] for c in data["configurations"]} == {"passed", "skipped"}
    assert all(t["diagnoses"] == [] and t["worst"] is None for c in data["configurations"] for t in c["tensors"])
    code, text, _ = run(capsys, "--layer", "more_layers:ReturnsNaN", "--input-shape", "2,3", "--json")
    (config,) = strict_json(text)["configurations"]
    assert code == 1 and config["tensors"] == [] and "a non-finite value" in config["error"]


def test_integer_ids_are_skipped_in_the_table_and_in_json(capsys, layers):
    argv = ["--layer", f"{layers}:Embedding", "--input-shape", "3,4", "--input", "ids:10"]
    code, out, _ = run(capsys, *argv)
    assert code == 0
    assert [(r[1], r[2], r[3], r[-1]) for r in table_rows(out)] == [
        ("ids in [0, 10) (3, 4)", "input (3, 4)", "0", "SKIP"), ("ids in [0, 10) (3, 4)", "parameter 0 (10, 3)", "30", "PASS")]
    assert diagnosis_lines(out) == [(0, "integer ids have no gradient")]
    tensors = strict_json(run(capsys, *argv, "--json")[1])["configurations"][0]["tensors"]
    assert [(t["result"], t["skipped"]) for t in tensors] == [("skip", "integer ids have no gradient"), ("pass", None)]


@pytest.mark.parametrize("argv, message", [
    (["--layer", "{m}:Embedding", "--input-shape", "3,4"], "declares integer_input = True: give --input ids:V"),
    (["--layer", "{m}:WrongSignSigmoid", "--input-shape", "3,4", "--input", "ids:5"],
     "--input ids:5: {m}:WrongSignSigmoid does not declare integer_input = True"),
    (["--layer", "{m}:Embedding", "--input-shape", "3,4", "--input", "ids:0"], "--input ids:V: expected V"),
    (["Linear", "--diagnose", "sometimes"], "--diagnose: expected one of on-failure, always, never, got 'sometimes'"),
])
def test_bad_ids_and_diagnose_options_are_one_line_errors(capsys, layers, argv, message):
    code, out, err = run(capsys, *[a.format(m=layers) for a in argv])
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert message.format(m=layers) in err


def test_diagnose_never_compares_only_and_always_finds_a_leak_in_a_passing_layer(capsys, layers):
    code, out, _ = run(capsys, "--layer", f"{layers}:WrongSignSigmoid", "--input-shape", "4,5", "--diagnose", "never")
    assert code == 1 and diagnosis_lines(out) == []
    argv = ["--layer", "more_layers:RowMeanCentering", "--input-shape", "4,5"]
    assert run(capsys, *argv)[0] == 0  # its gradients are right for the function it computes
    code, out, _ = run(capsys, *argv, "--diagnose", "always")
    assert code == 1 and [r[-1] for r in table_rows(out)] == ["FAIL"]
    (line,) = diagnosis_lines(out)
    assert line[1].startswith("leaks-across-batch: changing sample 3 (its input and its upstream gradient)")
