"""Several labels per text: GoEmotions (27 emotions + neutral) with textcnn and its peers.

    python benchmarks/multilabel.py [--recipe default] [--skip-peers]

Trains textcnn (``--recipe``, default: what ``textcnn train`` trains) on GoEmotions' train
split, with thresholds and calibration fitted on dev, and reports test macro-F1 (the
paper's measure), micro-F1, subset accuracy and training time. In the same run, the peers
on the same split, thresholds picked on dev per label, every text given at least its top
label: fastText ``-loss ova`` with bigrams, 25 epochs (``fasttext-wheel``), and TF-IDF of
uni- and bigrams with one-vs-rest logistic regression (scikit-learn); a peer that is not
installed is skipped, said in the output. Reads ``$TEXTCNN_DATA_DIR``; writes
``benchmarks/results/multilabel.json``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from serving import DATA

import textcnn
from textcnn.text.corpora import ReaderOptions, read_corpus
from textcnn.training.calibration import pick_thresholds
from textcnn.training.config import load_config
from textcnn.training.pipeline import fit_and_save

SET = DATA / "goemotions"
READ = ReaderOptions(label_field="labels", multi_label=True)


def targets(rows: list[tuple[str, ...]], labels: list[str]) -> torch.Tensor:
    index = {label: i for i, label in enumerate(labels)}
    out = torch.zeros(len(rows), len(labels), dtype=torch.bool)
    for n, row in enumerate(rows):
        out[n, [index[label] for label in row]] = True
    return out


def scores(chosen: torch.Tensor, truth: torch.Tensor) -> dict:
    true_pos = (chosen & truth).sum(0).float()
    f1 = 2 * true_pos / (chosen.sum(0) + truth.sum(0)).clamp(min=1)
    micro = 2 * true_pos.sum() / (chosen.sum() + truth.sum()).clamp(min=1)
    return {
        "macro_f1": round(100 * float(f1.mean()), 2),
        "micro_f1": round(100 * float(micro), 2),
        "subset_accuracy": round(100 * float((chosen == truth).all(1).float().mean()), 2),
    }


def decide(dev_p, dev_y, test_p, test_y) -> dict:
    """A peer's test scores with per-label thresholds picked on dev (as textcnn does), every
    text given at least its top label."""
    thresholds, _ = pick_thresholds(dev_p, dev_y, min_support=5)
    chosen = test_p >= torch.tensor(thresholds)
    chosen[torch.arange(len(test_p)), test_p.argmax(1)] = True
    return scores(chosen, test_y)


def fasttext_peer(splits, labels, tmp: Path) -> dict:
    import fasttext

    lines = tmp / "train.ft"
    train = splits["train"]
    lines.write_text(
        "".join(
            " ".join(f"__label__{label}" for label in row) + " " + text.replace("\n", " ") + "\n"
            for text, row in zip(train.texts, train.labels, strict=True)
        )
    )
    started = time.perf_counter()
    model = fasttext.train_supervised(
        input=str(lines), loss="ova", wordNgrams=2, epoch=25, verbose=0, thread=2
    )
    seconds = time.perf_counter() - started

    def probabilities(corpus) -> torch.Tensor:
        out = torch.zeros(len(corpus), len(labels))
        names, probs = model.predict([t.replace("\n", " ") for t in corpus.texts], k=-1)
        for n, (row_names, row_probs) in enumerate(zip(names, probs, strict=True)):
            for name, p in zip(row_names, row_probs, strict=True):
                out[n, labels.index(name.removeprefix("__label__"))] = float(p)
        return out

    dev, test = splits["dev"], splits["test"]
    result = decide(probabilities(dev), targets(dev.labels, labels),
                    probabilities(test), targets(test.labels, labels))  # fmt: skip
    return {**result, "train_seconds": round(seconds, 1)}


def tfidf_peer(splits, labels) -> dict:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    started = time.perf_counter()
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    train = splits["train"]
    x = vectorizer.fit_transform(train.texts)
    y = targets(train.labels, labels).numpy()
    model = OneVsRestClassifier(LogisticRegression(max_iter=1000, C=4.0), n_jobs=2).fit(x, y)
    seconds = time.perf_counter() - started

    def probabilities(corpus) -> torch.Tensor:
        return torch.tensor(model.predict_proba(vectorizer.transform(corpus.texts)))

    dev, test = splits["dev"], splits["test"]
    result = decide(probabilities(dev), targets(dev.labels, labels),
                    probabilities(test), targets(test.labels, labels))  # fmt: skip
    return {**result, "train_seconds": round(seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="default")
    parser.add_argument("--skip-peers", action="store_true")
    args = parser.parse_args()
    if not (SET / "train.tsv").is_file():
        raise SystemExit(f"skipped: no GoEmotions at {SET}; set TEXTCNN_DATA_DIR")
    splits = {name: read_corpus(SET / f"{name}.tsv", READ) for name in ("train", "dev", "test")}
    report: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        overrides = {
            "data": str(SET / "train.tsv"),
            "dev": str(SET / "dev.tsv"),
            "test": str(SET / "test.tsv"),
            "label_field": "labels",
            "output": f"{tmp}/goemotions",
            "recipe": args.recipe,
            "progress": False,
        }
        model_dir = fit_and_save(load_config(overrides=overrides))
        seconds = time.perf_counter() - started
        classifier = textcnn.load(model_dir)
        labels = classifier.labels
        test = splits["test"]
        chosen = classifier.assigned(classifier.predict_proba(test.texts))
        card = classifier.card
        report["textcnn"] = {
            **scores(chosen, targets(test.labels, labels)),
            "recipe": card.settings.get("recipe"),
            "train_seconds": round(seconds, 1),
            "best_epoch": card.best_epoch,
            "ngram_weight": card.model.ngram_weight,
            "temperature": card.temperature,
            "test_ece": card.metrics["test"]["ece"],
        }
        print(json.dumps(report["textcnn"]), flush=True)
        peers = (
            {}
            if args.skip_peers
            else {
                "fastText -loss ova": lambda: fasttext_peer(splits, labels, Path(tmp)),
                "TF-IDF + LR": lambda: tfidf_peer(splits, labels),
            }
        )
        for name, peer in peers.items():
            try:
                report[name] = peer()
            except ImportError as error:
                report[name] = f"skipped: {error.name} is not installed"
            print(name, json.dumps(report[name]), flush=True)
    out = Path(__file__).parent / "results" / "multilabel.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(
        "| system | test macro-F1 | micro-F1 | subset accuracy | training |\n|---|---|---|---|---|"
    )
    for name, row in report.items():
        if isinstance(row, dict):
            print(
                f"| {name} | {row['macro_f1']} | {row['micro_f1']} | {row['subset_accuracy']} "
                f"| {row['train_seconds'] / 60:.1f} min |"
            )


if __name__ == "__main__":
    main()
