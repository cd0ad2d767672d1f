"""The tutorial notebooks (tutorials/): each .py and its .ipynb hold the same cells, every
exercise has a solution and a check, every notebook executes with the solutions filled in, and
a student's unsolved exercise fails its check.

The executing tests carry the marker ``tutorials`` (``pytest -m "not tutorials"`` leaves them
out); each runs a notebook in a fresh kernel through `tutorials/run.py`, in a temporary working
folder, with the quick training setting (INTI_TUTORIAL_QUICK=1).
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TUTORIALS = ROOT / "tutorials"
NAMES = ["01_inti_by_hand", "02_what_theta_sees", "03_train_it", "04_cost_and_benefit"]
STUB = "raise NotImplementedError"

pytest.importorskip("jupytext", reason="the tutorials need the 'tutorials' extra: pip install 'inti[tutorials]'")


def load_runner():
    """tutorials/run.py as a module (tutorials/ is not a package), with no bytecode written there."""
    spec = importlib.util.spec_from_file_location("tutorials_run", TUTORIALS / "run.py")
    module = importlib.util.module_from_spec(spec)
    saved, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = saved
    return module


run = load_runner()


def source(name: str) -> Path:
    return TUTORIALS / f"{name}.py"


def tags(cell) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def test_the_four_notebooks_are_there_each_with_its_pair_and_solutions():
    assert [p.stem for p in run.notebooks()] == NAMES
    for name in NAMES:
        assert source(name).with_suffix(".ipynb").is_file(), f"{name}.ipynb is missing: python tutorials/run.py --sync"
        assert run.solution_file(source(name)).is_file(), f"tutorials/solutions/{name}.py is missing"


@pytest.mark.parametrize("name", NAMES)
def test_each_pair_is_in_sync_and_the_ipynb_has_no_outputs(name):
    """The committed .ipynb holds the .py's cells (type, source, tags), unexecuted, with the ids
    that `run.py --sync` gives: rewriting it would change nothing."""
    py = run.read(source(name))
    ipynb_path = source(name).with_suffix(".ipynb")
    ipynb = run.read(ipynb_path)
    assert run.comparable(py) == run.comparable(ipynb), (
        f"{ipynb_path.name} is out of sync with {name}.py: python tutorials/run.py --sync")
    for cell in ipynb.cells:
        if cell.cell_type == "code":
            assert not cell.get("outputs") and cell.get("execution_count") is None, f"{ipynb_path.name} holds outputs"
    import nbformat

    raw = nbformat.read(ipynb_path, as_version=4)
    assert [c["id"] for c in raw.cells] == [c["id"] for c in run.stable_ids(py).cells], (
        f"{ipynb_path.name}: cell ids differ from the ones --sync writes")


def test_sync_rewrites_the_same_bytes(tmp_path):
    """--sync is deterministic (jupytext alone draws random cell ids), so an unchanged
    notebook never shows up in a diff."""
    import shutil

    copy = tmp_path / "01_inti_by_hand.py"
    shutil.copy(source("01_inti_by_hand"), copy)
    first = run.sync(copy).read_bytes()
    assert run.sync(copy).read_bytes() == first
    assert first == source("01_inti_by_hand").with_suffix(".ipynb").read_bytes()


@pytest.mark.parametrize("name", NAMES)
def test_every_exercise_has_a_stub_a_solution_and_a_check(name):
    nb = run.read(source(name))
    number = str(int(name[:2]))
    exercises, checks = run.exercise_ids(nb), run.check_ids(nb)
    answers = run.solutions(source(name))
    assert exercises, f"{name} has no exercise"
    assert len(exercises) == len(set(exercises)) and len(checks) == len(set(checks))
    assert exercises == checks == sorted(answers, key=lambda i: int(i.split(".")[1])), (exercises, checks, sorted(answers))
    assert all(re.fullmatch(rf"{number}\.\d+", i) for i in exercises), f"{name}: exercise ids {exercises} must read {number}.k"
    assert exercises == [f"{number}.{k}" for k in range(1, len(exercises) + 1)], "numbered 1, 2, ... in order"
    position = {}
    for k, cell in enumerate(nb.cells):
        for t in tags(cell):
            kind, _, i = t.partition("-")
            if kind in ("exercise", "check"):
                assert cell.cell_type == "code", f"{t} must tag a code cell"
                position[kind, i] = k
    for i in exercises:
        stub = nb.cells[position["exercise", i]].source
        assert STUB in stub and f"exercise {i}" in stub, f"exercise {i}: the student's cell must raise NotImplementedError"
        assert STUB not in answers[i], f"solution {i} still raises"
        assert answers[i].strip() not in stub, f"exercise {i}: the notebook gives its solution away"
        assert position["exercise", i] < position["check", i], f"check {i} must come after exercise {i}"
        assert "assert" in nb.cells[position["check", i]].source, f"check {i} asserts nothing"


def test_fill_in_replaces_exactly_the_exercise_cells():
    nb = run.read(source("02_what_theta_sees"))
    filled = run.fill_in(nb, run.solutions(source("02_what_theta_sees")))
    assert len(filled.cells) == len(nb.cells)
    for a, b in zip(nb.cells, filled.cells):
        if any(t.startswith("exercise-") for t in tags(a)):
            assert a.source != b.source and STUB not in b.source
        else:
            assert a.source == b.source
    with pytest.raises(ValueError, match="missing"):
        run.fill_in(nb, {})


@pytest.mark.tutorials
@pytest.mark.parametrize("name", NAMES)
def test_the_notebook_runs_with_the_solutions_filled_in(name, tmp_path):
    """Top to bottom in a fresh kernel: no cell fails, every check passes, the figures are
    drawn, and nothing is written into the repository."""
    before = repository_state()
    nb = run.fill_in(run.read(source(name)), run.solutions(source(name)))
    done = run.execute(nb, env={"INTI_TUTORIAL_QUICK": "1"}, workdir=tmp_path, timeout=300)
    assert run.errors(done) == []
    assert run.images(done) >= 3, f"{name} drew {run.images(done)} figures"
    for i in run.check_ids(done):
        cell = next(c for c in done.cells if f"check-{i}" in tags(c))
        printed = "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")
        assert f"exercise {i}: correct" in printed, f"check {i} printed {printed!r}"
    assert repository_state() == before, "the notebook wrote into the repository"


@pytest.mark.tutorials
def test_the_unsolved_exercises_fail_their_checks(tmp_path):
    """Notebook 1 as a student gets it, up to its last check: every check cell fails (the stubs
    raise), and the cells that need no answer still run."""
    nb = run.until_last_check(run.read(source("01_inti_by_hand")))
    done = run.execute(nb, allow_errors=True, workdir=tmp_path, timeout=300)
    failed = {t for _, cell_tags, _ in run.errors(done) for t in cell_tags}
    assert {f"check-{i}" for i in run.check_ids(done)} <= failed, failed
    assert all(ename == "NotImplementedError" for _, _, ename in run.errors(done)), run.errors(done)
    plain = [c for c in done.cells if c.cell_type == "code" and not tags(c)]
    assert plain and all(not any(o.get("output_type") == "error" for o in c.outputs) for c in plain)


def repository_state() -> str:
    """What git sees as changed or new in tutorials/ and at the top level (ignored files too)."""
    listed = subprocess.run(["git", "status", "--porcelain", "--ignored", "--untracked-files=all", "--", "tutorials"],
                            cwd=ROOT, capture_output=True, text=True)
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    return listed.stdout
