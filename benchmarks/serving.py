"""The HTTP service under wrk, and `textcnn score` on a million lines.

    python benchmarks/serving.py [--model MODEL_DIR] [--seconds 10]

Without --model, a Kim CNN is trained on MR for 3 epochs first (the size of the network,
not its accuracy, is what matters here). The server (``textcnn serve``, default settings)
runs with ``--workers 1`` and ``--workers 2`` on 127.0.0.1; wrk (Debian package ``wrk``)
sends single-text requests over 1, 8 and 64 connections and 32-text requests over 8,
``--seconds`` each, from the same two cores. Then ``textcnn score`` scores 1,000,000 MR
lines (the corpus repeated) end to end, with its peak memory. Reads ``$TEXTCNN_DATA_DIR``
(default ``../shared/datasets``); writes ``benchmarks/results/serving.json`` and prints
Markdown tables.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from textcnn.text.corpora import read_corpus
from textcnn.training.config import load_config
from textcnn.training.pipeline import fit_and_save

DATA = Path(
    os.environ.get("TEXTCNN_DATA_DIR", Path(__file__).parents[1] / ".." / "shared" / "datasets")
)
LOADS = [(1, 1), (8, 1), (64, 1), (8, 32)]  # (connections, texts per request)
SCORE_LINES = 1_000_000
# wrk's Lua: POST the body; print the summary as JSON at the end
WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = %s
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %%d, "seconds": %%f, "p50_ms": %%f, "p99_ms": %%f, ' ..
    '"errors": %%d, "non_2xx": %%d}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, e.connect + e.read + e.write + e.timeout, e.status))
end
"""


def start_server(
    model: Path, settings: dict, workers: int = 1, extra: list[str] = (), root: Path | None = None
) -> tuple[subprocess.Popen, str]:
    """A ``textcnn serve`` of ``model`` on a free port, once ready; ``root``: the checkout
    whose textcnn runs (default: the installed one)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, **{f"TEXTCNN_{k}": v for k, v in settings.items()}}
    if root is not None:
        env["PYTHONPATH"] = str(root)
    command = [sys.executable, "-m", "textcnn.cli", "serve", "--model", str(model)]
    process = subprocess.Popen(
        [*command, *extra, "--port", str(port), "--workers", str(workers)],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # refused, then 503 while the model loads
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                time.sleep(2 if workers > 1 else 0)  # the other workers finish loading
                return process, url
        time.sleep(0.2)
    process.terminate()  # not kill(): uvicorn stops its workers on SIGTERM only
    process.wait(timeout=30)
    raise RuntimeError("the server did not become ready")


def wrk(url: str, body: str, connections: int, seconds: int, tmp: Path) -> dict:
    script = tmp / "post.lua"
    script.write_text(WRK_SCRIPT % json.dumps(body))
    threads = min(2, connections)
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "-s", str(script)]
    output = subprocess.run(
        [*command, f"{url}/classify"], capture_output=True, text=True, check=True
    ).stdout
    result = json.loads(output.strip().splitlines()[-1])
    result["requests_per_s"] = result["requests"] / result["seconds"]
    return result


def score_million(model: Path, texts: list[str], tmp: Path) -> dict:
    lines = tmp / "million.txt"
    with lines.open("w") as handle:
        for i in range(SCORE_LINES):
            handle.write(texts[i % len(texts)] + "\n")
    out = tmp / "scores.jsonl"
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "textcnn.cli", "score", str(model), str(lines), "-o", str(out)],
        check=True,
        capture_output=True,
    )
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"rows": SCORE_LINES, "rows_per_s": SCORE_LINES / seconds, "peak_rss_mb": peak_mb}


def mr_sentences_for_wrk() -> list[str]:
    """MR's sentences; without MR or wrk, exit saying which is missing."""
    if not (DATA / "mr" / "all.tsv").is_file():
        sys.exit(f"skipped: no MR data at {DATA}; set TEXTCNN_DATA_DIR")
    if shutil.which("wrk") is None:
        sys.exit("skipped: wrk is not installed (apt-get install wrk)")
    return read_corpus(DATA / "mr" / "all.tsv").texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    texts = mr_sentences_for_wrk()
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        model = args.model
        if model is None:
            overrides = {"data": str(DATA / "mr" / "all.tsv"), "epochs": 3}
            overrides.update(output=str(tmp / "mr"), progress=False)
            model = fit_and_save(load_config(overrides=overrides))
        rows = []
        for workers in (1, 2):
            process, url = start_server(model, {}, workers)
            try:
                for connections, per_request in LOADS:
                    chosen = texts[:per_request]
                    body = json.dumps(
                        {"text": chosen[0]} if per_request == 1 else {"texts": chosen}
                    )
                    wrk(url, body, connections, 2, tmp)  # warm-up
                    result = wrk(url, body, connections, args.seconds, tmp)
                    result.update(
                        workers=workers,
                        connections=connections,
                        texts_per_request=per_request,
                        texts_per_s=result["requests_per_s"] * per_request,
                    )
                    rows.append(result)
                    print(json.dumps(result), flush=True)
            finally:
                process.terminate()
                process.wait()
        score = score_million(model, texts, tmp)
    results = Path(__file__).parent / "results"
    (results / "serving.json").write_text(
        json.dumps({"wrk": rows, "score": score}, indent=2) + "\n"
    )
    print(
        "\n| workers | connections | texts/request | requests/s | texts/s | p50 ms | p99 ms "
        "| errors |\n|---|---|---|---|---|---|---|---|"
    )
    for r in rows:
        print(
            f"| {r['workers']} | {r['connections']} | {r['texts_per_request']} | "
            f"{r['requests_per_s']:,.0f} | {r['texts_per_s']:,.0f} | {r['p50_ms']:.1f} | "
            f"{r['p99_ms']:.1f} | {r['errors'] + r['non_2xx']} |"
        )
    print(
        f"\ntextcnn score, {score['rows']:,} lines: {score['rows_per_s']:,.0f} rows/s, "
        f"peak memory {score['peak_rss_mb']:,.0f} MB"
    )


if __name__ == "__main__":
    main()
