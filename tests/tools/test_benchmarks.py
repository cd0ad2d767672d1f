"""The benchmarks still run: speed.py on nano (eager, float32, bf16 autocast and pure bf16, two
rounds), train_speed.py's quick rows, and gpu_check.py (it skips without a GPU; its code paths
run on the CPU with --device cpu --tiny). Seconds each.

The benchmarks themselves are not part of the suite (they take tens of minutes); this only keeps
them from rotting: every contender runs, agrees with the others, and lands in the JSON, the
tables and the figure, with its GEMM rate and per-op profile.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("timm")

import ref  # noqa: E402
from benchmarks import speed  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]  # the benchmarks are scripts run from the repository root


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    code = speed.main(["--preset", "nano", "--frames", "8", "--only", "eager", "--repeats", "2",
                       "--min-repeats", "1", "--malloc", "default", "--out", str(out)])
    return code, out


def test_writes_json_and_markdown(run):
    code, out = run
    assert code == 0
    report = json.loads((out / "results.json").read_text())
    table = (out / "results.md").read_text()
    assert [r["id"] for r in report["rows"]] == ["nano-T8-b1-f32-eager", "nano-T8-b1-bf16-eager",
                                                 "nano-T8-b1-bf16pure-eager"]
    for key in ("cpu", "cores", "torch", "torch_threads"):
        assert report["machine"][key] not in (None, "")
    assert report["machine"]["torch_threads"] == report["machine"]["cores"]
    assert set(report["machine"]["cpu_flags"]) >= {"amx_bf16", "avx512_bf16"}
    assert "| case | dtype | mode |" in table and "nano T8 b1" in table and "Targets" in table
    assert "GEMM GMAC/s" in table and "| θ | Φ |" in table and "warm compile s" in table
    assert (out / "fraction_of_peak.png").read_bytes()[:4] == b"\x89PNG"


def test_bf16_rows_say_whether_bf16_is_emulated(run):
    _, out = run
    report = json.loads((out / "results.json").read_text())
    native = report["machine"]["native_bf16"]
    for row in report["rows"]:
        assert row["emulated_bf16"] == (row["dtype"] != "f32" and not native)
        assert row["pure_bf16"] == (row["dtype"] == "bf16pure") and row["autocast"] == (row["dtype"] == "bf16")
        assert row["inductor_freezing"] is False  # eager rows: inductor's freezing only in freeze rows
        if row["emulated_bf16"]:  # the bfloat16 goals are judged only on bfloat16 hardware
            assert set(row["targets"]) <= {"ref_vs_torch"}
    if not native:
        assert "emulated" in (out / "results.md").read_text()


def test_every_contender_timed_and_checked(run):
    _, out = run
    rows = {r["id"]: r for r in json.loads((out / "results.json").read_text())["rows"]}
    f32, bf16, pure = (rows[f"nano-T8-b1-{d}-eager"] for d in ("f32", "bf16", "bf16pure"))
    assert set(f32["contenders"]) == {"naive", "inti", "timm", "merge", "gemm", "ref"}
    for row in (bf16, pure):
        assert set(row["contenders"]) == {"naive", "inti", "timm", "merge", "gemm"}  # ref runs in float32 only
        assert "bf16_vs_f32" in row["checks"]
    for row in (f32, bf16, pure):
        assert row["repeats"] == 2
        for c in row["contenders"].values():
            assert len(c["times_s"]) == 2 and all(t > 0 for t in c["times_s"])
            assert c["median_s"] > 0 and c["peak_mib"] >= 0
        assert all(check["ok"] for check in row["checks"].values())
        assert {"naive_vs_timm"} <= set(row["checks"])
        for key in ("speedup", "fraction_of_ideal", "merge_share", "naive_vs_timm"):
            assert row[key] is not None and row[key] > 0
    assert "inti_vs_ref" in f32["checks"] and f32["ref_vs_torch"] > 0


def test_fraction_of_peak_and_profile(run):
    """Each model's MAC/s over the GEMM rate of the same rounds, and the per-op breakdown."""
    from benchmarks.breakdown import GROUPS

    _, out = run
    cfg = ref.preset("nano")
    for row in json.loads((out / "results.json").read_text())["rows"]:
        gemm = row["contenders"]["gemm"]
        M, C, H = 8 * cfg.num_tokens, cfg.width, cfg.mlp_width
        assert gemm["macs"] == M * C * (4 * C + 2 * H)  # qkv, proj, fc1, fc2 over B*T*N tokens
        assert row["gemm_gmac_per_s"] == pytest.approx(gemm["macs"] / gemm["median_s"] / 1e9)
        naive = row["contenders"]["naive"]
        assert naive["macs"] == ref.count_macs(cfg.replace(schedule=()), 8)["total"]
        assert naive["fraction_of_peak"] == pytest.approx(naive["gmac_per_s"] / row["gemm_gmac_per_s"])
        for name in ("naive", "inti", "timm"):
            b = row["contenders"][name]["breakdown"]
            assert set(b["seconds"]) == set(GROUPS) and all(v >= 0 for v in b["seconds"].values())
            assert sum(b["seconds"].values()) == pytest.approx(b["wall_s"], rel=0.05)
            assert b["seconds"]["gemm"] > 0 and b["seconds"]["attention"] > 0
            merged = b["seconds"]["theta"] > 0 and b["seconds"]["phi"] > 0
            assert merged == (name == "inti")  # θ and Φ only where there are merges
        assert row["norm_path"] == "native"


