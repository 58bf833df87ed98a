"""Scores that mean what they say, and the right to say "not sure": SST-2 and TREC.

    python benchmarks/calibration.py [sst2 trec] [--recipe default] [--min-score 0.9]

Trains ``--recipe`` on each set's given splits (TREC's dev is held out of train) and
reports, on dev and test, the expected calibration error (15 equal-width bins) and
log-loss of the scores before and after calibration (a temperature fitted on dev with the
n-gram channel's weight), the accuracy (a temperature does not move the answers), and at
``--min-score`` the share of test texts answered and the accuracy on them. Reads
``$TEXTCNN_DATA_DIR``; writes ``benchmarks/results/calibration.json``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from serving import DATA

import textcnn
from textcnn.artifacts import read_json
from textcnn.text.corpora import ReaderOptions
from textcnn.training.config import load_config
from textcnn.training.pipeline import evaluate_data, fit_and_save


def run(name: str, recipe: str, min_score: float, tmp: str) -> dict:
    folder = DATA / name
    overrides = {
        "data": str(folder / "train.tsv"),
        "test": str(folder / "test.tsv"),
        "output": f"{tmp}/{name}",
        "recipe": recipe,
        "progress": False,
    }
    if (folder / "dev.tsv").is_file():
        overrides["dev"] = str(folder / "dev.tsv")
    model_dir = fit_and_save(load_config(overrides=overrides))
    metrics = read_json(model_dir / "metrics.json")
    row = {"temperature": read_json(model_dir / "config.json")["temperature"]}
    for split in ("dev", "test"):
        calibration = metrics[split]["calibration"]
        row[split] = {
            "accuracy": round(100 * metrics[split]["accuracy"], 2),
            **{key: round(calibration[key], 4) for key in
               ("ece_before", "ece_after", "log_loss_before", "log_loss_after")},
        }  # fmt: skip
    report = evaluate_data(
        textcnn.load(model_dir), str(folder / "test.tsv"), ReaderOptions(), min_score
    )
    abstention = report["abstention"]
    row["abstention"] = {
        "min_score": min_score,
        "coverage": round(100 * abstention["coverage"], 1),
        "accuracy_covered": round(100 * abstention.get("accuracy_covered", 0.0), 2),
    }
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=["sst2", "trec"])
    parser.add_argument("--recipe", default="default")
    parser.add_argument("--min-score", type=float, default=0.9)
    args = parser.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"skipped: no benchmark data at {DATA}; set TEXTCNN_DATA_DIR")
    report = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.names:
            report[name] = run(name, args.recipe, args.min_score, tmp)
            print(name, json.dumps(report[name]), flush=True)
    out = Path(__file__).parent / "results" / "calibration.json"
    out.write_text(json.dumps({"recipe": args.recipe, "sets": report}, indent=2) + "\n")
    print("| set | split | accuracy | ECE before → after | log-loss before → after |")
    print("|---|---|---|---|---|")
    for name, row in report.items():
        for split in ("dev", "test"):
            r = row[split]
            print(
                f"| {name} | {split} | {r['accuracy']} | {r['ece_before']} → {r['ece_after']} "
                f"| {r['log_loss_before']} → {r['log_loss_after']} |"
            )
    for name, row in report.items():
        a = row["abstention"]
        print(
            f"{name} test at min score {a['min_score']}: answers {a['coverage']}% of the "
            f"texts, {a['accuracy_covered']}% of them right"
        )


if __name__ == "__main__":
    main()
