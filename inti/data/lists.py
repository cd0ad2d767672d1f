"""List files: one clip per line, ``relative/path.mp4 <label>``, as mmaction2's `VideoDataset`
and PySlowFast read Kinetics-400 and SSv2. The root folder is its own argument; an optional
file of class names holds one name per line, line k naming label k.

The rules [ours], each refused with the file and the line number:

- UTF-8 text; a byte-order mark at the start is dropped, and CRLF line endings are read as LF.
  Lines are numbered by LF, as editors number them. Blank lines are skipped.
- Two columns separated by whitespace (mmaction2's ``path label``), so a path holds no spaces;
  or by another `separator`, as PySlowFast's ``DATA.PATH_LABEL_SEPARATOR`` (UniFormerV2's
  lists use ","): each line is then split at the last separator, and the path may hold
  spaces. The label is a non-negative integer in ASCII digits, below the number of classes
  when it is known, else below `inti.io.bounds.MAX_CLASSES` (the class count is then 1 + the
  largest label).
- A path is relative to the root and stays inside it: absolute paths and paths whose ``..``
  lead out of the root are refused here, and the dataset refuses a path that leaves the root
  through a symlink when it opens the clip (`clip_path`), unless `allow_outside_root`.
- A clip listed twice with two labels is refused (lines named); listed twice with the same
  label, it is kept twice, as listed, and noted once per file in the log.
- At most `inti.io.bounds.MAX_CLIPS` clips, in a file of at most `MAX_LIST_FILE_BYTES`.

`write_list` refuses what `read_list` would refuse, so that every list it writes reads back.

    >>> from pathlib import Path
    >>> _ = Path("k400.csv").write_text("abseiling/a b.mp4,0\\nair drumming/c.mp4,1\\n")
    >>> [(e.path, e.label) for e in read_list("k400.csv", separator=",")]
    [('abseiling/a b.mp4', 0), ('air drumming/c.mp4', 1)]
"""

from __future__ import annotations

import logging
import numbers
import os
import posixpath
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..io.bounds import MAX_CLASSES, check_class_count, check_clips, check_text_file_size
from ..io.files import check_regular_file

log = logging.getLogger("inti.data")


@dataclass(frozen=True)
class Entry:
    """One clip of a list file: its path relative to the root, its label, its line number."""

    path: str
    label: int
    line: int


def _lines(path, what: str) -> list[str]:
    check_regular_file(path, what)
    check_text_file_size(path, os.stat(path).st_size, what)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")  # -sig: a leading byte-order mark is dropped
    except UnicodeDecodeError as e:
        raise ValueError(f"{what} {str(path)!r} is not UTF-8 text ({e.reason} at byte {e.start})") from None
    return text.split("\n")  # a CR before the LF is whitespace, dropped with the columns' own


def _label(text, where: str, num_classes: int | None) -> int:
    """A label as written (a string of a list file) or given (an integer to write): checked."""
    if isinstance(text, str):
        digits = text[1:] if text.startswith("-") else text
        if not (digits.isascii() and digits.isdigit()) or len(digits) > 30:
            raise ValueError(f"{where}: the label must be a non-negative integer, got {text!r}")
        label = int(text)
    elif isinstance(text, numbers.Integral) and not isinstance(text, bool):
        label = int(text)
    else:
        raise ValueError(f"{where}: the label must be a non-negative integer, got {type(text).__name__} {text!r}")
    if label < 0:
        raise ValueError(f"{where}: the label must be a non-negative integer, got {label}")
    if num_classes is not None and label >= num_classes:
        raise ValueError(f"{where}: label {label} is not below the number of classes, {num_classes}")
    if num_classes is None and label >= MAX_CLASSES:
        raise ValueError(f"{where}: label {label} would make {label + 1:,} classes, over the bound of {MAX_CLASSES:,} "
                         "(inti.io.bounds.MAX_CLASSES) for classes inferred from the labels; pass the class-name "
                         "file (--classes), or raise the bound if the label is right")
    return label


def _path(clip, where: str, allow_outside_root: bool, spaces: bool = False) -> str:
    if not isinstance(clip, str) or not clip:
        raise ValueError(f"{where}: the path must be a non-empty string, got {clip!r}")
    if "\x00" in clip or (not spaces and any(ch.isspace() for ch in clip)):
        raise ValueError(f"{where}: a list-file path cannot hold {'NUL' if spaces else 'spaces or NUL'}, got {clip!r}")
    if not allow_outside_root and (PurePosixPath(clip).is_absolute() or posixpath.normpath(clip).split("/")[0] == ".."):
        raise ValueError(f"{where}: the path must be relative to the root, inside it, got {clip!r} "
                         "(--allow-outside-root accepts it)")
    return clip