def test_predicted_ratio_is_the_mac_ratio(run):
    _, out = run
    row = json.loads((out / "results.json").read_text())["rows"][0]
    cfg = ref.preset("nano")
    naive, inti = ref.count_macs(cfg.replace(schedule=()), 8)["total"], ref.count_macs(cfg, 8)["total"]
    assert row["predicted"] == pytest.approx(naive / inti)
    assert row["fraction_of_ideal"] == pytest.approx(row["speedup"] / row["predicted"])


def test_plan_and_flags(tmp_path):
    def parse(*argv):  # an empty --out: the default one may hold a user's earlier run
        return speed.parse_args([*argv, "--out", str(tmp_path)])

    full = [r.id for r in speed.plan(parse("--all"))]
    for case in ("vit_b16-T8-b1", "vit_b16-T16-b4", "vit_l14-T8-b4", "vit_l14-T16-b1"):
        for dtype in ("f32", "bf16", "bf16pure"):
            assert {f"{case}-{dtype}-eager", f"{case}-{dtype}-compile", f"{case}-{dtype}-freeze"} <= set(full)
    assert len(full) == 8 * 3 * 3
    quick = [r.id for r in speed.plan(parse("--quick"))]
    assert quick == ["vit_b16-T8-b1-f32-eager", "vit_b16-T8-b1-bf16-eager", "vit_b16-T8-b1-bf16pure-eager"]
    only = [r.id for r in speed.plan(parse("--only", "vit_l14*bf16-eager"))]
    assert only == [f"vit_l14-T{t}-b{b}-bf16-eager" for b in (1, 4) for t in (8, 16)]
    skipped = [r.id for r in speed.plan(parse("--all", "--skip", "vit_l14,compile,freeze", "--dtypes", "f32"))]
    assert skipped == [f"vit_b16-T{t}-b{b}-f32-eager" for b in (1, 4) for t in (8, 16)]
    for bad in (["--contenders", "naive,bogus"], ["--dtypes", "f32,f64"]):
        with pytest.raises(SystemExit):
            parse(*bad)


