"""Every flag of every benchmark script is checked when the command line is parsed
(benchmarks/flags.py): a bad value gets argparse's usage line and one error line that says what
was expected and what came, exit 2, no traceback, and nothing runs.

Each case below names one check; the values are bad in one way each. Parsing only: no model
is built, so the whole file takes seconds (two cases run the real command line, from the
repository root, to show that no traceback reaches the terminal).
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[2]  # the benchmarks are scripts run from the repository root
NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error without a CUDA device")
OUT = {"speed": "--out", "train_speed": "--out", "export_speed": "--out", "gpu_check": "--out"}

# (script, argv, a fragment of the error line)
CASES = [
    # benchmarks.speed
    ("speed", ["--threads", "-1"], "argument --threads: expected a whole number from 1 to 1024, got '-1'"),
    ("speed", ["--threads", "0"], "argument --threads: expected a whole number from 1 to 1024, got '0'"),
    ("speed", ["--threads", "1025"], "argument --threads: expected a whole number from 1 to 1024, got '1025'"),
    ("speed", ["--threads", "two"], "argument --threads: expected a whole number from 1 to 1024, got 'two'"),
    ("speed", ["--seed", "-1"], "argument --seed: expected a whole number from 0 to 9223372036854775807, got '-1'"),
    ("speed", ["--seed", str(2**63)], f"argument --seed: expected a whole number from 0 to {2**63 - 1}"),
    ("speed", ["--repeats", "0"], "argument --repeats: expected a whole number from 1 to 10000, got '0'"),
    ("speed", ["--repeats", "10001"], "argument --repeats: expected a whole number from 1 to 10000"),
    ("speed", ["--min-repeats", "0"], "argument --min-repeats: expected a whole number from 1 to 10000, got '0'"),
    ("speed", ["--repeats", "2", "--min-repeats", "3"], "--min-repeats 3 is above --repeats 2"),
    ("speed", ["--budget", "-1"], "argument --budget: expected a finite number of seconds, 0 or more, got '-1'"),
    ("speed", ["--budget", "nan"], "argument --budget: expected a finite number of seconds, 0 or more, got 'nan'"),
    ("speed", ["--budget", "inf"], "argument --budget: expected a finite number of seconds, 0 or more, got 'inf'"),
    ("speed", ["--frames", "7"], "--frames 7 does not fit vit_b16: InTI needs an even number of frames at block 3, got 7"),
    ("speed", ["--preset", "nano", "--frames", "6"], "--frames 6 does not fit nano: InTI needs an even number of frames"),
    ("speed", ["--frames", "0"], "argument --frames: expected a whole number from 1 to 1024, got '0'"),
    ("speed", ["--frames", "2048"], "argument --frames: expected a whole number from 1 to 1024, got '2048'"),
    ("speed", ["--batch", "0"], "argument --batch: expected a whole number from 1 to 1024, got '0'"),
    ("speed", ["--batch", "-4"], "argument --batch: expected a whole number from 1 to 1024, got '-4'"),
    ("speed", ["--preset", "vit_l14", "--frames", "512", "--batch", "64"],
     "--frames 512 --batch 64 of vit_l14 asks for a 18.4 GiB input clip, above the bound of 1 GiB"),
    ("speed", ["--preset", "vit_x"], "argument --preset: unknown preset 'vit_x'; choose one of"),
    ("speed", ["--dtypes", "f32,f64"], "argument --dtypes: takes a comma-separated subset of f32,bf16,bf16pure, "
                                       "got 'f32,f64' (unknown 'f64')"),
    ("speed", ["--dtypes", "f32,f32"], "argument --dtypes: takes a comma-separated subset of f32,bf16,bf16pure, "
                                       "got 'f32,f32' (f32 twice)"),
    ("speed", ["--dtypes", ","], "argument --dtypes: takes a comma-separated subset of f32,bf16,bf16pure, got ',' (nothing)"),
    ("speed", ["--contenders", "naive,bogus"], "argument --contenders: takes a comma-separated subset of "
                                               "naive,inti,timm,merge,gemm,ref, got 'naive,bogus' (unknown 'bogus')"),
    ("speed", ["--device", "tpu"], "argument --device: expected cpu, cuda or cuda:N, got 'tpu'"),
    ("speed", ["--device", "cpu:0"], "argument --device: expected cpu, cuda or cuda:N, got 'cpu:0'"),
    ("speed", ["--device", "cuda:x"], "argument --device: expected cpu, cuda or cuda:N, got 'cuda:x'"),
    pytest.param("speed", ["--device", "cuda"], "argument --device: cuda, but torch", marks=NO_CUDA),
    ("speed", ["--malloc", "jemalloc"], "argument --malloc: invalid choice: 'jemalloc'"),
    ("speed", ["--norm-path", "fast"], "argument --norm-path: invalid choice: 'fast'"),
    ("speed", ["--only", "no-such-row"], "no row matches --only, --skip and --dtypes; nothing to do"),
    ("speed", ["--out", "{file}"], "is a file; expected a folder"),
    ("speed", ["--readme", "{missing}"], "cannot read it"),
    ("speed", ["--readme", "{file}"], "has no <!-- speed --> or <!-- speed:begin -->/<!-- speed:end --> markers"),
    # benchmarks.train_speed
    ("train_speed", ["--rounds", "0"], "argument --rounds: expected a whole number from 1 to 10000, got '0'"),
    ("train_speed", ["--rounds", "many"], "argument --rounds: expected a whole number from 1 to 10000, got 'many'"),
    ("train_speed", ["--dtypes", "bf16pure"], "argument --dtypes: takes a comma-separated subset of f32,bf16, "
                                              "got 'bf16pure' (unknown 'bf16pure')"),
    ("train_speed", ["--norm-path", "fast"], "argument --norm-path: invalid choice: 'fast'"),
    ("train_speed", ["--malloc", "jemalloc"], "argument --malloc: invalid choice: 'jemalloc'"),
    ("train_speed", ["--out", "{file}"], "is a file; expected a folder"),
    # benchmarks.export_speed
    ("export_speed", ["--presets", "nano,vit_x"], "argument --presets: takes a comma-separated subset of"),
    ("export_speed", ["--presets", "nano", "--frames", "6"], "--frames 6 does not fit nano"),
    ("export_speed", ["--frames", "0"], "argument --frames: expected a whole number from 1 to 1024, got '0'"),
    ("export_speed", ["--batch", "0"], "argument --batch: expected a whole number from 1 to 1024, got '0'"),
    ("export_speed", ["--presets", "vit_b16", "--frames", "256", "--batch", "256"],
     "--frames 256 --batch 256 of vit_b16 asks for a 36.8 GiB input clip"),
    ("export_speed", ["--repeats", "0"], "argument --repeats: expected a whole number from 1 to 10000, got '0'"),
    ("export_speed", ["--threads", "-2"], "argument --threads: expected a whole number from 1 to 1024, got '-2'"),
    ("export_speed", ["--out", "{file}"], "is a file; expected a folder"),
    # benchmarks.attention
    ("attention", ["--preset", "vit_x"], "argument --preset: unknown preset 'vit_x'"),
    ("attention", ["--frames", "0"], "argument --frames: expected a whole number from 1 to 1024, got '0'"),
    ("attention", ["--batch", "0"], "argument --batch: expected a whole number from 1 to 1024, got '0'"),
    ("attention", ["--frames", "1024", "--batch", "64"], "--frames 1024 --batch 64 of vit_b16 asks for a 221.6 GiB q, k and v"),
    ("attention", ["--dtypes", "f32,f64"], "argument --dtypes: takes a comma-separated subset of f32,bf16,f16, "
                                           "got 'f32,f64' (unknown 'f64')"),
    ("attention", ["--rounds", "0"], "argument --rounds: expected a whole number from 1 to 10000, got '0'"),
    ("attention", ["--seed", "-3"], "argument --seed: expected a whole number from 0 to 9223372036854775807, got '-3'"),
    ("attention", ["--device", "gpu"], "argument --device: expected cpu, cuda or cuda:N, got 'gpu'"),
    pytest.param("attention", ["--device", "cuda"], "argument --device: cuda, but torch", marks=NO_CUDA),
    ("attention", ["--json", "{folder}"], "--json {folder} is a folder; expected a file name"),
    ("attention", ["--json", "{file}/x.json"], "is a file, not a folder"),
    # benchmarks.gpu_check
    ("gpu_check", ["--device", "tpu"], "argument --device: expected cpu, cuda or cuda:N, got 'tpu'"),
    ("gpu_check", ["--budget", "-5"], "argument --budget: expected a finite number of seconds, 0 or more, got '-5'"),
    ("gpu_check", ["--budget", "nan"], "argument --budget: expected a finite number of seconds, 0 or more, got 'nan'"),
    ("gpu_check", ["--skip", "parity,bogus"], "argument --skip: takes a comma-separated subset of "
                                              "parity,flops,compile,bench, got 'parity,bogus' (unknown 'bogus')"),
    ("gpu_check", ["--out", "{folder}"], "is a folder; expected a file name"),
]


def _fill(text: str, paths: dict) -> str:
    for key, path in paths.items():
        text = text.replace(key, str(path))
    return text


def _parse(script: str, argv: list[str], tmp_path: Path):
    """parse_args of `script` with {file}, {folder} and {missing} standing for paths under tmp_path,
    and an empty --out of its own unless argv names one."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "a-file").write_text("not a folder\n")
    (tmp_path / "a-folder").mkdir(exist_ok=True)
    paths = {"{file}": tmp_path / "a-file", "{folder}": tmp_path / "a-folder", "{missing}": tmp_path / "missing"}
    argv = [_fill(a, paths) for a in argv]
    flag = OUT.get(script)
    if flag and flag not in argv:
        argv += [flag, str(tmp_path / ("out.json" if script == "gpu_check" else "out"))]
    module = importlib.import_module(f"benchmarks.{script}")
    return module.parse_args(argv), paths


