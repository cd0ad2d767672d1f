"""Output folders: one policy for every command that writes a folder (`inti demo`, `inti train`,
`inti data`).

The policy: a command writes into a folder that is new or empty. A folder that already holds
files is refused, unless the caller forces it (``--force``); then only the command's own
files (`own`, the names it writes) are replaced, and nothing else in the folder is touched.

Two ways to write under it, by how the command writes:

- `staged`: for a command that writes its files at the end (the demo's figures, a synthetic
  task's videos and lists). The files go into a fresh temporary folder beside the target (so
  on the same file system), which is moved into place only when the command succeeds: a new
  folder by one rename; into an existing one, each of the command's own files by one rename
  (``os.replace``). A failure removes the temporary folder and leaves the target as it was.
- `prepare`: for a command that writes over time and must keep what it wrote if it is killed
  (`inti train`, whose checkpoints are its fallbacks). The policy is checked, and with force
  the command's own earlier files are removed; then it writes in place, each file atomically
  (`inti.io.atomic`).

    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "figs"
    >>> with staged(out, own=("a.txt",)) as folder:
    ...     _ = (folder / "a.txt").write_text("new")
    >>> sorted(p.name for p in out.iterdir())
    ['a.txt']
    >>> try:
    ...     with staged(out, own=("a.txt",), force=True) as folder:
    ...         _ = (folder / "a.txt").write_text("half")
    ...         raise RuntimeError("the disk is full")
    ... except RuntimeError:
    ...     pass
    >>> (out / "a.txt").read_text(), sorted(p.name for p in out.parent.iterdir())
    ('new', ['figs'])
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path


class FolderInUse(FileExistsError):
    """An output folder that already holds files, without force."""


def check(out, own, *, force: bool = False, flag: str = "--out", command: str = "the command", hint: str = "") -> Path:
    """The policy, checked before any work and changing nothing: `out` is new, an empty folder,
    or (force) a folder whose files of `own` may be replaced. Raises NotADirectoryError for a
    path that is not a folder and `FolderInUse` for a folder that holds files."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{flag} {str(out)!r} exists and is not a folder")
    held = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    if held and not force:
        shown = ", ".join(held[:4]) + (" ..." if len(held) > 4 else "")
        raise FolderInUse(
            f"{flag} {str(out)!r} already holds {len(held)} file(s) ({shown}); {hint}pass --force to replace "
            f"{command}'s own files in it ({', '.join(own)}; nothing else there is touched), or choose another {flag}")
    return out


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def prepare(out, own, *, force: bool = False, **names) -> Path:
    """`check`, then (force) remove the command's own earlier files, and make the folder; for a
    command that writes in place. `names`: `check`'s flag, command and hint."""
    out = check(out, own, force=force, **names)
    if force:
        for name in own:
            _remove(out / name)
    out.mkdir(parents=True, exist_ok=True)
    return out


def _umask_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o777 & ~umask


@contextlib.contextmanager
def staged(out, own, *, force: bool = False, **names):
    """`check`, then yield a new empty temporary folder beside `out` to write into; on success
    its entries (each one of `own`) replace the command's own files in `out`, and the files of
    `own` that this run did not write are removed, so the folder never mixes two runs. On any
    failure the temporary folder is removed and `out` is as it was."""
    out = check(out, own, force=force, **names)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        os.chmod(tmp, _umask_mode())  # mkdtemp's 0o700 would become the folder's mode
        yield tmp
        written = sorted(p.name for p in tmp.iterdir())
        stray = sorted(set(written) - set(own))
        if stray:
            raise RuntimeError(f"the command wrote {stray}, which are not among its own files {list(own)}")
        if not out.exists():
            os.rename(tmp, out)
            return
        for name in own:
            target = out / name
            if name not in written:
                _remove(target)
                continue
            if target.is_dir() and not target.is_symlink():
                os.rename(target, tmp / f".{name}.old")  # os.replace cannot replace a folder: moved aside, removed below
            elif (tmp / name).is_dir() and (target.exists() or target.is_symlink()):
                target.unlink()
            os.replace(tmp / name, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
