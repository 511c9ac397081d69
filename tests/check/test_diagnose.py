"""sanity_check's diagnoses on right layers: kinks that are not bugs, no false alarm on the built-in
layers, when the probes run (and cost), the float32 probe, and how the check knows a layer's traits."""

from __future__ import annotations

import json

import numpy as np
import pytest

import nnscratch as nn
from nnscratch.check import GradientCheckError, sanity_check
from nnscratch.check.traits import independent_samples, takes_integer_ids
from nnscratch.commands.sanity_check_cases import builtin_cases

from helpers.gallery import Embedding, Linear, WrongSignSigmoid, normal


def kinds(report) -> list:
    return [[d.kind for d in row.diagnoses] for row in report]


# -- kinks: not a bug, and the check passes ----------------------------------------------------
def test_relu_on_exact_zeros_passes_where_it_was_a_false_alarm():
    # the case: exact zeros, as in MNIST pixels or after an earlier ReLU
    x = np.maximum(np.random.default_rng(0).standard_normal((8, 10)), 0)
    report = sanity_check(nn.ReLU(), x)
    assert report.passed and kinds(report) == [["kink"]]
    kink = report[0].diagnoses[0]
    assert kink.bug is False and "not a bug at these points" in kink.message
    assert kink.evidence["count"] == int((x == 0).sum()) and kink.evidence["passes_when_moved"] is True
    for point in kink.evidence["points"]:  # at a zero: slope 0 on the left, R on the right, ReLU's 0
        assert x[tuple(point["index"])] == 0 and point["left"] == pytest.approx(0, abs=1e-9)
        assert point["analytical"] == 0 and point["right"] != 0
    assert report[0].max_abs_err < 1e-8  # the row reports the check at the moved point


@pytest.mark.parametrize("layer, x, args", [
    (nn.MaxPool2D(2, stride=1), np.random.default_rng(1).integers(0, 3, (2, 2, 5, 5)).astype(float), ()),
    (nn.reference.MaxPool2D(3, stride=2), np.random.default_rng(2).integers(0, 3, (2, 2, 7, 7)).astype(float), ()),
    (nn.LeakyReLU(0.1), np.maximum(np.random.default_rng(3).standard_normal((6, 5)), 0), ()),
    (nn.Hinge(), np.array([[1.0, 0.0, 2.0], [0.5, 0.5, -0.5]]), (np.array([0, 1]),)),  # terms at the margin
], ids=["max-pool ties", "reference max-pool ties", "leaky ReLU at 0", "hinge at its margin"])
def test_builtin_layers_at_their_kinks_pass_with_a_kink_line(layer, x, args):
    report = sanity_check(layer, x, args)
    assert report.passed and kinds(report) == [["kink"]]


def test_a_network_on_mnist_like_zeros_passes_with_no_diagnosis_where_no_probe_sits_on_a_kink():
    rng = np.random.default_rng(4)
    net = nn.Sequential(nn.Conv2D(1, 2, 3, padding=1, rng=0), nn.ReLU(), nn.MaxPool2D(2), nn.Flatten(),
                        nn.Linear(8, 3, rng=1), nn.SoftmaxCrossEntropy(), nn.Mean())
    x = np.where(rng.random((2, 1, 4, 4)) < 0.5, 0.0, rng.random((2, 1, 4, 4)))
    assert sanity_check(net, x, (np.array([0, 2]),)).passed


def test_a_bug_at_a_kink_is_still_a_bug():
    class ReLUGivingTwo:  # 2 where x > 0: wrong off the kink too
        parameters, parameters_deltas = [], []

        def forward(self, x, *args):
            self.x = x
            return np.maximum(x, 0)

        def backward(self, delta):
            return 2 * delta * (self.x > 0)

    x = np.maximum(normal((4, 5), 5), 0)
    with pytest.raises(GradientCheckError) as info:
        sanity_check(ReLUGivingTwo(), x)
    assert kinds(info.value.report) == [["kink", "scaled"]]
    assert info.value.report[0].diagnoses[0].evidence["passes_when_moved"] is False


# -- no false alarm --------------------------------------------------------------------------
def test_no_builtin_configuration_gets_a_diagnosis_even_when_every_probe_runs():
    for case in builtin_cases():
        layer, x, args = case.build()
        report = sanity_check(layer, x, args, diagnose="always")
        assert report.passed and not any(row.diagnoses for row in report), (case.layer, case.config)
        assert report.float32 == "passed" or report.float32.startswith("skipped: the layer draws random"), case


def test_a_right_layer_failing_a_tolerance_too_tight_is_told_so():
    with pytest.raises(GradientCheckError) as info:
        sanity_check(nn.Tanh(), normal((4, 5), 6), atol=1e-15, rtol=0)
    (diagnosis,) = info.value.report[0].diagnoses
    assert diagnosis.kind == "resolution" and diagnosis.bug is False
    assert diagnosis.evidence["abs_err"] <= diagnosis.evidence["resolved"]


