"""Execute the tutorial notebooks, with the solutions filled in or without them.

    python tutorials/run.py                 # every notebook, solutions filled in (`make tutorials`)
    python tutorials/run.py 02 --unsolved   # notebook 02 as a student gets it: its checks fail
    python tutorials/run.py --out executed  # keep the executed notebooks, outputs and figures
    python tutorials/run.py --quick         # the smaller training setting (INTI_TUTORIAL_QUICK=1)
    python tutorials/run.py --sync          # rewrite each .ipynb from its .py (jupytext)

Each notebook's source is a jupytext percent-format file, `tutorials/NN_name.py`, paired with
`tutorials/NN_name.ipynb`. An exercise is a code cell tagged ``exercise-N.k``; the student's
version holds a stub (``raise NotImplementedError  # exercise N.k``). Its solution is the cell
tagged ``solution-N.k`` of `tutorials/solutions/NN_name.py`. With the solutions filled in, each
exercise cell's source is replaced by its solution and every other cell, the ``check-N.k``
cells with their asserts included, is the student's own, unchanged.

A check cell prints "exercise N.k: correct" when its asserts pass. `--sync` writes each .ipynb
without outputs and with cell ids made from the cells' sources, so an unchanged notebook is
rewritten byte for byte and a diff shows only what changed.

A notebook runs in a fresh kernel of this Python (the venv's), whose working directory is a new
temporary folder, so nothing in the repository is written. INTI_REPOSITORY is set to the
repository's root, where a notebook looks for the committed files it reads
(experiments/evidence/results.json).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SOLUTIONS = HERE / "solutions"
KERNEL = "python3"


def notebooks() -> list[Path]:
    """The notebooks' sources, tutorials/NN_name.py, in order."""
    return sorted(p for p in HERE.glob("[0-9][0-9]_*.py"))


def pick(names) -> list[Path]:
    """The notebooks whose stem starts with one of `names` ("02", "02_what_theta_sees"); all if none."""
    every = notebooks()
    if not names:
        return every
    chosen = [p for p in every if any(p.stem.startswith(n) for n in names)]
    unknown = [n for n in names if not any(p.stem.startswith(n) for p in every)]
    if unknown:
        raise SystemExit(f"no tutorial notebook named {', '.join(unknown)}; there are {', '.join(p.stem for p in every)}")
    return chosen


def read(path):
    """A notebook (nbformat node) from its .py source or from a .ipynb."""
    import jupytext

    return jupytext.read(path)


def tagged(cell, prefix: str) -> list[str]:
    """The ids of the cell's tags that start with `prefix` ("exercise-" -> ["2.1"])."""
    return [t[len(prefix):] for t in cell.get("metadata", {}).get("tags", []) if t.startswith(prefix)]


def exercise_ids(nb) -> list[str]:
    return [i for cell in nb.cells for i in tagged(cell, "exercise-")]


def check_ids(nb) -> list[str]:
    return [i for cell in nb.cells for i in tagged(cell, "check-")]


def solution_file(source: Path) -> Path:
    return SOLUTIONS / source.name


def solutions(source: Path) -> dict[str, str]:
    """{exercise id: the solution's source} from tutorials/solutions/<same name>.py."""
    path = solution_file(source)
    found: dict[str, str] = {}
    for cell in read(path).cells:
        for i in tagged(cell, "solution-"):
            if i in found:
                raise ValueError(f"{path.name}: two cells are tagged solution-{i}")
            found[i] = cell.source
    return found


def fill_in(nb, answers: dict[str, str]):
    """A copy of `nb` with each exercise cell's source replaced by its answer. Every exercise
    must have exactly one answer, and every answer an exercise."""
    import copy

    nb = copy.deepcopy(nb)
    wanted = exercise_ids(nb)
    missing = sorted(set(wanted) - set(answers))
    extra = sorted(set(answers) - set(wanted))
    if missing or extra or len(wanted) != len(set(wanted)):
        raise ValueError(f"exercises and answers do not match: missing {missing}, extra {extra}, exercises {wanted}")
    for cell in nb.cells:
        for i in tagged(cell, "exercise-"):
            cell.source = answers[i]
    return nb


def until_last_check(nb):
    """A copy of `nb` cut after its last check cell (what the exercises need, nothing later)."""
    import copy

    nb = copy.deepcopy(nb)
    last = max(k for k, cell in enumerate(nb.cells) if tagged(cell, "check-"))
    nb.cells = nb.cells[: last + 1]
    return nb


def kernel_spec(folder: Path) -> str:
    """Write a kernel spec that runs this very Python (sys.executable, the venv's) into
    folder/kernels/, and return its name. A "python3" spec in the user's own Jupyter folders
    would otherwise win, and may be another Python without this project installed."""
    import json

    spec = folder / "kernels" / KERNEL
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (inti tutorials)", "language": "python"}))
    return KERNEL


