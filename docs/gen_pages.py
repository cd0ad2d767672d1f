"""Pages copied or generated into the documentation site at build time (mkdocs-gen-files).

- the spec (spec/*.md), the tutorials (tutorials/*.ipynb) and the reports that live beside
  their code (benchmarks/README.md with benchmarks/results/, experiments/evidence/), copied in
  under the same paths, so their relative links keep working;
- the API reference: one page per module of ref, torch_impl and inti, found by walking the
  packages, so a new module gets its page without an edit here; reference/SUMMARY.md is its
  navigation (mkdocs-literate-nav);
- what the pages load, from docs/vendor/node_modules (npm ci, run by `make docs`): KaTeX, the
  math renderer, and iframe-worker, which lets the search run from file://. The site serves
  both from its own files and fetches nothing.
"""

from __future__ import annotations

import re
from pathlib import Path

import mkdocs_gen_files

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("ref", "torch_impl", "inti")
VENDOR = ROOT / "docs" / "vendor" / "node_modules"
KATEX = VENDOR / "katex" / "dist"
IFRAME_WORKER = VENDOR / "iframe-worker" / "shim" / "index.js"
KATEX_FILES = ("katex.min.js", "katex.min.css", "contrib/auto-render.min.js")


def copy(source: Path, dest: str) -> None:
    data = source.read_bytes()
    if source.suffix == ".md":  # a link to a folder ("results/") becomes one to its listing page
        data = re.sub(rb"\]\(([\w./-]+)/\)", rb"](\1/index.md)", data)
    with mkdocs_gen_files.open(dest, "wb") as f:
        f.write(data)


def copy_sources() -> None:
    for path in sorted((ROOT / "spec").glob("*.md")):
        copy(path, f"spec/{path.name}")
    for path in sorted((ROOT / "tutorials").glob("*.ipynb")):
        copy(path, f"tutorials/{path.name}")
    copy(ROOT / "benchmarks" / "README.md", "benchmarks/README.md")
    folder = ROOT / "benchmarks" / "results"
    results = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    for name in results:
        copy(folder / name, f"benchmarks/results/{name}")
    with mkdocs_gen_files.open("benchmarks/results/index.md", "w") as f:  # the folder's listing
        f.write("# benchmarks/results\n\nEvery benchmark run, as its report and its raw data.\n\n")
        f.writelines(f"- [{name}]({name})\n" for name in results)
    for path in sorted((ROOT / "experiments" / "evidence").iterdir()):
        if path.is_file() and path.suffix in (".md", ".png", ".json", ".jsonl"):
            copy(path, f"experiments/evidence/{path.name}")


def modules(package: str):
    """(dotted name, path parts) of every public module of a package, the package first."""
    base = ROOT / package
    for path in sorted(base.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__main__" or any(p.startswith("_") and p != "__init__" for p in parts):
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), parts


def write_reference() -> None:
    nav = mkdocs_gen_files.Nav()
    for package in PACKAGES:
        for name, parts in modules(package):
            page = Path("reference", *parts).with_suffix(".md")
            if (ROOT.joinpath(*parts) / "__init__.py").exists():
                page = Path("reference", *parts, "index.md")
            nav[parts] = page.relative_to("reference").as_posix()
            with mkdocs_gen_files.open(page, "w") as f:
                f.write(f"::: {name}\n")
    with mkdocs_gen_files.open("reference/SUMMARY.md", "w") as f:
        f.writelines(nav.build_literate_nav())


def copy_vendored() -> None:
    missing = [str(p.relative_to(ROOT)) for p in [*(KATEX / name for name in KATEX_FILES), IFRAME_WORKER]
               if not p.is_file()]
    if missing:
        raise SystemExit(f"the site's vendored scripts are not installed (missing {missing}): "
                         "run `make docs`, or `npm ci --prefix docs/vendor`")
    copy(IFRAME_WORKER, "assets/iframe-worker/shim.js")
    for path in sorted(KATEX.rglob("*")):
        relative = path.relative_to(KATEX).as_posix()
        if relative in KATEX_FILES or (relative.startswith("fonts/") and path.suffix == ".woff2"):
            copy(path, f"assets/katex/{relative}")


copy_sources()
write_reference()
copy_vendored()
