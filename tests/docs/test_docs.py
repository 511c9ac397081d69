"""The documentation site's Python examples run, and do what their pages say.

Every ```python block of every page under docs/ runs: a page's blocks in order, in one namespace, in
a temporary directory (nothing lands in the checkout). Where a page states a result, ``CHECKS`` holds
it to that. Shell commands, program output and configuration are fenced as bash, text, yaml or json,
and must be: a fence with no language, or another one, fails here.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from helpers.docs_blocks import LANGUAGES, ROOT, blocks, provide, python_blocks, run_page, table_problems

DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
RUNNABLE = [page for page in PAGES if python_blocks(page)]


def page_id(page: Path) -> str:
    return str(page.relative_to(DOCS))


# -- what the pages say their examples give ------------------------------------------------------
def check_protocol(ns):
    import nnscratch as nn

    assert ns["report"].passed and [row.tensor for row in ns["report"]] == ["input", "parameter 0"]
    assert max(row.max_abs_err for row in ns["report"]) < 1e-8
    block = ns["block_report"]
    assert block.passed and [row.tensor for row in block] == ["input"] + [f"parameter {i}" for i in range(6)]
    assert not np.allclose(ns["net"][1].w, 1.0)  # "no longer all ones": Adam moved the user's weight
    np.testing.assert_allclose(ns["bn"].buffers[0], 0.1 * ns["batch"].mean(axis=0), rtol=1e-5)  # "10% of the way"
    np.testing.assert_array_equal(ns["layer"].weight, np.arange(6).reshape(3, 2))
    assert isinstance(ns["model"][2][0], nn.Residual) and ns["model"].output_shape((3, 1, 28, 28)) == (3, 10)
    assert len(ns["losses"]) == 10 and ns["losses"][-1] < 0.5 * ns["losses"][0]  # "it learns these 8 images"
    assert ns["scores"].shape == (8, 10) and ns["model"].training  # predict put train mode back


def check_training(ns):
    import nnscratch as nn

    metrics = ns["metrics"]
    assert 0.92 <= metrics["accuracy"] < 0.93 and 0.27 <= metrics["loss"] < 0.28, metrics  # as the comment says
    assert [record["epoch"] for record in ns["history"]] == [1, 2] and ns["scores"].shape == (10000, 10)
    # "the same outputs, bit for bit" (the model itself trained on in the by-hand loop after the save)
    np.testing.assert_array_equal(nn.predict(ns["same"], ns["x_test"]), ns["scores"])
    assert ns["checkpoint"].epoch == 2 and type(ns["checkpoint"].optimizer).__name__ == "Adam"
    lrs = [ns["schedule"](t) for t in (0.0, 0.25, 0.5, 3.0, 6.0)]
    assert lrs[0] == 0.0 and lrs[1] < lrs[2] == pytest.approx(3e-3) and lrs[2] > lrs[3] > lrs[4] == pytest.approx(0.0)
    assert len(ns["batches"]) == 10000 // 128
    # the shared steps trained on (a loss near the evaluated one) and the worker stopped with the block
    assert ns["shared"].processes == 2 and ns["shared"]._workers == []
    assert ns["test_loss"] == pytest.approx(nn.evaluate(ns["model"], ns["x_test"][:1000], ns["y_test"][:1000],
                                                        loss=ns["loss"])["loss"], rel=1e-5)
    assert 0.0 < ns["value"] < 1.0


def check_gradient_checking(ns):
    message = ns["message"]
    assert message.startswith("Square: gradient is wrong for input") and "numerical" in message and "analytical" in message


def check_threads(ns):
    chooser = ns["chooser"]
    assert chooser.choices and chooser.choices[0][0] == 0 and {c for _, c in chooser.choices} <= {1, 2}
    assert len(ns["history"]) == 2


def check_data(ns):
    assert ns["x_train"].shape == (60000, 28, 28) and ns["y_test"].dtype == np.int64
    assert ns["images"].shape == (5, 1, 28, 28) and ns["images"].dtype == np.float32 and ns["images"].max() <= 1
    np.testing.assert_array_equal(ns["targets"].argmax(axis=1), ns["y_test"][:5])
    assert ns["problem"] == "IDX data: payload truncated: shape (5,) of uint8 needs 5 bytes after the 8-byte header, got 2"


def check_interop(ns):
    import nnscratch as nn

    expected = nn.predict(ns["net"][:-2], ns["images"])
    np.testing.assert_allclose(ns["logits"], expected, rtol=1e-4, atol=1e-5)  # "to float32 rounding"
    np.testing.assert_allclose(nn.predict(ns["back"], ns["images"]), expected, rtol=1e-5, atol=1e-6)
    assert len(ns["twin"]) == 6  # the loss layers dropped


def check_report(ns):
    assert ns["probabilities"].shape == (50, 10)
    np.testing.assert_allclose(ns["probabilities"].sum(axis=1), 1.0, rtol=1e-5)
    assert ns["matrix"].sum() == 50 and len(ns["model"]) == 1  # the loss layers dropped


CHECKS = {
    "commands/report.md": check_report,
    "data.md": check_data,
    "gradient-checking.md": check_gradient_checking,
    "interop.md": check_interop,
    "protocol.md": check_protocol,
    "threads.md": check_threads,
    "training.md": check_training,
}


# -- the tests -----------------------------------------------------------------------------------
def test_the_site_has_runnable_pages_and_every_check_names_one():
    assert len(RUNNABLE) >= 5, [page_id(page) for page in RUNNABLE]
    assert set(CHECKS) <= {page_id(page) for page in RUNNABLE}, "a check names a page without Python blocks"


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_fence_says_what_it_holds(page):
    text = page.read_text()
    for block in blocks(page):
        assert block.language in LANGUAGES, f"{page_id(page)}:{block.line}: fence tagged {block.language!r}"
    # A python fence that the extraction missed (indented, in a list) would be shown but never run.
    assert text.count("```python") == len(python_blocks(page)), f"{page_id(page)}: an indented ```python fence"


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_the_tables_render_as_tables(page):
    assert table_problems(page) == []


def test_a_row_outside_its_table_is_caught(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("- a list\n\n  | a | b |\n  |---|---|\n  | 1 | 2 |\n| 3 | 4 |\n\n| x |\n")
    problems = table_problems(page)
    assert len(problems) == 2 and "page.md:6:" in problems[0] and "page.md:8:" in problems[1], problems


@pytest.mark.parametrize("page", RUNNABLE, ids=page_id)
def test_the_page_runs_and_does_what_it_says(page, request, monkeypatch, tmp_path):
    provide(page, request, monkeypatch, tmp_path)
    monkeypatch.chdir(tmp_path)
    namespace = run_page(page)
    check = CHECKS.get(page_id(page))
    if check is not None:
        check(namespace)
    assert not list(DOCS.rglob("*.npz")) and not list(DOCS.rglob("*.onnx")), "an example wrote into docs/"


# -- the API reference's docstring rewriting (docs/_ext/docstrings.py) ---------------------------
def load_docstrings_extension():
    spec = importlib.util.spec_from_file_location("docs_ext_docstrings", DOCS / "_ext" / "docstrings.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_formulas_and_shape_blocks_are_fenced_as_written():
    plain_text = load_docstrings_extension().plain_text
    docstring = ("Backward, with delta = dL/dy:\n    dW = x^T @ delta\n    db = sum(delta)\nand dx follows.\n\n"
                 "Shape:\n    x: (N, ``in``)\n    y: (N, out)")
    assert plain_text(docstring).split("\n") == [
        "Backward, with delta = dL/dy:", "", "```text", "dW = x^T @ delta", "db = sum(delta)", "```", "",
        "and dx follows.", "", "Shape:", "    ```text", "    x: (N, in)", "    y: (N, out)", "    ```",
    ]


def test_products_are_escaped_outside_code_and_lists_get_their_blank_line():
    plain_text = load_docstrings_extension().plain_text
    docstring = "y = x[r*sh + i] and ``a*b`` stay *emphasis*.\nWhat it holds:\n- one\n  continued\n- two"
    assert plain_text(docstring).split("\n") == [
        r"y = x[r\*sh + i] and ``a*b`` stay *emphasis*.", "What it holds:", "", "- one", "  continued", "- two",
    ]


def test_google_sections_are_left_alone_but_for_names_run_over_two_lines():
    plain_text = load_docstrings_extension().plain_text
    docstring = "Args:\n    a: the first,\n        wrapped.\n    b, c,\n        d: as above.\n\nReturns:\n    a list"
    assert plain_text(docstring).split("\n") == [
        "Args:", "    a: the first,", "        wrapped.", "    b, c, d: as above.", "", "Returns:", "    a list",
    ]
