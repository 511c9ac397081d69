"""The transposed diagnosis (nnscratch/check/axes.py): the rearrangements a shape allows, a gradient
that comes out transposed, and a backward that reads a parameter the wrong way round."""

from __future__ import annotations

import numpy as np

from nnscratch.check.axes import symmetries, transposed

from helpers.check_contexts import Dense, context_for


def names(shape):
    return [text for text, _, _ in symmetries(shape)]


def test_a_square_matrix_can_only_be_transposed():
    assert names((3, 3)) == ["transposed"]
    _, evidence, rearrange = symmetries((3, 3))[0]
    a = np.arange(9).reshape(3, 3)
    assert evidence == {"axes": [1, 0]} and np.array_equal(rearrange(a), a.T)


def test_unequal_axes_have_no_rearrangement_and_vectors_none_at_all():
    assert names((4, 3)) == [] and names((5,)) == []
    # five axes: no permutation is looked for, only the flips of the axes after the first two
    assert len(names((2, 3, 3, 3, 3))) == 7 and not any("permuted" in text for text in names((2, 3, 3, 3, 3)))


def test_a_kernel_s_spatial_axes_can_be_flipped_and_equal_axes_permuted():
    found = names((2, 3, 3, 3))
    # permutations of the three axes of size 3 (5 besides the identity), and flips of axes 2 and 3
    assert sum(text.startswith("with its axes permuted") for text in found) == 5
    assert found[-3:] == ["flipped along axis 2", "flipped along axis 3", "flipped along axes (2, 3) (rotated 180 degrees)"]
    _, evidence, rearrange = symmetries((2, 3, 3, 3))[-1]
    k = np.arange(54).reshape(2, 3, 3, 3)
    assert evidence == {"flipped_axes": [2, 3]} and np.array_equal(rearrange(k), k[:, :, ::-1, ::-1])


def test_a_transposed_weight_gradient_is_named():
    x = np.random.default_rng(1).standard_normal((4, 3))
    ctx = context_for(Dense(mistake="transposed-dW"), x)
    weight = ctx.targets[1]
    comparison = ctx.compare(weight)
    assert comparison.problem == "gradient is wrong"
    (diagnosis,) = transposed(ctx, weight, comparison)
    assert diagnosis.kind == "transposed" and diagnosis.evidence == {"of": "parameter 0", "axes": [1, 0]}
    assert diagnosis.message.startswith("the gradient of parameter 0 is right once transposed")
    assert "dW = x.T @ delta" in diagnosis.message


def test_a_backward_that_reads_the_weight_untransposed_is_named():
    x = np.random.default_rng(2).standard_normal((4, 3))
    ctx = context_for(Dense(mistake="untransposed-W"), x)
    inputs = ctx.targets[0]
    (diagnosis,) = transposed(ctx, inputs, ctx.compare(inputs))
    assert diagnosis.evidence == {"of": "input", "uses": "parameter 0", "axes": [1, 0]}
    assert diagnosis.message.startswith("the gradient of input is right if parameter 0 (3, 3) is first transposed")
    np.testing.assert_array_equal(ctx.targets[1].array, ctx.run.layer.W)  # the weight put back


def test_a_gradient_wrong_in_another_way_is_not_called_transposed():
    x = np.random.default_rng(3).standard_normal((4, 3))
    layer = Dense()
    ctx = context_for(layer, x)
    weight = ctx.targets[1]
    wrong = 2 * ctx.gradient(weight)
    assert transposed(ctx, weight, ctx.compare_with(weight, wrong)) is None
