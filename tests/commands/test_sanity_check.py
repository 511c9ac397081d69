"""``nnscratch sanity-check`` end to end: built-in layers, a user's layer from --layer, exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import nnscratch
from nnscratch.cli import main

from helpers.sanity_check_tables import diagnosis_lines, table_rows


USER_MODULE = textwrap.dedent(
    """
    import numpy as np


    class Scale:
        \"\"\"y = x * w over the last axis, w float32.\"\"\"

        def __init__(self, n=6, factor=1.0):
            self.w = np.linspace(0.5, 1.5, n).astype(np.float32)
            self.parameters = [self.w]
            self.parameters_deltas = [np.zeros_like(self.w)]
            self.factor = factor

        def forward(self, x, *args):
            self.x = x.astype(self.w.dtype, copy=False)
            return self.x * self.w

        def backward(self, delta):
            self.parameters_deltas[0][...] = (delta * self.x).sum(axis=0)
            return self.factor * delta * self.w


    class Broken(Scale):
        def __init__(self):
            super().__init__(factor=3.0)


    class NotALayer:
        def forward(self, x):
            return x


    class NeedsArgs(Scale):
        def __init__(self, size):
            super().__init__(n=size)


    class UserCrossEntropy:
        \"\"\"Per-sample -sum(t * log softmax(x)) from logits (N, C); labels (N,) or rows (N, C).\"\"\"

        def __init__(self):
            self.parameters, self.parameters_deltas = [], []

        def forward(self, x, targets):
            t = np.eye(x.shape[1])[targets] if targets.ndim == 1 else targets
            shifted = x - x.max(axis=1, keepdims=True)
            log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
            self.p, self.t = np.exp(log_p), t
            return -(t * log_p).sum(axis=1)

        def backward(self, delta):
            return delta[:, None] * (self.p * self.t.sum(axis=1, keepdims=True) - self.t)


    class ForgetsDelta(UserCrossEntropy):
        def backward(self, delta):
            return self.p - self.t  # the classic slip: right for delta = 1 only


    SEEN = []


    class RecordsTargets:
        \"\"\"y = sum(x^2) per sample; keeps every targets array it is given in SEEN.\"\"\"

        parameters, parameters_deltas = [], []

        def forward(self, x, targets):
            SEEN.append(targets.copy())
            self.x = x
            return (x**2).sum(axis=1)

        def backward(self, delta):
            return 2 * self.x * delta[:, None]


    class NoTargets(RecordsTargets):
        def forward(self, x):
            return super().forward(x, np.zeros(0))


    class NeedsMask(RecordsTargets):
        def forward(self, x, targets, mask):
            return super().forward(x, targets)


    class ProbabilityLoss:
        \"\"\"Per-sample -log x[n, label]: a loss on probabilities, not logits.\"\"\"

        parameters, parameters_deltas = [], []

        def forward(self, x, labels):
            self.x, self.labels = x, labels
            return -np.log(x[np.arange(len(labels)), labels])

        def backward(self, delta):
            grad = np.zeros_like(self.x)
            rows = np.arange(len(self.labels))
            grad[rows, self.labels] = -delta / self.x[rows, self.labels]
            return grad


    INPUTS = []


    class Abs:
        \"\"\"y = |x|, dy/dx = sign(x): a kink at 0; keeps every input it is given in INPUTS.\"\"\"

        parameters, parameters_deltas = [], []

        def forward(self, x, *args):
            INPUTS.append(x.copy())
            self.x = x
            return np.abs(x)

        def backward(self, delta):
            return delta * np.sign(self.x)


    class Log(Abs):
        def forward(self, x, *args):
            INPUTS.append(x.copy())
            self.x = x
            return np.log(x)

        def backward(self, delta):
            return delta / self.x
    """
)


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    (tmp_path / "my_layers.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "my_layers"
    sys.modules.pop("my_layers", None)


def test_one_builtin_layer_passes_with_a_table_and_summary(capsys):
    assert main(["sanity-check", "Linear", "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    header = out.splitlines()[0].split()
    assert header[:3] == ["layer", "configuration", "tensor"] and header[-1] == "result"
    rows = table_rows(out)
    assert [(r[0], r[2], r[3], r[-1]) for r in rows] == [
        ("Linear", "input (4, 5)", "20", "PASS"),
        ("Linear", "parameter 0 (5, 3)", "15", "PASS"),
        ("Linear", "parameter 1 (3,)", "3", "PASS"),
        ("Linear", "input (3, 6)", "18", "PASS"),
        ("Linear", "parameter 0 (6, 2)", "12", "PASS"),
    ]
    for r in rows:
        assert float(r[4]) < 1e-8 and float(r[5]) < 1e-5
    assert "all 2 configurations passed (5 tensors checked)" in out


def test_layer_names_are_case_insensitive_and_unknown_names_exit_2_with_the_list(capsys):
    assert main(["sanity-check", "tanh", "--quiet"]) == 0
    assert "Tanh" in capsys.readouterr().out
    assert main(["sanity-check", "Conv3D"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "unknown layer 'Conv3D'" in err
    for name in ("Linear", "Conv2D", "MaxPool2D", "Softmax", "SoftmaxCrossEntropy", "Sequential"):
        assert name in err
    assert len(err.strip().splitlines()) == 1


def test_a_builtin_with_a_broken_backward_fails_with_exit_1(capsys, monkeypatch):
    backward = nnscratch.Tanh.backward
    monkeypatch.setattr(nnscratch.Tanh, "backward", lambda self, delta: 1.01 * backward(self, delta))
    assert main(["sanity-check", "Tanh", "--quiet"]) == 1
    out = capsys.readouterr().out
    assert table_rows(out)[0][-1] == "FAIL"
    assert "FAIL Tanh [" in out and "Tanh: gradient is wrong for input (shape (4, 5))" in out
    assert "1 of 1 configurations FAILED" in out


def test_user_layer_from_layer_option_passes_with_the_given_input_shape(capsys, user_module):
    assert main(["sanity-check", "--layer", f"{user_module}:Scale", "--input-shape", "5,6", "--quiet"]) == 0
    rows = table_rows(capsys.readouterr().out)
    assert [(r[0], r[1], r[2], r[3], r[-1]) for r in rows] == [
        ("my_layers:Scale", "input (5, 6)", "input (5, 6)", "30", "PASS"),
        ("my_layers:Scale", "input (5, 6)", "parameter 0 (6,)", "6", "PASS"),
    ]


def test_user_module_in_the_current_directory_is_found_as_from_the_console_script(capsys, tmp_path, monkeypatch):
    (tmp_path / "cwd_layers.py").write_text(USER_MODULE)
    monkeypatch.chdir(tmp_path)
    path_before = list(sys.path)
    try:
        assert main(["sanity-check", "--layer", "cwd_layers:Scale", "--input-shape", "2,6", "--quiet"]) == 0
    finally:
        sys.modules.pop("cwd_layers", None)
    assert sys.path == path_before
    assert "cwd_layers:Scale" in capsys.readouterr().out


def test_user_layer_constructor_arguments_and_coordinate_count(capsys, user_module):
    argv = ["sanity-check", "--layer", f"{user_module}:NeedsArgs", "--args", '{"size": 40}',
            "--input-shape", "3,40", "--coords", "7", "--quiet"]
    assert main(argv) == 0
    rows = table_rows(capsys.readouterr().out)
    assert [(r[2], r[3]) for r in rows] == [("input (3, 40)", "7"), ("parameter 0 (40,)", "7")]


def test_seed_and_tolerances_given_as_text_reach_the_check(capsys):
    def run(*options):
        code = main(["sanity-check", "Tanh", "--quiet", *options])
        out = capsys.readouterr().out
        return code, out, [r[4] for r in table_rows(out)]

    code, out, _ = run("--atol", "0.5", "--rtol", "0.25")
    assert code == 0 and "(atol=0.5, rtol=0.25;" in out
    assert run("--atol", "1e-15", "--rtol", "0")[0] == 1  # finite differences are not that exact: these were used
    assert run("--seed", "1")[2] == run("--seed", "1")[2] != run("--seed", "2")[2]  # the seed draws R


def test_broken_user_layer_fails_with_exit_1_and_says_where(capsys, user_module):
    assert main(["sanity-check", "--layer", f"{user_module}:Broken", "--input-shape", "4,6", "--quiet"]) == 1
    out = capsys.readouterr().out
    rows = table_rows(out)
    assert [(r[2], r[-1]) for r in rows] == [("input (4, 6)", "FAIL"), ("parameter 0 (6,)", "PASS")]
    assert "Broken: gradient is wrong for input (shape (4, 6)) at index (" in out
    assert "1 of 1 configurations FAILED" in out


@pytest.mark.parametrize("kind", ["integer", "one-hot", "soft"])
def test_user_loss_layer_gets_targets_and_passes(capsys, user_module, kind):
    argv = ["sanity-check", "--layer", f"{user_module}:UserCrossEntropy", "--input-shape", "4,5", "--targets", kind]
    assert main([*argv, "--quiet"]) == 0
    out = capsys.readouterr().out
    rows = table_rows(out)
    assert [(r[0], r[1], r[2], r[3], r[-1]) for r in rows] == [
        ("my_layers:UserCrossEntropy", f"input (4, 5), {kind} targets, 5 classes", "input (4, 5)", "20", "PASS"),
    ]
    assert float(rows[0][4]) < 1e-8
    assert "the 1 configuration passed (1 tensor checked)" in out


def test_user_loss_layer_with_a_wrong_backward_fails_naming_the_layer(capsys, user_module):
    argv = ["sanity-check", "--layer", f"{user_module}:ForgetsDelta", "--input-shape", "4,5", "--targets", "integer"]
    assert main([*argv, "--quiet"]) == 1
    out = capsys.readouterr().out
    assert [(r[2], r[-1]) for r in table_rows(out)] == [("input (4, 5)", "FAIL")]
    assert "FAIL my_layers:ForgetsDelta [input (4, 5), integer targets, 5 classes]: " in out
    assert "ForgetsDelta: gradient is wrong for input (shape (4, 5)) at index (" in out
    assert "1 of 1 configurations FAILED" in out


@pytest.mark.filterwarnings("ignore:invalid value encountered in log:RuntimeWarning")  # the N(0, 1) runs
@pytest.mark.parametrize(
    "layer, input_kind, extra",
    [("ProbabilityLoss", "probabilities", ["--targets", "integer"]), ("Log", "positive", []),
     ("Abs", "away-from-zero", [])],
)
def test_input_kinds_let_a_layer_be_checked_where_normal_input_cannot(capsys, user_module, layer, input_kind, extra):
    argv = ["sanity-check", "--layer", f"{user_module}:{layer}", "--input-shape", "4,5", *extra, "--quiet"]
    assert main([*argv, "--input", input_kind]) == 0
    rows = table_rows(capsys.readouterr().out)
    assert rows[0][1].startswith(f"{input_kind} input (4, 5)") and rows[0][-1] == "PASS"
    if layer != "Abs":  # log of N(0, 1) values: NaN, a failure, with a pointer to --input
        assert main(argv) == 1
        out = capsys.readouterr().out
        assert "a non-finite value" in out and "NaN" in out
        assert "(the input was N(0, 1); a layer defined for positive values only takes --input positive" in out


@pytest.mark.parametrize("input_kind", ["normal", "away-from-zero", "positive", "probabilities"])
def test_the_input_reaching_forward_is_of_the_kind_asked_for(capsys, user_module, input_kind):
    assert main(["sanity-check", "--layer", f"{user_module}:Abs", "--input-shape", "6,7", "--input", input_kind,
                 "--seed", "3", "--quiet"]) == 0
    seen = sys.modules[user_module].INPUTS
    x = seen[0]
    assert x.shape == (6, 7) and x.dtype == np.float64
    if input_kind == "normal":
        assert (x < 0).any() and (x > 0).any() and 0.3 < x.std() < 2.0
    elif input_kind == "away-from-zero":
        assert (np.abs(x) >= 0.1).all() and (np.abs(x) <= 2).all() and (x < 0).any() and (x > 0).any()
    elif input_kind == "positive":
        assert (x >= 0.5).all() and (x <= 2).all()
    else:
        assert (x > 0).all() and np.allclose(x.sum(axis=-1), 1)


@pytest.mark.parametrize(
    "options, config, shape",
    [
        (["--targets", "integer"], "integer targets, 5 classes", (4,)),  # classes: the input's last axis
        (["--targets", "integer", "--classes", "3"], "integer targets, 3 classes", (4,)),
        (["--targets", "one-hot", "--classes", "3"], "one-hot targets, 3 classes", (4, 3)),
        (["--targets", "soft", "--classes", "7"], "soft targets, 7 classes", (4, 7)),
    ],
)
def test_targets_reach_forward_with_the_kind_and_classes_asked_for(capsys, user_module, options, config, shape):
    argv = ["sanity-check", "--layer", f"{user_module}:RecordsTargets", "--input-shape", "4,5", *options, "--quiet"]
    assert main(argv) == 0
    assert f"input (4, 5), {config}" in capsys.readouterr().out
    seen = sys.modules[user_module].SEEN
    # the same targets on every call; the float32 probe's last two calls get them rounded to float32
    assert len(seen) > 20 and all(np.array_equal(t, seen[0]) for t in seen[:-2])
    assert all(np.allclose(t, seen[0], rtol=1e-7, atol=0) for t in seen[-2:])
    targets, classes = seen[0], int(config.split()[2])
    assert targets.shape == shape
    if options[1] == "integer":
        assert targets.dtype.kind == "i" and 0 <= targets.min() and targets.max() < classes
    elif options[1] == "one-hot":
        assert set(targets.ravel().tolist()) == {0.0, 1.0} and (targets.sum(axis=1) == 1).all()
    else:
        assert (targets > 0).all() and np.allclose(targets.sum(axis=1), 1) and (targets < 1).all()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--layer", "no_such_module_xyz:Foo", "--input-shape", "2,3"], "cannot import module 'no_such_module_xyz'"),
        (["--layer", "my_layers:Missing", "--input-shape", "2,3"], "module 'my_layers' has no class 'Missing'"),
        (["--layer", "my_layers", "--input-shape", "2,3"], "expected pkg.module:Class, got 'my_layers'"),
        (["--layer", "my_layers:NotALayer", "--input-shape", "2,3"], "does not follow the layer protocol .* missing backward"),
        (["--layer", "my_layers:NeedsArgs", "--input-shape", "2,3"], r"cannot build my_layers:NeedsArgs\(\*\*\{\}\): TypeError"),
        (["--layer", "my_layers:NeedsArgs", "--args", "[3]", "--input-shape", "2,3"], "expected a JSON object"),
        (["--layer", "my_layers:Scale"], "--layer needs --input-shape"),
        (["--layer", "my_layers:Scale", "--input-shape", "5,x"], "expected positive ints separated by commas"),
        (["--layer", "my_layers:Scale", "--input-shape", "5,0"], "expected positive ints separated by commas"),
        (["--input-shape", "5,6"], "--input-shape, --input and --args go with --layer"),
        (["Linear", "--input", "positive"], "--input-shape, --input and --args go with --layer"),
        (["--layer", "my_layers:Scale", "--input-shape", "5,6", "--input", "uniform"],
         "--input: expected one of normal, away-from-zero, positive, probabilities, ids:V; got 'uniform'"),
        (["Linear", "--coords", "0"], "--coords: expected a positive int, got '0'"),
        (["Linear", "--coords", "x"], "--coords: expected a positive int, got 'x'"),
        (["Linear", "--coords", "2.5"], r"--coords: expected a positive int, got '2\.5'"),
        (["Linear", "--seed", "-1"], "--seed: expected a non-negative int, got '-1'"),
        (["Linear", "--seed", "one"], "--seed: expected a non-negative int, got 'one'"),
        (["Linear", "--atol", "x"], "--atol: expected a finite number >= 0, got 'x'"),
        (["Linear", "--atol=-1e-6"], "--atol: expected a finite number >= 0, got '-1e-6'"),
        (["Linear", "--atol", "nan"], "--atol: expected a finite number >= 0, got 'nan'"),
        (["Linear", "--rtol", "inf"], "--rtol: expected a finite number >= 0, got 'inf'"),
        (["Linear", "--rtol", ""], "--rtol: expected a finite number >= 0, got ''"),
        (["--layer", "my_layers:UserCrossEntropy", "--input-shape", "4,5", "--targets", "labels"],
         "--targets: expected one of integer, one-hot, soft; got 'labels'"),
        (["--layer", "my_layers:UserCrossEntropy", "--input-shape", "4,5", "--targets", "integer", "--classes", "0"],
         "--classes: expected a positive int, the number of classes; got '0'"),
        (["--layer", "my_layers:UserCrossEntropy", "--input-shape", "4,5", "--targets", "one-hot", "--classes", "2.5"],
         "--classes: expected a positive int, the number of classes; got '2.5'"),
        (["--layer", "my_layers:UserCrossEntropy", "--input-shape", "4,5", "--classes", "3"],
         "--classes goes with --targets, got --classes 3 alone"),
        (["--layer", "my_layers:UserCrossEntropy", "--input-shape", "6", "--targets", "integer"],
         r"--targets: the input shape \(6,\) has no class axis after the batch axis; give the number of classes "
         "with --classes C"),
        (["--layer", "my_layers:UserCrossEntropy", "--input-shape", "4,5"],
         r"--layer: my_layers:UserCrossEntropy.forward\(x, targets\) needs targets; give --targets, one of "
         "integer, one-hot, soft"),
        (["--layer", "my_layers:NoTargets", "--input-shape", "4,5", "--targets", "soft"],
         r"--targets: my_layers:NoTargets.forward\(x\) takes no targets, only the input"),
        (["--layer", "my_layers:NeedsMask", "--input-shape", "4,5", "--targets", "soft"],
         r"--layer: my_layers:NeedsMask.forward\(x, targets, mask\) needs 3 arguments"),
        (["SoftmaxCrossEntropy", "--targets", "integer"], "--targets and --classes go with --layer"),
    ],
)
def test_bad_command_lines_exit_2_with_one_line_and_no_traceback(capsys, user_module, argv, message):
    import re

    assert main(["sanity-check", *argv, "--quiet"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and err.startswith("nnscratch sanity-check: error: ")
    assert re.search(message, err), err


def test_progress_bar_goes_to_stderr_unless_quiet(capsys):
    assert main(["sanity-check", "Softmax", "Mean", "Flatten", "ReLU", "Tanh", "Sigmoid"]) == 0
    out, err = capsys.readouterr()
    assert "sanity-check" in err and "config" in err and "PASS" in out and "PASS" not in err
    assert main(["sanity-check", "Softmax", "Mean", "Flatten", "ReLU", "Tanh", "Sigmoid", "--quiet"]) == 0
    assert capsys.readouterr().err == ""


def test_every_builtin_layer_passes_in_every_configuration(capsys):
    assert main(["sanity-check", "--quiet"]) == 0
    out = capsys.readouterr().out
    rows = table_rows(out)
    # every tensor passes, but the input of a layer of integer ids (Embedding), which has no gradient
    assert rows and all(r[-1] == "PASS" or (r[-1] == "SKIP" and r[2].startswith("input")) for r in rows)
    assert {r[0] for r in rows if r[-1] == "SKIP"} == {"Embedding", "Sequential"}
    # no false alarm: a right layer gets no diagnosis at all (a skipped input only its reason)
    assert [line for _, line in diagnosis_lines(out) if line.strip() != "integer ids have no gradient"] == []
    configs = {(r[0], r[1]) for r in rows}
    layers = {layer for layer, _ in configs}
    # every exported layer has a row (a new layer without one fails here)
    assert layers == ({name for name in nnscratch.layers.__all__ if name != "Layer"} | {"Sequential", "Residual"}
                      | {f"reference.{name}" for name in nnscratch.reference.__all__})
    assert {"Linear", "Conv2D", "MaxPool2D", "Sigmoid", "Tanh", "ReLU", "Softmax", "Flatten", "Mean",
            "CrossEntropy", "SoftmaxCrossEntropy", "Dropout"} <= layers
    conv = {config for layer, config in configs if layer == "Conv2D"}
    for wanted in ("4x4 input, 3x3 kernel", "padding 1", "stride 2 on 7x7", "padding 1 + stride 2 on 7x7",
                   "3 input channels", "3 channels + bias", "4 filters", "4 filters + bias", "mini-batch of 3",
                   "RGB batch 3x3x7x7, 4 filters, stride 2, padding 1"):
        assert wanted in conv
    assert any("kernel (3, 2)" in c for c in conv) and any("stride (1, 2)" in c for c in conv)
    for loss in ("CrossEntropy", "SoftmaxCrossEntropy"):
        kinds = {config for layer, config in configs if layer == loss}
        assert {"integer targets", "one-hot targets", "soft targets"} <= kinds
    # Conv2D and MaxPool2D check their parameters too, not only the input
    assert any(r[0] == "Conv2D" and r[2].startswith("parameter 1 (4,)") for r in rows)
    assert any(r[0] == "reference.Conv2D" and r[2].startswith("parameter 1 (4,)") for r in rows)
    dropout = {config for layer, config in configs if layer == "Dropout"}
    assert {"p=0.2, training (the same mask in every forward)", "p=0.5, eval mode (the identity)"} <= dropout
    for layer in ("BatchNorm1D", "BatchNorm2D"):  # both modes, with and without affine, parameters checked
        kinds = [config for name, config in configs if name == layer]
        for kind in (", training", ", eval", ", training, affine=False", ", eval, affine=False"):
            assert any(config.endswith(kind) for config in kinds)
        assert any(r[0] == layer and r[1].endswith(", training") and r[2].startswith("parameter 1") for r in rows)
        assert any(r[0] == layer and r[1].endswith(", eval") and r[2].startswith("parameter 1") for r in rows)
    layer_norm = {config for layer, config in configs if layer == "LayerNorm"}
    assert any("last axis" in c for c in layer_norm) and any("last two axes" in c for c in layer_norm)
    networks = {config for layer, config in configs if layer == "Sequential"}
    assert {c for c in networks if "BatchNorm2D" in c and "LayerNorm" in c and "Dropout" in c and c.endswith("Mean, training")}
    assert {c for c in networks if "BatchNorm2D" in c and c.endswith("Mean, eval")}
    assert f"all {len(configs)} configurations passed" in out


def test_subprocess_python_m_nnscratch(tmp_path):
    (tmp_path / "my_layers.py").write_text(USER_MODULE)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "nnscratch", "sanity-check", "Linear"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("PASS") == 5 and "all 2 configurations passed" in done.stdout
    done = subprocess.run([sys.executable, "-m", "nnscratch", "sanity-check", "--layer", "my_layers:Broken",
                           "--input-shape", "4,6"], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 1 and "FAIL" in done.stdout and "Traceback" not in done.stderr
    done = subprocess.run([sys.executable, "-m", "nnscratch", "sanity-check", "--layer", "nope_mod:X",
                           "--input-shape", "4,6"], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip() == ("nnscratch sanity-check: error: --layer: cannot import module 'nope_mod': "
                                   "ModuleNotFoundError: No module named 'nope_mod'")


def test_deeply_nested_args_are_a_clear_error(capsys, user_module):
    deep = "[" * 100_000 + "]" * 100_000
    assert main(["sanity-check", "--layer", f"{user_module}:Scale", "--args", deep, "--input-shape", "2,3"]) == 2
    err = capsys.readouterr().err
    assert "nnscratch sanity-check: error: --args: nested too deeply to read" in err and "Traceback" not in err
