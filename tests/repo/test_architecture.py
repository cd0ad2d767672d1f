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


# ---------------------------------------------------------------------------------------------
# No import cycles, function-local imports included.
#
# The graph: one node per module of the project (a package is its __init__), one edge per
# import statement anywhere in a file, top level or inside a function. `from P import n` is an
# edge to the module P.n when there is one, else to P; `import a.b` is an edge to a.b. The
# parents that Python initializes on the way (a.b's package a) are not edges: they are part of
# every import and would make every package a cycle with its own modules.

CYCLE_FREE = ("ref", "torch_impl", "inti", "benchmarks")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_edges(source: str, module: str, is_package: bool, known: set[str]) -> set[str]:
    """The project modules that one file imports, anywhere in it (see above)."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module
            children = {f"{name}.{alias.name}" for alias in node.names} & known
            found |= children if len(children) == len(node.names) else children | {name}
    return {name for name in found if name in known and name != module}


def import_graph(roots=CYCLE_FREE) -> dict[str, set[str]]:
    files = {module_name(p): p for root in roots for p in sorted((ROOT / root).rglob("*.py"))}
    known = set(files)
    return {m: import_edges(p.read_text(), m, p.name == "__init__.py", known) for m, p in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles of a graph: its strongly connected components of more than one
    module (Tarjan's algorithm), each sorted, the list sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def describe_cycle(component: list[str], graph: dict[str, set[str]]) -> str:
    inside = set(component)
    return "; ".join(f"{m} -> {', '.join(sorted(graph[m] & inside))}" for m in component)


def test_no_import_cycles():
    """No module of ref, torch_impl, inti or benchmarks imports one that imports it back."""
    graph = import_graph()
    found = cycles(graph)
    assert not found, "import cycles:\n" + "\n".join(describe_cycle(c, graph) for c in found)


@pytest.mark.parametrize(
    "files, expected",
    [
        # a function-local import closes the cycle
        ({"inti/io/a.py": "from .b import f\n", "inti/io/b.py": "def f():\n    from .a import g\n"},
         [["inti.io.a", "inti.io.b"]]),
        # three modules round, through a package's __init__ and an absolute import
        ({"inti/x/__init__.py": "from . import c\n", "inti/x/c.py": "import inti.y\n", "inti/y.py": "from inti.x import VALUE\n"},
         [["inti.x", "inti.x.c", "inti.y"]]),
        # importing a sibling through the package (`from . import common`) is no cycle with the package
        ({"inti/x/__init__.py": "from . import a, common\n", "inti/x/a.py": "from . import common\n",
          "inti/x/common.py": "X = 1\n"}, []),
    ],
)
def test_the_cycle_checker_catches_a_cycle(files, expected):
    known = {module_name(ROOT / f) for f in files}
    graph = {module_name(ROOT / f): import_edges(src, module_name(ROOT / f), f.endswith("__init__.py"), known)
             for f, src in files.items()}
    assert cycles(graph) == expected


# ---------------------------------------------------------------------------------------------
# The CLI: no subcommand imports another. A subcommand is a module of inti/cli that defines
# `add_parser`; only the package (inti/cli/__init__.py, which registers them) imports them.


def cli_modules() -> dict[str, str]:
    return {module_name(p): p.read_text() for p in sorted((ROOT / "inti" / "cli").glob("*.py"))}


def subcommand_imports(modules: dict[str, str]) -> list[str]:
    subcommands = {m for m, src in modules.items()
                   if any(isinstance(n, ast.FunctionDef) and n.name == "add_parser" for n in ast.parse(src).body)}
    known = set(modules)
    bad = []
    for module, source in modules.items():
        if module == "inti.cli":
            continue
        for target in sorted(import_edges(source, module, False, known) & subcommands):
            bad.append(f"{module} imports the subcommand {target}")
    return bad


def test_no_subcommand_imports_another():
    modules = cli_modules()
    assert {"inti.cli.demo", "inti.cli.parity", "inti.cli.train"} <= set(modules)
    bad = subcommand_imports(modules)
    assert not bad, "\n".join(bad)


def test_the_subcommand_checker_catches_one_importing_another():
    modules = {"inti.cli": "from . import demo, parity\n",
               "inti.cli.parity": "def add_parser(sub):\n    pass\n",
               "inti.cli.demo": "def add_parser(sub):\n    pass\n\ndef run(args):\n    from .parity import run_checked\n",
               "inti.cli.report": "def table():\n    pass\n"}
    assert subcommand_imports(modules) == ["inti.cli.demo imports the subcommand inti.cli.parity"]
    modules["inti.cli.demo"] = "from .report import table\n\ndef add_parser(sub):\n    pass\n"
    assert subcommand_imports(modules) == []


# ---------------------------------------------------------------------------------------------
# One name, one behaviour: no public function or class is defined under the same name in two
# modules of the tools (the I/O, the CLI, the training engine and the top-level modules of
# inti). A subcommand's `add_parser` and `run` are the protocol every subcommand implements.

UNIQUE_NAMES_IN = ("inti/io", "inti/cli", "inti/train", "inti")
PROTOCOL = {"add_parser", "run"}


def defined_twice(sources: dict[str, str]) -> dict[str, list[str]]:
    where: dict[str, list[str]] = {}
    for module, source in sources.items():
        for node in ast.parse(source).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
                if not (module.startswith("inti.cli.") and node.name in PROTOCOL):
                    where.setdefault(node.name, []).append(module)
    return {name: modules for name, modules in where.items() if len(modules) > 1}


def test_no_function_name_is_defined_twice_in_the_tools():
    sources = {module_name(p): p.read_text() for folder in UNIQUE_NAMES_IN for p in sorted((ROOT / folder).glob("*.py"))}
    twice = defined_twice(sources)
    assert not twice, "\n".join(f"{name}: {', '.join(modules)}" for name, modules in sorted(twice.items()))


def test_the_name_checker_catches_a_name_defined_twice():
    sources = {"inti.io.layouts": "def export_state_dict(params, cfg, layout):\n    pass\n",
               "inti.io.pretrained": "def export_state_dict(model, layout):\n    pass\n",
               "inti.cli.demo": "def run(args):\n    pass\n", "inti.cli.parity": "def run(args):\n    pass\n"}
    assert defined_twice(sources) == {"export_state_dict": ["inti.io.layouts", "inti.io.pretrained"]}


# ---------------------------------------------------------------------------------------------
# The demo runs on library functions: nothing it reaches, through any import, is the research
# experiment or the training code.


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo += sorted(graph.get(module, ()))
    return seen


def test_the_demo_reaches_neither_the_experiment_nor_the_training_code():
    reached = reachable(import_graph(("ref", "torch_impl", "inti")), "inti.cli.demo")
    assert "inti.figures" in reached and "inti.assets" in reached
    bad = sorted(m for m in reached if m.startswith(("inti.experiments", "inti.train")))
    assert not bad, f"inti demo imports {bad}"


def test_reachability_follows_every_import():
    graph = {"inti.cli.demo": {"inti.figures"}, "inti.figures": {"inti.train.models"}, "inti.train.models": set()}
    assert reachable(graph, "inti.cli.demo") == {"inti.cli.demo", "inti.figures", "inti.train.models"}


# ---------------------------------------------------------------------------------------------
# Modules stay small enough to read in one sitting: about 450 lines at most (the ceiling leaves
# the "about"; a module that reaches it is split by what it holds, as inti.io's formats were).

MAX_LINES = 460


def test_no_module_is_over_about_450_lines():
    long = {str(p.relative_to(ROOT)): n for floor in ("ref", "torch_impl", "inti") for p in sorted((ROOT / floor).rglob("*.py"))
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"
