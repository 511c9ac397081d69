"""The README's examples run and do what it says, its tables render as tables, its links lead somewhere."""

import re

import numpy as np
import pytest

from helpers.docs_blocks import ROOT, blocks, python_blocks, run_page, table_problems

README = ROOT / "README.md"


def test_the_readme_teaches_with_a_runnable_example_and_stays_short():
    assert python_blocks(README), "the README lost its runnable 'write a layer' example"
    assert {block.language for block in blocks(README)} <= {"python", "bash", "text"}
    assert len(README.read_text().splitlines()) <= 320, "the README grew: move the detail into docs/"


def test_write_a_layer_example_runs_checks_and_plugs_into_a_network(tmp_path, monkeypatch):
    import nnscratch as nn

    monkeypatch.chdir(tmp_path)
    namespace = run_page(README)
    report = namespace["report"]
    assert report.passed and [row.tensor for row in report] == ["input", "parameter 0"]
    assert max(row.max_abs_err for row in report) < 1e-8
    # The printed report the README shows under the example is the one the example prints.
    shown = next(block.code for block in blocks(README) if block.code.startswith("gradient check of Scale"))
    assert str(report).strip() == shown.strip()
    # "it trains too": one Adam step moves the user's weight.
    net, x = namespace["net"], np.random.default_rng(1).normal(size=(8, 5)).astype(np.float32)
    net.forward(x, np.arange(8) % 5)
    net.backward()
    nn.Adam(net, lr=0.01).step()
    assert not np.allclose(net[1].w, 1.0)


def test_a_broken_backward_in_the_example_would_be_caught():
    import nnscratch as nn

    namespace = run_page(README, {"__name__": "readme"})
    layer = namespace["Scale"](5)
    layer.backward = lambda delta: delta  # forgets the weight: dL/dx is wrong once w != 1
    layer.w[...] = 2.0
    with pytest.raises(nn.GradientCheckError, match="Scale: gradient is wrong for input"):
        nn.sanity_check(layer, np.random.default_rng(0).normal(size=(4, 5)))


def test_every_built_in_layer_has_a_row_in_the_layer_table():
    import nnscratch as nn

    rows = re.findall(r"^\| `(?:reference\.)?(\w+)", README.read_text().split("## Built-in layers")[1], flags=re.M)
    names = set(rows)
    built_in = {name for name in nn.layers.__all__ if name != "Layer"} | {"Sequential", "Residual"}
    assert built_in <= names, f"missing from the README's table: {sorted(built_in - names)}"
    reference = re.findall(r"^\| `reference\.(\w+)`", README.read_text(), flags=re.M)
    assert sorted(reference) == sorted(nn.reference.__all__)


def test_the_tables_render_as_tables():
    assert table_problems(README) == []


def test_every_link_to_a_file_leads_to_one():
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README.read_text())
    local = [link for link in links if "://" not in link]
    assert local, "the README no longer links to the documentation"
    missing = [link for link in local if not (ROOT / link).exists()]
    assert not missing, f"the README links to files that do not exist: {missing}"


def test_the_reading_order_names_files_that_exist():
    order = README.read_text().split("## Reading order")[1].split("\n## ")[0]
    paths = set(re.findall(r"`(nnscratch/[\w/]+(?:\.py)?)`", order))
    assert len(paths) >= 6
    missing = sorted(path for path in paths if not (ROOT / path).exists())
    assert not missing, f"the reading order names files that moved or went: {missing}"


def test_the_stated_sanity_check_count_is_the_number_of_built_in_cases():
    from nnscratch.commands.sanity_check_cases import builtin_cases

    page = ROOT / "docs" / "commands" / "sanity-check.md"
    for path in (README, page):
        stated = re.findall(r"checks every built-in layer\s+in\s+(\d+)\s+configurations", path.read_text())
        assert len(stated) == 1, f"{path.name} no longer says how many configurations `nnscratch sanity-check` checks"
        assert int(stated[0]) == len(builtin_cases()), f"a sanity-check case was added or removed: update {path.name}"
