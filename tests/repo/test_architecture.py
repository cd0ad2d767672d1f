"""The house rules of the layout, read off the source (docs/layout.md, "The code").

- Imports point down only: ``ref`` <- ``torch_impl`` <- ``inti`` <- benchmarks and tests.
  ``ref`` imports nothing but the standard library, NumPy, SciPy and einops, and never
  touches torch, not even by duck typing. Nothing outside ``inti.cli`` imports the CLI.
- Every file of ``torch_impl/`` but the converter has a twin of the same name in ``ref/``.
- Nothing in the repository cites a path outside it.
- ``import inti`` works from anywhere, and ``benchmarks`` is not installed.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ("ref", "torch_impl", "inti", "benchmarks", "tests")
# What each floor may import of the project, and (for ref) of anything at all.
MAY_IMPORT = {"ref": {"ref"}, "torch_impl": {"ref", "torch_impl"}, "inti": {"ref", "torch_impl", "inti"}}
REF_THIRD_PARTY = {"numpy", "scipy", "einops"}
MIRROR_ONLY = {"__init__.py", "convert.py"}  # torch_impl files with no twin in ref/


def imported_modules(source: str, module: str) -> set[str]:
    """Every module a source file imports, anywhere in it (lazy imports too), as dotted names;
    relative imports are resolved against `module` (the file's dotted name)."""
    found = set()
    package = module.split(".")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module
            found.add(name)
            found |= {f"{name}.{alias.name}" for alias in node.names}  # `from inti import cli`
    return found


def violations(source: str, module: str) -> list[str]:
    """The imports of one file that break the floors' rules."""
    floor = module.split(".")[0]
    bad = []
    for name in sorted(imported_modules(source, module)):
        top = name.split(".")[0]
        if top in PROJECT and top not in MAY_IMPORT[floor]:
            bad.append(f"{module} imports {name} (upward: {floor} may import {sorted(MAY_IMPORT[floor])})")
        if floor == "ref" and top not in PROJECT and top not in REF_THIRD_PARTY and top not in sys.stdlib_module_names:
            bad.append(f"{module} imports {name}: ref imports only the standard library, {sorted(REF_THIRD_PARTY)}")
        if name.startswith("inti.cli") and not module.startswith(("inti.cli", "inti.__main__")):
            bad.append(f"{module} imports the CLI ({name}); only inti.cli may")
    if floor == "ref":
        tree = ast.parse(source)
        names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        attrs = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
        strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
        if "torch" in names | attrs or strings & {"detach", "torch", "cpu"}:
            bad.append(f"{module} handles torch objects (a torch name or duck typing by 'detach')")
    return bad


def project_files():
    for floor in MAY_IMPORT:
        for path in sorted((ROOT / floor).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            if parts[-1] == "__init__":  # relative imports in a package's __init__ resolve inside it
                module += ".__init__"
            yield path, module


def test_imports_point_down():
    bad = [v for path, module in project_files() for v in violations(path.read_text(), module)]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize(
    "source, module, fragment",
    [
        ("from inti.io.params import save_params", "ref.model", "upward"),
        ("def f():\n    import torch\n", "ref.cost", "ref imports only"),
        ("from ..inti import figures", "torch_impl.model", "upward"),
        ("from . import cli", "inti.__init__", "imports the CLI"),
        ("def f(x):\n    return hasattr(x, 'detach')\n", "ref.params", "duck typing"),
        ("import benchmarks.speed", "inti.figures", "upward"),
    ],
)
def test_the_checker_catches_each_kind_of_violation(source, module, fragment):
    assert any(fragment in v for v in violations(source, module))


def test_every_torch_impl_file_has_its_twin_in_ref():
    mirror = {p.name for p in (ROOT / "torch_impl").glob("*.py")} - MIRROR_ONLY
    spec = {p.name for p in (ROOT / "ref").glob("*.py")}
    assert mirror and not mirror - spec, f"torch_impl files without a twin in ref/: {sorted(mirror - spec)}"


def tracked_text_files() -> list[tuple[str, str]]:
    """(name, text) of every text file git tracks, plus the ones it would track (not ignored)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, capture_output=True, text=True)
    if listed.returncode != 0:
        pytest.skip("not a git checkout: the tracked files are unknown")
    return [(name, (ROOT / name).read_text(errors="replace")) for name in sorted(set(listed.stdout.split("\0")))
            if name and (ROOT / name).is_file() and (ROOT / name).suffix in (".py", ".md", ".toml", ".txt", ".cfg", ".ipynb", "")]


# ../something, an absolute path into this machine's work tree, or the design card's file.
OUTSIDE = re.compile(r"\.\./[\w.]|/work/|METHOD\.md|shared/design|shared/seeds")


def test_nothing_cites_a_path_outside_the_repository():
    hits = [f"{name}:{i}: {line.strip()}" for name, text in tracked_text_files()
            for i, line in enumerate(text.splitlines(), 1) if OUTSIDE.search(line) and name != "tests/repo/test_architecture.py"]
    assert not hits, "references to paths outside the repository:\n" + "\n".join(hits)


@pytest.mark.parametrize("line", ["see ../shared/design/METHOD.md", "METHOD.md section 4", "/work/main/ref", "../seeds/x.txt"])
def test_the_outside_path_pattern_catches(line):
    assert OUTSIDE.search(line)


def test_inti_imports_anywhere_and_benchmarks_is_not_installed(tmp_path):
    code = ("import importlib.util, inti, inti.cli, inti.io.params; "
            "assert importlib.util.find_spec('benchmarks') is None, importlib.util.find_spec('benchmarks')")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


# A citation: "§3.4", "§2.4-2.5", "§3.1–3.3", "§5, invariant 6".
CITATION = re.compile(r"§(\d+(?:\.\d+)?)(?:\s*[-–]\s*(\d+(?:\.\d+)?))?(?:, invariants? (\d+))?")


def method_sections() -> tuple[set[str], set[str]]:
    """(section numbers that head a section of spec/00-method.md, invariant numbers of §5)."""
    text = (ROOT / "spec" / "00-method.md").read_text()
    sections = set(re.findall(r"^#{2,3} (\d+(?:\.\d+)?)\.? ", text, flags=re.M))
    fifth = text.split("\n## 5.", 1)[1].split("\n## 6.", 1)[0]
    invariants = set(re.findall(r"^(\d+)\. ", fifth, flags=re.M))
    return sections, invariants


def broken_citations(text: str, sections: set[str], invariants: set[str]) -> list[str]:
    bad = []
    for match in CITATION.finditer(text):
        first, last, invariant = match.groups()
        for number in filter(None, (first, last)):
            if number not in sections:
                bad.append(f"{match.group(0)!r}: no section {number}")
        if invariant and invariant not in invariants:
            bad.append(f"{match.group(0)!r}: no invariant {invariant}")
    return bad


def test_every_citation_of_the_method_chapter_resolves():
    sections, invariants = method_sections()
    assert {"1", "2", "2.4", "3.4", "3.5", "4", "5", "6"} <= sections and len(invariants) == 9
    bad = [f"{name}: {b}" for name, text in tracked_text_files() if name != "tests/repo/test_architecture.py"
           for b in broken_citations(text, sections, invariants)]
    assert not bad, "\n".join(bad)


def test_a_broken_citation_is_caught():
    sections, invariants = method_sections()
    assert broken_citations("see §3.9 and §5, invariant 12", sections, invariants) == [
        "'§3.9': no section 3.9", "'§5, invariant 12': no invariant 12"]
    assert broken_citations("§2.4-2.5 and §3.1–3.3", sections, invariants) == []


def test_the_layout_picture_names_every_module():
    """The full picture of the code lives in docs/layout.md (the README keeps a folder-level map
    that links to it)."""
    page = (ROOT / "docs" / "layout.md").read_text()
    picture = page.split("```text", 1)[1].split("```", 1)[0]
    words = set(re.findall(r"[\w.]+", picture))
    missing = []
    for floor in ("ref", "torch_impl", "inti", "benchmarks"):
        for path in sorted((ROOT / floor).rglob("*.py")):
            if path.name == "__init__.py" or path.name == "__main__.py":
                continue
            if path.name not in words and path.stem not in words:
                missing.append(str(path.relative_to(ROOT)))
    for folder in ("io", "data", "train", "cli"):
        if f"{folder}/" not in picture:
            missing.append(f"inti/{folder}/")
    assert not missing, f"the layout picture (docs/layout.md) does not name: {missing}"
