"""The README and the documentation pages tell the truth: the README's two opening commands, the
set-up they rely on, how to run the venv's commands, and the outputs and examples they print,
compared with what the code prints and does today."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
GUIDES = ROOT / "docs" / "guides"


def code_blocks(text: str) -> list[str]:
    return re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S)


def commands(block: str) -> list[str]:
    return [line.split("#")[0].strip() for line in block.splitlines() if line.split("#")[0].strip()]


def test_readme_opens_with_exactly_two_commands():
    assert README.startswith("```"), "the README must open with its two commands"
    first = code_blocks(README)[0]
    assert commands(first) == ["make demo", "make test"]


def test_ci_runs_both_commands_in_order():
    """CI runs the demo, then the suite, in one clean clone: what the demo leaves there
    (inti-demo/) must change no test."""
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    demo = [i for i, line in enumerate(ci) if re.fullmatch(r"(\S+=\S+\s+)*make demo", line)]
    test = [i for i, line in enumerate(ci) if re.fullmatch(r"(\S+=\S+\s+)*make test", line)]
    assert demo and test and demo[0] < test[0], ci


def test_every_test_runs_in_its_own_empty_folder():
    """The root conftest.py moves every test into a new empty working folder, outside the
    repository, so a default output folder (inti-demo/, run/) never meets a user's files."""
    cwd = Path.cwd().resolve()
    assert not list(cwd.iterdir()), list(cwd.iterdir())
    assert ROOT not in cwd.parents and cwd != ROOT


def test_setup_pins_torch_first_and_pyproject_stays_permissive():
    constraints = (ROOT / "constraints.txt").read_text()
    assert "torch==2.14.1" in constraints and "torchvision==0.29.1" in constraints
    makefile = (ROOT / "Makefile").read_text()
    torch_line = makefile.index("-c constraints.txt torch torchvision")
    package_line = makefile.index("-c constraints.txt -e '.[all]'")
    assert torch_line < package_line, "torch must be installed before the package"
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert not re.search(r'"torch\s*==', pyproject), "pyproject.toml must not pin torch"


def test_readme_says_how_to_run_the_venvs_commands():
    """`inti` lives in .venv/bin: the README must say to activate the venv or to use the path."""
    assert "source .venv/bin/activate" in README and ".venv/bin/inti" in README


def test_cost_table_is_what_inti_cost_paper_prints(capsys):
    from inti.cli import main

    assert main(["cost", "--paper"]) == 0
    printed = capsys.readouterr().out.rstrip()
    page = (GUIDES / "cost.md").read_text()
    blocks = [b.rstrip() for b in code_blocks(page) if "inti cost --paper" in b]
    assert blocks, "docs/guides/cost.md must carry the output of `inti cost --paper`"
    assert blocks[0] == printed


@pytest.mark.parametrize("name, text", [("README.md", README), ("docs/guides/use.md", None)])
def test_python_example_runs(name, text):
    """The README's ten lines and the use guide's longer example run as written."""
    text = text if text is not None else (ROOT / name).read_text()
    example = next(b for b in code_blocks(text) if b.startswith("import numpy as np, torch"))
    namespace: dict = {}
    exec(compile(example, name, "exec"), namespace)
    assert namespace["logits"].shape == (2, 10)
    assert list(namespace["trace"]) == list(namespace["trace_t"])


TRACKER = re.compile(r"\b[Ii]ssues? #?\d+")


def tracked_sources() -> list[Path]:
    """The repository's own text: docs, spec, code, tests, tutorials, recipes (git's list)."""
    import subprocess

    names = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    keep = (".md", ".py", ".toml", ".yml", ".txt")
    return [ROOT / n for n in names.decode().split("\0") if n.endswith(keep) and (ROOT / n).is_file()]


def test_no_tracker_numbers_in_code_or_docs():
    """Comments and docs say the rule, never a tracker number ("issue 14: ...")."""
    hits = [f"{p.relative_to(ROOT)}: {m.group(0)}" for p in tracked_sources()
            for m in TRACKER.finditer(p.read_text(errors="replace")) if p != Path(__file__).resolve()]
    assert not hits, hits
