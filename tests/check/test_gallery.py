"""Each broken layer of the gallery gets its diagnosis and no other; the right layers get none."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from nnscratch.check import KINDS, GradientCheckError, sanity_check
from nnscratch.check.report import plain

from helpers.gallery import GALLERY, RIGHT, Embedding, Linear, normal


def check(build, **options):
    """(report, the error's message or None) of sanity_check on build()'s layer."""
    layer, x, args = build()
    try:
        return sanity_check(layer, x, args, **options), None
    except GradientCheckError as error:
        assert error.report is not None, str(error)
        return error.report, str(error)


@pytest.mark.parametrize("name", list(GALLERY))
def test_each_broken_layer_gets_its_diagnosis_and_no_other(name):
    build, expected = GALLERY[name]
    report, message = check(build)
    found = {row.tensor: {d.kind for d in row.diagnoses} for row in report if row.diagnoses}
    assert found == expected
    kinds = set().union(*expected.values())
    for row in report:
        if row.tensor in expected:
            assert all(d.kind in KINDS and d.message and "\n" not in d.message for d in row.diagnoses)
            json.dumps(plain([d.to_dict() for d in row.diagnoses]), allow_nan=False)  # the evidence is data
        else:
            assert row.passed and not row.diagnoses
    if kinds == {"kink"}:  # not a bug: moved off the kink, the check passes
        assert message is None and report.passed
    else:
        assert message is not None and not report.passed
        for row in report:
            for diagnosis in row.diagnoses:  # each diagnosis on a line of the error's message
                assert f"{diagnosis.kind}: {diagnosis.message}" in message


def test_every_kind_of_diagnosis_has_a_gallery_layer():
    kinds = set().union(*(set().union(*expected.values()) for _, expected in GALLERY.values()))
    assert kinds == set(KINDS) - {"resolution"}  # resolution: test_diagnose.py, on a right layer


@pytest.mark.parametrize("name", list(RIGHT))
def test_right_layers_in_the_same_configurations_get_no_diagnosis(name):
    report, message = check(RIGHT[name])
    assert message is None and report.passed and not any(row.diagnoses for row in report)


def evidence(name, tensor="input"):
    report, _ = check(GALLERY[name][0])
    row = next(row for row in report if row.tensor == tensor)
    return row.diagnoses[0]


def test_scaled_by_the_batch_size_says_summed_where_it_should_be_averaged():
    diagnosis = evidence("cross-entropy missing its 1/N")
    assert diagnosis.evidence["factor"] == pytest.approx(4)  # N = 4
    assert "4 times the numerical one, N, the batch size: summed over the batch where it should be averaged" \
        in diagnosis.message
    diagnosis = evidence("time mean missing its 1/T")
    assert diagnosis.evidence["factor"] == pytest.approx(7)
    assert "T, the number of time steps (input axis 1): summed over time where it should be averaged" \
        in diagnosis.message


def test_averaged_where_it_should_be_summed_and_factors_no_size_explains():
    class Halved(Linear):  # its input gradient divided by N = 5
        def backward(self, delta):
            return super().backward(delta) / 5

    report, _ = check(lambda: (Halved(), normal((5, 4), 20), ()))
    assert "1/5 of the numerical one, 1/(N, the batch size): averaged over the batch where it should be summed" \
        in report[0].diagnoses[0].message

    class Tripled(Halved):
        def backward(self, delta):
            return super().backward(delta) * 15  # 3: no size of a (5, 4) input

    report, _ = check(lambda: (Tripled(), normal((5, 4), 20), ()))
    assert report[0].diagnoses[0].message == "the analytical gradient is 3 times the numerical one (no size of the input is 3)"

    class Square:  # d(x^2)/dx without its 2
        parameters, parameters_deltas = [], []

        def forward(self, x, *args):
            self.x = x
            return x * x

        def backward(self, delta):
            return delta * self.x

    report, _ = check(lambda: (Square(), normal((3, 4), 20), ()))
    assert report[0].diagnoses[0].message.startswith("the analytical gradient is half the numerical one: a factor 2 "
                                                     "missing (the 2 of d(x^2)/dx = 2x")


def test_wrong_sign_names_a_coordinate_with_both_values():
    diagnosis = evidence("sigmoid with the wrong sign")
    assert diagnosis.evidence["factor"] == pytest.approx(-1)
    assert diagnosis.evidence["analytical"] == pytest.approx(-diagnosis.evidence["numerical"])
    assert re.search(r"at \(\d, \d\): numerical -?[\d.]+, analytical -?[\d.]+", diagnosis.message)


def test_transposed_names_the_axes_and_the_conv_names_the_missing_flip():
    diagnosis = evidence("transposed weight gradient", "parameter 0")
    assert diagnosis.evidence == {"of": "parameter 0", "axes": [1, 0]}
    diagnosis = evidence("conv without the kernel flip")
    assert diagnosis.evidence == {"of": "input", "uses": "parameter 0", "flipped_axes": [2, 3]}
    assert "the kernel is not flipped" in diagnosis.message


def test_a_transposed_gradient_of_another_shape_is_refused_with_a_word_on_it():
    class TransposedRectangular(Linear):
        def backward(self, delta):
            self.parameters_deltas = [delta.T @ self.x, delta.sum(axis=0)]
            return delta @ self.W.T

    with pytest.raises(GradientCheckError, match=r"parameters_deltas\[0\] must have the shape of parameters\[0\], "
                                                 r"\(4, 3\), got shape \(3, 4\) \(the same sizes in another order: "
                                                 r"is the gradient transposed\?\)"):
        sanity_check(TransposedRectangular(4, 3), normal((5, 4), 21))


def test_accumulates_gives_the_values_after_one_two_and_three_backwards():
    diagnosis = evidence("ReLU gradient that accumulates")
    one, two, three = diagnosis.evidence["after_1_2_3"]
    assert two == pytest.approx(2 * one) and three == pytest.approx(3 * one) and one != 0


def test_ignores_upstream_shows_the_same_value_for_delta_and_twice_delta():
    diagnosis = evidence("loss ignoring delta")
    assert diagnosis.evidence["unchanged"] is True
    assert diagnosis.evidence["for_delta"] == diagnosis.evidence["for_2_delta"] != 0


def test_a_term_that_does_not_scale_with_delta_is_named_when_the_rest_is_right():
    class DecayInBackward(Linear):  # weight decay added to dW inside backward: no delta in it
        def backward(self, delta):
            delta_x = super().backward(delta)
            self.parameters_deltas[0] += 0.1 * self.W
            return delta_x

    report, _ = check(lambda: (DecayInBackward(), normal((5, 4), 23), ()))
    assert [[d.kind for d in row.diagnoses] for row in report] == [[], ["ignores-upstream"], []]
    diagnosis = report[1].diagnoses[0]
    assert diagnosis.evidence["unchanged"] is False and "a term that does not" in diagnosis.message
    index = tuple(diagnosis.evidence["index"])
    assert diagnosis.evidence["for_2_delta"] - 2 * diagnosis.evidence["for_delta"] == pytest.approx(
        -0.1 * Linear().W[index])


def test_leak_names_the_changed_sample_and_the_one_that_moved():
    diagnosis = evidence("softmax summing over the batch")
    assert diagnosis.evidence["changed_sample"] == 3 and diagnosis.evidence["index"][0] in (0, 1, 2)
    assert diagnosis.evidence["before"] != diagnosis.evidence["after"]


def test_batch_constant_gives_the_offsets_a_forgotten_mean_term_leaves():
    layer, x, _ = GALLERY["batch norm forgetting the mean"][0]()
    diagnosis = evidence("batch norm forgetting the mean")
    # the forgotten term, inv_std * mean(delta * gamma) per feature, is the same for all 5 samples
    for offset in diagnosis.evidence["offsets"]:
        assert offset["offset"] != 0 and offset["index"][0] is None
    assert diagnosis.evidence["samples"] == 5


def test_wrong_elements_names_the_five_worst_with_both_values_and_only_the_repeated_ids():
    diagnosis = evidence("embedding assigning repeated ids", "parameter 0")
    ids = GALLERY["embedding assigning repeated ids"][0]()[1]
    repeated = {int(i) for i in np.unique(ids) if (ids == i).sum() > 1}  # 1, 3, 5
    assert diagnosis.evidence["wrong"] == 3 * len(repeated) and diagnosis.evidence["checked"] == 30
    assert len(diagnosis.evidence["worst"]) == 5
    assert {w["index"][0] for w in diagnosis.evidence["worst"]} <= repeated
    assert diagnosis.message.count("numerical") == 5 and diagnosis.message.startswith("wrong in 9 of 30")


def test_wrong_elements_names_a_block_when_the_wrong_ones_fill_one():
    class OffInARow(Linear):
        def backward(self, delta):
            delta_x = super().backward(delta)
            self.parameters_deltas[0][2] *= 3  # row 2 of dW
            return delta_x

    report, _ = check(lambda: (OffInARow(), normal((5, 4), 22), ()))
    diagnosis = report[1].diagnoses[0]
    assert diagnosis.kind == "wrong-elements" and diagnosis.evidence["block"] == {"axis": 0, "from": 2, "to": 2}
    assert "all in indices 2..2 of axis 0" in diagnosis.message


def test_precision_names_its_sign():
    assert "passes in float64 but not in float32" in evidence("softmax overflowing in float32").message
    assert evidence("tanh computed in float32").evidence == {"changed_by_1e-12": 0, "changed_by_1e-5": 20}
    assert evidence("tanh gradient returned as float32").evidence == {"returned_dtype": "float32"}


def test_an_embedding_skips_its_integer_input_and_checks_its_table():
    layer, ids, _ = RIGHT["embedding"]()
    report = sanity_check(layer, ids)
    assert [(row.tensor, row.result, row.skipped, row.coords) for row in report] == [
        ("input", "SKIP", "integer ids have no gradient", 0), ("parameter 0", "PASS", "", 30)]
    assert report[1].max_abs_err < 1e-8 and "integer ids have no gradient" in str(report)
    assert report[0].to_dict()["result"] == "skip"


def test_integer_ids_reach_forward_as_they_are():
    seen = []

    class Recording(Embedding):
        def forward(self, ids, *args):
            seen.append(ids.dtype)
            return super().forward(ids)

    ids = np.array([[1, 2], [2, 9]], dtype=np.int16)
    assert sanity_check(Recording(), ids).passed
    assert set(seen) == {np.dtype(np.int16)}
