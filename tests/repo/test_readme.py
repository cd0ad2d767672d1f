"""The README tells the truth: its two opening commands, the set-up they rely on, and the
figures it prints, compared with what the code prints today."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


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


def test_cost_table_is_what_inti_cost_paper_prints(capsys):
    from inti.cli import main

    assert main(["cost", "--paper"]) == 0
    printed = capsys.readouterr().out.rstrip()
    blocks = [b.rstrip() for b in code_blocks(README) if "inti cost --paper" in b]
    assert blocks, "the README must carry the output of `inti cost --paper`"
    assert blocks[0] == printed


def test_readme_python_example_runs():
    example = next(b for b in code_blocks(README) if b.startswith("import numpy as np, torch"))
    namespace: dict = {}
    exec(compile(example, "README.md", "exec"), namespace)
    assert namespace["logits"].shape == (2, 10)
    assert list(namespace["trace"]) == list(namespace["trace_t"])
