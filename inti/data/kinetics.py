"""Kinetics list files from the public annotation CSVs.

The Kinetics-400 release describes each split by a CSV with the header
``label,youtube_id,time_start,time_end,split`` (the test split's has no label column). The
downloaders (the ActivityNet / CVDF scripts) name each trimmed clip
``<youtube_id>_<time_start:06d>_<time_end:06d>.mp4``, either flat in the split's folder or in one
folder per class. `write_lists` finds each clip under `root` in either layout and writes the
list file the recipes read, mmaction2's ``relative/path.mp4 <label>`` (or ``<sep>``), with
label k the k-th class name in sorted order (mmaction2's and PySlowFast's K400 class index),
and ``classes.txt``. A clip that is not on disk is left out of the list and counted; the
report names how many, so a run never trains on a silently smaller set.

    python -m inti.data.kinetics kinetics400/train.csv /data/k400/train lists/k400_train.txt
"""

from __future__ import annotations

import csv
import sys
from dataclasses import dataclass
from pathlib import Path

COLUMNS = ("label", "youtube_id", "time_start", "time_end")
SUFFIXES = (".mp4", ".mkv", ".webm", ".avi")


@dataclass(frozen=True)
class ListReport:
    rows: int  # clips the CSV names
    written: int  # clips found on disk and listed
    missing: list  # file stems not found (the first few are shown)
    classes: int


def clip_stem(youtube_id: str, start, end) -> str:
    """The downloaders' clip name: ``<youtube_id>_<start:06d>_<end:06d>``."""
    return f"{youtube_id}_{int(float(start)):06d}_{int(float(end)):06d}"


def read_csv(path) -> list[dict]:
    """The rows of a Kinetics annotation CSV; a missing column is refused with the file."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: a Kinetics CSV needs the columns {', '.join(COLUMNS)}; {', '.join(missing)} missing "
                             f"(got {reader.fieldnames})")
        return list(reader)


def write_lists(csv_file, root, out, classes=None, separator: str = " ") -> ListReport:
    """Write the list file `out` (and ``classes.txt`` beside it, unless `classes` names an
    existing class file whose order to follow) for the clips of `csv_file` found under `root`."""
    from ..io.atomic import write_text
    from .lists import read_classes

    rows, root, out = read_csv(csv_file), Path(root), Path(out)
    names = read_classes(classes) if classes else sorted({r["label"] for r in rows})
    index = {name: k for k, name in enumerate(names)}
    on_disk = {p.stem: p for p in root.rglob("*") if p.suffix in SUFFIXES and p.is_file()}
    lines, missing = [], []
    for r in rows:
        if r["label"] not in index:
            raise ValueError(f"{csv_file}: class {r['label']!r} is not in {classes}")
        stem = clip_stem(r["youtube_id"], r["time_start"], r["time_end"])
        if stem not in on_disk:
            missing.append(stem)
            continue
        relative = on_disk[stem].relative_to(root).as_posix()
        if separator.isspace() and any(ch.isspace() for ch in relative):
            raise ValueError(f"{relative!r} holds a space: pass a separator such as ',' (PySlowFast's lists)")
        lines.append(f"{relative}{separator}{index[r['label']]}")
    if not lines:
        raise ValueError(f"none of the {len(rows)} clips of {csv_file} is under {root}")
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text(out, "\n".join(lines) + "\n")
    if not classes:
        write_text(out.parent / "classes.txt", "\n".join(names) + "\n")
    return ListReport(len(rows), len(lines), missing, len(names))


def main(argv=None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m inti.data.kinetics", description=__doc__.split("\n\n")[0])
    p.add_argument("csv", help="a Kinetics annotation CSV (label,youtube_id,time_start,time_end,split)")
    p.add_argument("root", help="the folder holding that split's clips, flat or one folder per class")
    p.add_argument("out", help="the list file to write; classes.txt goes beside it")
    p.add_argument("--classes", help="follow this class file's order instead of the sorted names (for val, use train's)")
    p.add_argument("--separator", default=" ", help="the column separator (default: a space; ',' for PySlowFast)")
    args = p.parse_args(argv)
    try:
        report = write_lists(args.csv, args.root, args.out, args.classes, args.separator)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{args.out}: {report.written} of {report.rows} clips listed, {len(report.missing)} not on disk "
          f"(first: {', '.join(report.missing[:3]) or 'none'}), {report.classes} classes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