def execute(nb, *, allow_errors: bool = False, timeout: int = 600, env: dict | None = None, workdir=None):
    """Run `nb` in a fresh kernel; returns the executed notebook.

    The kernel's working directory is `workdir`, or a new temporary folder removed afterwards,
    so what a notebook writes (its figures) never lands in the repository. env: environment
    variables for the kernel, on top of this process's (INTI_REPOSITORY is always set, unless
    env gives another). Raises nbclient's CellExecutionError at the first failing cell unless
    allow_errors, in which case errors are kept in the cells' outputs."""
    import copy

    from nbclient import NotebookClient

    nb = copy.deepcopy(nb)
    saved = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="inti-tutorial-") as scratch:
        kernels = Path(scratch) / "jupyter"  # searched first for kernel specs
        try:
            os.environ.update({"INTI_REPOSITORY": str(ROOT), **(env or {})})
            os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(kernels), saved.get("JUPYTER_PATH")]))
            name = kernel_spec(kernels)
            cwd = Path(workdir) if workdir is not None else Path(scratch) / "work"
            cwd.mkdir(parents=True, exist_ok=True)
            client = NotebookClient(nb, kernel_name=name, timeout=timeout, allow_errors=allow_errors,
                                    resources={"metadata": {"path": str(cwd)}})
            client.execute()
        finally:
            os.environ.clear()
            os.environ.update(saved)
    return nb


def errors(nb) -> list[tuple[int, list[str], str]]:
    """(cell index, the cell's tags, the error's name) of every cell whose output is an error."""
    return [(k, cell.get("metadata", {}).get("tags", []), out["ename"]) for k, cell in enumerate(nb.cells)
            if cell.cell_type == "code" for out in cell.get("outputs", []) if out.get("output_type") == "error"]


def images(nb) -> int:
    """How many inline PNG figures the executed notebook holds."""
    return sum("image/png" in out.get("data", {}) for cell in nb.cells if cell.cell_type == "code"
               for out in cell.get("outputs", []))


def comparable(nb) -> list[tuple]:
    """What must agree between the .py and the .ipynb of a pair: each cell's type, source and tags."""
    return [(c.cell_type, c.source.strip(), tuple(c.get("metadata", {}).get("tags", []))) for c in nb.cells]


def in_sync(source: Path) -> bool:
    """True when tutorials/NN_name.ipynb holds exactly the cells of NN_name.py."""
    pair = source.with_suffix(".ipynb")
    return pair.is_file() and comparable(read(source)) == comparable(read(pair))


def stable_ids(nb):
    """Give every cell an id made from its source (jupytext draws random ones), so that
    rewriting an unchanged notebook rewrites the same bytes and a diff shows only what changed."""
    import hashlib

    seen: dict[str, int] = {}
    for cell in nb.cells:
        base = hashlib.sha1(f"{cell.cell_type}\n{cell.source}".encode()).hexdigest()[:8]
        seen[base] = seen.get(base, 0) + 1
        cell["id"] = base if seen[base] == 1 else f"{base}-{seen[base]}"  # identical cells
    return nb


def sync(source: Path) -> Path:
    """Write tutorials/NN_name.ipynb from NN_name.py, without outputs (jupytext's conversion),
    with cell ids that depend on the cells only (`stable_ids`)."""
    import jupytext

    pair = source.with_suffix(".ipynb")
    jupytext.write(stable_ids(read(source)), pair, fmt="ipynb")
    return pair


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Execute the tutorial notebooks (solutions filled in unless --unsolved).")
    p.add_argument("names", nargs="*", help="notebooks to run, by number or name (default: all)")
    p.add_argument("--unsolved", action="store_true", help="run the student's version: the checks must fail")
    p.add_argument("--quick", action="store_true", help="the smaller training setting (INTI_TUTORIAL_QUICK=1)")
    p.add_argument("--out", metavar="DIR", help="write the executed notebooks here")
    p.add_argument("--sync", action="store_true", help="write each .ipynb from its .py, then stop")
    p.add_argument("--timeout", type=int, default=600, help="seconds per cell (default: 600)")
    args = p.parse_args(argv)
    chosen = pick(args.names)
    if args.sync:
        for source in chosen:
            print(f"wrote {sync(source).relative_to(ROOT)}")
        return 0
    stale = [s.name for s in chosen if not in_sync(s)]
    if stale:
        print(f"out of sync with their .ipynb: {', '.join(stale)}; run python tutorials/run.py --sync", file=sys.stderr)
        return 1
    env = {"INTI_TUTORIAL_QUICK": "1"} if args.quick else {}
    failed = 0
    for source in chosen:
        nb = read(source)
        if not args.unsolved:
            nb = fill_in(nb, solutions(source))
        start = time.perf_counter()
        try:
            done = execute(nb, allow_errors=args.unsolved, timeout=args.timeout, env=env)
        except Exception as e:  # nbclient's CellExecutionError names the cell and the traceback
            failed += 1
            print(f"{source.stem}: FAILED after {time.perf_counter() - start:.1f} s\n{e}", file=sys.stderr)
            continue
        seconds = time.perf_counter() - start
        bad = errors(done)
        if args.unsolved:
            checks = check_ids(done)
            failing = {i for _, tags, _ in bad for t in tags if t.startswith("check-") for i in [t[len("check-"):]]}
            print(f"{source.stem}: {seconds:.1f} s, unsolved: {len(failing)} of {len(checks)} checks fail "
                  f"({', '.join(sorted(failing)) or 'none'})")
        else:
            print(f"{source.stem}: {seconds:.1f} s, {len(exercise_ids(nb))} exercises solved and checked, "
                  f"{images(done)} figures")
        if args.out:
            import nbformat

            out = Path(args.out)
            out.mkdir(parents=True, exist_ok=True)
            nbformat.write(done, out / f"{source.stem}.ipynb")
    if args.out:
        print(f"executed notebooks in {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
