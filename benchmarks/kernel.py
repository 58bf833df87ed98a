"""Where the compiled path's time goes: the kernel alone (no tokenizer, no Python around
it), on one thread and on all, with the tables' rows out of cache (the real vocabulary)
and in cache (every id folded onto 500 tokens); one text, warm and cold; the tokenizer;
importing textcnn and loading the model in a fresh process.

    python benchmarks/kernel.py [--model DIR] [--repeats 7]

Without ``--model`` it trains the default recipe on MR for one epoch (speed does not
depend on training). Reads ``$TEXTCNN_DATA_DIR``; writes ``benchmarks/results/kernel.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from text_accuracy import DATA

import textcnn
import textcnn.models.compiled as compiled
from textcnn.text.corpora import read_corpus
from textcnn.training.config import load_config
from textcnn.training.pipeline import fit_and_save


def rate(function, items: int, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return items / statistics.median(times)


def microseconds(function, calls) -> float:
    times = []
    for args in calls:
        started = time.perf_counter()
        function(*args)
        times.append(time.perf_counter() - started)
    return 1e6 * statistics.median(times)


def load_seconds(model_dir: Path, repeats: int = 3) -> float:
    """Median seconds a fresh process takes to import textcnn and load ``model_dir`` (the
    textcnn on ``PYTHONPATH``, so that another checkout can be timed alike)."""
    code = (
        "import sys, time; started = time.perf_counter(); import textcnn; "
        "textcnn.load(sys.argv[1]); print(time.perf_counter() - started)"
    )
    command = [sys.executable, "-c", code, str(model_dir)]
    runs = [
        subprocess.run(command, capture_output=True, text=True, check=True) for _ in range(repeats)
    ]
    return statistics.median(float(run.stdout) for run in runs)


def measure(model_dir: Path, texts: list[str], repeats: int) -> dict:
    classifier = textcnn.load(model_dir)
    kernel = classifier.compiled
    encoded = classifier.encode(texts)
    ids, offsets = encoded.flat, encoded.offsets
    cached = ids % 500  # every text on 500 tokens: their rows stay in cache
    kernel(ids, offsets)
    result = {}
    for name, threads in (("one thread", 10**9), ("all threads", compiled.PARALLEL_FROM)):
        compiled.PARALLEL_FROM = threads
        result[f"texts_per_s, {name}"] = rate(lambda: kernel(ids, offsets), len(texts), repeats)
        result[f"texts_per_s, {name}, rows in cache"] = rate(
            lambda: kernel(cached, offsets), len(texts), repeats
        )
    single = [classifier.encode([text]) for text in texts[:2000]]
    one = [(e.flat, e.offsets) for e in single]
    result["one text, us (a different text each call)"] = microseconds(kernel, one)
    result["one text, us (the same text again)"] = microseconds(kernel, [one[0]] * 2000)
    result["tokenizer, one text, us"] = microseconds(
        classifier.encode, [([t],) for t in texts[:2000]]
    )
    result["tokenizer, texts_per_s"] = rate(lambda: classifier.encode(texts), len(texts), repeats)
    result["tokens_per_text"] = len(ids) / len(texts)
    result["import and load, s (a fresh process)"] = load_seconds(model_dir)
    result["table_mb"] = classifier.inference["table_mb"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    if not (DATA / "mr" / "all.tsv").is_file():
        sys.exit(f"skipped: no MR data at {DATA}; set TEXTCNN_DATA_DIR")
    texts = read_corpus(DATA / "mr" / "all.tsv").texts
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model
        if model_dir is None:
            overrides = {"data": str(DATA / "mr" / "all.tsv"), "epochs": 1, "progress": False}
            model_dir = fit_and_save(load_config(overrides={**overrides, "output": tmp}))
        result = measure(model_dir, texts, args.repeats)
    out = Path(__file__).parent / "results" / "kernel.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    for name, value in result.items():
        print(f"{name}: {value:,.1f}")


if __name__ == "__main__":
    main()
