"""The one output-folder policy (`inti.io.outdir`): new or empty, --force replaces only the
command's own files, and a staged write that fails leaves the folder as it was."""

from __future__ import annotations

import pytest

from inti.io import outdir

OWN = ("fig.png", "run")


def held(folder):
    return {p.relative_to(folder).as_posix(): p.read_text() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_new_or_empty_folder_is_written(tmp_path):
    for out in (tmp_path / "new" / "deeper", tmp_path / "empty"):
        (tmp_path / "empty").mkdir(exist_ok=True)
        with outdir.staged(out, OWN) as folder:
            (folder / "fig.png").write_text("1")
        assert held(out) == {"fig.png": "1"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "new"]  # no temporary folder left


def test_a_folder_that_holds_files_is_refused_unless_forced(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(outdir.FolderInUse, match=r"already holds 1 file\(s\) \(notes\.txt\); pass --force to replace "
                                                 r"the demo's own files in it \(fig\.png, run; nothing else"):
        outdir.check(tmp_path, OWN, command="the demo")
    with pytest.raises(FileExistsError):  # a FileExistsError: the CLI reports it in one line
        with outdir.staged(tmp_path, OWN):
            pass
    assert held(tmp_path) == {"notes.txt": "mine"}
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="exists and is not a folder"):
        outdir.check(tmp_path / "file", OWN)


def test_force_replaces_only_the_commands_own_files(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "fig.png").write_text("old")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "old.txt").write_text("old")
    with outdir.staged(tmp_path, OWN, force=True) as folder:
        (folder / "run").mkdir()
        (folder / "run" / "new.txt").write_text("new")
    # fig.png was not written this time: the earlier one goes, so the folder never mixes two runs
    assert held(tmp_path) == {"notes.txt": "mine", "run/new.txt": "new"}


def test_a_failed_staged_write_leaves_the_folder_as_it_was(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="the disk is full"):
        with outdir.staged(out, OWN) as folder:
            (folder / "fig.png").write_text("half")
            raise RuntimeError("the disk is full")
    assert list(tmp_path.iterdir()) == []  # not even the new folder
    out.mkdir()
    (out / "fig.png").write_text("old")
    with pytest.raises(RuntimeError):
        with outdir.staged(out, OWN, force=True) as folder:
            (folder / "fig.png").write_text("half")
            raise RuntimeError("killed")
    assert held(out) == {"fig.png": "old"} and [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_command_writes_only_its_own_files(tmp_path):
    with pytest.raises(RuntimeError, match=r"wrote \['stray\.txt'\], which are not among its own files"):
        with outdir.staged(tmp_path / "out", OWN) as folder:
            (folder / "stray.txt").write_text("x")
    assert list(tmp_path.iterdir()) == []


def test_prepare_clears_only_the_commands_own_files_for_an_in_place_writer(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "step-1").write_text("old")
    with pytest.raises(outdir.FolderInUse, match="pass --resume to continue that run, pass --force"):
        outdir.prepare(tmp_path, OWN, hint="pass --resume to continue that run, ")
    assert outdir.prepare(tmp_path, OWN, force=True) == tmp_path
    assert held(tmp_path) == {"notes.txt": "mine"}
    assert outdir.prepare(tmp_path / "new", OWN).is_dir()


def test_the_new_folder_gets_the_usual_permissions(tmp_path):
    import os

    umask = os.umask(0o022)
    try:
        with outdir.staged(tmp_path / "out", OWN) as folder:
            (folder / "fig.png").write_text("1")
    finally:
        os.umask(umask)
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o755  # not mkdtemp's 0o700
