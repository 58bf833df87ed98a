"""Latency of POST /classify at 1, 8 and 64 concurrent clients, with and without
micro-batching, and the throughput of `textcnn score` on MR.

    python benchmarks/serving.py [--model MODEL_DIR] [--requests 400]

Without --model, a Kim CNN is trained on MR for 3 epochs first (the size of the
network, not its accuracy, is what matters here). Reads ``$TEXTCNN_DATA_DIR``
(default ``../shared/datasets``). The server runs in a subprocess on
127.0.0.1; the clients (httpx, asyncio) share the same machine, so at 64
clients they compete with the server for the CPU. Writes
``benchmarks/results/serving.json`` and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import torch

import textcnn
from textcnn.scoring import score_file
from textcnn.text.corpora import read_corpus
from textcnn.training.config import TrainConfig
from textcnn.training.text import train_text

DATA = Path(
    os.environ.get("TEXTCNN_DATA_DIR", Path(__file__).parents[1] / ".." / "shared" / "datasets")
)
CLIENTS = (1, 8, 64)
CONFIGS = {
    "micro-batching (64 texts, 2 ms)": {"MAX_BATCH_SIZE": "64", "MAX_WAIT_MS": "2"},
    "no batching": {"MAX_BATCH_SIZE": "1", "MAX_WAIT_MS": "0"},
}


def start_server(model: Path, settings: dict) -> tuple[subprocess.Popen, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, **{f"TEXTCNN_{k}": v for k, v in settings.items()}}
    process = subprocess.Popen(
        [sys.executable, "-m", "textcnn.cli", "serve", "--model", str(model), "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("the server did not become ready")


async def load(url: str, texts: list[str], clients: int, total: int) -> dict:
    latencies: list[float] = []
    queue = iter(range(total))
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:

        async def worker() -> None:
            for i in queue:
                started = time.perf_counter()
                response = await client.post("/classify", json={"text": texts[i % len(texts)]})
                latencies.append(time.perf_counter() - started)
                response.raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        wall = time.perf_counter() - started
    latencies.sort()
    return {
        "clients": clients,
        "requests": total,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
        "requests_per_s": total / wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path)
    parser.add_argument(
        "--requests",
        type=int,
        default=400,
        help="requests per client count (at least 10 per client)",
    )
    args = parser.parse_args()
    if not (DATA / "mr" / "all.tsv").is_file():
        sys.exit(f"skipped: no MR data at {DATA}; set TEXTCNN_DATA_DIR")
    texts = read_corpus(DATA / "mr" / "all.tsv").texts
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model
        if model is None:
            cfg = TrainConfig.load(
                overrides={
                    "data": str(DATA / "mr" / "all.tsv"),
                    "epochs": 3,
                    "output": f"{tmp}/mr",
                    "progress": False,
                }
            )
            model = train_text(cfg)
        latency = {}
        for name, settings in CONFIGS.items():
            process, url = start_server(model, settings)
            try:
                asyncio.run(load(url, texts, 8, 100))  # warm-up
                latency[name] = [
                    asyncio.run(load(url, texts, c, max(args.requests, 10 * c))) for c in CLIENTS
                ]
            finally:
                process.terminate()
                process.wait()
            for row in latency[name]:
                print(json.dumps({"config": name, **row}), flush=True)
        lines = Path(tmp) / "mr.txt"
        lines.write_text("".join(t + "\n" for t in texts))
        classifier = textcnn.load(model)
        rates = []
        for run in range(3):
            out = Path(tmp) / f"scores{run}.jsonl"
            rates.append(
                score_file(classifier, str(lines), str(out), progress=False).rows_per_second
            )
    result = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "latency": latency,
        "score_texts_per_s": statistics.median(rates),
        "score_rows": len(texts),
    }
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    (results / "serving.json").write_text(json.dumps(result, indent=2))
    print("\n| server | clients | p50 ms | p99 ms | requests/s |\n|---|---|---|---|---|")
    for name, rows in latency.items():
        for r in rows:
            print(
                f"| {name} | {r['clients']} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
                f"{r['requests_per_s']:.0f} |"
            )
    print(
        f"\ntextcnn score on MR ({len(texts)} texts, median of 3): "
        f"{result['score_texts_per_s']:,.0f} texts/s"
    )


if __name__ == "__main__":
    main()
