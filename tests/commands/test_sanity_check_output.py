"""What ``nnscratch sanity-check`` prints (nnscratch/commands/sanity_check_output.py), from results
built by hand: the table's rows and the lines under them, the summary's verdict, the JSON document.
The command end to end: test_sanity_check.py and test_sanity_check_diagnoses.py."""

from __future__ import annotations

import json
from types import SimpleNamespace

from nnscratch.check import DEFAULT_EPS
from nnscratch.check.report import Diagnosis, GradientCheckReport, TensorCheck
from nnscratch.commands.sanity_check_output import SCHEMA, CaseResult, document, summary, table

from helpers.sanity_check_tables import diagnosis_lines, table_rows

OPTIONS = SimpleNamespace(atol=1e-6, rtol=1e-5, coords=200, seed=0, diagnose="on-failure")


def passing(layer="Linear", config="2->3"):
    rows = [TensorCheck("input", (4, 2), 8, 1e-10, 2e-9, True), TensorCheck("parameter 0", (2, 3), 6, 3e-11, 1e-9, True)]
    return CaseResult(layer, config, GradientCheckReport(layer, rows, float32="passed"))


def failing():
    row = TensorCheck("parameter 0", (3,), 3, 0.5, 1.0, False, worst_index=(1,), numerical=0.5, analytical=1.0,
                      problem="gradient is wrong", diagnoses=[Diagnosis("scaled", "2x the numerical one")])
    return CaseResult("Mine", "default", GradientCheckReport("Mine", [row]), failure="Mine: gradient is wrong")


def crashed():
    return CaseResult("Broken", "default", None, failure="ValueError: no")


def test_the_table_has_a_row_per_tensor_and_the_diagnoses_under_it():
    text = table([passing(), failing(), crashed()])
    lines = text.splitlines()
    assert lines[0].split() == ["layer", "configuration", "tensor", "coords", "max", "abs", "err", "max", "rel",
                                "err", "result"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert table_rows(text) == [
        ["Linear", "2->3", "input (4, 2)", "8", "1.00e-10", "2.00e-09", "PASS"],
        ["Linear", "2->3", "parameter 0 (2, 3)", "6", "3.00e-11", "1.00e-09", "PASS"],
        ["Mine", "default", "parameter 0 (3,)", "3", "5.00e-01", "1.00e+00", "FAIL"],
        ["Broken", "default", "-", "-", "-", "-", "FAIL"],  # crashed before any row
    ]
    assert diagnosis_lines(text) == [(2, "scaled: 2x the numerical one")]


def test_the_numbers_are_right_aligned_under_their_headers():
    header, _, row, *_ = table([passing()]).splitlines()
    coords_end = header.index("coords") + len("coords")
    assert row[coords_end - 6 : coords_end] == "     8"  # the count ends where its header ends
    abs_end = header.index("max abs err") + len("max abs err")
    assert row[abs_end - 11 : abs_end] == "   1.00e-10"


def test_a_skipped_row_says_why_under_it():
    row = TensorCheck("input", (4,), 0, 0.0, 0.0, True, skipped="integer ids have no gradient")
    text = table([CaseResult("Embedding", "ids", GradientCheckReport("Embedding", [row]))])
    assert table_rows(text)[0][-1] == "SKIP" and diagnosis_lines(text) == [(0, "integer ids have no gradient")]


def test_the_summary_of_a_pass():
    text = summary([passing()], OPTIONS)
    assert text.endswith("\nsanity-check: the 1 configuration passed (2 tensors checked)")
    assert f"(atol=1e-06, rtol=1e-05; central differences, eps={DEFAULT_EPS:g}, float64)" in text
    assert "diagnoses" not in text
    assert summary([passing(), passing()], OPTIONS).endswith("all 2 configurations passed (4 tensors checked)")


def test_the_summary_of_failures_lists_each_and_points_to_the_diagnoses_page():
    text = summary([passing(), failing(), crashed()], OPTIONS)
    assert "\nFAIL Mine [default]: Mine: gradient is wrong\nFAIL Broken [default]: ValueError: no\n" in text
    assert "docs/when-the-check-fails.md explains each" in text
    assert text.endswith("\nsanity-check: 2 of 3 configurations FAILED (3 tensors checked)")


def test_the_json_document():
    data = json.loads(document([passing(), failing(), crashed()], OPTIONS))
    assert data["schema"] == SCHEMA == "nnscratch.sanity-check/1" and data["passed"] is False
    assert data["settings"] == {"eps": DEFAULT_EPS, "atol": 1e-6, "rtol": 1e-5, "coords": 200, "seed": 0,
                                "diagnose": "on-failure"}
    assert data["summary"] == {"configurations": 3, "failed": 2, "tensors": 3}
    first, second, third = data["configurations"]
    assert (first["passed"], first["error"], first["float32"]) == (True, None, "passed")
    assert [t["tensor"] for t in first["tensors"]] == ["input", "parameter 0"]
    assert second["error"] == "Mine: gradient is wrong" and second["tensors"][0]["diagnoses"][0]["kind"] == "scaled"
    assert (third["float32"], third["tensors"]) == ("not run", [])


def test_the_json_of_a_non_finite_error_is_null():
    row = TensorCheck("input", (2,), 2, float("inf"), float("nan"), False, problem="gradient is wrong")
    data = json.loads(document([CaseResult("L", "c", GradientCheckReport("L", [row]), failure="L: bad")], OPTIONS))
    tensor = data["configurations"][0]["tensors"][0]
    assert tensor["max_abs_err"] is None and tensor["max_rel_err"] is None
