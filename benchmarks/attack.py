"""Three slow attacks at once, and the honest clients beside them.

    python benchmarks/attack.py [--model MODEL_DIR] [--half-open 2000]

Against ``textcnn serve`` with its default limits (service/settings.py), at the same time:

- one client sends a 100 MB header as fast as it can;
- ``--half-open`` clients each send half a request's headers and then nothing;
- one client announces a 500-byte body, sends 12 bytes and then nothing;

while two honest clients ask ``GET /health`` and ``POST /classify`` one request after the
other. Prints, and writes to ``benchmarks/results/attack.json``: what each attacker got
(status or closed, after how long), the honest requests' latency (p50, p99, max, failures)
with and without the attack (the quiet run first, in the same script), and the server's
open file descriptors (sampled from /proc). Without --model, a small model is trained on
the repository's example reviews first.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx
from serving import start_server

from textcnn.training.config import load_config
from textcnn.training.pipeline import fit_and_save

ROOT = Path(__file__).parents[1]
HEADER_BYTES = 100_000_000
TEXT = {"text": "a warm, funny and wonderful film"}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def honest(url: str, until: float, path: str) -> dict:
    """One client asking one request after another until ``until``: latencies (ms) and
    failures."""
    latencies, failures = [], 0
    with httpx.Client(timeout=10) as client:
        while time.monotonic() < until:
            started = time.perf_counter()
            try:
                if path == "/health":
                    response = client.get(f"{url}/health")
                else:
                    response = client.post(f"{url}/classify", json=TEXT)
                ok = response.status_code == 200
            except httpx.HTTPError:
                ok = False
            latencies.append(1000 * (time.perf_counter() - started))
            failures += not ok
    return {
        "requests": len(latencies),
        "failures": failures,
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(percentile(latencies, 0.99), 2),
        "max_ms": round(max(latencies), 2),
    }


async def _ending(reader: asyncio.StreamReader, started: float) -> dict:
    """The first line the server sends before it closes (or how it closed), and when."""
    try:
        data = await reader.read()
        status = data.split(b"\r\n", 1)[0].decode("latin-1") if data else "closed"
    except ConnectionError as error:  # closed while we were still sending
        status = f"closed ({type(error).__name__})"
    return {"got": status, "after_s": round(time.monotonic() - started, 2)}


async def huge_header(host: str, port: int) -> dict:
    reader, writer = await asyncio.open_connection(host, port)
    started = time.monotonic()
    writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\nX: ")
    piece, sent = b"a" * 1_000_000, 0
    try:
        while sent < HEADER_BYTES:
            writer.write(piece)
            await writer.drain()
            sent += len(piece)
        writer.write(b"\r\n\r\n")
        await writer.drain()
    except (ConnectionError, OSError):
        pass
    result = await _ending(reader, started)
    return {**result, "sent_mb": round(sent / 1e6, 1)}


async def half_open(host: str, port: int, request: bytes) -> dict:
    reader, writer = await asyncio.open_connection(host, port)
    started = time.monotonic()
    writer.write(request)
    await writer.drain()
    return await _ending(reader, started)


async def attack(url: str, half_open_clients: int) -> dict:
    host, port = url.removeprefix("http://").split(":")
    half_headers = b"GET /health HTTP/1.1\r\nHost: x\r\n"
    half_body = b"POST /classify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    half_body += b'Content-Length: 500\r\n\r\n{"text": "ab'
    slow = [half_open(host, int(port), half_headers) for _ in range(half_open_clients)]
    results = await asyncio.gather(
        huge_header(host, int(port)),
        half_open(host, int(port), half_body),
        *slow,
        return_exceptions=True,
    )
    header, body, *rest = results
    endings = [r for r in rest if isinstance(r, dict)]
    got: dict[str, int] = {}
    for r in endings:
        got[r["got"]] = got.get(r["got"], 0) + 1
    return {
        "100 MB header": header if isinstance(header, dict) else repr(header),
        "body that never finishes": body if isinstance(body, dict) else repr(body),
        f"{half_open_clients} half-open connections": {
            "got": got,
            "closed_after_s_max": max((r["after_s"] for r in endings), default=None),
            "errors": len(rest) - len(endings),
        },
    }


def descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def run(url: str, pid: int, seconds: float, half_open_clients: int | None) -> dict:
    until = time.monotonic() + seconds
    results: dict = {}
    threads = [
        threading.Thread(target=lambda p=p: results.__setitem__(p, honest(url, until, p)))
        for p in ("/health", "/classify")
    ]
    fds = []
    attacked: dict = {}
    if half_open_clients is not None:
        attacker = threading.Thread(
            target=lambda: attacked.update(asyncio.run(attack(url, half_open_clients)))
        )
        attacker.start()
    for thread in threads:
        thread.start()
    while time.monotonic() < until:
        fds.append(descriptors(pid))
        time.sleep(0.5)
    for thread in threads:
        thread.join()
    if half_open_clients is not None:
        attacker.join()
    fds.append(descriptors(pid))
    return {
        "honest": results,
        "attackers": attacked,
        "server_fds_max": max(fds),
        "server_fds_end": fds[-1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path)
    parser.add_argument("--half-open", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=30, help="longer than the timeouts")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model
        if model is None:
            overrides = {
                "data": str(ROOT / "data/examples/reviews.csv"),
                "output": f"{tmp}/run",
                "recipe": "rand",
                "epochs": 2,
                "progress": False,
            }
            model = fit_and_save(load_config(overrides=overrides))
        server, url = start_server(model, {})
        try:
            quiet = run(url, server.pid, 10, None)
            attacked = run(url, server.pid, args.seconds, args.half_open)
        finally:
            server.terminate()
            server.wait()
    report = {"quiet": quiet, "under attack": attacked, "half_open": args.half_open}
    print(json.dumps(report, indent=2))
    out = ROOT / "benchmarks" / "results" / "attack.json"
    out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
