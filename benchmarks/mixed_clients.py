"""Honest clients beside a hostile one: does one client's text hurt the others?

    python benchmarks/mixed_clients.py [--model MODEL_DIR] [--seconds 60]

Seven clients send MR sentences one per request while an eighth sends texts with a lone
UTF-16 surrogate (valid JSON, ``"a \\udc80"``: once this failed every request batched with
it). All eight share the micro-batching server (``textcnn serve``, defaults) for
``--seconds``. Prints the responses by client kind and status (connection errors
included) and writes ``benchmarks/results/mixed_clients.json``. Without --model, a Kim CNN
is trained on MR for 3 epochs first, as in ``serving.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
from serving import DATA, start_server

from textcnn.text.corpora import read_corpus
from textcnn.training.config import load_config
from textcnn.training.pipeline import fit_and_save

HONEST, HOSTILE = 7, 1
POISON = ['{"text": "a great film \\udc80"}', '{"texts": ["\\ud800", "fine"], "explain": true}']


async def client(url: str, bodies: list[str], until: float, counts: Counter) -> None:
    headers = {"content-type": "application/json"}
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        i = 0
        while time.monotonic() < until:
            try:
                response = await http.post(
                    "/classify", content=bodies[i % len(bodies)], headers=headers
                )
                counts[str(response.status_code)] += 1
            except httpx.HTTPError as error:
                counts[type(error).__name__] += 1
            i += 1


async def mixed(url: str, texts: list[str], seconds: float) -> dict[str, Counter]:
    until = time.monotonic() + seconds
    honest, hostile = Counter(), Counter()
    honest_bodies = [json.dumps({"text": t}) for t in texts]
    await asyncio.gather(
        *(client(url, honest_bodies[i::HONEST], until, honest) for i in range(HONEST)),
        *(client(url, POISON, until, hostile) for _ in range(HOSTILE)),
    )
    return {"honest": honest, "hostile": hostile}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    if not (DATA / "mr" / "all.tsv").is_file():
        raise SystemExit(f"skipped: no MR data at {DATA}; set TEXTCNN_DATA_DIR")
    texts = read_corpus(DATA / "mr" / "all.tsv").texts
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model
        if model is None:
            overrides = {"data": str(DATA / "mr" / "all.tsv"), "epochs": 3}
            overrides.update(output=f"{tmp}/mr", progress=False)
            model = fit_and_save(load_config(overrides=overrides))
        process, url = start_server(model, {})
        try:
            counts = asyncio.run(mixed(url, texts, args.seconds))
        finally:
            process.terminate()
            process.wait()
    result = {"seconds": args.seconds, **{k: dict(v) for k, v in counts.items()}}
    result["honest_non_200"] = sum(n for k, n in counts["honest"].items() if k != "200")
    (Path(__file__).parent / "results" / "mixed_clients.json").write_text(
        json.dumps(result, indent=2) + "\n"
    )
    print("| clients | status | responses |\n|---|---|---|")
    for kind, counter in counts.items():
        for status, n in sorted(counter.items()):
            print(f"| {kind} | {status} | {n:,} |")
    print(f"\nhonest responses other than 200: {result['honest_non_200']}")


if __name__ == "__main__":
    main()
