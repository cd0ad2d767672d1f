"""List files: one clip per line, ``relative/path.mp4 <label>``, as mmaction2's `VideoDataset`
and PySlowFast read Kinetics-400 and SSv2. The root folder is its own argument; an optional
file of class names holds one name per line, line k naming label k.

Every malformed line is refused with the file and the line number. Blank lines are skipped.
A path must be relative (it is joined to the root). By default the two columns are separated
by whitespace (mmaction2's `path label`), so a path cannot hold a space; `separator` names
another one, as PySlowFast's ``DATA.PATH_LABEL_SEPARATOR`` does (UniFormerV2's lists use
","): each line is then split at the last separator, and the path may hold spaces.

    >>> from pathlib import Path
    >>> _ = Path("k400.csv").write_text("abseiling/a b.mp4,0\\nair drumming/c.mp4,1\\n")
    >>> [(e.path, e.label) for e in read_list("k400.csv", separator=",")]
    [('abseiling/a b.mp4', 0), ('air drumming/c.mp4', 1)]
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..io.files import check_regular_file


@dataclass(frozen=True)
class Entry:
    """One clip of a list file: its path relative to the root, its label, its line number."""

    path: str
    label: int
    line: int


def _lines(path, what: str) -> list[str]:
    check_regular_file(path, what)
    try:
        return Path(path).read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise ValueError(f"{what} {str(path)!r} is not UTF-8 text ({e.reason} at byte {e.start})") from None


def read_list(path, num_classes: int | None = None, separator: str | None = None) -> list[Entry]:
    """The clips of a list file, in order. num_classes: labels must lie in [0, num_classes).
    separator: None splits the columns at whitespace; a string (such as ",") splits each line
    at its last occurrence, so that the path may hold spaces."""
    if separator is not None and (not isinstance(separator, str) or not separator or "\n" in separator):
        raise ValueError(f"the list separator must be a non-empty string on one line, such as ',' or ' ', got {separator!r}")
    entries = []
    for number, line in enumerate(_lines(path, "list file"), 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        if separator is None or separator.isspace():
            fields = line.split()
        else:
            fields = [f.strip() for f in line.strip().rsplit(separator, 1)]
        shown = "relative/path.mp4 <label>" if separator is None or separator.isspace() else f"relative/path.mp4{separator}<label>"
        if len(fields) != 2 or not all(fields):
            raise ValueError(
                f"{where}: expected '{shown}' (two columns), got {len(fields)} "
                f"column(s): {line.strip()[:80]!r}"
            )
        clip, label_text = fields
        try:
            label = int(label_text)
        except ValueError:
            raise ValueError(f"{where}: the label must be a non-negative integer, got {label_text!r}") from None
        if label < 0:
            raise ValueError(f"{where}: the label must be a non-negative integer, got {label}")
        if num_classes is not None and label >= num_classes:
            raise ValueError(f"{where}: label {label} is not below the number of classes, {num_classes}")
        if PurePosixPath(clip).is_absolute() or ".." in PurePosixPath(clip).parts:
            raise ValueError(f"{where}: the path must be relative to the root, inside it, got {clip!r}")
        entries.append(Entry(clip, label, number))
    if not entries:
        raise ValueError(f"list file {str(path)!r} holds no clips")
    return entries


def read_classes(path) -> list[str]:
    """Class names, one per non-blank line; line k names label k."""
    names = [line.strip() for line in _lines(path, "class-name file") if line.strip()]
    if not names:
        raise ValueError(f"class-name file {str(path)!r} holds no names")
    if len(set(names)) != len(names):
        raise ValueError(f"class-name file {str(path)!r} names a class twice")
    return names


def write_list(path, entries) -> None:
    """Write (relative path, label) pairs as a list file, atomically."""
    from ..io.atomic import write_text

    rows = [f"{clip} {int(label)}" for clip, label in entries]
    for clip, _ in entries:
        if any(ch.isspace() for ch in str(clip)):
            raise ValueError(f"list-file paths cannot hold spaces, got {clip!r}")
    write_text(path, "\n".join(rows) + "\n")
