"""scripts/busy_fit.py: every figure present and consistent, no busy process left; no timing assertions."""

import json
import math

import pytest

from nnscratch.threads import THREAD_VARIABLES
from helpers.script_modules import children_running, load_script, usage_error


@pytest.fixture(scope="module")
def busy_fit():
    return load_script("busy_fit.py")


@pytest.mark.parametrize("networks, repeats", [("mlp", 1), pytest.param("mlp,cnn", 2, marks=pytest.mark.slow)])
def test_a_tiny_run_has_every_figure_and_leaves_no_busy_process(busy_fit, tmp_path, capsys, monkeypatch, networks,
                                                                 repeats):
    for name in THREAD_VARIABLES:  # else auto would change nothing
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "fit.json"
    assert busy_fit.main(["--samples", "256", "--epochs", "1", "--repeats", str(repeats), "--only", networks,
                          "--json", str(path)]) == 0
    out = capsys.readouterr().out
    figures = json.loads(path.read_text())
    default = figures["default_threads"]
    assert default == busy_fit.blas_default_threads() >= 1 and figures["thread_variable"] is None
    assert set(figures["networks"]) == set(networks.split(","))
    for name, row in figures["networks"].items():
        for way in ("auto", "fixed"):
            r = row[way]
            for load in ("quiet", "busy"):
                assert len(r["runs"][load]) == repeats and all(v > 0 and math.isfinite(v) for v in r["runs"][load])
                assert r[load] == pytest.approx(sum(r["runs"][load]) / repeats)  # the median of one or two
            assert r["ratio"] == pytest.approx(r["busy"] / r["quiet"])
        assert row["quiet_auto_over_fixed"] == pytest.approx(row["auto"]["quiet"] / row["fixed"]["quiet"])
        assert row["meets_target"] == (row["auto"]["ratio"] >= {"mlp": 0.55, "cnn": 0.75}[name])
        for load in ("quiet", "busy"):
            assert len(row["chosen"][load]) == repeats and set(row["chosen"][load]) <= {1, default}
        assert row["load"].startswith("one busy-loop process")
        line = f"{name.upper():<8}{'auto':<10}{row['auto']['quiet']:>16,.0f}{row['auto']['busy']:>16,.0f}"
        assert line in out
    assert f"fixed {default}" in out and "quiet speed, auto / fixed" in out
    for name, row in figures["networks"].items():
        if default == 1:  # nothing to compare: fixed is already one thread
            assert "one" not in row and row["busy_auto_over_one"] is None
        else:
            assert len(row["one"]["runs"]["busy"]) == repeats
            assert row["busy_auto_over_one"] == pytest.approx(row["auto"]["busy"] / row["one"]["busy"])
            assert f"{name.upper():<8}{'fixed 1':<10}{row['one']['quiet']:>16,.0f}" in out
            assert "busy speed, auto / fixed 1" in out
    assert children_running("sched_setaffinity") == []


def test_fixed_threads_report_no_choice_and_train_at_that_count(busy_fit):
    import numpy as np

    x, y = np.zeros((128, 1, 28, 28), np.float32), np.zeros(128, np.int64)
    speed, choice = busy_fit.fit_once("mlp", x, y, 1, 1)
    assert speed > 0 and choice is None


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--samples", "0"], "--samples: expected a positive int, got 0"),
        (["--only", "mlp,rnn"], "--only: expected names among mlp, cnn, got rnn"),
        (["--busy-max-seconds", "-1"], "--busy-max-seconds: expected seconds in (0, 3600], got -1.0"),
    ],
)
def test_bad_options_exit_2_with_a_message(busy_fit, capsys, argv, message):
    assert message in usage_error(busy_fit.parse_args, argv, capsys)