@pytest.mark.parametrize("script, argv, message", CASES)
def test_a_bad_flag_is_one_usage_error(script, argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        _parse(script, argv, tmp_path)
    err = capsys.readouterr().err
    message = _fill(message, {"{file}": tmp_path / "a-file", "{folder}": tmp_path / "a-folder"})
    assert e.value.code == 2, err
    errors = [line for line in err.splitlines() if " error: " in line]
    assert len(errors) == 1 and errors[0].startswith(f"python -m benchmarks.{script}: error: "), err
    assert message in errors[0], err
    assert err.startswith("usage: ") and "Traceback" not in err


def test_good_flags_pass_the_checks(tmp_path):
    """The bounds are inclusive, and the defaults themselves pass every check."""
    args, _ = _parse("speed", ["--threads", "1024", "--seed", str(2**63 - 1), "--budget", "0", "--repeats", "2",
                               "--preset", "nano", "--frames", "4", "--frames", "8", "--batch", "1", "--batch", "2",
                               "--dtypes", "f32,bf16pure", "--device", "cpu"], tmp_path)
    assert (args.threads, args.seed, args.budget, args.dtypes) == (1024, 2**63 - 1, 0.0, ["f32", "bf16pure"])
    assert (args.repeats, args.min_repeats) == (2, 2)  # the default floor never rises above --repeats
    for script in ("speed", "train_speed", "export_speed", "attention", "gpu_check"):
        _parse(script, [], tmp_path / script)
    assert _parse("gpu_check", ["--device", "cuda", "--skip", "bench,flops"], tmp_path)[0].skip == ["bench", "flops"]
    assert _parse("attention", ["--json", str(tmp_path / "new" / "a.json")], tmp_path)[0].json.name == "a.json"


@pytest.mark.parametrize("argv, message", [
    (["--threads", "-1"], "argument --threads: expected a whole number from 1 to 1024, got '-1'"),
    (["--frames", "7"], "--frames 7 does not fit vit_b16"),
])
def test_the_command_line_prints_no_traceback(argv, message, tmp_path):
    """`python -m benchmarks.speed` itself, from the repository root: exit 2, one error line."""
    proc = subprocess.run([sys.executable, "-m", "benchmarks.speed", *argv, "--out", str(tmp_path / "out")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("usage: python -m benchmarks.speed") and "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("python -m benchmarks.speed: error: ") and message in last, proc.stderr
    assert proc.stdout == "" and not (tmp_path / "out").exists()
