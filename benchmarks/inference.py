"""Prediction speed in process: textcnn (the compiled path, the folded n-gram tables in
PyTorch, and the convolutions) against fastText, on the same MR sentences.

    python benchmarks/inference.py [--epochs 3] [--repeats 3] [--score-lines 1000000]
                                   [--score-repeats 2]

Trains fastText (the ``fasttext-wheel`` package: ``pip install fasttext-wheel``; 25
epochs, word bigrams) and a textcnn model of ``--recipe`` (default: what ``textcnn train``
trains; ``--epochs`` epochs: speed does not depend on them) on MR, then times ``predict``
on all 10,662 sentences, the four alternating, median of ``--repeats`` runs, and the
single-text latency (median of 1,000 calls). Also times the tokenizer alone (Rust
``encode_batch`` against the compiled encoder), and ``--score-lines`` lines of MR (the
corpus repeated) end to end: ``textcnn score`` (read, tokenize, score, write JSONL, in a
process of its own) against fastText's ``predict`` on the same file, read and written
alike, ``--score-repeats`` runs of each taking turns, the fastest kept. Reads
``$TEXTCNN_DATA_DIR`` (default ``../shared/datasets``); writes
``benchmarks/results/inference.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from serving import DATA

import textcnn
from textcnn.text.corpora import read_corpus
from textcnn.text.tokenizer import encode
from textcnn.training.config import load_config
from textcnn.training.pipeline import fit_and_save


def timed(function, repeats: int = 1) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def latency_ms(function, texts: list[str], calls: int = 1000) -> float:
    """Median milliseconds of one call with one text (a different text each call). Each
    predictor runs its calls on its own: taking turns call by call, the others' models
    pushed its tables out of cache, tripling the single-text times of all of them."""
    times = []
    for i in range(calls):
        text = [texts[i % len(texts)]]
        started = time.perf_counter()
        function(text)
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def score_peak(model_dir: Path, source: Path, out: Path) -> tuple[float, float]:
    """(seconds, peak resident MB) of ``textcnn score`` in a process of its own. The peak is
    the child's VmHWM, read while it runs (``ru_maxrss`` would report this process's size:
    a forked child starts with its parent's)."""
    started = time.perf_counter()
    command = [sys.executable, "-m", "textcnn.cli", "score", str(model_dir), str(source)]
    peak = 0.0
    with (out.parent / "score.log").open("w") as log:
        child = subprocess.Popen([*command, "-o", str(out)], stderr=log)
        while child.poll() is None:
            with contextlib.suppress(OSError):  # the child may end between poll and read
                status = Path(f"/proc/{child.pid}/status").read_text()
                if "VmHWM:" in status:  # not once it has exited
                    peak = max(peak, int(status.split("VmHWM:")[1].split()[0]) / 1024)
            time.sleep(0.05)
    seconds = time.perf_counter() - started
    if child.returncode != 0:
        sys.exit(f"textcnn score failed: {(out.parent / 'score.log').read_text()[-2000:]}")
    return seconds, peak


