"""DDP through torchrun: the process group comes from the environment torchrun sets (RANK,
WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT); gloo on CPU, nccl on CUDA. Without that
environment the run is one process and nothing here does anything."""

from __future__ import annotations

import os
from dataclasses import dataclass

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


def setup(device: str = "cpu") -> World:
    """Join torchrun's process group, if the environment names one."""
    if "WORLD_SIZE" not in os.environ or int(os.environ["WORLD_SIZE"]) == 1:
        return World(device=device)
    rank, size, local = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0))
    if device.startswith("cuda"):
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo", rank=rank, world_size=size)
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
