"""Prediction speed in process: textcnn (folded n-gram tables, and the convolutions it
replaces) against fastText, on the same MR sentences.

    python benchmarks/inference.py [--epochs 3] [--repeats 3]

Trains fastText (the ``fasttext-wheel`` package: ``pip install fasttext-wheel``; 25
epochs, word bigrams) and a textcnn model of ``--recipe`` (default: what ``textcnn train``
trains; ``--epochs`` epochs: speed does not depend on them) on MR, then times ``predict``
on all 10,662 sentences, the three alternating, median of ``--repeats`` runs, and the
single-text latency (median of 1,000 calls). Also times the tokenizer alone (Rust
``encode_batch`` against the fast word encoder). Reads ``$TEXTCNN_DATA_DIR`` (default
``../shared/datasets``); writes ``benchmarks/results/inference.json`` and prints a
Markdown table.
"""

from __future__ import annotations

import argparse
import json
import statistics
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
    times = []
    for i in range(calls):
        text = [texts[i % len(texts)]]
        started = time.perf_counter()
        function(text)
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--recipe", default="default", help="the textcnn recipe to time")
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
        folded = textcnn.load(model_dir)  # the default: folded tables
        conv = textcnn.load(model_dir, inference="conv")
        assert folded.inference["path"] == "folded", folded.inference
        runs = {
            "fastText": lambda batch: fast_text.predict(batch),
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
            "fast word encoder": len(texts) / timed(lambda: folded.encode(texts), 5),
        }
    ratio = rates["textcnn (folded)"] / rates["fastText"]
    result = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "texts": len(texts),
        "sentences_per_s": rates,
        "single_text_latency_ms": latency,
        "ratio_folded_to_fasttext": ratio,
        "speedup_folded_over_conv": rates["textcnn (folded)"] / rates["textcnn (conv)"],
        "tokenizer_texts_per_s": tokens,
        "table_mb": folded.inference["table_mb"],
    }
    out = Path(__file__).parent / "results" / "inference.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print("| predictor | sentences/s | single-text latency (ms) |\n|---|---|---|")
    for name in runs:
        print(f"| {name} | {rates[name]:,.0f} | {latency[name]:.3f} |")
    print(
        f"\nratio textcnn (folded) / fastText: {ratio:.2f}; folded over conv: "
        f"{result['speedup_folded_over_conv']:.1f}x; tables {folded.inference['table_mb']} MB"
    )
    for name, rate in tokens.items():
        print(f"tokenizer, {name}: {rate:,.0f} texts/s")


if __name__ == "__main__":
    main()