def test_the_training_benchmark_runs(tmp_path):
    from benchmarks import train_speed

    assert train_speed.main(["--quick", "--rounds", "1", "--malloc", "default", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "train_results.json").read_text())
    assert [(r["preset"], r["dtype"]) for r in report["rows"]] == [("nano", "f32"), ("nano", "bf16")]
    for row in report["rows"]:
        assert row["speedup"] > 0 and row["activation_ratio"] == 2.0 and row["peak_mib"]["inti"] > 0
        assert row["fraction_of_mac_ratio"] == pytest.approx(row["speedup"] / row["mac_ratio"])
    assert report["rows"][1]["autocast"] and report["rows"][1]["emulated_bf16"] == (not report["machine"]["native_bf16"])
    table = (tmp_path / "train_results.md").read_text()
    assert report["loader"]["clips"] == 64 and "| nano T8 b2 | f32 |" in table and "| nano T8 b2 | bf16 autocast" in table


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the skip without a GPU")
def test_gpu_check_skips_cleanly_without_cuda(tmp_path, capsys):
    from benchmarks import gpu_check

    out = tmp_path / "gpu.json"
    assert gpu_check.main(["--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["status"] == "skipped" and report["reason"] == "skipped: no CUDA device"
    assert report["machine"]["cpu"] and "sections" not in report
    assert "skipped: no CUDA device" in capsys.readouterr().out


def test_gpu_check_code_paths_on_the_cpu(tmp_path):
    """--device cpu --tiny: parity in four dtypes and FlopCounterMode run (bench and compile are
    covered above and by the parity tests); every section's result lands in the one JSON."""
    from benchmarks import gpu_check

    out = tmp_path / "gpu.json"
    assert gpu_check.main(["--device", "cpu", "--tiny", "--skip", "compile,bench", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["status"] == "ok" and report["sections"]["compile"]["skipped"].startswith("skipped")
    parity, flops = report["sections"]["parity"], report["sections"]["flops"]
    assert parity["ok"] and flops["ok"]
    runs = parity["runs"]
    assert {r["variant"] for r in runs} == {"naive", "inti"} and {r["norm_path"] for r in runs} == {"explicit", "native"}
    assert set(next(r for r in runs if "float64" in r["worst"])["worst"]) == {"float64", "float32", "bfloat16", "float16"}
    assert any(r.get("autocast_bfloat16") for r in runs)
    assert all(r["counted_flops"] == r["expected_flops"] and r["attention_ops"] for r in flops["runs"])


def test_attention_kernels_are_timed_and_checked(tmp_path, capsys):
    """benchmarks/attention.py on nano: every SDPA backend either runs (and matches float64
    attention within the dtype's bar) or says it has no kernel here; the default SDPA and the
    explicit path always run."""
    from benchmarks import attention
    from inti.tolerances import tolerance

    out = tmp_path / "attn.json"
    assert attention.main(["--preset", "nano", "--rounds", "2", "--dtypes", "f32,bf16", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert [r["dtype"] for r in report["rows"]] == ["float32", "bfloat16"]
    for row in report["rows"]:
        paths = row["contenders"]
        assert set(paths) == {"explicit", "sdpa", "sdpa:math", "sdpa:flash", "sdpa:efficient", "sdpa:cudnn"}
        assert paths["explicit"]["runs"] and paths["sdpa"]["runs"] and paths["sdpa:math"]["runs"]
        for c in paths.values():
            assert (len(c["ms"]) == 2 and c["rel_error"] <= tolerance(row["dtype"])) if c["runs"] else c["why"]
    assert "| bfloat16 | sdpa |" in capsys.readouterr().out


def test_a_wrong_attention_kernel_is_refused(monkeypatch):
    """A fast wrong kernel cannot win: a path off by more than the bar stops the run."""
    from benchmarks import attention

    monkeypatch.setattr(attention, "contenders", lambda: {"explicit": attention.explicit,
                                                           "sdpa": lambda q, k, v: attention.explicit(q, k, v) * 1.5})
    with pytest.raises(SystemExit, match="attention path sdpa in float32 is off"):
        attention.main(["--preset", "nano", "--rounds", "1", "--dtypes", "f32"])


def test_fixed_malloc_sets_glibc_thresholds_and_leaves_a_users_alone():
    """In a child process (mallopt is process-wide): on glibc both thresholds are fixed; with a
    MALLOC_*_ variable set, the user's setting stands and nothing is changed."""
    import os
    import platform
    import subprocess
    import sys

    code = "from benchmarks.machine import describe, fixed_malloc; print(fixed_malloc(), describe('cpu')['malloc_fixed'])"

    def run(env):
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                              env=env, cwd=ROOT).stdout.strip()

    base = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "LD_PRELOAD"}
    if platform.libc_ver()[0] == "glibc":
        both = "{'mmap_threshold': 1073741824, 'trim_threshold': 1073741824}"
        assert run(base) == f"{both} {both}"
    assert run({**base, "MALLOC_MMAP_THRESHOLD_": "100000"}) == "{} {}"


def test_a_freeze_row_compiles_frozen_and_agrees_with_eager(tmp_path):
    """One `freeze` row on nano (torch.compile under inductor's freezing): compiled, checked
    against eager InTI, timed, and inductor's config is back to unfrozen afterwards."""
    import torch._inductor.config as inductor_config

    assert speed.main(["--preset", "nano", "--only", "f32-freeze", "--repeats", "1", "--min-repeats", "1",
                       "--contenders", "naive,inti", "--no-profile", "--malloc", "default", "--out", str(tmp_path)]) == 0
    (row,) = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert row["id"] == "nano-T8-b1-f32-freeze" and row["checks"]["compiled_vs_eager"]["ok"]
    assert row["inductor_freezing"] is True  # compiled under freezing
    assert row["inductor_layout_optimization"] is True  # inductor's default, without --no-layout-optimization
    assert all(row["contenders"][n]["compile_s"] > 0 and len(row["contenders"][n]["times_s"]) == 1 for n in ("naive", "inti"))
    assert inductor_config.freezing is False


@pytest.mark.parametrize("policy, recorded, spin", [
    (None, "PASSIVE", "0"),                # unset: the benchmarks' PASSIVE, no spinning
    ("default", "default", "300000"),      # libgomp's own: spin, then sleep
    ("ACTIVE", "ACTIVE", "30000000000"),   # the user's setting stands
])
def test_omp_wait_policy_reaches_libgomp_and_is_recorded(policy, recorded, spin):
    """In a child process (libgomp reads its settings once, when torch loads): the policy that
    benchmarks.machine.describe records is the one the OpenMP runtime runs, read back from libgomp's own
    OMP_DISPLAY_ENV report (its GOMP_SPINCOUNT: 0 passive, 300000 its default, 3e10 active);
    `default` is removed from the environment, so libgomp never sees a value it rejects."""
    import os
    import subprocess
    import sys

    maps = Path("/proc/self/maps")  # torch is loaded in this process: is its OpenMP libgomp?
    if "OpenMP" not in torch.__config__.parallel_info() or not maps.exists() or "libgomp" not in maps.read_text():
        pytest.skip("torch here does not use GNU OpenMP (libgomp)")  # the spin counts are libgomp's
    code = ("import benchmarks, os, torch; from benchmarks.machine import describe; torch.ones(4).sum(); "
            "m = describe('cpu'); print(m['OMP_WAIT_POLICY'], m['omp_wait_policy_before_torch'], "
            "os.environ.get('OMP_WAIT_POLICY'))")
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={**env, "OMP_DISPLAY_ENV": "VERBOSE"}, cwd=ROOT)
    in_env = {"default": "None"}.get(recorded, recorded)
    assert proc.stdout.split() == [recorded, "True", in_env]
    assert f"GOMP_SPINCOUNT = '{spin}'" in proc.stderr
    assert "Invalid value" not in proc.stderr


def test_no_layout_optimization_reaches_the_compiler_and_is_recorded(tmp_path):
    """--no-layout-optimization: a compile row on nano runs under inductor's
    layout_optimization=False (recorded in the row), agrees with eager, and the config is back
    on afterwards (the freeze test checks that rows without the flag record it on)."""
    import torch._inductor.config as inductor_config

    assert speed.main(["--preset", "nano", "--only", "f32-compile", "--repeats", "1", "--min-repeats", "1",
                       "--contenders", "naive,inti", "--no-profile", "--malloc", "default",
                       "--no-layout-optimization", "--out", str(tmp_path)]) == 0
    (row,) = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert row["inductor_layout_optimization"] is False and row["checks"]["compiled_vs_eager"]["ok"]
    assert inductor_config.layout_optimization is True


# ---------------------------------------------------------------------------------------------
# The package's shape: no import cycle among benchmarks' modules (function-local imports
# included, and the package's __init__ that every submodule runs first), and no module reaching
# for another project module's private (_name) helpers.

PROJECT = ("ref", "torch_impl", "inti", "benchmarks")


def benchmark_modules() -> dict[str, str]:
    """{dotted name: source} of benchmarks/ (the package's __init__ as "benchmarks")."""
    return {("benchmarks" if p.stem == "__init__" else f"benchmarks.{p.stem}"): p.read_text()
            for p in sorted((ROOT / "benchmarks").glob("*.py"))}


def imports_of(source: str, module: str, known: set[str]) -> list[tuple[str, str | None, int]]:
    """(module imported, name taken from it or None, line) for every import anywhere in the
    source; relative imports resolved against `module`, `from pkg import sub` as module pkg.sub
    when pkg.sub is one of `known`."""
    package = module if module == "benchmarks" else module.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(alias.name, None, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.append((sub, None, node.lineno) if sub in known else (target, alias.name, node.lineno))
    return found


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_uses(source: str, module: str, known: set[str]) -> list[str]:
    """Private names of another project module that this one imports or reads as an attribute
    (`from .timing import _sync`, `import inti._x`, `timing._sync` after `from . import timing`)."""
    bad, aliases = [], {}
    for target, name, line in imports_of(source, module, known):
        if target.split(".")[0] not in PROJECT or target == module:
            continue
        if any(_private(part) for part in target.split(".")):
            bad.append(f"{module}:{line} imports the private module {target}")
        if name is not None and _private(name):
            bad.append(f"{module}:{line} imports {name} from {target}")
    tree = ast.parse(source)
    for node in ast.walk(tree):  # the names that stand for project modules here
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in PROJECT:
                    aliases[alias.asname or alias.name.split(".")[0]] = alias.name
        elif isinstance(node, ast.ImportFrom):
            for target, name, _ in imports_of(ast.unparse(node), module, known):
                if name is None and target.split(".")[0] in PROJECT:
                    aliases[target.rsplit(".", 1)[-1]] = target
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases \
                and _private(node.attr) and aliases[node.value.id] != module:
            bad.append(f"{module}:{node.lineno} reads {node.value.id}.{node.attr}")
    return bad


def import_cycles(sources: dict[str, str]) -> list[list[str]]:
    """The cycles of the import graph among `sources` (each submodule also runs its package's
    __init__ first), each as the list of modules along it."""
    known = set(sources)
    graph = {m: sorted({t for t, _, _ in imports_of(s, m, known) if t in known and t != m}
                       | ({m.rsplit(".", 1)[0]} & known if "." in m else set())) for m, s in sources.items()}
    cycles, state = [], {}

    def visit(m, path):
        state[m] = "open"
        for n in graph[m]:
            if state.get(n) == "open":
                cycles.append(path[path.index(n):] + [n])
            elif n not in state:
                visit(n, path + [n])
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    return cycles


def test_benchmarks_have_no_import_cycle_and_no_private_imports():
    sources = benchmark_modules()
    assert {"benchmarks.machine", "benchmarks.timing", "benchmarks.runner", "benchmarks.flags"} <= set(sources)
    assert import_cycles(sources) == []
    bad = [b for m, s in sources.items() for b in private_uses(s, m, set(sources))]
    assert not bad, "\n".join(bad)


def test_the_cycle_and_private_checks_catch_what_they_guard():
    """The two checks above, on planted sources: a cycle closed by a function-local import, one
    through the package's __init__, and each way of reaching a private name."""
    assert import_cycles({
        "benchmarks": "", "benchmarks.a": "from .b import f\n",
        "benchmarks.b": "def f():\n    from .a import g\n",
    }) == [["benchmarks.a", "benchmarks.b", "benchmarks.a"]]
    assert import_cycles({"benchmarks": "from . import a\n", "benchmarks.a": "X = 1\n"}) == [
        ["benchmarks", "benchmarks.a", "benchmarks"]]
    assert import_cycles({"benchmarks": "", "benchmarks.a": "from . import b\n", "benchmarks.b": "import os\n"}) == []
    known = {"benchmarks", "benchmarks.a", "benchmarks.timing"}
    for source in ("from .timing import _sync\n", "def f():\n    from inti.train.loop import _autocast\n",
                   "from . import timing\ntiming._sync('cpu')\n", "import inti._private\n",
                   "import benchmarks.timing as t\nt._sync('cpu')\n"):
        assert private_uses(source, "benchmarks.a", known), source
    for source in ("from .timing import sync\n", "import torch._inductor.config\n", "from . import OMP_WAIT_POLICY\n",
                   "def _mine():\n    pass\n_mine()\n", "from .timing import __doc__\n"):
        assert not private_uses(source, "benchmarks.a", known), source


def test_the_export_benchmark_runs(tmp_path, capsys):
    """benchmarks/export_speed.py on nano at 4 frames, one round, float32 only: every contender
    is checked against torch and timed, and both result files are written."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from benchmarks import export_speed

    assert export_speed.main(["--presets", "nano", "--frames", "4", "--repeats", "1", "--no-int8",
                              "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "export_speed.json").read_text())
    assert [r["schedule"] for r in report["rows"]] == ["naive ()", "InTI (1, 2)"]
    for row in report["rows"]:
        assert set(row["results"]) == {"torch eager", "onnxruntime f32"}
        for r in row["results"].values():
            assert len(r["times_s"]) == 1 and r["median_s"] > 0 and r["rel_err"] <= 2e-4  # the float32 bar
    assert report["machine"]["cpu"] and "| nano | InTI (1, 2) |" in (tmp_path / "export_speed.md").read_text()


def test_the_benchmark_docs_link_only_to_what_exists():
    """benchmarks/README.md and the lab notebook in benchmarks/results/ link to files (and
    headings) that are there: the history moved, its links did not break."""
    import re

    def slug(heading):
        return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")

    pages = [ROOT / "benchmarks" / "README.md", ROOT / "benchmarks" / "results" / "HISTORY.md"]
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if target.startswith(("http://", "https://")):
                continue
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists():
                broken.append(f"{page.name}: {target}")
            elif anchor and anchor not in {slug(h) for h in re.findall(r"^#+ (.*)$", file.read_text(), re.M)}:
                broken.append(f"{page.name}: {target} (no such heading)")
    assert not broken, broken
    history = pages[1].read_text()
    for result in sorted((ROOT / "benchmarks" / "results").glob("*.md")):
        assert result.name == "HISTORY.md" or f"]({result.name})" in history, f"HISTORY.md does not list {result.name}"
