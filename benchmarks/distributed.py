"""Data-parallel training on this machine: MR epoch time with 1 process x 2 threads against
2 processes x 1 thread (DDP over Gloo, started by ``textcnn train --nproc 2``), with the
embedding tables' gradients exchanged row by row (``--exchange rows``, the default) and as
DDP's dense all-reduce of the whole table (``--exchange dense``, as before), for the
``rand`` recipe (a word-level table of 300-d vectors) and the default recipe (MiniLM's
WordPiece table, 30,522 x 384).

    python benchmarks/distributed.py [--epochs 2] [--data mr/all.tsv] [--recipes rand,default]

Every run is the same ``textcnn train`` (the commands are in the result), with the same
seed and settings; the epoch time is the median of ``metrics.jsonl``'s seconds, and the
bytes a rank sends per step are the ones training counted (``sent_bytes_per_step``: DDP's
ring all-reduce of the dense layers, 2 (N - 1) / N times their gradient, plus the rows
this rank all-gathered to the others). Results go to ``benchmarks/results/distributed.json``.
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

DATA_DIR = Path(
    os.environ.get("TEXTCNN_DATA_DIR", Path(__file__).parents[1] / ".." / "shared" / "datasets")
)
RESULTS = Path(__file__).parent / "results" / "distributed.json"


def train(
    data: Path, output: Path, epochs: int, recipe: str, nproc: int, threads: int, exchange: str
) -> dict:
    args = ["train", "--data", str(data), "-o", str(output), "--epochs", str(epochs)]
    args += ["--progress=false", "--patience", "0", "--nproc", str(nproc)]
    args += ["--exchange", exchange] + (["--recipe", recipe] if recipe != "default" else [])
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "textcnn", *args], env=env, check=True)
    wall = time.perf_counter() - started
    history = [json.loads(line) for line in (output / "metrics.jsonl").read_text().splitlines()]
    card = load_card(output / "model-best")
    sent = [h["sent_bytes_per_step"] for h in history if "sent_bytes_per_step" in h]
    return {
        "command": f"OMP_NUM_THREADS={threads} textcnn {' '.join(args)}",
        "processes": nproc,
        "threads_per_process": threads,
        "exchange": exchange if nproc > 1 else None,
        "seconds_per_epoch": statistics.median(h["seconds"] for h in history),
        "sent_bytes_per_rank_per_step": round(statistics.median(sent)) if sent else 0,
        "wall_seconds": round(wall, 1),
        "dev_accuracy": card.metrics["dev"]["accuracy"],
        "world_size": card.world_size,
        "embedding_table": [card.model.vocab_size, card.model.embed_dim],
        "embedding_mode": card.model.embedding_mode,
        "train_examples": card.data["train"]["examples"],
    }


def compare(data: Path, epochs: int, recipe: str, tmp: Path) -> dict:
    one = train(data, tmp / f"{recipe}-one", epochs, recipe, 1, 2, "rows")
    dense = train(data, tmp / f"{recipe}-dense", epochs, recipe, 2, 1, "dense")
    rows = train(data, tmp / f"{recipe}-rows", epochs, recipe, 2, 1, "rows")
    return {
        "one_process_2_threads": one,
        "two_processes_dense": dense,
        "two_processes_rows": rows,
        "epoch_time_two_over_one": {
            "dense": round(dense["seconds_per_epoch"] / one["seconds_per_epoch"], 2),
            "rows": round(rows["seconds_per_epoch"] / one["seconds_per_epoch"], 2),
        },
        "bytes_per_step_dense_over_rows": round(
            dense["sent_bytes_per_rank_per_step"] / rows["sent_bytes_per_rank_per_step"], 1
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA_DIR / "mr" / "all.tsv")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--recipes", default="rand,default")
    args = parser.parse_args()
    if not args.data.is_file():
        sys.exit(f"{args.data} not found; set TEXTCNN_DATA_DIR")
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "torch": torch.__version__,
        "data": str(args.data.relative_to(args.data.parents[1])),
        "epochs": args.epochs,
    }
    with tempfile.TemporaryDirectory() as tmp:
        for recipe in args.recipes.split(","):
            result[recipe] = compare(args.data, args.epochs, recipe, Path(tmp))
            print(json.dumps({recipe: result[recipe]}, indent=2), flush=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
