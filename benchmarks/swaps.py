"""Several models and swaps under load: what `textcnn serve` does while its model changes.

    python benchmarks/swaps.py [--seconds 60] [--swaps 10]

Two models are trained on MR (the ngram recipe, 2 epochs, two seeds: two versions of one
model). Then, on one server (one worker, an API key):

1. wrk sends single-text requests over 64 connections for ``--seconds`` with no swap
   (the baseline), then again while the served directory is replaced by the other version
   and ``POST /models/{name}/reload`` is called ``--swaps`` times, evenly spaced. wrk's Lua
   counts non-200 answers and every ``model.version`` seen.
2. 20 more swaps, one after another, with the server's resident memory after each.
3. A server holding both models (``--model a=... --model b=...``) against one server per
   model: 1,000 MR texts sent to each, labels and scores compared, and the per-model
   ``/metrics`` request counts against the requests sent.

Reads ``$TEXTCNN_DATA_DIR``; writes ``benchmarks/results/swaps.json`` and prints a summary.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import httpx
from serving import DATA, mr_sentences_for_wrk, start_server

from textcnn.training.config import load_config
from textcnn.training.pipeline import fit_and_save

KEY = "bench-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
# POST one text; count statuses and versions in every wrk thread, sum them at the end
WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %s"
wrk.body = %s
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) versions = {}; bad = 0 end
function response(status, headers, body)
  if status ~= 200 then bad = bad + 1 end
  local v = string.match(body, '"version":"(%%x+)"')
  if v then versions[v] = (versions[v] or 0) + 1 end
end
function done(summary, latency, requests)
  local all, non200 = {}, 0
  for _, t in ipairs(threads) do
    non200 = non200 + t:get("bad")
    for k, n in pairs(t:get("versions")) do all[k] = (all[k] or 0) + n end
  end
  local parts = {}
  for k, n in pairs(all) do table.insert(parts, string.format('"%%s": %%d', k, n)) end
  io.write(string.format(
    '{"requests": %%d, "seconds": %%f, "p50_ms": %%f, "p99_ms": %%f, "errors": %%d, ' ..
    '"non_200": %%d, "versions": {%%s}}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.timeout, non200, table.concat(parts, ", ")))
end
"""


def wrk(url: str, text: str, seconds: int, tmp: Path) -> dict:
    script = tmp / "swaps.lua"
    script.write_text(WRK_SCRIPT % (KEY, json.dumps(json.dumps({"text": text}))))
    command = ["wrk", "-t2", "-c64", f"-d{seconds}s", "--timeout", "10s", "-s", str(script)]
    output = subprocess.run(
        [*command, f"{url}/classify"], capture_output=True, text=True, check=True
    ).stdout
    result = json.loads(output.strip().splitlines()[-1])
    result["requests_per_s"] = result["requests"] / result["seconds"]
    return result


def swap(served: Path, source: Path, url: str, name: str) -> float:
    """Replace ``served`` by a copy of ``source`` (two renames), reload; seconds taken."""
    staged, old = served.with_name("staged"), served.with_name("old")
    shutil.copytree(source, staged)
    started = time.perf_counter()
    served.rename(old)
    staged.rename(served)
    shutil.rmtree(old)
    answer = httpx.post(f"{url}/models/{name}/reload", headers=AUTH, timeout=120)
    answer.raise_for_status()
    return time.perf_counter() - started


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024


def classify_all(url: str, texts: list[str], model: str | None) -> list[dict]:
    out = []
    with httpx.Client(timeout=60, headers=AUTH) as client:
        for start in range(0, len(texts), 50):
            body = {"texts": texts[start : start + 50], "top_k": None}
            if model:
                body["model"] = model
            answer = client.post(f"{url}/classify", json=body)
            answer.raise_for_status()
            out += answer.json()["results"]
    return out


def largest_difference(a: list[dict], b: list[dict]) -> tuple[int, float]:
    labels = sum(x["label"] != y["label"] for x, y in zip(a, b, strict=True))
    scores = max(
        abs(p["score"] - {q["label"]: q["score"] for q in y["labels"]}[p["label"]])
        for x, y in zip(a, b, strict=True)
        for p in x["labels"]
    )
    return labels, scores


