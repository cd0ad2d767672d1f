"""A stand-in for the CLI's progress step that records the labels it is opened with."""

from __future__ import annotations

import contextlib


def recording_step(labels: list[str]):
    """A `step` callable for run_both / write_figures: appends each label, does nothing else."""

    def step(label: str):
        labels.append(label)
        return contextlib.nullcontext()

    return step
