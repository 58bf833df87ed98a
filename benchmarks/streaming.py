"""Training on a corpus larger than the readers would hold (``textcnn train --stream``): a
generated file of 5,000,000 rows, one epoch on one process and on two (``--nproc 2``),
with the peak memory of the whole process tree and the test accuracy of both models.

    python benchmarks/streaming.py [--rows 5000000] [--work /tmp/textcnn-stream]

The corpus: each row joins 1 to 3 sentences of one label, drawn from MR and SST-2's
training sentences (the sentences of SST-2's test set left out, since MR holds them too),
so its labels mean what they say; SST-2's test set scores the models. The model is the
``rand`` recipe made smaller (64-d vectors, 50 filters per width, batches of 200, 64
tokens) so that an epoch of 5M rows takes minutes on two cores; memory does not depend on
it much (the shuffle buffer and the scan's sample do).

Peak memory: the largest sum of resident memory (VmRSS) over the command and all its
processes, sampled every 0.2 s. Results go to ``benchmarks/results/streaming.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

DATA_DIR = Path(
    os.environ.get("TEXTCNN_DATA_DIR", Path(__file__).parents[1] / ".." / "shared" / "datasets")
)
RESULTS = Path(__file__).parent / "results" / "streaming.json"
MODEL = [
    "--recipe", "rand", "--set", "embed_dim=64", "--set", "num_filters=50",
    "--batch-size", "200", "--max-length", "64",
]  # fmt: skip


def read_tsv(path: Path) -> list[tuple[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return [(row["text"], row["label"]) for row in csv.DictReader(handle, delimiter="\t")]


def key(text: str) -> str:
    return " ".join(text.lower().split())


def generate(path: Path, rows: int, seed: int = 0) -> None:
    """``rows`` rows of 1-3 same-label sentences (see the module's note), as TSV."""
    test = {key(t) for t, _ in read_tsv(DATA_DIR / "sst2" / "test.tsv")}
    pool: dict[str, list[str]] = {}
    for name in ("mr/all.tsv", "sst2/train.tsv"):
        for text, label in read_tsv(DATA_DIR / name):
            if key(text) not in test:
                pool.setdefault(label, []).append(text.replace("\t", " "))
    rng = random.Random(seed)
    labels = sorted(pool)
    tmp = path.with_suffix(".partial")
    with tmp.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, delimiter="\t", lineterminator="\n")  # quotes as needed
        writer.writerow(["label", "text"])
        for _ in range(rows):
            label = rng.choice(labels)
            writer.writerow([label, " ".join(rng.choices(pool[label], k=rng.randint(1, 3)))])
    tmp.rename(path)


def tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and every process below it (from /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(
                line.split(":", 1) for line in status.read_text().splitlines() if ":" in line
            )
        except OSError:
            continue
        me = int(status.parent.name)
        children.setdefault(int(fields["PPid"]), []).append(me)
        rss[me] = int(fields.get("VmRSS", "0 kB").split()[0]) * 1024
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        todo += children.get(p, [])
    return total


def train(data: Path, output: Path, nproc: int, epochs: int) -> dict:
    args = ["train", "--data", str(data), "--test", str(DATA_DIR / "sst2" / "test.tsv")]
    args += ["-o", str(output), "--stream", "--epochs", str(epochs), "--patience", "0"]
    args += ["--progress=false", "--nproc", str(nproc), *MODEL]
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // nproc))}
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "textcnn", *args], env=env)
    peak = 0

    def sample() -> None:
        nonlocal peak
        while process.poll() is None:
            peak = max(peak, tree_rss(process.pid))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample)
    sampler.start()
    process.wait()
    sampler.join()
    if process.returncode:
        sys.exit(f"textcnn {' '.join(args)} failed")
    wall = time.perf_counter() - started
    card = json.loads((output / "model-best" / "config.json").read_text())
    return {
        "command": f"textcnn {' '.join(args)}",
        "processes": nproc,
        "peak_rss_mb": round(peak / 2**20),
        "wall_seconds": round(wall, 1),
        "seconds_per_epoch": card["seconds_per_epoch"],
        "train_rows": card["data"]["train"]["examples"],
        "rows_per_second": round(card["data"]["train"]["examples"] / card["seconds_per_epoch"]),
        "dev_accuracy": card["metrics"]["dev"]["accuracy"],
        "test_accuracy": card["metrics"]["test"]["accuracy"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--work", type=Path, default=Path("/tmp/textcnn-stream"))
    args = parser.parse_args()
    if not (DATA_DIR / "sst2" / "test.tsv").is_file():
        sys.exit(f"SST-2 and MR not found in {DATA_DIR}; set TEXTCNN_DATA_DIR")
    args.work.mkdir(parents=True, exist_ok=True)
    data = args.work / f"generated-{args.rows}.tsv"
    if not data.is_file():
        started = time.perf_counter()
        generate(data, args.rows)
        print(f"wrote {data} in {time.perf_counter() - started:.0f} s", flush=True)
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "rows": args.rows,
        "file_mb": round(data.stat().st_size / 2**20),
        "epochs": args.epochs,
    }
    for nproc in (1, 2):
        output = args.work / f"run-{args.rows}-{nproc}"
        subprocess.run(["rm", "-rf", str(output)], check=True)
        result[f"processes_{nproc}"] = train(data, output, nproc, args.epochs)
        print(json.dumps(result[f"processes_{nproc}"], indent=2), flush=True)
    one, two = result["processes_1"], result["processes_2"]
    result["test_accuracy_difference"] = round(two["test_accuracy"] - one["test_accuracy"], 4)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
