"""docs/when-the-check-fails.md: a section per diagnosis, and its examples print what the page says."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

from nnscratch.check import KINDS

PAGE = Path(__file__).resolve().parents[2] / "docs" / "when-the-check-fails.md"
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.S | re.M)


def sections() -> dict:
    """{section title: its text} for the page's ## sections."""
    parts = re.split(r"^## (.+)$", PAGE.read_text(), flags=re.M)
    return dict(zip(parts[1::2], parts[2::2]))


def test_every_kind_of_diagnosis_has_a_section_saying_what_why_and_how_to_fix():
    found = sections()
    assert set(KINDS) <= set(found)
    for kind in KINDS:
        text = found[kind]
        for part in ("**What it means.**", "**Usual cause.**", "**Fix.**"):
            assert part in text, f"{kind}: no {part}"
        assert "```python" in text, f"{kind}: no example"


def test_the_examples_run_in_order_and_print_what_the_page_shows():
    """Every python block runs (in order, in one namespace, as the site's tests run them); the text
    block after one holds lines of what it printed."""
    namespace, printed, shown = {"__name__": "docs"}, None, 0
    for match in FENCE.finditer(PAGE.read_text()):
        language, code = match.group(1).strip(), match.group(2)
        assert language in ("python", "text", "json")
        if language == "python":
            output = io.StringIO()
            with contextlib.redirect_stdout(output):
                exec(compile(code, str(PAGE), "exec"), namespace)
            printed = output.getvalue().splitlines()
        elif language == "text":
            assert printed is not None, "a text block with no example before it"
            for line in code.splitlines():
                assert any(line in out for out in printed), f"not printed: {line!r}\nprinted: {printed}"
            printed, shown = None, shown + 1
    assert shown >= len(KINDS)


def test_each_section_s_example_gets_that_section_s_diagnosis():
    for kind, text in sections().items():
        if kind not in KINDS:
            continue
        shown = [block for language, block in FENCE.findall(text) if language.strip() == "text"]
        assert shown and all(re.match(rf"^(\w+( \d+)?: )?{kind}: ", block) for block in shown), kind
