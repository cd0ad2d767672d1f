"""A griffe extension for the API reference: the docstrings are plain text written to be read in
the source, and two of their habits mean something else in Markdown. It changes only what the
site shows, never the source.

- A doctest block (``>>>`` lines and the output under them, up to a blank line) becomes Python
  console code; as Markdown, ``>>>`` would open three nested quotes and ``x["key"]`` a link.
- A ``*`` between two terms is a product (``n*C*3C``), not emphasis: it is escaped, outside
  code.
"""

from __future__ import annotations

import re

import griffe

CODE = re.compile(r"(```.*?```|`[^`\n]*`)", flags=re.S)  # fenced blocks and inline code spans
PRODUCT = re.compile(r"(?<=[\w)\]])\*(?=[\w(])")


def fence_doctests(text: str) -> str:
    out, in_block = [], False
    for line in text.splitlines():
        starts = line.lstrip().startswith(">>>")
        if starts and not in_block:
            out.append("```pycon")
            in_block = True
        elif in_block and not line.strip():
            out.append("```")
            in_block = False
        out.append(line)
    if in_block:
        out.append("```")
    return "\n".join(out)


def escape_products(text: str) -> str:
    parts = CODE.split(text)
    return "".join(part if i % 2 else PRODUCT.sub(r"\\*", part) for i, part in enumerate(parts))


class PlainDocstrings(griffe.Extension):
    def on_object(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = escape_products(fence_doctests(obj.docstring.value))
