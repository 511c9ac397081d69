"""inference_model (the one rule for dropping the loss), class_probabilities and digit_input_shape on
the presets and hand-built networks."""

import numpy as np
import pytest

import nnscratch as nn
from nnscratch.inference import (
    class_probabilities,
    digit_input_shape,
    ends_in_softmax,
    inference_model,
)
from nnscratch.layers.softmax import softmax
from nnscratch.presets import PRESETS


@pytest.mark.parametrize("name, kept", [("softmax", ["Linear", "Softmax"]), ("mlp", ["Linear", "ReLU"] * 2 + ["Linear"])])
def test_inference_model_drops_the_loss_of_a_training_network(name, kept):
    net = PRESETS[name].build(rng=np.random.default_rng(0))
    model = inference_model(net)
    assert [type(layer).__name__ for layer in model] == kept
    assert all(a is b for a, b in zip(model, net))  # the same layer objects, no copies


def test_inference_model_keeps_the_nesting_and_looks_into_a_trailing_nested_sequential():
    linear, relu = nn.Linear(4, 3), nn.ReLU()
    inner = nn.Sequential(linear, relu)
    net = nn.Sequential(inner, nn.Sequential(nn.SoftmaxCrossEntropy(), nn.Mean()))
    assert inference_model(net).layers == [inner]  # a Sequential of losses only goes as a whole
    model = inference_model(nn.Sequential(nn.Sequential(linear, relu, nn.SoftmaxCrossEntropy()), nn.Mean()))
    assert len(model.layers) == 1 and model.layers[0].layers == [linear, relu]  # trimmed, still nested
    deeper = inference_model(nn.Sequential(linear, nn.Sequential(relu, nn.Sequential(nn.Mean()))))
    assert deeper.layers[0] is linear and deeper.layers[1].layers == [relu]


def test_inference_model_keeps_what_does_not_end_in_a_loss_and_wraps_a_bare_layer():
    linear = nn.Linear(4, 3)
    net = nn.Sequential(linear, nn.Sequential(nn.ReLU(), nn.Sequential()))  # an empty block is not a loss
    assert inference_model(net) is net
    inner_loss = nn.Sequential(linear, nn.CrossEntropy(), nn.Sigmoid())
    assert inference_model(inner_loss) is inner_loss  # only the end is looked at: the caller refuses the rest
    in_residual = nn.Sequential(linear, nn.Residual(nn.Linear(3, 3), nn.Mean()))
    assert inference_model(in_residual) is in_residual  # y = x + loss is not a loss at the end
    wrapped = inference_model(linear.eval())
    assert wrapped.layers == [linear] and not wrapped.training


def test_inference_model_refuses_a_network_of_only_losses_naming_the_caller():
    for net in (nn.Sequential(nn.CrossEntropy(), nn.Mean()), nn.Mean(), nn.Sequential(),
                nn.Sequential(nn.Sequential(nn.SoftmaxCrossEntropy()), nn.Mean())):
        with pytest.raises(ValueError, match=r"^inference_model: the network holds no layers besides its loss layers"):
            inference_model(net)
    with pytest.raises(ValueError, match=r"^export_onnx: the network holds no layers"):
        inference_model(nn.Mean(), tool="export_onnx")


def test_softmax_by_hand_for_huge_scores_and_in_the_callers_dtype():
    np.testing.assert_allclose(softmax(np.array([[0.0, np.log(3.0)]])), [[0.25, 0.75]])
    np.testing.assert_allclose(softmax(np.array([[1e4, 1e4 - np.log(3.0)]])), [[0.75, 0.25]])  # no overflow
    scores = np.array([[1.0, 2.0, 3.0], [-1e30, 0.0, 1e30]], dtype=np.float32)
    y = softmax(scores)
    assert y.dtype == np.float32 and np.isfinite(y).all()
    np.testing.assert_allclose(y[0], np.exp([1.0, 2.0, 3.0]) / np.exp([1.0, 2.0, 3.0]).sum(), rtol=1e-6)
    assert (scores[0] == [1.0, 2.0, 3.0]).all()  # the input is left as it was
    layer_y = nn.Softmax().forward(scores)
    np.testing.assert_array_equal(layer_y, y)  # the layer computes through the same function


