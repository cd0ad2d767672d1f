"""What the subcommands print: tables and the progress bar (by tabulate and tqdm), and the
parts of a report that more than one subcommand shows (the run's header, the parity table,
the wall times, the MAC summary). Each is a pure function of its inputs that returns text."""

from __future__ import annotations

import contextlib
import sys

import ref
from ref.config import ModelConfig

from ..io.optional import require
from ..labels import describe, mac_unit, schedule_text
from ..tolerances import first_failure

MODEL_NAMES = {"naive": "naive", "inti": "InTI"}


def needs(module: str):
    """Import a library of an optional extra, or raise ImportError naming the extra."""
    return require(module, "this command")


# ---------------------------------------------------------------------------------------------
# tables and progress, by well-kept libraries


def table(rows, headers, **kwargs) -> str:
    """An aligned plain-text table (tabulate's "simple" format); `separator()` rows draw a rule."""
    return needs("tabulate").tabulate(rows, headers, tablefmt="simple", disable_numparse=True, **kwargs)


def separator():
    return needs("tabulate").SEPARATING_LINE


@contextlib.contextmanager
def progress(title: str, total: int, mode: str = "auto", stream=None):
    """A tqdm bar on stderr over the named steps of a command; yields ``step(label)``, a context
    manager around one step. mode: "on", "off", or "auto" (on only when the stream, stderr by
    default, is a terminal). Each step's name is drawn when it starts; the bar ends on its
    final state, done or stopped.

        with progress("inti demo", total=3) as step:
            with step("decode the clip"):
                ...
    """
    tqdm = needs("tqdm").tqdm
    disable = {"on": False, "off": True, "auto": None}[mode]  # None: tqdm's own TTY test
    bar = tqdm(total=total, desc=title, disable=disable, file=stream if stream is not None else sys.stderr, leave=True,
               dynamic_ncols=True, bar_format="{desc} [{bar:24}] {n_fmt}/{total_fmt}{postfix} ({elapsed})")

    @contextlib.contextmanager
    def step(label: str):
        bar.set_postfix_str(label, refresh=True)
        yield
        bar.update(1)

    try:
        yield step
    except BaseException:
        bar.set_postfix_str("stopped", refresh=True)
        raise
    else:
        bar.set_postfix_str("done", refresh=True)
    finally:
        bar.close()


# ---------------------------------------------------------------------------------------------
# the parts of a report


def header(video_label: str, cfg: ModelConfig, source: str, clip) -> list[str]:
    """The clip, the model and where its weights came from, one line each."""
    merges = (f": merges after block{'s' if len(cfg.schedule) > 1 else ''} {', '.join(map(str, cfg.schedule))}"
              if cfg.schedule else ": no merges (naive)")
    return [
        f"clip     {video_label}: {clip.shape[0]} frames sampled uniformly, "
        f"resized and center-cropped to {clip.shape[2]}x{clip.shape[3]} px",
        f"model    {describe(cfg)}; {schedule_text(cfg.schedule)}{merges}",
        f"weights  {source}",
    ]


def _err(row) -> str:
    text = "0" if row.rel_err == 0 else f"{row.rel_err:.1e}"
    return text + ("" if row.ok else " !")


def format_parity(results: dict) -> str:
    """The table of largest relative errors: one row per trace entry, a column per model and dtype."""
    models = list(results)
    dtypes = results[models[0]].dtypes
    names: list[str] = []
    for r in results.values():
        names += [n for n in r.table() if n not in names]
    order = list(results["inti"].table()) if "inti" in results else names
    order += [n for n in names if n not in order]
    body = []
    for name in order:
        cells = [name]
        for m in models:
            entries = results[m].table()
            cells += [_err(entries[name][d]) if name in entries else "" for d in dtypes]
        body.append(cells)
    tol = {d: results[models[0]].worst(d).tol for d in dtypes}
    body += [separator(), ["tolerance"] + [f"{tol[d]:.0e}" for _ in models for d in dtypes]]
    rows = [row for r in results.values() for row in r.rows]
    bad = [row for row in rows if not row.ok]
    return "\n".join([
        "parity: largest relative error of torch against the NumPy spec (float64), per trace entry",
        "        max|torch - ref| / max|ref|; '!' marks an entry over tolerance",
        table(body, ["entry"] + [f"{MODEL_NAMES.get(m, m)} {d}" for m in models for d in dtypes]),
        f"result: all {len(rows)} comparisons within tolerance" if not bad
        else f"result: {len(bad)} of {len(rows)} comparisons over tolerance",
    ])


def parity_failure(results: dict) -> str | None:
    """The first row over tolerance, across the models, in words with its model; or None."""
    for model, r in results.items():
        row = first_failure(r.rows)
        if row is not None:
            return (f"{MODEL_NAMES.get(model, model)} {row.name} in {row.dtype}: relative error "
                    f"{row.rel_err:.3g} > tolerance {row.tol:g}")
    return None


def format_times(times: dict, repeats: int, threads: int) -> str:
    """The wall-time table of `inti.walltime.forward_times`: a row per path, naive against InTI."""
    body = []
    for key in times["inti"]:
        label = "ref (numpy) float64" if key == "ref float64" else key
        body.append([label] + [f"{times[m].get(key, float('nan')) * 1e3:.1f} ms" for m in ("naive", "inti")])
    return "\n".join([
        f"wall time of one forward (batch of 1 clip, trace kept): the median of {repeats} after a warm-up, "
        f"{threads} thread{'s' if threads > 1 else ''} for NumPy and torch alike",
        table(body, ["path", "naive", "InTI"], colalign=("left", "right", "right")),
        "(a tiny model on one clip: the overheads weigh; speed is measured by the benchmarks, make bench)",
    ])


def format_macs_summary(cfg: ModelConfig, frames: int) -> str:
    cost = ref.compare(cfg, frames)
    naive, inti, red = cost["naive"]["total"], cost["inti"]["total"], cost["reduction"]
    div, prefix = mac_unit(naive)
    return "\n".join([
        "cost per clip (MACs: 1 multiply-accumulate = 1; FLOPs = 2 x MACs; `inti cost` for the table)",
        table([["MACs", f"{naive / div:.2f} {prefix}", f"{inti / div:.2f} {prefix}"],
               ["FLOPs", f"{2 * naive / div:.2f} {prefix}", f"{2 * inti / div:.2f} {prefix}"]],
              ["", "naive", "InTI"], colalign=("left", "right", "right")),
        f"reduction: {red['blocks']:.1%} of the block MACs; {red['total']:.1%} of the total, predictor included",
    ])