class _Duplicates:
    """The clips seen so far, by normalized path: a second label is refused, a repeat noted."""

    def __init__(self, name: str, unit: str = "line"):
        self.name, self.unit, self.seen, self.repeats = name, unit, {}, []

    def add(self, clip: str, label: int, line: int) -> None:
        key = posixpath.normpath(clip)
        if key not in self.seen:
            self.seen[key] = (label, line)
            return
        first_label, first_line = self.seen[key]
        if first_label != label:
            where = f"{self.name}:{line}" if self.unit == "line" else f"{self.name}: clip {line}"
            raise ValueError(f"{where}: {clip!r} is listed twice with two labels: {first_label} at {self.unit} "
                             f"{first_line}, {label} at {self.unit} {line}")
        self.repeats.append((clip, first_line, line))

    def note(self) -> None:
        if self.repeats:
            clip, a, b = self.repeats[0]
            log.warning("%s: %d clip(s) listed more than once with the same label, each kept as listed (first: %r, "
                        "%ss %d and %d)", self.name, len(self.repeats), clip, self.unit, a, b)


def read_list(path, num_classes: int | None = None, separator: str | None = None,
              allow_outside_root: bool = False) -> list[Entry]:
    """The clips of a list file, in order. num_classes: labels must lie in [0, num_classes);
    None: below `inti.io.bounds.MAX_CLASSES`. separator: None splits the columns at
    whitespace; a string (such as ",") splits each line at its last occurrence, so that the
    path may hold spaces. allow_outside_root: accept absolute paths and paths that lead out
    of the root with ``..``."""
    if separator is not None and (not isinstance(separator, str) or not separator or "\n" in separator):
        raise ValueError(f"the list separator must be a non-empty string on one line, such as ',' or ' ', got {separator!r}")
    split_at_whitespace = separator is None or separator.isspace()
    shown = "relative/path.mp4 <label>" if split_at_whitespace else f"relative/path.mp4{separator}<label>"
    lines = _lines(path, "list file")
    check_clips(sum(1 for line in lines if line.strip()), f"list file {str(path)!r}")
    entries, duplicates = [], _Duplicates(str(path))
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        fields = line.split() if split_at_whitespace else [f.strip() for f in line.strip().rsplit(separator, 1)]
        if len(fields) != 2 or not all(fields):
            raise ValueError(
                f"{where}: expected '{shown}' (two columns), got {len(fields)} "
                f"column(s): {line.strip()[:80]!r}"
            )
        clip = _path(fields[0], where, allow_outside_root, spaces=not split_at_whitespace)
        label = _label(fields[1], where, num_classes)
        duplicates.add(clip, label, number)
        entries.append(Entry(clip, label, number))
    if not entries:
        raise ValueError(f"list file {str(path)!r} holds no clips")
    duplicates.note()
    return entries


def clip_path(root: Path, entry: Entry, allow_outside_root: bool = False) -> Path:
    """The file of `entry` under `root`, resolved (symlinks followed); ValueError if it leaves
    the root, unless allow_outside_root."""
    real, inside = Path(os.path.realpath(Path(root) / entry.path)), Path(os.path.realpath(root))
    if not allow_outside_root and real != inside and inside not in real.parents:
        raise ValueError(f"the path leaves the root {str(root)!r}: it resolves to {str(real)!r} (through a symlink "
                         "or ..); --allow-outside-root accepts it")
    return real


def read_classes(path) -> list[str]:
    """Class names, one per non-blank line; line k names label k."""
    names = [line.strip() for line in _lines(path, "class-name file") if line.strip()]
    if not names:
        raise ValueError(f"class-name file {str(path)!r} holds no names")
    check_class_count(len(names), f"the class-name file {str(path)!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"class-name file {str(path)!r} names a class twice")
    return names


def write_list(path, entries, num_classes: int | None = None) -> None:
    """Write (relative path, label) pairs as a list file, atomically. Refuses, before writing,
    whatever `read_list(path, num_classes)` would refuse: a path with spaces, absolute or
    leading out of the root; a label that is not a non-negative integer (2.7, True, "3") or
    not below the class count; a clip with two labels; no clips at all."""
    from ..io.atomic import write_text

    entries = list(entries)
    if not entries:
        raise ValueError(f"no clips to write to {str(path)!r}: a list file holds at least one")
    check_clips(len(entries), f"the list for {str(path)!r}")
    rows, duplicates = [], _Duplicates(str(path), unit="clip")
    for number, item in enumerate(entries, 1):
        where = f"{path}: clip {number}"
        try:
            clip, label = item
        except (TypeError, ValueError):
            raise ValueError(f"{where}: expected a (relative path, label) pair, got {item!r}") from None
        clip = _path(clip, where, allow_outside_root=False)
        if isinstance(label, str):
            raise ValueError(f"{where}: the label must be a non-negative integer, got str {label!r}")
        label = _label(label, where, num_classes)
        duplicates.add(clip, label, number)
        rows.append(f"{clip} {label}")
    write_text(path, "\n".join(rows) + "\n")
