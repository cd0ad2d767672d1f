"""No file half-written, and no file the user did not name changed (inti.io.atomic, the one
writer; the demo's and the benchmark's output-folder policy)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import ref
from inti.cli import main
from inti.io import atomic
from inti.io.params import load_params, save_params

NANO = ref.preset("nano")


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "w.npz"
    save_params(path, ref.init_params(NANO, seed=1), NANO)
    before = path.read_bytes()

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        with atomic.atomic_write(path) as f:
            f.write(b"half")
            raise Boom
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.npz"]


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_save_params_never_touches_a_users_file_named_like_its_temporary(tmp_path, suffix):
    """The old writer always used NAME.tmp: it overwrote, then deleted, a file of that name."""
    path = tmp_path / f"w{suffix}"
    mine = tmp_path / f"w{suffix}.tmp"
    mine.write_text("the user's own notes")
    save_params(path, ref.init_params(NANO), NANO)
    assert mine.read_text() == "the user's own notes"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, mine.name])


def test_a_save_that_fails_midway_keeps_the_earlier_file(tmp_path, monkeypatch):
    path = tmp_path / "w.npz"
    save_params(path, ref.init_params(NANO, seed=1), NANO)

    def broken_savez(f, **arrays):
        f.write(b"PK\x03\x04 partial")
        raise OSError("No space left on device")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="No space left"):
        save_params(path, ref.init_params(NANO, seed=2), NANO)
    monkeypatch.undo()
    params, _ = load_params(path)
    assert all(np.array_equal(params[k], v) for k, v in ref.init_params(NANO, seed=1).items())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.npz"]


def test_two_writers_to_one_path_leave_one_whole_file(tmp_path):
    path = tmp_path / "w.npz"
    seeds = range(6)
    threads = [threading.Thread(target=save_params, args=(path, ref.init_params(NANO, seed=s), NANO)) for s in seeds]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    params, cfg = load_params(path)  # loads: one writer's whole file, not a mix
    assert cfg == NANO
    assert any(all(np.array_equal(params[k], v) for k, v in ref.init_params(NANO, seed=s).items()) for s in seeds)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.npz"]


def test_atomic_write_keeps_the_files_permissions(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("old")
    path.chmod(0o640)
    atomic.write_text(path, "new")
    assert path.read_text() == "new" and path.stat().st_mode & 0o777 == 0o640


def test_atomic_write_refuses_a_directory(tmp_path):
    with pytest.raises(IsADirectoryError, match="is a directory"):
        atomic.write_text(tmp_path, "x")


# ---- the demo's output folder ------------------------------------------------------------------

def test_demo_refuses_a_folder_with_earlier_results_unless_forced(tmp_path, capsys):
    out = tmp_path / "figs"
    out.mkdir()
    (out / "fig1_compute.png").write_bytes(b"an earlier figure")
    (out / "notes.txt").write_text("mine")
    args = ["demo", "carphone_pristine.mp4", "--frames", "4", "--out", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "already holds 2 file(s)" in err and "--force" in err
    assert (out / "fig1_compute.png").read_bytes() == b"an earlier figure"  # untouched
    assert main(args + ["--force"]) == 0
    capsys.readouterr()
    assert (out / "fig1_compute.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "notes.txt").read_text() == "mine"  # nothing else is touched
    assert sorted(p.name for p in out.iterdir()) == [
        "fig1_compute.png", "fig2_contributions.png", "fig3_parity.png", "fig4_learned.png", "notes.txt"]


def test_a_failed_figure_leaves_no_truncated_file(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    from inti import figures

    def broken(self, f, **kwargs):
        f.write(b"\x89PNG half")
        raise RuntimeError("renderer died")

    monkeypatch.setattr(Figure, "savefig", broken)
    with pytest.raises(RuntimeError, match="renderer died"):
        figures.compute_figure(NANO, 8, tmp_path / "fig1_compute.png")
    assert list(tmp_path.iterdir()) == []


def test_the_benchmark_refuses_to_replace_earlier_results_unless_forced(tmp_path, capsys):
    from benchmarks import speed

    (tmp_path / "results.json").write_text("{}")
    with pytest.raises(SystemExit) as info:
        speed.parse_args(["--out", str(tmp_path), "--quick"])
    assert info.value.code == 2
    assert "already holds results.json" in capsys.readouterr().err
    assert speed.parse_args(["--out", str(tmp_path), "--quick", "--force"]).force
    assert (tmp_path / "results.json").read_text() == "{}"
