"""A Griffe extension for the API reference: nnscratch's docstrings read as plain text.

The docstrings are written for ``help()`` and for a reader of the source: a formula or a shape
table sits on indented lines under the sentence that introduces it, and products are written
``r*sh``. Markdown would join those lines into one paragraph and turn ``*sh + i, c*`` into
italics. Before the docstrings are parsed, this extension

- fences an indented block that follows a line of text (a formula, a ``Shape:`` block) as a
  ``text`` code block, so its lines and spacing stay as written (its double backticks dropped);
- escapes a ``*`` between two operands (``r*sh``), outside inline code;
- puts a blank line before a list that follows a line of text, as Markdown needs;
- joins an ``Args:`` item whose names run over two lines (``a, b, c,`` then ``d: as above``)
  into one line, which Griffe's Google parser needs to read it.

Google-style sections (``Args:``, ``Attributes:``, ...) and list items are left alone: their
indented lines are continuations, which Markdown and Griffe already read right.
"""

from __future__ import annotations

import re

# Google-style sections whose indented lines are items, not a block of text.
SECTIONS = {
    "args", "arguments", "params", "parameters", "keyword args", "keyword arguments", "other args",
    "other arguments", "other params", "other parameters", "raises", "exceptions", "returns", "yields",
    "receives", "examples", "attributes", "functions", "methods", "classes", "modules", "warns", "warnings",
}  # fmt: skip
TITLE = re.compile(r"^(\w[\w\s-]*):\s*$")
LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+\.)\s")
# A star between two operands: x*w, r*sh, 2*ph, (a)*(b).
PRODUCT = re.compile(r"(?<=[\w\])])\*(?=[\w(\[])")
INLINE_CODE = re.compile(r"(``.+?``|`[^`]+?`)")


def indent_of(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def block_below(lines: list[str], start: int, deeper_than: int) -> int:
    """Index just past the lines from ``start`` indented deeper than ``deeper_than`` (blank lines inside kept)."""
    end = start
    while end < len(lines) and (not lines[end].strip() or indent_of(lines[end]) > deeper_than):
        end += 1
    while end > start and not lines[end - 1].strip():  # trailing blank lines belong to what follows
        end -= 1
    return end


def fenced(block: list[str], indent: int) -> list[str]:
    margin = min(indent_of(line) for line in block if line.strip())
    pad = " " * indent
    # ``x`` marks code in the docstring's prose; inside a code block the marks would show.
    text = [pad + line[margin:].replace("``", "") if line.strip() else "" for line in block]
    return [pad + "```text", *text, pad + "```"]


def escape_products(line: str) -> str:
    parts = INLINE_CODE.split(line)
    return "".join(part if index % 2 else PRODUCT.sub(r"\\*", part) for index, part in enumerate(parts))


def section_items(lines: list[str]) -> list[str]:
    """A Google section's lines, an item's names that run over two lines joined into one."""
    out, item_indent = [], min(indent_of(line) for line in lines if line.strip())
    for line in lines:
        continues_names = out and ":" not in out[-1] and out[-1].rstrip().endswith(",")
        if continues_names and indent_of(line) > item_indent:
            out[-1] = f"{out[-1].rstrip()} {line.strip()}"
        else:
            out.append(escape_products(line))
    return out


def plain_text(docstring: str) -> str:
    lines, out, index, in_list = docstring.split("\n"), [], 0, False
    while index < len(lines):
        line = lines[index]
        indent = indent_of(line)
        if line.lstrip().startswith("```"):  # a fence already: copy it through
            end = index + 1
            while end < len(lines) and not lines[end].lstrip().startswith("```"):
                end += 1
            out += lines[index : end + 1]
            index = end + 1
            continue
        if not line.strip():
            in_list = False
            out.append(line)
            index += 1
            continue
        if LIST_ITEM.match(line) and not in_list and out and out[-1].strip():
            out.append("")  # Markdown starts a list only after a blank line
        in_list = bool(LIST_ITEM.match(line)) or (in_list and indent > 0)
        below = index + 1 < len(lines) and lines[index + 1].strip() and indent_of(lines[index + 1]) > indent
        title = TITLE.match(line.strip())
        if below and title and title.group(1).lower() in SECTIONS:
            end = block_below(lines, index + 1, indent)
            out += [line, *section_items(lines[index + 1 : end])]
            index = end
        elif below and title:  # an admonition such as Shape:, its block fenced inside it
            end = block_below(lines, index + 1, indent)
            out += [line, *fenced(lines[index + 1 : end], indent + 4)]
            index = end
        elif below and not in_list and indent_of(lines[index + 1]) >= indent + 4:
            end = block_below(lines, index + 1, indent)
            out += [escape_products(line), "", *fenced(lines[index + 1 : end], indent), ""]
            index = end
        else:
            out.append(escape_products(line))
            index += 1
    return "\n".join(out)


try:  # griffe comes with the docs extra; tests/docs/test_docs.py reads plain_text without it
    import griffe
except ImportError:
    griffe = None

if griffe is not None:

    class PlainTextDocstrings(griffe.Extension):
        """Rewrites every docstring with ``plain_text`` before it is parsed."""

        def on_instance(self, *, obj, **kwargs) -> None:
            if obj.docstring is not None:
                obj.docstring.value = plain_text(obj.docstring.value)
