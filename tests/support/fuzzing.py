"""Helpers of the fuzzing suite (tests/hostile/test_fuzz.py): what counts as the project's own error,
a per-case timeout, a snapshot of a folder, and the outcome counts that the README reports.

The property of every case: the input gets the project's own clear error, or a correct
answer; never a raw library exception, a non-finite output, a hang, or a changed file that
the user did not ask to write.

"The project's own error" is an exception of one of the types the entry points document,
with a message, raised by a line of `ref/`, `torch_impl/` or `inti/`: a library's exception
that escapes unconverted is raised inside the library, and fails the property.
"""

from __future__ import annotations

import collections
import contextlib
import signal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tuple(str(ROOT / d) + "/" for d in ("ref", "torch_impl", "inti"))
OUR_TYPES = (ValueError, TypeError, FileNotFoundError, IsADirectoryError, NotADirectoryError)

# (input class, outcome) -> count; outcome is "clear error" or "correct answer".
OUTCOMES: collections.Counter = collections.Counter()


def raise_site(exc: BaseException) -> str:
    """The file of the innermost Python frame that raised `exc`."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb.tb_frame.f_code.co_filename if tb is not None else "?"


def is_ours(exc: BaseException) -> bool:
    return isinstance(exc, OUR_TYPES) and bool(str(exc).strip()) and raise_site(exc).startswith(PROJECT)


def assert_ours(exc: BaseException, what: str) -> None:
    assert is_ours(exc), (
        f"{what}: a raw or unclear exception reached the user: {type(exc).__module__}.{type(exc).__name__}: "
        f"{str(exc)[:300]!r}, raised in {raise_site(exc)}"
    )


@contextlib.contextmanager
def time_limit(seconds: float, what: str):
    """Fail (TimeoutError) instead of hanging: SIGALRM, main thread, POSIX."""

    def on_alarm(signum, frame):
        raise TimeoutError(f"{what}: no answer within {seconds:g} s (a hang)")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def outcome(kind: str, call, check_answer, timeout: float = 30.0, refused=lambda result: False):
    """Run one case: `call()` must raise the project's own error, or return something that
    `check_answer(result)` accepts (it asserts). The outcome is counted under `kind`; a result
    for which `refused(result)` holds (a command's exit status 2) counts as a clear error."""
    with time_limit(timeout, kind):
        try:
            result = call()
        except TimeoutError:
            raise
        except Exception as exc:  # noqa: BLE001 - the property is about which exceptions escape
            assert_ours(exc, kind)
            OUTCOMES[(kind, "clear error")] += 1
            return exc
    check_answer(result)
    OUTCOMES[(kind, "clear error" if refused(result) else "correct answer")] += 1
    return result


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """{relative path: (size, mtime_ns)} of every file under `folder`."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def report() -> dict:
    classes: dict[str, dict[str, int]] = {}
    for (kind, result), n in sorted(OUTCOMES.items()):
        classes.setdefault(kind, {"clear error": 0, "correct answer": 0})[result] = n
    return {"classes": classes, "cases": sum(OUTCOMES.values())}


def summary() -> str:
    rows = report()["classes"]
    width = max(len(k) for k in rows)
    lines = [f"fuzzing: {sum(OUTCOMES.values())} cases, each a clear error of the project's own or a correct answer",
             f"  {'input class':<{width}}  clear error  correct answer"]
    lines += [f"  {k:<{width}}  {v['clear error']:>11}  {v['correct answer']:>14}" for k, v in rows.items()]
    return "\n".join(lines)
