"""Starting several processes, and knowing which one this is.

``textcnn train --nproc N`` starts N processes through torchrun's elastic agent, used as a
library (:func:`run_processes`), so that a failed rank ends in one message that says how to
resume rather than the agent's traceback. Under torchrun (started by us or by hand) the
environment names this process's rank (:meth:`~.distributed.World.from_env`); batch
scoring makes it the shard this process scores.
"""

from __future__ import annotations

import logging
import sys
import uuid
from pathlib import Path

from .distributed import World


def run_processes(nproc: int, args: list[str]) -> bool:
    """``python -m textcnn ARGS`` in ``nproc`` processes on this machine (a rendezvous on a
    free local port, as ``torchrun --standalone``); whether every process succeeded. Each
    prints its own errors; the agent's own logging is kept to errors."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    logging.getLogger("torch.distributed.elastic").setLevel(logging.ERROR)
    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=nproc,
        run_id=str(uuid.uuid4()),
        rdzv_backend="c10d",
        rdzv_endpoint="localhost:0",
        max_restarts=0,
        monitor_interval=0.1,
    )
    try:
        elastic_launch(config, sys.executable)("-m", "textcnn", *args)
    except ChildFailedError:
        return False
    return True


def rank_output(output: str, world: World) -> Path:
    """The part a torchrun rank writes: ``scores.jsonl`` → ``scores.part-0-of-4.jsonl``."""
    path = Path(output)
    return path.with_name(f"{path.stem}.part-{world.rank}-of-{world.size}{path.suffix}")


def parse_shard(text: str) -> tuple[int, int]:
    """``K/N`` (0-based shard K of N) as (K, N)."""
    k, sep, n = text.partition("/")
    if not (sep and k.strip().isdigit() and n.strip().isdigit()):
        raise ValueError(f"--shard {text!r} is not K/N, e.g. 0/4")
    return int(k), int(n)