def test_class_probabilities_softmax_logits_but_take_a_softmax_output_as_it_is():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 6)).astype(np.float32)
    linear = nn.Linear(6, 4, rng=rng)
    logits = linear.forward(x).astype(np.float64)
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(class_probabilities(nn.Sequential(linear), x), expected, rtol=1e-6)
    with_softmax = nn.Sequential(linear, nn.Softmax())
    assert ends_in_softmax(with_softmax) and not ends_in_softmax(nn.Sequential(linear))
    np.testing.assert_allclose(class_probabilities(with_softmax, x), expected, rtol=1e-5)  # not a softmax twice


@pytest.mark.parametrize("build, shape", [
    (lambda: inference_model(PRESETS["mlp"].build(rng=np.random.default_rng(0))), (784,)),
    (lambda: inference_model(PRESETS["cnn"].build(rng=np.random.default_rng(0))), (1, 28, 28)),
    (lambda: nn.Sequential(nn.Flatten(), nn.Linear(784, 10)), (1, 28, 28)),
])  # fmt: skip
def test_digit_input_shape(build, shape):
    assert digit_input_shape(build()) == shape


def test_digit_input_shape_refuses_a_network_for_other_inputs():
    with pytest.raises(ValueError, match=r"^the network does not take a 28x28 digit \(tried the shapes \(1, 28, 28\), \(784,\), \(28, 28\)\); "
                       r"as \(784,\): in layer 0 \(Linear\) of Sequential: Linear: expected 100 input features"):
        digit_input_shape(nn.Sequential(nn.Linear(100, 10)))
    with pytest.raises(ValueError, match=r"as \(784,\): gives outputs of shape \(1, 1\), expected class scores \(1, C\)"):
        digit_input_shape(nn.Sequential(nn.Linear(784, 1)))
    with pytest.raises(ValueError, match=r"as \(1, 28, 28\): .*Conv2D: expected 3 input channels"):
        digit_input_shape(nn.Sequential(nn.Conv2D(3, 4, 3)))


def test_inference_model_drops_every_kind_of_trailing_loss_shares_the_layers_and_keeps_the_mode():
    first, relu, last = nn.Linear(4, 3, rng=0), nn.ReLU(), nn.Linear(3, 2, rng=0)
    for losses in ([nn.SoftmaxCrossEntropy(), nn.Mean()], [nn.Softmax(), nn.CrossEntropy(), nn.Mean()],
                   [nn.Sequential(nn.SoftmaxCrossEntropy(), nn.Mean())], [nn.Mean()], [nn.Hinge(), nn.Mean()],
                   [nn.MeanSquaredError(), nn.Mean()], [nn.SigmoidBinaryCrossEntropy(), nn.Mean()],
                   [nn.Sigmoid(), nn.BinaryCrossEntropy(), nn.Mean()]):
        model = inference_model(nn.Sequential(first, relu, last, *losses))
        expected = [first, relu, last] + ([losses[0]] if isinstance(losses[0], (nn.Softmax, nn.Sigmoid)) else [])
        assert model.layers == expected  # the same objects, not copies
    assert not inference_model(nn.Sequential(first, nn.Mean()).eval()).training  # the mode is kept


@pytest.mark.parametrize("training", [True, False])
def test_digit_input_shape_probes_in_eval_mode_and_leaves_modes_and_running_statistics_alone(training):
    net = nn.Sequential(nn.Conv2D(1, 2, 3, rng=0), nn.BatchNorm2D(2), nn.ReLU(), nn.Flatten(),
                        nn.Linear(2 * 26 * 26, 8, rng=1), nn.BatchNorm1D(8), nn.Linear(8, 10, rng=2)).train(training)
    net[1].running_mean[...] = 0.5
    # in training mode a batch of one would be refused by BatchNorm1D, and BatchNorm2D would fold the
    # zeros into its running statistics
    assert digit_input_shape(net) == (1, 28, 28)
    np.testing.assert_array_equal(net[1].running_mean, 0.5)
    np.testing.assert_array_equal(net[1].running_var, 1.0)
    assert all(layer.training is training for layer in net)
