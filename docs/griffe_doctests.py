"""A griffe extension for the API reference: a docstring's doctest blocks (``>>>`` lines and
the output under them, up to a blank line) are shown as Python console code, not as Markdown,
in which ``>>>`` would open three nested quotes and ``x["key"]`` would read as a link."""

from __future__ import annotations

import griffe


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


class DoctestFences(griffe.Extension):
    def on_object(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None and ">>>" in obj.docstring.value:
            obj.docstring.value = fence_doctests(obj.docstring.value)
