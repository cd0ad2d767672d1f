"""A lock that another thread of the test process holds while a loader starts its workers: a
worker forked from the process would inherit it held, with no thread left to release it."""

from __future__ import annotations

import threading

import torch

LOCK = threading.Lock()


class NeedsTheLock(torch.utils.data.Dataset):
    """Each item takes LOCK (within 20 s); its label says whether it got it (1) or not (0)."""

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int):
        got = LOCK.acquire(timeout=20)
        if got:
            LOCK.release()
        return torch.zeros(1, 3, 2, 2), int(got), index
