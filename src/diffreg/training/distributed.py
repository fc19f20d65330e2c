"""Data-parallel training with torch DDP, one process per GPU (or per CPU process with gloo).

Launch with torch's own launcher, on one node or across Slurm nodes (docs/cluster.md):

    torchrun --nproc-per-node 4 -m diffreg.cli train ... --batch-size 8      # 4 GPUs, 2 pairs each

Every process draws the same full batch from the same seeded generator and trains on its slice,
so the averaged gradient equals the single-process gradient of the full batch (to float
rounding) for objectives whose loss is a mean over the batch and that draw nothing random of
their own; those that do (a diffusion timestep per pair) draw per process, equally distributed.
Rank 0 alone writes the model, the log and the checkpoints.
"""
from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from ..errors import InputError


def world() -> tuple[int, int]:
    """(rank, world size); (0, 1) without an initialised process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_from_env(device: torch.device) -> tuple[int, int]:
    """Join the process group torchrun describes (WORLD_SIZE, RANK, MASTER_ADDR, ...), if any;
    each process takes the GPU of its LOCAL_RANK."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1 or (dist.is_available() and dist.is_initialized()):
        return world()
    if not dist.is_available():
        raise InputError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return world()


def leave() -> None:
    """Wait for every process (rank 0 writes the model last), then leave the process group, so that
    gloo's threads end before the interpreter does: a process exiting with them alive can abort
    ("terminate called without an active exception") and fail a finished run. No-op alone."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def local_device(device: torch.device) -> torch.device:
    if device.type == "cuda" and dist.is_available() and dist.is_initialized():
        return torch.device("cuda", torch.cuda.current_device())
    return device


def shard(batch: Any, rank: int, size: int) -> Any:
    """This process's slice of every tensor of the batch (along the first axis)."""
    if size == 1:
        return batch
    if isinstance(batch, torch.Tensor):
        n = batch.shape[0]
        if n % size:
            raise InputError(f"batch size {n} is not divisible by the {size} training processes")
        k = n // size
        return batch[rank * k:(rank + 1) * k]
    if isinstance(batch, dict):
        return {key: shard(v, rank, size) for key, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(shard(v, rank, size) for v in batch)
    return batch


def wrap(nets: nn.ModuleDict, device: torch.device) -> nn.ModuleDict:
    """DDP around every network that trains (frozen ones are used as they are)."""
    if world()[1] == 1:
        return nets
    from torch.nn.parallel import DistributedDataParallel as DDP
    ids = [device.index] if device.type == "cuda" else None
    return nn.ModuleDict({k: DDP(v, device_ids=ids) if any(p.requires_grad for p in v.parameters()) else v
                          for k, v in nets.items()})


def mean_values(values: dict[str, float]) -> dict[str, float]:
    """Each logged term averaged over the processes (the full batch's mean)."""
    if world()[1] == 1:
        return values
    t = torch.tensor(list(values.values()), dtype=torch.float64)
    dist.all_reduce(t)
    return dict(zip(values, (t / world()[1]).tolist()))
