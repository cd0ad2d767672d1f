"""The errors of reading weights files: one base class, and one subclass per reason.

Every one is a ValueError that names the file, so ``except ValueError`` still catches them, and
a caller that needs to choose what to do next (a fallback, a hint) chooses by the class, never
by the text of the message:

- `CorruptFileError`: the file is damaged (truncated, a flipped byte, empty);
- `UnsafeFileError`: the file holds more than tensors (a pickle that asks for code, a module
  that keeps its state through its own ``__setstate__``); inti refuses it and runs nothing;
- `WrongKindError`: a readable weights file of another kind than the entry point reads; it
  says what the file is (``.kind``) and which function or flag reads it (``.readers``).

A path that is missing is a FileNotFoundError, and one that is not a regular file (a directory,
a device) a `WeightsError`, before any byte is read (`inti.io.files`).
"""

from __future__ import annotations


class WeightsError(ValueError):
    """A weights file that inti cannot or will not read; the message names the file."""


class CorruptFileError(WeightsError):
    """A damaged weights file: truncated, a flipped byte, empty, a header that lies."""


class UnsafeFileError(WeightsError):
    """A file that holds more than tensors; refused, and nothing in it is run."""


class WrongKindError(WeightsError):
    """A weights file of another kind than the entry point reads.

    kind: what the file is, in words ("inti training checkpoint", "torch zip (a state dict)").
    readers: the functions or flags that read that kind."""

    def __init__(self, message: str, kind: str | None = None, readers: str | None = None):
        super().__init__(message)
        self.kind, self.readers = kind, readers


def shorten(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def corrupt(path: str, reason) -> CorruptFileError:
    """The project's message for a damaged file; `reason` is a string or the exception a
    reading library raised (its first line, without advice that runs on)."""
    if isinstance(reason, BaseException):
        text = str(reason).strip().splitlines()[0] if str(reason).strip() else ""
        if isinstance(reason, EOFError) and not text:
            text = "unexpected end of file"
        if len(text) > 120 and ". " in text:  # torch's miniz errors go on with advice
            text = text.split(". ")[0]
        reason = f"{type(reason).__name__}: {text}" if text else type(reason).__name__
    return CorruptFileError(f"could not read weights file {path!r}: it is corrupt or truncated ({shorten(reason)})")


def reading(path: str, read, *args):
    """``read(path, *args)``, with whatever a reading library raises on a damaged file turned
    into `CorruptFileError`; the project's own errors, and a missing or unreadable file (not
    the file's fault), pass as they are."""
    try:
        return read(path, *args)
    except WeightsError:
        raise
    except (PermissionError, FileNotFoundError):
        raise
    except Exception as error:  # BadZipFile, zlib.error, EOFError, SafetensorError, torch's RuntimeError, OSError...
        raise corrupt(path, error) from error
