"""The documentation site: it builds with warnings as errors, fetches nothing when it is read,
and, opened from disk in headless Chromium with name resolution switched off, renders the method
chapter's math and reaches every chapter through its navigation.

The expected pages come from the repository's files (spec/*.md, docs/guides/*.md,
tutorials/*.ipynb, the packages), never from mkdocs.yml, so a chapter dropped from the
navigation fails here. Without the docs set-up (`make docs-setup`: the docs extra, KaTeX from
npm, and as root Debian's chromium) these tests skip and say so; CI sets INTI_REQUIRE_BROWSER=1,
which turns every such skip into a failure.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
KATEX = ROOT / "docs" / "vendor" / "node_modules" / "katex" / "dist" / "katex.min.js"
REQUIRED = os.environ.get("INTI_REQUIRE_BROWSER") == "1"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--host-resolver-rules=MAP * ~NOTFOUND"]  # no name resolves: a CDN would fail to load


def missing(what: str) -> None:
    """Skip, naming the set-up, unless CI requires the browser test to run."""
    message = f"{what}: run `make docs-setup` (as root it also installs Debian's chromium)"
    if REQUIRED:
        pytest.fail(f"INTI_REQUIRE_BROWSER=1, but {message}")
    pytest.skip(message)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None:
        missing("the docs extra is not installed")
    if not KATEX.is_file():
        missing(f"KaTeX is not installed in {KATEX.parent.relative_to(ROOT)}")
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "DISABLE_MKDOCS_2_WARNING": "true", "NO_MKDOCS_2_WARNING": "1"}
    built = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out),
                            "--config-file", str(ROOT / "mkdocs.yml")],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, "mkdocs build --strict failed:\n" + built.stderr[-4000:]
    return out


def open_in_chromium(page: Path, tmp_path: Path) -> str:
    """The page's DOM after its scripts ran, as headless Chromium serializes it."""
    chromium = shutil.which("chromium")
    if chromium is None:
        missing("Debian's chromium is not installed")
    profile = tmp_path / "profile"
    profile.mkdir()
    result = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=10000",
                             "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0 and "<body" in result.stdout, result.stderr[-2000:]
    return result.stdout


def visible_text(soup) -> str:
    """The text a reader sees: no scripts or styles, and not KaTeX's hidden MathML copy (which
    keeps the TeX source for screen readers and copying)."""
    for hidden in soup.select("script, style, noscript, .katex-mathml"):
        hidden.decompose()
    return soup.get_text(" ")


def math_in_source(text: str) -> int:
    """Formulas the method chapter writes: ```math blocks and inline $...$."""
    blocks = len(re.findall(r"^```math$", text, flags=re.M))
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    prose = re.sub(r"^    .*$", "", prose, flags=re.M)  # indented code
    prose = re.sub(r"`[^`\n]*`", "", prose)
    inline = len(re.findall(r"(?<![\\$])\$[^$\n]+\$", prose))
    return blocks + inline


def test_the_site_builds_with_warnings_as_errors(site):
    assert (site / "index.html").is_file() and (site / "spec" / "00-method.html").is_file()


def test_the_site_fetches_nothing(site):
    """Every script, stylesheet, image and font a page or stylesheet loads is a file of the site."""
    bs4 = pytest.importorskip("bs4")
    bad = []
    for page in sorted(site.rglob("*.html")):
        if page.name == "404.html" and page.parent == site:
            continue  # a web server's error page, with paths from the server's root; unused from disk
        soup = bs4.BeautifulSoup(page.read_text(), "html.parser")
        loads = [(t.name, t.get("src")) for t in soup.find_all(["script", "img", "iframe", "source"]) if t.get("src")]
        loads += [(t.name, t.get("href")) for t in soup.find_all("link")
                  if t.get("href") and set(t.get("rel") or []) & {"stylesheet", "icon", "preload", "modulepreload"}]
        for tag, url in loads:
            parts = urlsplit(url)
            if parts.scheme == "data":
                continue
            if parts.scheme or parts.netloc:
                bad.append(f"{page.relative_to(site)}: <{tag}> loads {url}")
            elif not (page.parent / unquote(parts.path)).resolve().is_file():
                bad.append(f"{page.relative_to(site)}: <{tag}> loads {url}, which the site does not hold")
    for sheet in sorted(site.rglob("*.css")):
        for url in re.findall(r"url\(\s*['\"]?((?:https?:)?//[^'\")\s]+)", sheet.read_text(errors="replace")):
            bad.append(f"{sheet.relative_to(site)}: url({url})")
    assert not bad, "\n".join(bad[:40])