def score_lines(
    model_dir: Path, fast_text, texts: list[str], lines: int, tmp: Path, repeats: int
) -> dict:
    """``textcnn score`` on ``lines`` lines, and on a tenth of them (flat memory: the same
    peak), and fastText reading the same file, predicting in chunks and writing JSON lines;
    ``repeats`` runs of each, taking turns, the fastest kept (the least disturbed)."""
    source, tenth = tmp / "lines.txt", tmp / "tenth.txt"
    with source.open("w") as handle, tenth.open("w") as short:
        for i in range(lines):
            handle.write(texts[i % len(texts)] + "\n")
            if i < lines // 10:
                short.write(texts[i % len(texts)] + "\n")
    _, peak_tenth = score_peak(model_dir, tenth, tmp / "tenth.jsonl")
    ours, theirs, peak = [], [], 0.0
    for _ in range(repeats):
        (tmp / "scores.jsonl").unlink(missing_ok=True)
        seconds, run_peak = score_peak(model_dir, source, tmp / "scores.jsonl")
        ours.append(seconds)
        peak = max(peak, run_peak)
        started = time.perf_counter()
        with source.open() as rows, (tmp / "fasttext.jsonl").open("w") as out:
            while chunk := [line.rstrip("\n") for line in itertools.islice(rows, 65536)]:
                labels, scores = fast_text.predict(chunk)
                for label, score in zip(labels, scores, strict=True):
                    out.write(json.dumps({"label": label[0][9:], "score": float(score[0])}) + "\n")
        theirs.append(time.perf_counter() - started)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "textcnn score": {
            "lines": lines,
            "rows_per_s": lines / min(ours),
            "rows_per_s_every_run": [lines / s for s in ours],
            "peak_rss_mb": peak,
            f"peak_rss_mb_{lines // 10}_lines": peak_tenth,
        },
        "fastText predict": {
            "lines": lines,
            "rows_per_s": lines / min(theirs),
            "rows_per_s_every_run": [lines / s for s in theirs],
            "peak_rss_mb": before,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--recipe", default="default", help="the textcnn recipe to time")
    parser.add_argument("--score-lines", type=int, default=1_000_000)
    parser.add_argument("--score-repeats", type=int, default=2)
    args = parser.parse_args()
    try:
        import fasttext
    except ImportError:
        sys.exit("skipped: fastText is not installed (pip install fasttext-wheel)")
    if not (DATA / "mr" / "all.tsv").is_file():
        sys.exit(f"skipped: no MR data at {DATA}; set TEXTCNN_DATA_DIR")
    corpus = read_corpus(DATA / "mr" / "all.tsv")
    texts = corpus.texts
    with tempfile.TemporaryDirectory() as tmp:
        lines = Path(tmp) / "mr.ft"
        lines.write_text(
            "".join(f"__label__{y} {x}\n" for x, y in zip(texts, corpus.labels, strict=True))
        )
        fast_text = fasttext.train_supervised(
            input=str(lines), epoch=25, wordNgrams=2, verbose=0, thread=2
        )
        overrides = {"data": str(DATA / "mr" / "all.tsv"), "epochs": args.epochs}
        overrides["recipe"] = args.recipe
        model_dir = fit_and_save(
            load_config(overrides={**overrides, "output": f"{tmp}/mr", "progress": False})
        )
        compiled = textcnn.load(model_dir)  # the default: compiled tables
        folded = textcnn.load(model_dir, inference="folded")
        conv = textcnn.load(model_dir, inference="conv")
        assert compiled.inference["path"] == "compiled", compiled.inference
        runs = {
            "fastText": lambda batch: fast_text.predict(batch),
            "textcnn (compiled)": compiled.predict,
            "textcnn (folded)": folded.predict,
            "textcnn (conv)": conv.predict,
        }
        for run in runs.values():  # warm-up
            run(texts[:512])
        seconds = {name: [] for name in runs}
        for _ in range(args.repeats):  # alternating, so that noise hits all alike
            for name, run in runs.items():
                seconds[name].append(timed(lambda run=run: run(texts)))
        rates = {name: len(texts) / statistics.median(s) for name, s in seconds.items()}
        latency = {name: latency_ms(run, texts) for name, run in runs.items()}
        tokenizer = folded.tokenizer
        tokens = {
            "Rust encode_batch": len(texts) / timed(lambda: encode(tokenizer, texts), 5),
            "compiled encoder": len(texts) / timed(lambda: compiled.encode(texts), 5),
        }
        scoring = score_lines(
            model_dir, fast_text, texts, args.score_lines, Path(tmp), args.score_repeats
        )
    ratio = rates["textcnn (compiled)"] / rates["fastText"]
    result = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "recipe": compiled.card.settings.get("recipe"),
        "texts": len(texts),
        "sentences_per_s": rates,
        "single_text_latency_ms": latency,
        "ratio_compiled_to_fasttext": ratio,
        "speedup_compiled_over_folded": rates["textcnn (compiled)"] / rates["textcnn (folded)"],
        "speedup_folded_over_conv": rates["textcnn (folded)"] / rates["textcnn (conv)"],
        "tokenizer_texts_per_s": tokens,
        "table_mb": compiled.inference["table_mb"],
        "score": scoring,
    }
    out = Path(__file__).parent / "results" / "inference.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print("| predictor | sentences/s | single-text latency (ms) |\n|---|---|---|")
    for name in runs:
        print(f"| {name} | {rates[name]:,.0f} | {latency[name]:.3f} |")
    print(
        f"\nratio textcnn (compiled) / fastText: {ratio:.2f}; compiled over folded: "
        f"{result['speedup_compiled_over_folded']:.1f}x; folded over conv: "
        f"{result['speedup_folded_over_conv']:.1f}x; tables {result['table_mb']} MB"
    )
    for name, rate in tokens.items():
        print(f"tokenizer, {name}: {rate:,.0f} texts/s")
    for name, run in scoring.items():
        print(
            f"{run['lines']:,} lines end to end, {name}: {run['rows_per_s']:,.0f} rows/s, "
            f"peak memory {run['peak_rss_mb']:,.0f} MB"
        )


if __name__ == "__main__":
    main()
