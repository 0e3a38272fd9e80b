"""Sharding a benchmark over processes launched by torchrun (one per GPU, or CPU workers).

Process r of W handles cases r, r + W, r + 2W, ... (each writes its own cache files, no
shared state); after its share every process waits at a barrier, then rank 0 merges the
cache into the reports. Without torchrun (no WORLD_SIZE) there is one process: rank 0 of 1.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from datetime import timedelta
from typing import Callable, Iterator, Sequence, TypeVar

T = TypeVar("T")

# Shards finish at different times and a CPU benchmark can take days: wait long. A rank
# that dies makes torchrun stop the others, so this does not hang forever.
BARRIER_TIMEOUT = timedelta(days=7)


def dist_env() -> tuple[int, int]:
    """(rank, world size) from torchrun's RANK / WORLD_SIZE (defaults 0, 1), checked."""
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"bad RANK={rank} / WORLD_SIZE={world}")
    return rank, world


def shard(items: Sequence[T], rank: int, world_size: int) -> list[T]:
    """Items r, r + W, ...: disjoint across ranks, their union is all items."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"bad rank {rank} of world size {world_size}")
    return list(items[rank::world_size])


@contextmanager
def process_group(world_size: int) -> Iterator[Callable[[], None] | None]:
    """A gloo process group for the final barrier (None when there is one process)."""
    if world_size <= 1:
        yield None
        return
    import torch.distributed as dist

    created = not dist.is_initialized()
    if created:
        dist.init_process_group("gloo", timeout=BARRIER_TIMEOUT)
    try:
        yield dist.barrier
    finally:
        if created:
            dist.destroy_process_group()
