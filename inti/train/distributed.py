"""DDP through torchrun: the process group comes from the environment torchrun sets (RANK,
WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT); gloo on CPU, nccl on CUDA. Without that
environment the run is one process and nothing here does anything.

The timeout [ours]: joining the group waits at most `timeout_s` seconds (TIMEOUT_S, 10 minutes,
by default; `--dist-timeout`), and so does every collective after it. An environment that
cannot rendezvous (a stale WORLD_SIZE/RANK left from another job, a master that never came)
ends with `RendezvousError` naming the rank, the address and the timeout, instead of a hang.
A rank other than 0 first waits for the master's port with a plain TCP connection, so that
torch's own client does not retry (and log a C++ stack trace) for the whole timeout.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    device: str = "cpu"

    @property
    def main(self) -> bool:
        return self.rank == 0


TIMEOUT_S = 600.0  # seconds to join the group and to wait at any collective; NCCL's own default


class RendezvousError(ConnectionError):
    """torchrun's environment names a process group that this process cannot join."""


def _env_int(name: str, default: int | None = None) -> int:
    text = os.environ.get(name)
    if text is None and default is not None:
        return default
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise RendezvousError(f"the torchrun environment variable {name} must be a non-negative integer, got "
                              f"{text!r}") from None
    if value < 0:
        raise RendezvousError(f"the torchrun environment variable {name} must be a non-negative integer, got {value}")
    return value


def _wait_for(address: str, port: int, timeout_s: float, rank: int, size: int) -> None:
    """Return once the master's port takes a TCP connection; RendezvousError after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.create_connection((address, port), timeout=max(min(deadline - time.monotonic(), 1.0), 0.01)).close()
            return
        except OSError as e:
            reason = e.strerror or str(e) or type(e).__name__
        if time.monotonic() >= deadline:
            raise RendezvousError(_cannot_join(rank, size, address, port, timeout_s, f"the master did not answer: {reason}"))
        time.sleep(0.2)


def _cannot_join(rank: int, size: int, address, port, timeout_s: float, reason: str) -> str:
    return (f"could not join the torchrun process group as rank {rank} of {size} at {address}:{port} within "
            f"{timeout_s:g} s ({reason}); a stale torchrun environment? unset WORLD_SIZE and RANK to run one "
            "process, start every rank, or raise --dist-timeout")


def setup(device: str = "cpu", timeout_s: float = TIMEOUT_S) -> World:
    """Join torchrun's process group, if the environment names one, within `timeout_s` seconds."""
    if "WORLD_SIZE" not in os.environ or _env_int("WORLD_SIZE") == 1:
        return World(device=device)
    if not (isinstance(timeout_s, (int, float)) and 0 < timeout_s < float("inf")):
        raise ValueError(f"timeout_s must be a positive number of seconds, got {timeout_s!r}")
    size, rank, local = _env_int("WORLD_SIZE"), _env_int("RANK"), _env_int("LOCAL_RANK", 0)
    if size == 0 or rank >= size:
        raise RendezvousError(f"the torchrun environment names rank {rank} of {size} processes; RANK must be "
                              "below WORLD_SIZE")
    address, port = os.environ.get("MASTER_ADDR"), _env_int("MASTER_PORT", 0) if "MASTER_PORT" in os.environ else None
    if not address or not port:
        raise RendezvousError(f"WORLD_SIZE={size} names a torchrun process group, but MASTER_ADDR and MASTER_PORT are "
                              f"not both set ({address!r}, {port!r}); launch with torchrun, or unset WORLD_SIZE")
    if device.startswith("cuda"):
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    if not dist.is_initialized():
        if rank != 0:
            _wait_for(address, port, timeout_s, rank, size)
        try:
            dist.init_process_group("nccl" if device.startswith("cuda") else "gloo", rank=rank, world_size=size,
                                    timeout=timedelta(seconds=timeout_s))
        except dist.DistError as e:
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise RendezvousError(_cannot_join(rank, size, address, port, timeout_s, reason)) from None
    return World(rank, size, local, device)


def barrier(world: World) -> None:
    if world.size > 1:
        dist.barrier()


def all_sum(world: World, values: list[int]) -> list[int]:
    """The sums of integers over the ranks, on every rank, in one all-reduce."""
    if world.size == 1:
        return list(values)
    total = torch.tensor(values, dtype=torch.int64, device=world.device)
    dist.all_reduce(total)
    return total.tolist()


def gather(world: World, obj):
    """[obj of rank 0, obj of rank 1, ...] on every rank."""
    if world.size == 1:
        return [obj]
    out = [None] * world.size
    dist.all_gather_object(out, obj)
    return out


def teardown(world: World) -> None:
    if world.size > 1 and dist.is_initialized():
        dist.destroy_process_group()
