"""The README's runnable examples run, and do what they say."""

import re
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parents[1] / "README.md"


def runnable_blocks():
    """Python blocks preceded by the marker <!-- test: run --> (others need MNIST or a network)."""
    text = README.read_text()
    return re.findall(r"<!-- test: run -->\s*```python\n(.*?)```", text, flags=re.S)


def test_write_your_own_layer_example_runs_and_checks(tmp_path, monkeypatch):
    blocks = runnable_blocks()
    assert len(blocks) >= 1, "the README lost its runnable 'write your own layer' example"
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(blocks[0], str(README), "exec"), namespace)
    report = namespace["report"]
    assert report.passed and [row.tensor for row in report] == ["input", "parameter 0"]
    assert max(row.max_abs_err for row in report) < 1e-8
    # The three Adam steps moved the user's weight away from its initial ones.
    assert not np.allclose(namespace["net"][1].w, 1.0)


def test_resnet_style_block_example_runs_checks_and_learns(tmp_path, monkeypatch):
    blocks = [block for block in runnable_blocks() if "nn.Residual(" in block]
    assert len(blocks) == 1, "the README lost its runnable ResNet-style block example"
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(blocks[0], str(README), "exec"), namespace)
    nn = namespace["nn"]
    block = namespace["model"][2]
    assert isinstance(block[0], nn.Residual) and len(block[0].parameters) == 6 and len(block[0].buffers) == 4
    report = namespace["report"]
    assert report.passed and [row.tensor for row in report] == ["input"] + [f"parameter {i}" for i in range(6)]
    assert namespace["model"].output_shape((3, 1, 28, 28)) == (3, 10)
    losses = namespace["losses"]
    assert len(losses) == 10 and losses[-1] < 0.5 * losses[0]
    assert namespace["scores"].shape == (8, 10) and namespace["model"].training  # predict put train mode back


def test_the_stated_sanity_check_count_is_the_number_of_built_in_cases():
    from nnscratch.commands.sanity_check_cases import builtin_cases

    stated = re.findall(r"`nnscratch sanity-check` checks every built-in layer\s+in\s+(\d+)\s+configurations",
                        README.read_text())
    assert len(stated) == 1, "the README no longer says how many configurations `nnscratch sanity-check` checks"
    assert int(stated[0]) == len(builtin_cases()), "a sanity-check case was added or removed: update the README"
