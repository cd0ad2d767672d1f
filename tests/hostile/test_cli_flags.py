"""Every numeric or choice flag of every subcommand is checked at parse time, and a torchrun
environment that cannot rendezvous ends with a clear error within --dist-timeout.

A bad value is argparse's usage error (exit 2, the last stderr line names the flag, the rule
and the value), before anything is read or written. No flag is left with a bare int or float
type, which would take NaN, infinities, negative counts or seeds past 2^63 - 1.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from inti.cli import build_parser, main

REPO = Path(__file__).resolve().parents[2]
SYNTH = ["--synthetic", "motion", "--synthetic-train", "8", "--synthetic-val", "4", "--frames", "4", "--batch-size", "4",
         "--steps", "1", "--quiet"]

BAD = [
    (["train", *SYNTH, "--device", "bogus"], "--device", "must be cpu, cuda or cuda:N, got 'bogus'"),
    (["train", *SYNTH, "--device", "cpu:1"], "--device", "got 'cpu:1'"),
    (["eval", "--weights", "w.npz", "--synthetic", "motion", "--device", "tpu"], "--device", "got 'tpu'"),
    (["train", *SYNTH, "--seed", str(2**70)], "--seed", "must be an integer in [0, 2**63 - 1], got 1180591620717411303424"),
    (["train", *SYNTH, "--seed", "-1"], "--seed", "got -1"),
    (["eval", "--weights", "w.npz", "--synthetic", "motion", "--seed", str(2**63)], "--seed", "got 9223372036854775808"),
    (["data", "motion", "--seed", "1.5"], "--seed", "got '1.5'"),
    (["demo", "--seed", str(2**64)], "--seed", "must be an integer in [0, 2**63 - 1]"),
    (["export", "--format", "onnx", "--output", "m.onnx", "--seed", "-3"], "--seed", "got -3"),
    (["train", *SYNTH, "--workers", "-1"], "--workers", "must be a non-negative integer, got -1"),
    (["eval", "--weights", "w.npz", "--synthetic", "motion", "--workers", "x"], "--workers", "got 'x'"),
    (["train", *SYNTH, "--lr", "nan"], "--lr", "must be a finite number in (0, inf), got nan"),
    (["train", *SYNTH, "--lr", "0"], "--lr", "got 0"),
    (["train", *SYNTH, "--lr", "inf"], "--lr", "got inf"),
    (["train", *SYNTH, "--warmup", "-1"], "--warmup", "must be a non-negative integer, got -1"),
    (["train", *SYNTH, "--weight-decay", "-0.1"], "--weight-decay", "must be a finite number in [0, inf), got -0.1"),
    (["train", *SYNTH, "--clip-grad", "-1"], "--clip-grad", "got -1"),
    (["train", *SYNTH, "--label-smoothing", "1.5"], "--label-smoothing", "must be a finite number in [0, 1], got 1.5"),
    (["train", *SYNTH, "--lr-theta", "nan"], "--lr-theta", "got nan"),
    (["train", *SYNTH, "--stop-after", "0"], "--stop-after", "must be a positive integer, got 0"),
    (["train", *SYNTH, "--eval-every", "-5"], "--eval-every", "must be a non-negative integer, got -5"),
    (["train", *SYNTH, "--log-every", "x"], "--log-every", "got 'x'"),
    (["train", *SYNTH, "--max-skip-fraction", "1"], "--max-skip-fraction", "must be a finite number in [0, 1), got 1"),
    (["train", *SYNTH, "--dist-timeout", "0"], "--dist-timeout", "must be a finite number in (0, 86400], got 0"),
    (["train", *SYNTH, "--schedule", "a,b"], "--schedule", "must list block indices counted from 1"),
    (["export", "--format", "onnx", "--output", "m.onnx", "--opset", "17"], "--opset", "writes ONNX opsets 18 to"),
    (["export", "--format", "onnx", "--output", "m.onnx", "--opset", "-1"], "--opset", "must be a positive integer"),
    (["parity", "--tolerance", "float32=inf"], "--tolerance", "must be a finite number in (0, inf), got inf"),
    (["parity", "--dtypes", ""], "--dtypes", "must be a comma-separated list"),
    (["cost", "--batch", "0"], "--batch", "must be a positive integer, got 0"),
    (["data", "motion", "--size", "-8"], "--size", "must be a positive integer, got -8"),
]


@pytest.mark.parametrize("argv, flag, fragment", BAD, ids=[" ".join(a[:1] + a[-2:]) for a, _, _ in BAD])
def test_a_bad_flag_value_is_refused_at_parse_time(tmp_path, monkeypatch, capsys, argv, flag, fragment):
    monkeypatch.chdir(tmp_path)
    out = ["--out", str(tmp_path / "out")] if argv[0] in ("train", "data", "demo") else []
    assert main([*argv, *out]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"inti {argv[0]}: error: argument {flag}") and fragment in last, err
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing read or written


def test_a_missing_cuda_is_a_clear_error(capsys):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the refusal needs a machine without it")
    assert main(["train", *SYNTH, "--device", "cuda", "--out", "x"]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "argument --device: cuda: this machine has no CUDA device that torch can use" in last


def test_no_flag_takes_a_bare_int_or_float():
    """A bare int or float type takes -1, NaN, inf, 2**70: every numeric flag has a checking type."""
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    bare = [f"{name} {'/'.join(a.option_strings)}" for name, sub in commands.items() for a in sub._actions
            if a.type in (int, float)]
    assert not bare, bare
    for name, flag in [("train", "--seed"), ("eval", "--seed"), ("data", "--seed"), ("demo", "--seed"),
                       ("train", "--workers"), ("eval", "--workers"), ("train", "--device"), ("eval", "--device")]:
        action = next(a for a in commands[name]._actions if flag in a.option_strings)
        assert action.type is not None, (name, flag)


def test_the_valid_edges_are_taken():
    parser = build_parser()
    args = parser.parse_args(["train", "--out", "o", "--seed", str(2**63 - 1), "--workers", "0", "--label-smoothing", "1",
                              "--max-skip-fraction", "0", "--device", "CPU", "--clip-grad", "0", "--dist-timeout", "0.5"])
    assert (args.seed, args.workers, args.label_smoothing, args.device, args.dist_timeout) == (2**63 - 1, 0, 1.0, "cpu", 0.5)


# ---- torchrun environments that cannot rendezvous ----------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("rank", ["0", "1"])
def test_a_stale_torchrun_environment_ends_with_one_line_within_the_timeout(tmp_path, rank):
    """Rank 0 waits for a rank 1 that never comes; rank 1 for a master that is not there. Each
    ends after --dist-timeout (2 s) with one line, instead of torch's default of 30 minutes."""
    env = {**os.environ, "WORLD_SIZE": "2", "RANK": rank, "LOCAL_RANK": rank, "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(free_port()), "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "inti", "train", *SYNTH, "--dist-timeout", "2", "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2, done.stderr[-2000:]
    err = done.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"inti train: error: could not join the torchrun process group as rank "
                                               f"{rank} of 2 at 127.0.0.1:") and "within 2 s" in err[0], done.stderr[-2000:]
    assert "--dist-timeout" in err[0] and time.monotonic() - start < 100
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("env, fragment", [
    ({"WORLD_SIZE": "two"}, "WORLD_SIZE must be a non-negative integer, got 'two'"),
    ({"WORLD_SIZE": "2", "RANK": "5"}, "names rank 5 of 2 processes; RANK must be below WORLD_SIZE"),
    ({"WORLD_SIZE": "2", "RANK": "-1"}, "RANK must be a non-negative integer, got -1"),
    ({"WORLD_SIZE": "2"}, "RANK must be a non-negative integer, got None"),
    ({"WORLD_SIZE": "2", "RANK": "1"}, "MASTER_ADDR and MASTER_PORT are not both set"),
])
def test_a_broken_torchrun_environment_is_named(tmp_path, monkeypatch, capsys, env, fragment):
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["train", *SYNTH, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0], err