# -- when the probes run ---------------------------------------------------------------------
class Counting(WrongSignSigmoid):
    calls = 0

    def forward(self, x, *args):
        Counting.calls += 1
        return super().forward(x)


def test_probes_run_only_on_a_failure_and_never_with_diagnose_never():
    x = normal((4, 5), 7)
    calls = {}
    for mode in ("never", "on-failure"):
        Counting.calls = 0
        with pytest.raises(GradientCheckError) as info:
            sanity_check(Counting(), x, diagnose=mode)
        calls[mode] = Counting.calls
        assert kinds(info.value.report) == ([[]] if mode == "never" else [["wrong-sign"]])
    assert calls["never"] == 2 + 2 * 20  # forward twice, then two per coordinate: no probe
    assert calls["on-failure"] > calls["never"]


def test_diagnose_must_be_one_of_the_modes():
    with pytest.raises(ValueError, match="diagnose must be one of on-failure, always, never, got 'often'"):
        sanity_check(Linear(), normal((5, 4), 8), diagnose="often")


# -- the float32 probe -------------------------------------------------------------------------
def test_the_float32_probe_skips_a_layer_that_refuses_float32_without_failing_it():
    class Float64Only(Linear):
        def forward(self, x, *args):
            if x.dtype != np.float64:
                raise TypeError("float64 only")
            return super().forward(x)

    report = sanity_check(Float64Only(), normal((5, 4), 9))
    assert report.passed and report.float32 == "skipped: in float32, TypeError: float64 only"
    assert sanity_check(nn.Dropout(0.5, rng=0), normal((4, 6), 9)).float32.startswith("skipped: the layer draws")


def test_the_report_is_standard_json_data():
    with pytest.raises(GradientCheckError) as info:
        sanity_check(WrongSignSigmoid(), normal((4, 5), 10))
    data = info.value.report.to_dict()
    assert json.loads(json.dumps(data, allow_nan=False)) == data
    assert data["passed"] is False and data["tensors"][0]["diagnoses"][0]["kind"] == "wrong-sign"


# -- what the check reads from a layer ---------------------------------------------------------
def test_which_layers_treat_samples_independently():
    assert independent_samples(nn.Linear(2, 3)) is True and independent_samples(nn.Softmax()) is True
    assert independent_samples(nn.BatchNorm1D(3)) is False and independent_samples(nn.BatchNorm1D(3).eval()) is True
    assert independent_samples(nn.reference.BatchNorm2D(3)) is False
    assert independent_samples(nn.Mean()) is False
    assert independent_samples(nn.Sequential(nn.Linear(2, 3), nn.SoftmaxCrossEntropy())) is True
    assert independent_samples(nn.Sequential(nn.Linear(2, 3), nn.SoftmaxCrossEntropy(), nn.Mean())) is False
    assert independent_samples(nn.Residual(nn.Linear(3, 3), nn.Tanh())) is True
    assert independent_samples(Linear()) is None  # a user's class that does not say: not probed

    class MySoftmax(nn.Softmax):
        pass

    class Declared(Linear):
        independent_samples = True

    class NotMine(nn.Linear):
        independent_samples = False

    assert independent_samples(MySoftmax()) is True and independent_samples(Declared()) is True
    assert independent_samples(NotMine(2, 3)) is False
    assert independent_samples(nn.Sequential(nn.Linear(2, 3), Linear())) is None


def test_a_container_whose_first_layer_takes_ids_takes_ids():
    net = nn.Sequential(Embedding(), nn.Flatten(), nn.Linear(12, 2, rng=0))
    assert takes_integer_ids(net) is True and takes_integer_ids(nn.Sequential(nn.Linear(2, 2))) is False
    report = sanity_check(net, np.array([[1, 3, 3, 7], [0, 1, 9, 2], [5, 5, 5, 8]]))
    assert [(row.tensor, row.result) for row in report] == [("input", "SKIP")] + [
        (f"parameter {i}", "PASS") for i in range(3)]


def test_a_probe_the_layer_refuses_explains_nothing_and_crashes_nothing():
    class Picky(WrongSignSigmoid):
        """Refuses any input but the one it first saw, beyond a nudge of eps: no probe but the
        central differences can run."""

        independent_samples = True
        first = None

        def forward(self, x, *args):
            if self.first is None:
                self.first = x.copy()
            if np.abs(x - self.first).max() > 1e-5:
                raise ValueError("Picky: not the input I know")
            return super().forward(x)

    with pytest.raises(GradientCheckError) as info:
        sanity_check(Picky(), normal((4, 5), 11))
    assert kinds(info.value.report) == [["wrong-sign"]]  # found from the comparison alone