def test_the_method_page_renders_its_math_in_chromium(site, tmp_path):
    bs4 = pytest.importorskip("bs4")
    soup = bs4.BeautifulSoup(open_in_chromium(site / "spec" / "00-method.html", tmp_path), "html.parser")
    expected = math_in_source((ROOT / "spec" / "00-method.md").read_text())
    assert expected >= 5, "the method chapter should carry its formulas as math"
    rendered = soup.select(".arithmatex .katex")
    assert len(rendered) == expected, f"KaTeX rendered {len(rendered)} formulas, the chapter has {expected}"
    assert not soup.select(".katex-error"), [e.get_text() for e in soup.select(".katex-error")][:3]
    assert all(el.select(".katex") for el in soup.select(".arithmatex")), "a formula was left as TeX"
    text = visible_text(soup)
    for raw in ("$$", "\\frac", "\\(", "\\[", "\\begin", "\\mathrm"):
        assert raw not in text, f"raw TeX {raw!r} is visible on the method page"


def site_page(source: str) -> str:
    """The site path of a page of the repository (a README becomes its folder's index)."""
    path = Path(source)
    name = "index" if path.stem == "README" else path.stem
    return (path.parent / f"{name}.html").as_posix()


def expected_pages() -> dict[str, str]:
    pages = {f"spec/{p.name}": site_page(f"spec/{p.name}") for p in sorted((ROOT / "spec").glob("*.md"))}
    pages |= {f"guides/{p.name}": f"guides/{p.stem}.html" for p in sorted((ROOT / "docs" / "guides").glob("*.md"))}
    pages |= {f"tutorials/{p.name}": f"tutorials/{p.stem}.html" for p in sorted((ROOT / "tutorials").glob("*.ipynb"))}
    pages |= {f"API reference of {pkg}": f"reference/{pkg}/index.html" for pkg in ("ref", "torch_impl", "inti")}
    return pages


def test_the_navigation_reaches_every_chapter(site, tmp_path):
    bs4 = pytest.importorskip("bs4")
    method = site / "spec" / "00-method.html"
    soup = bs4.BeautifulSoup(open_in_chromium(method, tmp_path), "html.parser")
    nav = soup.select_one("nav.md-nav--primary")
    assert nav is not None, "no navigation on the method page"
    reached = set()
    for link in nav.select("a[href]"):
        parts = urlsplit(link["href"])
        if not parts.scheme and parts.path:
            target = (method.parent / unquote(parts.path)).resolve()
            if target.is_file():
                reached.add(target.relative_to(site.resolve()).as_posix())
    expected = expected_pages()
    assert len([k for k in expected if k.startswith("spec/")]) == 10 and len([k for k in expected if k.startswith("tutorials/")]) == 4
    unreached = {source: page for source, page in expected.items() if page not in reached}
    assert not unreached, f"the navigation does not reach: {unreached}"
    # the API reference covers every module of the three packages, one page each
    for package in ("ref", "torch_impl", "inti"):
        for module in (ROOT / package).rglob("*.py"):
            parts = module.relative_to(ROOT).with_suffix("").parts
            if parts[-1] in ("__init__", "__main__") or any(p.startswith("_") for p in parts):
                continue
            assert (site / "reference" / Path(*parts).with_suffix(".html")).is_file(), f"no reference page for {module}"
