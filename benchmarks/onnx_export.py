"""The ONNX export against the model directory it came from, on SST-2 and TREC test.

    python benchmarks/onnx_export.py [--epochs 3]

For each set, the default recipe (minilm-ngram: MiniLM's WordPiece embeddings and the
n-gram channel) is trained for ``--epochs`` on the train split (the agreement of the files,
not the model's best accuracy, is what is measured), exported to fp32 and int8 ONNX, and
every test text is scored three ways: ``textcnn.load`` (the compiled path, the default,
and the folded path), ONNX Runtime on the fp32 file and on the int8 file
(``textcnn.export.OnnxClassifier``). Reported: labels that differ, the largest score
difference, accuracy, file sizes, and in-process sentences/s (median of 5 passes over the
test set, batches of 256, one thread each, in the same run). Reads ``$TEXTCNN_DATA_DIR``;
writes ``benchmarks/results/onnx_export.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

import textcnn
from textcnn.export import OnnxClassifier, export_onnx
from textcnn.text.corpora import read_corpus
from textcnn.training.config import load_config
from textcnn.training.pipeline import fit_and_save

DATA = Path(
    os.environ.get("TEXTCNN_DATA_DIR", Path(__file__).parents[1] / ".." / "shared" / "datasets")
)
SETS = {"sst2": ("train.tsv", "test.tsv"), "trec": ("train.tsv", "test.tsv")}


def sentences_per_s(predict, texts: list[str]) -> float:
    predict(texts[:256])  # warm-up
    times = []
    for _ in range(5):
        started = time.perf_counter()
        predict(texts)
        times.append(time.perf_counter() - started)
    return len(texts) / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    if not (DATA / "sst2" / "train.tsv").is_file():
        sys.exit(f"skipped: no SST-2 data at {DATA}; set TEXTCNN_DATA_DIR")
    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        for name, (train, test) in SETS.items():
            overrides = {
                "data": str(DATA / name / train),
                "output": str(tmp / name),
                "epochs": args.epochs,
                "progress": False,
                "recipe": "default",
            }
            model_dir = fit_and_save(load_config(overrides=overrides))
            corpus = read_corpus(DATA / name / test)
            texts, gold = corpus.texts, corpus.labels
            loaded = textcnn.load(model_dir)
            folded = textcnn.load(model_dir, inference="folded")
            expected = loaded.predict_proba(texts)
            row = {"set": name, "texts": len(texts), "recipe": loaded.card.settings.get("recipe")}
            ours = [loaded.labels[i] for i in expected.argmax(1).tolist()]
            row["accuracy"] = sum(a == b for a, b in zip(ours, gold, strict=True)) / len(gold)
            row["weights_mb"] = (model_dir / "model.safetensors").stat().st_size / 2**20
            for kind in ("fp32", "int8"):
                out = tmp / f"{name}-{kind}" / "model.onnx"
                export_onnx(model_dir, out, int8=kind == "int8")
                exported = OnnxClassifier(out, threads=1)
                got = exported.predict_proba(texts)
                labels = [exported.labels[i] for i in got.argmax(1).tolist()]
                row[kind] = {
                    "file_mb": out.stat().st_size / 2**20,
                    "labels_differing": sum(a != b for a, b in zip(labels, ours, strict=True)),
                    "max_score_difference": float((got - expected).abs().max()),
                    "accuracy": sum(a == b for a, b in zip(labels, gold, strict=True)) / len(gold),
                    "sentences_per_s": sentences_per_s(exported.predict_proba, texts),
                }
            row["compiled_sentences_per_s"] = sentences_per_s(loaded.predict_proba, texts)
            row["folded_sentences_per_s"] = sentences_per_s(folded.predict_proba, texts)
            rows.append(row)
            print(json.dumps(row), flush=True)
    out = Path(__file__).parent / "results" / "onnx_export.json"
    out.write_text(json.dumps(rows, indent=2) + "\n")
    print(
        "\n| set | file | MB | labels differing | max score diff | accuracy | sentences/s |"
        "\n|---|---|---|---|---|---|---|"
    )
    for r in rows:
        print(
            f"| {r['set']} | model directory | {r['weights_mb']:.1f} | - | - | "
            f"{100 * r['accuracy']:.2f} | {r['folded_sentences_per_s']:,.0f} (folded), "
            f"{r['compiled_sentences_per_s']:,.0f} (compiled) |"
        )
        for kind in ("fp32", "int8"):
            k = r[kind]
            print(
                f"| {r['set']} | ONNX {kind} | {k['file_mb']:.1f} | {k['labels_differing']} / "
                f"{r['texts']} | {k['max_score_difference']:.1e} | {100 * k['accuracy']:.2f} | "
                f"{k['sentences_per_s']:,.0f} |"
            )


if __name__ == "__main__":
    main()
