"""The compiled path against the convolutions on every text of the benchmark corpora: the
largest logit difference and whether the explanation spans are the same, for each recipe.

    python benchmarks/compiled_equality.py [mr subj sst2 sst5 trec] [goemotions]
        [--recipe NAME ...] [--epochs 1]

For each corpus and recipe a model is trained (``--epochs``: the arithmetic checked does not
depend on how long it trained), then every text of the corpus (all its files) is scored by
the compiled path and by the convolutions (``inference="conv"``, one text at a time): the
largest absolute difference of the logits (the scores before the softmax, recovered as
log-probabilities, which differ by a constant per text: compared after centring), and the
explanations (``classify(explain=True)``: every evidence span's start, end and text for the
assigned labels) compared span by span. Reads ``$TEXTCNN_DATA_DIR``; writes
``benchmarks/results/compiled_equality.json``; exits 1 when a logit differs by more than
1e-4 or a span differs.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import torch
from text_accuracy import DATA

import textcnn
from textcnn.text.corpora import ReaderOptions, read_corpus
from textcnn.training.config import RECIPES, load_config
from textcnn.training.pipeline import fit_and_save

CORPORA = ("mr", "subj", "sst2", "sst5", "trec", "goemotions")
RECIPE_NAMES = [name for name in RECIPES if name != "distilled"]  # distilled: ngram's network
TOLERANCE = 1e-4


def texts_of(name: str) -> tuple[Path, list[str]]:
    """The training file and every text of the corpus (all its files)."""
    folder = DATA / name
    files = sorted(folder.glob("*.tsv"))
    train = folder / ("all.tsv" if (folder / "all.tsv").exists() else "train.tsv")
    texts: list[str] = []
    for path in files:
        field = "labels" if name == "goemotions" else "label"
        texts += read_corpus(path, ReaderOptions(label_field=field)).texts
    return train, texts


def logits(classifier, texts: list[str]) -> torch.Tensor:
    """Log-probabilities without calibration, centred per text: the logits up to a constant
    (softmax), or the logits themselves (a sigmoid per label: log p - log(1 - p))."""
    p = classifier.predict_proba(texts, calibrated=False).double().clamp(1e-12, 1 - 1e-12)
    if classifier.multi_label:
        return (p.log() - (-p).log1p()).float()
    lp = p.log()
    return (lp - lp.mean(1, keepdim=True)).float()


def spans(results) -> list:
    return [[(e.start, e.end, e.text) for e in r.evidence] for r in results]


def check(name: str, recipe: str, epochs: int, work: Path) -> dict:
    train, texts = texts_of(name)
    overrides = {"data": str(train), "recipe": recipe, "epochs": epochs, "progress": False}
    overrides["output"] = str(work / f"{name}-{recipe}")
    if name == "goemotions":
        overrides["label_field"] = "labels"
    started = time.perf_counter()
    model_dir = fit_and_save(load_config(overrides=overrides))
    compiled = textcnn.load(model_dir, inference="compiled")
    conv = textcnn.load(model_dir, inference="conv")
    assert compiled.inference["path"] == "compiled", compiled.inference
    difference = (logits(compiled, texts) - logits(conv, texts)).abs().max().item()
    mismatched = 0
    for start in range(0, len(texts), 2048):
        batch = texts[start : start + 2048]
        mine = spans(compiled.classify(batch, explain=True))
        theirs = spans(conv.classify(batch, explain=True))
        mismatched += sum(a != b for a, b in zip(mine, theirs, strict=True))
    return {
        "corpus": name,
        "recipe": recipe,
        "texts": len(texts),
        "max_logit_difference": difference,
        "texts_with_other_spans": mismatched,
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # checked below: Python 3.11's argparse tests an empty nargs="*" against the choices
    parser.add_argument("corpora", nargs="*", help=f"of {', '.join(CORPORA)}; default: the first 5")
    parser.add_argument("--recipe", nargs="+", default=RECIPE_NAMES, choices=RECIPE_NAMES)
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    args.corpora = args.corpora or list(CORPORA[:5])
    if unknown := [name for name in args.corpora if name not in CORPORA]:
        parser.error(f"unknown corpora {', '.join(unknown)}; choose from {', '.join(CORPORA)}")
    logging.basicConfig(level=logging.WARNING)
    missing = [name for name in args.corpora if not (DATA / name).is_dir()]
    if missing:
        sys.exit(f"skipped: no {', '.join(missing)} under {DATA}; set TEXTCNN_DATA_DIR")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.corpora:
            for recipe in args.recipe:
                rows.append(check(name, recipe, args.epochs, Path(tmp)))
                print(json.dumps(rows[-1]), flush=True)
    out = Path(__file__).parent / "results" / "compiled_equality.json"
    out.write_text(json.dumps({"tolerance": TOLERANCE, "rows": rows}, indent=2) + "\n")
    bad = [r for r in rows if r["max_logit_difference"] > TOLERANCE or r["texts_with_other_spans"]]
    texts = sum(r["texts"] for r in rows)
    print(f"{len(rows)} models, {texts:,} texts scored both ways; {len(bad)} over the tolerance")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