def requests_counted(url: str, model: str) -> int:
    text = httpx.get(f"{url}/metrics", headers=AUTH, timeout=10).text
    pattern = rf'textcnn_requests_total\{{model="{model}",route="/classify",status="200"\}} (\S+)'
    found = re.search(pattern, text)
    return int(float(found.group(1))) if found else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--swaps", type=int, default=10)
    args = parser.parse_args()
    texts = mr_sentences_for_wrk()
    report = {}
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        versions = []
        for seed in (1, 2):
            overrides = {"data": str(DATA / "mr" / "all.tsv"), "recipe": "ngram", "epochs": 2}
            overrides.update(output=str(tmp / f"v{seed}"), seed=seed, progress=False)
            versions.append(fit_and_save(load_config(overrides=overrides)))
        served = tmp / "models" / "served"
        shutil.copytree(versions[0], served)
        process, url = start_server(served, {"API_KEY": KEY})
        try:
            name = httpx.get(f"{url}/models", headers=AUTH).json()["default"]
            wrk(url, texts[0], 3, tmp)  # warm-up
            report["baseline"] = wrk(url, texts[0], args.seconds, tmp)
            print("no swaps:", json.dumps(report["baseline"]), flush=True)
            swaps_done, took = [], []

            def swapper() -> None:
                for n in range(args.swaps):
                    time.sleep(args.seconds / (args.swaps + 1))
                    took.append(swap(served, versions[(n + 1) % 2], url, name))
                    swaps_done.append(n)

            thread = threading.Thread(target=swapper)
            thread.start()
            report["swapping"] = wrk(url, texts[0], args.seconds, tmp)
            thread.join()
            report["swapping"].update(swaps=len(swaps_done), swap_seconds=took)
            print("swapping:", json.dumps(report["swapping"]), flush=True)
            memory = [rss_mb(process.pid)]
            for n in range(20):
                swap(served, versions[n % 2], url, name)
                memory.append(rss_mb(process.pid))
            report["rss_mb_across_20_swaps"] = memory
            print("RSS MB:", [round(m) for m in memory], flush=True)
        finally:
            process.terminate()
            process.wait()
        report["weights_mb"] = (versions[0] / "model.safetensors").stat().st_size / 2**20
        sample = texts[:1000]
        both, both_url = start_server(versions[0], {"API_KEY": KEY}, extra=[
            "--model", f"b={versions[1]}",
        ])  # fmt: skip
        alone_a, url_a = start_server(versions[0], {"API_KEY": KEY})
        alone_b, url_b = start_server(versions[1], {"API_KEY": KEY})
        try:
            name_a = httpx.get(f"{both_url}/models", headers=AUTH).json()["default"]
            together_a = classify_all(both_url, sample, None)
            together_b = classify_all(both_url, sample, "b")
            report["two_models"] = {
                "texts": len(sample),
                "a_vs_own_server": largest_difference(
                    together_a, classify_all(url_a, sample, None)
                ),
                "b_vs_own_server": largest_difference(
                    together_b, classify_all(url_b, sample, None)
                ),
                "requests_sent": {name_a: len(sample) // 50, "b": len(sample) // 50},
                "requests_counted": {
                    name_a: requests_counted(both_url, name_a),
                    "b": requests_counted(both_url, "b"),
                },
            }
        finally:
            for process in (both, alone_a, alone_b):
                process.terminate()
                process.wait()
    print("two models:", json.dumps(report["two_models"]))
    out = Path(__file__).parent / "results" / "swaps.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    base, swapping = report["baseline"], report["swapping"]
    ratio = swapping["requests_per_s"] / base["requests_per_s"]
    print(
        f"\nno swaps: {base['requests_per_s']:,.0f} requests/s, {base['non_200']} non-200; "
        f"{swapping['swaps']} swaps: {swapping['requests_per_s']:,.0f} requests/s "
        f"({ratio:.2f}x), {swapping['non_200']} non-200, {swapping['errors']} socket errors, "
        f"versions seen {swapping['versions']}; RSS {memory[0]:.0f} MB before 20 more swaps, "
        f"{max(memory):.0f} MB at most, {memory[-1]:.0f} MB after (weights "
        f"{report['weights_mb']:.1f} MB)"
    )


if __name__ == "__main__":
    main()
