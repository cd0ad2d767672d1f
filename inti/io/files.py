"""What every reader of the project checks about a path before it opens it.

A path names a local regular file. A directory, a device (``/dev/null``), a FIFO or a socket is
refused before any read, so a reader never blocks on a pipe or reads a device's endless bytes,
and the message says what the path is instead.
"""

from __future__ import annotations

import os
import stat

KINDS = (
    (stat.S_ISDIR, "directory"),
    (stat.S_ISFIFO, "FIFO (named pipe)"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
    (stat.S_ISSOCK, "socket"),
)


def file_kind(mode: int) -> str:
    """What a path is, in words, from its `st_mode`: "regular file", "directory", ..."""
    if stat.S_ISREG(mode):
        return "regular file"
    return next((kind for test, kind in KINDS if test(mode)), "special file")


def check_regular_file(path, what: str, error=ValueError, missing: str | None = None) -> None:
    """FileNotFoundError if `path` does not exist; `error` if it is not a regular file.
    `what` names the file in the messages ("parameter file"); `missing` replaces the start of
    the not-found message ("no such parameter file")."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"{missing or 'no such ' + what}: {os.fspath(path)!r}") from None
    if not stat.S_ISREG(mode):
        raise error(f"{os.fspath(path)!r} is not a regular file: it is a {file_kind(mode)}, not a {what}")
