"""`textcnn tune` on the sentence benchmarks: what a search of ``--budget`` finds, against
the default recipe and Kim (2014)'s best.

    python benchmarks/tune.py [mr subj sst2 sst5 trec] [--budget 20m] [--folds 10]
        [--max-folds N] [--seed 0]

Each set gets the same command, one search space for all: SST-2 and SST-5 search on their
dev split, TREC on a held-out tenth of its training split, and the final model scores the
test split once. MR and Subj have no split: the search runs on a held-out tenth of the data,
then the winning settings are cross-validated (``--folds``, the first ``--max-folds`` of
them when given), as Kim's numbers are. Reads ``$TEXTCNN_DATA_DIR`` (default
``../shared/datasets``); writes ``benchmarks/results/tune.json`` (a rerun replaces the sets it
ran) and prints a Markdown table with the default recipe's row from
``benchmarks/results/text_accuracy.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

from text_accuracy import DATA, KIM, SETS, TITLES

from textcnn.training.config import load_config
from textcnn.training.pipeline import cross_validate
from textcnn.training.tune import TuneOptions, parse_budget, tune

RESULTS = Path(__file__).parent / "results"


def default_row(name: str) -> float | None:
    """The default recipe's accuracy on ``name`` in %, by the full protocol
    (benchmarks/results/text_accuracy.json)."""
    path = RESULTS / "text_accuracy.json"
    rows = json.loads(path.read_text())["rows"] if path.exists() else []
    for row in rows:
        if (
            row["name"] == name
            and row["recipe"] == "minilm-ngram"
            and "first" not in row["protocol"]
        ):
            return round(100 * row["accuracy"], 2)
    return None


def run(name: str, budget: float, folds: int, max_folds: int | None, seed: int, work: Path):
    folder = DATA / name
    out = work / name
    base: dict = {"output": str(out), "seed": seed}
    whole = (folder / "all.tsv").exists()
    if whole:
        base["data"] = str(folder / "all.tsv")
    else:
        base["data"] = str(folder / "train.tsv")
        base["test"] = str(folder / "test.tsv")
        if (folder / "dev.tsv").exists():
            base["dev"] = str(folder / "dev.tsv")
    started = time.perf_counter()
    found = tune(base, None, TuneOptions(budget, progress=False))
    searched = time.perf_counter() - started
    row = {
        "set": name,
        "budget_s": budget,
        "search_s": round(searched, 1),
        "trials": found["trials"],
        "complete": found["complete"],
        "pruned": found["pruned"],
        "failed": found["failed"],
        "recipe": found["recipe"],
        "settings": found["settings"],
        "dev_accuracy": round(100 * found["dev_score"], 2),
    }
    if whole:  # the winning settings, cross-validated
        settings = {**found["settings"], "recipe": found["recipe"], "progress": False}
        config = load_config(
            overrides={"data": base["data"], "output": str(out / "cv"), "seed": seed, **settings}
        )
        cv = cross_validate(config, folds, max_folds=max_folds)
        row["accuracy"] = round(100 * cv["accuracy_mean"], 2)
        row["protocol"] = f"{len(cv['folds'])} of {folds} folds"
    else:
        metrics = json.loads((Path(found["model_dir"]) / "metrics.json").read_text())
        row["accuracy"] = round(100 * metrics["test"]["accuracy"], 2)
        row["protocol"] = "test split"
    row["kim"] = KIM[name]
    row["default_recipe"] = default_row(name)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sets", nargs="*", default=list(SETS), choices=SETS)
    parser.add_argument("--budget", default="20m")
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument("--max-folds", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    missing = [name for name in args.sets if not (DATA / name).is_dir()]
    if missing:
        sys.exit(f"skipped: no {', '.join(missing)} under {DATA}; set TEXTCNN_DATA_DIR")
    out = RESULTS / "tune.json"
    results = json.loads(out.read_text()) if out.exists() else {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.sets:
            row = run(name, parse_budget(args.budget), args.folds, args.max_folds, args.seed,
                      Path(tmp))  # fmt: skip
            results[name] = row
            out.write_text(json.dumps(results, indent=2) + "\n")
            print(json.dumps(row), flush=True)
    print("\n| set | tuned (%) | protocol | trials | recipe found | default recipe | Kim's best |")
    print("|---|---|---|---|---|---|---|")
    for name in SETS:
        if name in results:
            r = results[name]
            print(
                f"| {TITLES[name]} | {r['accuracy']:.1f} | {r['protocol']} | {r['trials']} "
                f"({r['pruned']} pruned) | {r['recipe']} | {r['default_recipe'] or '-'} | "
                f"{r['kim']} |"
            )


if __name__ == "__main__":
    main()
