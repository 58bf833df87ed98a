"""Data-parallel training on this machine: MR epoch time with 1 process x 2 threads against
2 processes x 1 thread (DDP over Gloo, started by ``textcnn train --nproc 2``), and what
the ranks exchange per step.

    python benchmarks/distributed.py [--epochs 2] [--data mr/all.tsv]

Both runs are the same ``textcnn train`` (the commands are printed with the result), with
the same seed and settings; the epoch time is the median of ``metrics.jsonl``'s seconds.
Communication per step: DDP all-reduces the gradient of every trained parameter (the
embedding table's gradient is dense under DDP), so each rank sends and receives about
2 (N - 1) / N times its size with a ring all-reduce. Results go to
``benchmarks/results/distributed.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from textcnn.card import load_card
from textcnn.models import TextCNN

DATA_DIR = Path(
    os.environ.get("TEXTCNN_DATA_DIR", Path(__file__).parents[1] / ".." / "shared" / "datasets")
)
RESULTS = Path(__file__).parent / "results" / "distributed.json"


def train(data: Path, output: Path, epochs: int, nproc: int, threads: int) -> dict:
    args = ["train", "--data", str(data), "-o", str(output), "--epochs", str(epochs)]
    args += ["--progress=false", "--patience", "0", "--nproc", str(nproc)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "textcnn", *args], env=env, check=True)
    wall = time.perf_counter() - started
    history = [json.loads(line) for line in (output / "metrics.jsonl").read_text().splitlines()]
    card = load_card(output / "model-best")
    return {
        "command": f"OMP_NUM_THREADS={threads} textcnn {' '.join(args)}",
        "processes": nproc,
        "threads_per_process": threads,
        "seconds_per_epoch": statistics.median(h["seconds"] for h in history),
        "wall_seconds": round(wall, 1),
        "dev_accuracy": card.metrics["dev"]["accuracy"],
        "world_size": card.world_size,
        "model": card.model,
        "train_examples": card.data["train"]["examples"],
        "batch_size": card.settings["training"]["batch_size"],
    }


def communication(run: dict, ranks: int) -> dict:
    with torch.device("meta"):
        model = TextCNN(run["model"])
    gradient = sum(p.numel() * 4 for p in model.parameters() if p.requires_grad)
    steps = run["train_examples"] // run["batch_size"]
    per_rank = gradient * 2 * (ranks - 1) / ranks
    return {
        "gradient_bytes_per_step": gradient,
        "ring_bytes_sent_per_rank_per_step": round(per_rank),
        "steps_per_epoch": steps,
        "bytes_sent_per_rank_per_epoch": round(per_rank * steps),
        "scalars_per_step": "none (one 3-value reduction per epoch, one per dev evaluation)",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA_DIR / "mr" / "all.tsv")
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    if not args.data.is_file():
        sys.exit(f"{args.data} not found; set TEXTCNN_DATA_DIR")
    with tempfile.TemporaryDirectory() as tmp:
        one = train(args.data, Path(tmp) / "one", args.epochs, 1, 2)
        two = train(args.data, Path(tmp) / "two", args.epochs, 2, 1)
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "torch": torch.__version__,
        "data": str(args.data.name),
        "one_process": {k: v for k, v in one.items() if k != "model"},
        "two_processes": {k: v for k, v in two.items() if k != "model"},
        "epoch_time_ratio_two_over_one": round(
            two["seconds_per_epoch"] / one["seconds_per_epoch"], 2
        ),
        "communication": communication(one, 2),
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
