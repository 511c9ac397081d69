"""What a gradient check returns and raises (nnscratch/check/report.py), built by hand: the rows and
their results, the report table, the failure message, and the same as standard JSON."""

from __future__ import annotations

import json
import math

import numpy as np

from nnscratch.check.report import (KINDS, Diagnosis, GradientCheckError, GradientCheckReport, TensorCheck,
                                    failure_message, layer_name, plain)


def row(tensor="input", passed=True, **fields):
    values = dict(shape=(2, 3), coords=6, max_abs_err=1e-9, max_rel_err=2e-8)
    return TensorCheck(tensor=tensor, passed=passed, **{**values, **fields})


def test_every_kind_has_a_stable_name_and_a_line_saying_what_it_means():
    assert len(KINDS) == 13 and "wrong-sign" in KINDS and "kink" in KINDS
    assert all(isinstance(text, str) and text and "\n" not in text for text in KINDS.values())


def test_the_error_keeps_its_report_and_its_first_line_as_summary():
    error = GradientCheckError("Linear: wrong gradient\n  input (2, 3): zero: ...", report=["rows"])
    assert isinstance(error, AssertionError) and error.report == ["rows"]
    assert error.summary == "Linear: wrong gradient" and str(error).startswith("Linear: wrong gradient\n")
    assert GradientCheckError("one line").report is None


def test_a_diagnosis_prints_as_kind_and_message():
    diagnosis = Diagnosis("scaled", "the gradient is 2x the numerical one", {"factor": np.float64(2.0)})
    assert str(diagnosis) == "scaled: the gradient is 2x the numerical one"
    assert diagnosis.bug is True
    assert diagnosis.to_dict() == {"kind": "scaled", "bug": True, "message": "the gradient is 2x the numerical one",
                                   "evidence": {"factor": 2.0}}


def test_a_row_s_result_is_pass_fail_or_skip():
    assert row().result == "PASS" and row(passed=False).result == "FAIL"
    assert row(skipped="integer ids have no gradient").result == "SKIP"
    assert str(row()) == "input (2, 3): 6 coords, max abs err 1.00e-09, max rel err 2.00e-08, PASS"
    assert str(row(skipped="ids")).endswith(", SKIP (ids)")


def test_a_failing_row_as_json_names_its_worst_coordinate():
    failing = row("parameter 0", passed=False, worst_index=(1, np.int64(2)), numerical=0.5, analytical=1.0,
                  problem="wrong gradient", diagnoses=[Diagnosis("scaled", "2x")])
    data = failing.to_dict()
    assert data["result"] == "fail" and data["problem"] == "wrong gradient" and data["skipped"] is None
    assert data["worst"] == {"index": [1, 2], "numerical": 0.5, "analytical": 1.0}
    assert data["shape"] == [2, 3] and data["diagnoses"][0]["kind"] == "scaled"
    assert row().to_dict()["worst"] is None  # passing: no worst coordinate
    json.dumps(data, allow_nan=False)  # standard JSON


def test_the_report_table_has_a_row_per_tensor_and_its_diagnoses_under_it():
    report = GradientCheckReport("Linear", [row(), row("parameter 0", passed=False, max_abs_err=0.25,
                                                      diagnoses=[Diagnosis("zero", "all zero")])])
    assert not report.passed and GradientCheckReport("Linear", [row()]).passed
    lines = str(report).splitlines()
    assert lines[0] == "gradient check of Linear:"
    assert lines[1].split() == ["tensor", "coords", "max", "abs", "err", "max", "rel", "err", "result"]
    assert lines[2].split() == ["input", "(2,", "3)", "6", "1.00e-09", "2.00e-08", "PASS"]
    assert lines[3].split()[-1] == "FAIL" and "2.50e-01" in lines[3]
    assert lines[4] == "      zero: all zero"
    data = report.to_dict()
    assert (data["layer"], data["passed"], data["float32"]) == ("Linear", False, "not run")
    assert [t["tensor"] for t in data["tensors"]] == ["input", "parameter 0"]


def test_layer_name_is_the_name_attribute_if_a_string_else_the_class():
    class Named:
        name = "encoder"

    class Unnamed:
        name = 3

    assert layer_name(Named()) == "encoder" and layer_name(Unnamed()) == "Unnamed"


def test_plain_turns_numpy_and_non_finite_values_into_standard_json():
    value = {1: (np.int32(2), np.float32(0.5)), "b": np.array([np.inf, 1.0]), "c": np.bool_(True),
             "d": math.nan, "e": "text", "f": None}
    assert plain(value) == {"1": [2, 0.5], "b": [None, 1.0], "c": True, "d": None, "e": "text", "f": None}
    assert type(plain(np.int64(3))) is int and type(plain(np.float64(3))) is float
    json.dumps(plain(value), allow_nan=False)


def test_failure_message_names_the_worst_coordinate_and_the_tolerances():
    failed = [row("input", passed=False, worst_index=(0, 1), numerical=1.0, analytical=2.0,
                  problem="wrong gradient", coords=6, diagnoses=[Diagnosis("scaled", "2x")]),
              row("parameter 0", passed=False, shape=(3,))]
    message = failure_message("Linear", failed, eps=1e-6, atol=1e-8, rtol=1e-5)
    first, *rest = message.split("\n")
    assert first == ("Linear: wrong gradient for input (shape (2, 3)) at index (0, 1): numerical 1, analytical 2, "
                     "abs err 1, rel err 0.5 (passes when abs err <= atol + rtol * |value|, atol=1e-08, "
                     "rtol=1e-05, eps=1e-06; 6 coordinates checked); also failing: parameter 0 (3,)")
    assert rest == ["  input (2, 3): scaled: 2x"]


def test_failure_message_without_a_wrong_value_leads_with_the_first_bug():
    note = Diagnosis("kink", "at a kink", bug=False)
    bug = Diagnosis("accumulates", "adds to the last gradient")
    failed = [row("parameter 1", passed=False, diagnoses=[note, bug])]
    message = failure_message("Dense", failed, eps=1e-6, atol=1e-8, rtol=1e-5)
    # the first line says the bug; the note is still listed under it, the bug is not said twice
    assert message.split("\n") == ["Dense: parameter 1 (shape (2, 3)) accumulates: adds to the last gradient",
                                   "  parameter 1 (2, 3): kink: at a kink"]
