"""Safe writes, the one helper every writer of the project uses.

`atomic_write(path)` writes into a fresh temporary file in the same folder (a unique name, so
two writers never share it and no file of the user's is touched), flushes and fsyncs it, then
moves it over `path` with `os.replace`, which is atomic on one file system. A failure at any
point removes the temporary file and leaves `path` as it was: a reader sees the old file or the
new one, never half of one. Parameter files, checkpoints, figures, benchmark and experiment
results are all written through it.

    >>> import tempfile, pathlib
    >>> from inti.io.atomic import atomic_write, write_text
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "notes.txt"
    >>> write_text(path, "one")
    >>> try:
    ...     with atomic_write(path, "w") as f:
    ...         _ = f.write("half a fi")
    ...         raise RuntimeError("the disk is full")
    ... except RuntimeError:
    ...     pass
    >>> path.read_text(), sorted(p.name for p in path.parent.iterdir())
    ('one', ['notes.txt'])
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def _mode_for(path: Path) -> int:
    """The permissions the file would get from open(): its current mode, or 0o666 less umask."""
    with contextlib.suppress(OSError):
        return path.stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_write(path, mode: str = "wb", encoding: str | None = None):
    """A file object to write `path`'s new content into; it replaces `path` only on success."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write writes whole files: mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"cannot write {str(path)!r}: it is a directory")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, encoding=encoding if "b" not in mode else None) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _mode_for(path))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable, where the OS allows it
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def write_bytes(path, data: bytes) -> None:
    with atomic_write(path, "wb") as f:
        f.write(data)


def write_text(path, text: str) -> None:
    with atomic_write(path, "w", encoding="utf-8") as f:
        f.write(text)
