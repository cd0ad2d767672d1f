"""The `inti` command, end to end.

Every subcommand's success path and every error case runs once in a subprocess, as a user
would run it. Importing torch costs seconds per process, so the subprocesses (all but the timed
default demo) start together and run a few at a time. Table contents, help texts, the progress
bar and argument parsing are checked in-process, by calling `main([...])`.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import ref
from media import write_clip
from inti.io import params as pio
from inti import cli
from inti.cli import common, report, demo as cli_demo
from inti.cli import cost as cli_cost
from inti.figures import FIGURES, LEARNED

DEMO_BUDGET_S = float(os.environ.get("INTI_DEMO_BUDGET_S", 60))  # the bar: < 1 min on 2 cores
SMALL_CLIP = "carphone_pristine.mp4"  # bundled, 176x144: quick to decode
MIN_PNG_BYTES = 15_000


def inti_command() -> list[str]:
    """The installed console script next to the interpreter, else `python -m inti`."""
    script = Path(sys.executable).with_name("inti")
    return [str(script)] if script.exists() else [sys.executable, "-m", "inti"]


def run(args, cwd, env=None, timeout=300, script=False) -> subprocess.CompletedProcess:
    cmd = (inti_command() if script else [sys.executable, "-m", "inti"]) + [str(a) for a in args]
    full_env = dict(os.environ, **(env or {}))
    full_env.pop("INTI_TRACEBACK", None)
    return subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)


def assert_one_line_error(proc, *fragments, command="demo"):
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"inti {command}: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def figure_files(folder: Path) -> dict[str, Path]:
    return {name: folder / file for name, file in FIGURES.items()}


def png_size(path: Path) -> tuple[int, int]:
    import struct

    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def assert_figures(folder: Path):
    for name, path in figure_files(folder).items():
        assert path.is_file(), f"missing {path}"
        assert path.stat().st_size > MIN_PNG_BYTES, (name, path.stat().st_size)
        width, height = png_size(path)
        assert 700 <= width <= 4000 and 450 <= height <= 1000, (name, width, height)
    learned = folder / LEARNED  # figure 4: one row of clips per clip shown, so as tall as the clips it shows
    assert learned.is_file() and learned.stat().st_size > MIN_PNG_BYTES, learned
    width, height = png_size(learned)
    assert 700 <= width <= 4000 and 450 <= height <= 1200, ("learned", width, height)


# ---------------------------------------------------------------------------------------------
# subprocesses: the default demo, timed, on its own


def test_default_demo_runs_in_under_a_minute(tmp_path):
    start = time.perf_counter()
    proc = run(["demo"], cwd=tmp_path, script=True)
    elapsed = time.perf_counter() - start
    assert proc.returncode == 0, proc.stderr
    print(f"\n`inti demo` wall time: {elapsed:.1f} s\n{proc.stdout}")
    assert elapsed < DEMO_BUDGET_S, f"inti demo took {elapsed:.1f} s, over the {DEMO_BUDGET_S:.0f} s budget"
    out = proc.stdout
    assert "bigbuckbunny.mp4" in out and "nano" in out and "S=(1, 2)" in out
    assert "8 frames sampled" in out
    assert "result: all 46 comparisons within tolerance" in out
    assert "50.0% of the block MACs" in out and "predictor included" in out
    assert "ref (numpy) float64" in out and "torch float32" in out
    assert "uniform: the score layer is zero" in out  # said, not hidden
    assert proc.stderr == ""  # no progress bar when stderr is not a terminal (--progress auto)
    assert_figures(tmp_path / cli_demo.DEFAULT_OUT)


# ---------------------------------------------------------------------------------------------
# subprocesses: everything else, started together


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """{case: CompletedProcess, "dir": folder}; all cases run concurrently, two or three at a time."""
    d = tmp_path_factory.mktemp("cli")
    (d / "bad.mp4").write_text("this is not a video\n")
    write_clip(d / "short.mp4", frames=2, size=64, step=60)
    cfg = ref.preset("nano", schedule=(2,))
    pio.save_params(d / "weights.npz", ref.init_params(cfg, seed=5), cfg)

    cases = {
        "cost": (["cost", "--paper"], True),
        "demo": ([SMALL_CLIP, "--frames", "4", "--random-scores", "--progress", "on", "--out", d / "figs"], False),
        "parity": (["--weights", d / "weights.npz", "--random-scores", "--frames", "4"], False),
        "missing": ([d / "no-such-clip.mp4"], False),
        "unreadable": ([d / "bad.mp4"], False),
        "too_few_frames": ([d / "short.mp4", "--frames", "4"], False),
        "bad_schedule": (["--schedule", "9"], False),
    }
    commands = {"cost": [], "parity": ["parity"]}

    def one(name):
        args, script = cases[name]
        sub = commands.get(name, ["demo"])
        t0 = time.perf_counter()
        proc = run(sub + args, cwd=d, env={"OMP_NUM_THREADS": "1"}, script=script)
        print(f"{name}: {time.perf_counter() - t0:.1f} s")
        return name, proc

    with ThreadPoolExecutor(max_workers=3) as pool:
        done = dict(pool.map(one, cases))
    done["dir"] = d
    return done


def test_cost_script(runs):
    proc = runs["cost"]
    assert proc.returncode == 0, proc.stderr
    assert "S=(6,)" in proc.stdout and "S=(8, 20)" in proc.stdout and "S=(10, 16)" in proc.stdout
    assert proc.stdout.count("37.5%") >= 4


def test_demo_on_a_given_clip_with_progress(runs):
    proc = runs["demo"]
    assert proc.returncode == 0, proc.stderr
    assert SMALL_CLIP in proc.stdout and "4 frames sampled" in proc.stdout
    assert "random score weights (--random-scores, seed 0)" in proc.stdout
    assert "within tolerance" in proc.stdout and "uniform: the score layer is zero" not in proc.stdout
    # the bar names each step as it starts (robust: not tied to which frame was drawn last)
    for step in ("decode and preprocess", "naive ref forward", "InTI torch forward (float32)", "figure 3: parity"):
        assert step in proc.stderr, (step, proc.stderr)
    assert "Traceback" not in proc.stderr
    assert_figures(runs["dir"] / "figs")


def test_parity_with_a_weights_file(runs):
    proc = runs["parity"]
    assert proc.returncode == 0, proc.stderr
    assert "loaded from" in proc.stdout and "weights.npz" in proc.stdout
    assert "S=(2,)" in proc.stdout  # the config came from the file, not the nano preset
    assert "parity OK" in proc.stdout
    assert "merges.0.weights" in proc.stdout and "merges.1" not in proc.stdout


@pytest.mark.parametrize(
    "case, fragments",
    [
        ("missing", ("no such video file", "no-such-clip.mp4")),
        ("unreadable", ("could not decode video", "bad.mp4")),
        ("too_few_frames", ("has 2 frames, fewer than the 4 asked for",)),
        ("bad_schedule", ("schedule entries must be block indices in 1..4", "got 9")),
    ],
)
def test_error_is_one_line(runs, case, fragments):
    assert_one_line_error(runs[case], *fragments)
    assert runs[case].stdout == ""


# ---------------------------------------------------------------------------------------------
# in-process: parity failure, and errors that need no subprocess of their own


def test_parity_failure_exits_1(capsys):
    code = cli.main(["parity", SMALL_CLIP, "--frames", "4", "--random-scores", "--tolerance", "float32=1e-12"])
    assert code == 1
    captured = capsys.readouterr()
    assert "parity FAILED" in captured.out and " !" in captured.out
    assert captured.err.strip() == (
        captured.err.strip().splitlines()[0]
    ) and captured.err.startswith("inti parity: FAILED: naive embed in float32: relative error")


def test_mismatched_weights_file_names_the_key(tmp_path, capsys):
    mismatched = ref.init_params(ref.preset("nano"))
    del mismatched["blocks.3.mlp.fc2.bias"]
    with open(tmp_path / "mismatched.npz", "wb") as f:
        np.savez(f, **mismatched, __inti__=np.array(pio.config_to_json(ref.preset("nano"))))
    assert cli.main(["parity", "--weights", str(tmp_path / "mismatched.npz")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("inti parity: error: ")
    assert "mismatched.npz" in err[0] and "missing 1 key(s): blocks.3.mlp.fc2.bias" in err[0]


# ---------------------------------------------------------------------------------------------
# in-process: tables


def test_cost_table_numbers(capsys):
    assert cli.main(["cost", "--preset", "vit_l14", "--frames", "16", "--schedule", "6"]) == 0
    out = capsys.readouterr().out
    cfg = ref.preset("vit_l14")
    inti, naive = ref.count_macs(cfg, 16), ref.count_macs(cfg.replace(schedule=()), 16)
    total = next(line for line in out.splitlines() if line.startswith("total"))
    cells = total.split()
    assert cells[1] == f"{naive['total'] / 1e9:,.3f}" and cells[2] == f"{inti['total'] / 1e9:,.3f}"
    assert cells[4] == f"{2 * naive['total'] / 1e9:,.3f}" and cells[5] == f"{2 * inti['total'] / 1e9:,.3f}"
    assert cells[3] == f"{1 - inti['total'] / naive['total']:.1%}"
    assert any(line.startswith("blocks 1-6") and "16/16" in line for line in out.splitlines())
    assert any(line.startswith("blocks 7-24") and "16/8" in line and "50.0%" in line for line in out.splitlines())
    for part in ("patch embedding", "blocks, all", "predictor θ", "interpolation Φ", "head"):
        assert part in out
    assert "MACs: one multiply-accumulate counts 1" in out and "FLOPs: 2 x MACs" in out
    assert "reduction, blocks only:                37.5%" in out
    assert "reduction, total (predictor included): 37.3%" in out


@pytest.mark.parametrize(
    "cfg, frames",
    [(ref.preset("nano"), 8), (ref.preset("vit_b16", schedule=(2, 5, 9)), 16), (ref.preset("vit_l14", schedule=()), 4)],
)
def test_cost_rows_add_up(cfg, frames):
    rows = cli_cost.cost_rows(cfg, frames)
    parts = [r for r in rows if r[0] not in ("blocks, all", "total")]
    total = rows[-1]
    assert total[0] == "total"
    assert sum(r[2] for r in parts) == total[2] == ref.count_macs(cfg.replace(schedule=()), frames)["total"]
    assert sum(r[3] for r in parts) == total[3] == ref.count_macs(cfg, frames)["total"]
    stages = [r for r in rows if r[0].startswith("block")]
    assert len([r for r in stages if r[0] != "blocks, all"]) == len(cfg.schedule) + 1 - (cfg.depth in cfg.schedule)


def test_cost_paper_rows(capsys):
    assert cli.main(["cost", "--paper"]) == 0
    out = capsys.readouterr().out
    base = ref.preset("vit_l14")
    for frames in (8, 16):
        for schedule in ((6,), (8, 20), (10, 16)):
            line = next(line for line in out.splitlines() if line.split()[:1] == [str(frames)] and f"S={schedule}" in line)
            cfg = base.replace(schedule=schedule)
            red = ref.reduction(cfg, frames)
            assert red["blocks"] == pytest.approx(0.375)
            cells = line.split()
            assert cells[-2] == "37.5%" and cells[-1] == f"{red['total']:.1%}"  # beside it, not instead
            assert cells[-1] != cells[-2]
            naive_gmacs = ref.count_macs(cfg.replace(schedule=()), frames)["total"] / 1e9
            assert f"{naive_gmacs:,.1f}" in cells
    assert "paper" in out and "blocks only" in out and "total, θ included" in out
    assert "FLOPs = 2 x MACs" in out


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["cost", "--preset", "vit_b16", "--schedule", "30"], "block indices in 1..12"),
        (["cost", "--preset", "vit_b16", "--frames", "3"], "even number of frames at block 3"),
        (["demo", "--frames", "6"], "even number of frames at block 2, got 3"),
        (["demo", "--weights", "no-such-weights.npz"], "no such weights file"),
        (["demo", "--preset", "nano", "--weights", "w.npz"], "--preset and --weights"),
        (["demo", "--schedule", "none", "--random-scores"], "--random-scores needs a predictor"),
    ],
)
def test_argument_errors_in_process(capsys, argv, fragment):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0], err


def test_usage_errors_exit_2(capsys):
    assert cli.main(["demo", "--frames", "zero"]) == 2
    assert "argument --frames: must be a positive integer, got 'zero'" in capsys.readouterr().err
    for argv, fragment in ((["cost", "--schedule", "3,x"], "argument --schedule: must list block indices"),
                           (["parity", "--dtypes", "float8"], "argument --dtypes: must be"),
                           (["parity", "--tolerance", "float32"], "argument --tolerance: must be DTYPE=VALUE")):
        assert cli.main(argv) == 2
        assert fragment in capsys.readouterr().err.strip().splitlines()[-1]
    assert cli.main(["nonsense"]) == 2
    assert cli.main([]) == 2


@pytest.mark.parametrize("sub", [[], ["cost"], ["demo"], ["parity"]])
def test_help_on_every_subcommand(capsys, sub):
    assert cli.main(sub + ["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: inti")
    if sub:
        assert "--help" in out
    if sub in (["demo"], ["parity"]):
        for flag in ("--preset", "--frames", "--schedule", "--seed", "--weights", "--random-scores", "--progress"):
            assert flag in out
    if sub == ["demo"]:
        assert "--out" in out and "bigbuckbunny.mp4" in out
    if not sub:
        for name in ("cost", "demo", "parity"):
            assert name in out


@pytest.mark.parametrize(
    "text, expected",
    [("6", (6,)), ("8,20", (8, 20)), ("8 20", (8, 20)), ("(10, 16)", (10, 16)), ("none", ()), ("()", ()), ("", ())],
)
def test_parse_schedule(text, expected):
    assert common.parse_schedule(text) == expected


# ---------------------------------------------------------------------------------------------
# in-process: the progress bar (tqdm, through report.progress)


class FakeTTY(io.StringIO):
    def isatty(self):
        return True


def _three_steps(mode, stream):
    with report.progress("inti demo", total=3, mode=mode, stream=stream) as step:
        for name in ("decode", "ref forward", "torch forward"):
            with step(name):
                pass


def test_progress_on_draws_every_step_and_the_final_state():
    stream = io.StringIO()
    _three_steps("on", stream)
    text = stream.getvalue()
    for name in ("decode", "ref forward", "torch forward"):
        assert name in text
    last = text.replace("\r", "\n").rstrip().splitlines()[-1]
    assert last.startswith("inti demo [") and "3/3, done" in last, last
    assert text.endswith("\n")


@pytest.mark.parametrize("mode, stream", [("off", FakeTTY()), ("auto", io.StringIO())])
def test_progress_off_or_not_a_terminal_is_silent(mode, stream):
    _three_steps(mode, stream)
    assert stream.getvalue() == ""


def test_progress_after_a_failure_says_stopped():
    stream = io.StringIO()
    with pytest.raises(RuntimeError):
        with report.progress("inti demo", total=3, mode="on", stream=stream) as step:
            with step("decode"):
                raise RuntimeError("boom")
    last = stream.getvalue().replace("\r", "\n").rstrip().splitlines()[-1]
    assert "0/3, stopped" in last, last


def test_cli_module_imports_no_torch():
    """`inti cost` and argument errors rely on the CLI package not importing torch by itself:
    only the subcommands that need it import it, inside their `run`."""
    code = "import sys, inti.cli; assert 'torch' not in sys.modules, sorted(m for m in sys.modules if 'torch' in m)[:5]"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


# ---------------------------------------------------------------------------------------------
# every missing optional dependency names its extra (simulated: sys.modules[name] = None)


MISSING = {  # case: (module made missing, argv, the extra the one-line error must name)
    "torch": ("torch", ["demo", "--out", "figs"], "torch"),
    "torch, train": ("torch", ["train", "--synthetic", "informative", "--out", "run", "--quiet"], "torch"),
    "matplotlib": ("matplotlib", ["demo", "--out", "figs"], "plot"),
    "PyAV": ("av", ["demo", "--out", "figs"], "video"),
    "tqdm": ("tqdm", ["demo", "--out", "figs"], "cli"),
    "tabulate": ("tabulate", ["cost"], "cli"),
    "threadpoolctl": ("threadpoolctl", ["demo", "--out", "figs"], "cli"),
}


@pytest.fixture(scope="module")
def missing_runs(tmp_path_factory):
    code = "import sys; sys.modules[sys.argv[1]] = None; from inti.cli import main; sys.exit(main(sys.argv[2:]))"

    def one(case):
        module, argv, _ = MISSING[case]
        folder = tmp_path_factory.mktemp("missing")
        env = {k: v for k, v in os.environ.items() if k != "INTI_TRACEBACK"}
        proc = subprocess.run([sys.executable, "-c", code, module, *argv], cwd=folder, env=env, capture_output=True,
                              text=True, timeout=300)
        return case, (proc, folder)

    with ThreadPoolExecutor(max_workers=3) as pool:
        return dict(pool.map(one, MISSING))


@pytest.mark.parametrize("case", sorted(MISSING))
def test_a_missing_optional_dependency_names_its_extra(missing_runs, case):
    proc, folder = missing_runs[case]
    module, argv, extra = MISSING[case]
    assert_one_line_error(proc, f"pip install 'inti[{extra}]'", command=argv[0])
    assert list(folder.iterdir()) == [], "a refused command wrote files"


# ---------------------------------------------------------------------------------------------
# --weights, the one flag; its old names for one release


@pytest.mark.parametrize("argv, old", [
    (["train", "--out", "run", "--pretrained", "w.npz"], "--pretrained"),
    (["eval", "--checkpoint", "w.npz"], "--checkpoint"),
])
def test_the_old_flag_names_are_aliases_with_a_notice(capsys, argv, old):
    args = cli.build_parser().parse_args(argv)
    assert args.weights == "w.npz"
    assert capsys.readouterr().err == f"inti {argv[0]}: {old} is now --weights; the old name goes in the next release\n"
    new = [a if a != old else "--weights" for a in argv]
    assert cli.build_parser().parse_args(new).weights == "w.npz" and capsys.readouterr().err == ""


def test_every_subcommand_that_reads_weights_takes_weights():
    subparsers = next(a for a in cli.build_parser()._actions if a.dest == "command").choices
    readers = {name for name, p in subparsers.items() if any("--weights" in a.option_strings for a in p._actions)}
    assert readers == {"demo", "parity", "eval", "export", "train", "predict"}


def test_a_torch_zip_given_to_weights_is_read_through_the_front_door(tmp_path, capsys):
    """The error a torch zip gave before (no npz entry __inti__) is gone: --weights reads every kind."""
    torch = pytest.importorskip("torch")
    torch.save({"not": torch.zeros(2)}, tmp_path / "w.pt")
    assert cli.main(["parity", "--weights", str(tmp_path / "w.pt")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "matches no known layout" in err[0] and "__inti__" not in err[0], err


# ---------------------------------------------------------------------------------------------
# one output-folder policy: a failed `inti data` leaves nothing behind


def test_a_failed_inti_data_leaves_nothing_behind(tmp_path, capsys, monkeypatch):
    from inti.data import synthetic

    real, calls = synthetic.write_video, []

    def fails_on_the_third(path, frames, rate=8):
        calls.append(path)
        if len(calls) == 3:
            raise OSError("No space left on device")
        real(path, frames, rate)

    monkeypatch.setattr(synthetic, "write_video", fails_on_the_third)
    argv = ["data", "motion", "--out", str(tmp_path / "task"), "--train", "4", "--val", "2", "--frames", "4", "--size", "16"]
    assert cli.main(argv) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # no half-filled folder blocks the retry
    monkeypatch.setattr(synthetic, "write_video", real)
    assert cli.main(argv) == 0
    assert sorted(p.name for p in (tmp_path / "task").iterdir()) == ["classes.txt", "train", "train.txt", "val", "val.txt"]
