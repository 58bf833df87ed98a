"""Data-parallel training across processes: PyTorch's own engine (``torchrun`` and
``DistributedDataParallel``), Gloo on the CPU and NCCL on CUDA.

``torchrun`` starts one process per rank and describes the group in the environment
(``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``); :func:`join`
reads it. Without it, :class:`World` is the single process it always was, and nothing
here does anything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    """This process's place in the group: ``rank`` of ``size``."""

    rank: int = 0
    size: int = 1

    @classmethod
    def from_env(cls) -> World:
        """What torchrun set for this process (``RANK``, ``WORLD_SIZE``); one process when
        it set nothing. The one place that reads them."""
        if "WORLD_SIZE" not in os.environ:
            return cls()
        return cls(int(os.environ.get("RANK", "0")), int(os.environ["WORLD_SIZE"]))

    @property
    def under_torchrun(self) -> bool:
        """Started by torchrun (as one process of ``size``, one included)."""
        return "WORLD_SIZE" in os.environ

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that logs and writes checkpoints and model directories."""
        return self.rank == 0

    def share(self, indices: list[int]) -> list[int]:
        """This rank's part of a global batch (every size-th example, from its rank)."""
        return indices[self.rank :: self.size]

    def sum(self, *values: float) -> list[float]:
        """Each value summed over the ranks (the same result on every rank)."""
        if self.size == 1:
            return list(values)
        total = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(total)
        return total.tolist()

    def sum_tensor(self, values: torch.Tensor) -> torch.Tensor:
        """A float64 tensor summed over the ranks (the same result on every rank)."""
        if self.size == 1:
            return values
        values = values.clone()
        dist.all_reduce(values)
        return values

    def gather(self, value) -> list:
        """``value`` (JSON-like) of every rank, by rank (the same list on every rank)."""
        if self.size == 1:
            return [value]
        values = [None] * self.size
        dist.all_gather_object(values, value)
        return values

    def barrier(self) -> None:
        if self.size > 1:
            dist.barrier()


ONE_PROCESS = World()


def join(device: torch.device, timeout_s: float) -> World:
    """The group torchrun started this process in (joined once), or the single process.

    A collective that waits longer than ``timeout_s`` (a rank died or hangs) raises
    instead of hanging."""
    if World.from_env().size == 1:
        return ONE_PROCESS
    if not dist.is_initialized():
        # on CUDA, NCCL for the tensors on the GPU and Gloo for the few on the CPU (the
        # epoch's sums, a stream's positions)
        backend = "cpu:gloo,cuda:nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(local_device(device))
        dist.init_process_group(backend, timeout=timedelta(seconds=timeout_s))
    return World(dist.get_rank(), dist.get_world_size())


def local_device(device: torch.device) -> torch.device:
    """Under torchrun, each process of a machine takes its own GPU (``LOCAL_RANK``)."""
    if device.type == "cuda" and device.index is None and World.from_env().size > 1:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def leave() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
