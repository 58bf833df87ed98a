"""Every text recipe on the sentence benchmarks: accuracy and training time per set.

    python benchmarks/text_accuracy.py [mr subj sst2 sst5 trec] [--recipe NAME ...|all]
        [--folds 10] [--max-folds N] [--set KEY=VALUE ...] [--readme]

A recipe is a named route to a text model (``textcnn train --recipe``: rand, ngram, glove,
minilm-wordpiece, distilled; ``default`` is what ``textcnn train`` picks). MR and Subj are
scored by k-fold cross-validation; ``--max-folds N`` runs only the first N folds (the same
splits), for recipes whose folds cost minutes each; the protocol column says so. SST-2,
SST-5 and TREC use their given splits. A run with a teacher also reports the teacher's own
accuracy (test, or dev for folds).

Reads ``$TEXTCNN_DATA_DIR`` (default ``../shared/datasets``). Writes
``benchmarks/results/text_accuracy.json`` (a rerun replaces the rows it ran and keeps the
others; runs with ``--set KEY=VALUE`` go to ``text_accuracy_settings.json``) and prints a
Markdown table of every recipe on every set; ``--readme`` also writes that table into the
README, between its ``accuracy-table`` markers.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

from textcnn.artifacts import read_json
from textcnn.training.config import RECIPES, default_recipe, load_config, parse_overrides
from textcnn.training.pipeline import cross_validate, fit_and_save

DATA = Path(
    os.environ.get("TEXTCNN_DATA_DIR", Path(__file__).parents[1] / ".." / "shared" / "datasets")
)
SETS = ("mr", "subj", "sst2", "sst5", "trec")
TITLES = {"mr": "MR", "subj": "Subj", "sst2": "SST-2", "sst5": "SST-5", "trec": "TREC"}
# Measured by the issue that asked for the recipes (#12) on the same splits: the best of
# fastText, TF-IDF + logistic regression and MiniLM sentence embeddings + logistic regression.
PEERS = {"mr": 78.1, "subj": 92.2, "sst2": 81.4, "sst5": 42.9, "trec": 91.4}
KIM = {"mr": 81.5, "subj": 93.4, "sst2": 88.1, "sst5": 48.0, "trec": 93.6}  # his best, any route
README = Path(__file__).parents[1] / "README.md"
MARKERS = ("<!-- accuracy-table -->", "<!-- /accuracy-table -->")


def run(name: str, folds: int, workdir: Path, settings: dict, max_folds: int | None) -> dict:
    folder = DATA / name
    out = workdir / name
    started = time.perf_counter()
    if (folder / "all.tsv").exists():  # MR, Subj: k-fold cross-validation
        command = f"textcnn cv --data {folder}/all.tsv --folds {folds}"
        cfg = load_config(
            overrides={
                "data": str(folder / "all.tsv"),
                "output": str(out),
                "progress": False,
                **settings,
            }
        )
        result = cross_validate(cfg, folds, max_folds=max_folds)
        ran = len(result["folds"])
        teachers = [f["teacher"] for f in result["folds"] if f.get("teacher")]
        row = {
            "accuracy": result["accuracy_mean"],
            "std": result["accuracy_std"],
            "seconds_per_epoch": result["seconds_per_epoch"],
            "protocol": f"{folds}-fold CV" + (f", first {ran} folds" if ran < folds else ""),
            "teacher": teachers or None,
        }
        if max_folds:
            command += f" (first {ran} folds)"
    else:
        overrides = {
            "data": str(folder / "train.tsv"),
            "test": str(folder / "test.tsv"),
            "output": str(out),
            "progress": False,
        }
        command = f"textcnn train --data {folder}/train.tsv --test {folder}/test.tsv"
        if (folder / "dev.tsv").exists():
            overrides["dev"] = str(folder / "dev.tsv")
            command += f" --dev {folder}/dev.tsv"
        model_dir = fit_and_save(load_config(overrides={**overrides, **settings}))
        config = read_json(model_dir / "config.json")
        row = {
            "accuracy": config["metrics"]["test"]["accuracy"],
            "std": None,
            "seconds_per_epoch": config["seconds_per_epoch"],
            "protocol": "train/dev/test",
            "best_epoch": config["best_epoch"],
            "teacher": config.get("teacher"),
        }
    recipe = settings.get("recipe")
    flags = "".join(f" --set {k}={v}" for k, v in settings.items() if k != "recipe")
    command += f" --recipe {recipe}" + flags
    row.update(
        name=name,
        recipe=recipe,
        command=command,
        settings=settings,
        wall_seconds=round(time.perf_counter() - started, 1),
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=list(SETS))
    parser.add_argument("--recipe", action="append", dest="recipes", help="a name, or all")
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument("--max-folds", type=int, help="run only the first N folds (MR, Subj)")
    parser.add_argument(
        "--set", action="append", default=[], dest="settings", help="KEY=VALUE, not the defaults"
    )
    parser.add_argument("--readme", action="store_true", help="write the table into README.md")
    args = parser.parse_args()
    if not DATA.is_dir():
        sys.exit(f"skipped: no benchmark data at {DATA}; set TEXTCNN_DATA_DIR")
    logging.basicConfig(level=logging.WARNING)
    settings = parse_overrides([f"--set={pair}" for pair in args.settings])
    recipes = args.recipes or ["default"]
    recipes = list(RECIPES) if recipes == ["all"] else recipes
    recipes = [default_recipe() if r == "default" else r for r in recipes]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for recipe in recipes:
            for name in args.names:
                run_settings = {"recipe": recipe, **settings}
                rows.append(run(name, args.folds, Path(tmp), run_settings, args.max_folds))
                print(json.dumps(rows[-1]), flush=True)
                table = save(rows, settings)  # after every set: a long run keeps what it finished
    print(markdown(table))
    if args.readme and not settings:
        text = README.read_text()
        head, _, rest = text.partition(MARKERS[0])
        _, _, tail = rest.partition(MARKERS[1])
        if not tail:
            sys.exit(f"{README}: no {MARKERS[0]} ... {MARKERS[1]} section to write into")
        README.write_text(f"{head}{MARKERS[0]}\n{markdown(table)}\n{MARKERS[1]}{tail}")


def cell(row: dict | None) -> str:
    if row is None:
        return ""
    accuracy = f"{100 * row['accuracy']:.1f}"
    if row.get("std"):  # several folds: mean ± standard deviation
        accuracy += f" ± {100 * row['std']:.1f}"
    return f"{accuracy} ({row['wall_seconds'] / 60:.0f} min)"


def markdown(rows: list[dict]) -> str:
    """Sets down, recipes across (accuracy %, and training time): the distilled recipe's
    teacher, the best peer and Kim's best beside them."""
    recipes = [r for r in RECIPES if any(row.get("recipe", "rand") == r for row in rows)]
    head = ["data", "protocol", *recipes, "teacher itself", "best peer", "Kim best"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in SETS:
        mine = {row.get("recipe", "rand"): row for row in rows if row["name"] == name}
        if not mine:
            continue
        protocols = sorted({row["protocol"] for row in mine.values()})
        teacher = next((teacher_accuracy(r) for r in mine.values() if r.get("teacher")), "")
        cells = [TITLES[name], " / ".join(protocols), *(cell(mine.get(r)) for r in recipes)]
        cells += [teacher, f"{PEERS[name]}", f"{KIM[name]}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def save(rows: list[dict], settings: dict) -> list[dict]:
    """Merge ``rows`` into the results file (a rerun replaces its own rows); all its rows."""
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    machine = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
    }
    # Runs with --set go to their own file: text_accuracy.json holds the defaults only.
    path = results / ("text_accuracy_settings.json" if settings else "text_accuracy.json")
    kept = json.loads(path.read_text())["rows"] if path.exists() else []
    ran = {r["command"] for r in rows}
    rows = [r for r in kept if r["command"] not in ran] + rows
    path.write_text(json.dumps({"machine": machine, "rows": rows}, indent=2) + "\n")
    return rows


def teacher_accuracy(row: dict) -> str:
    """The teacher's test accuracy (given splits) or dev accuracy (folds), when there was one."""
    teacher = row.get("teacher")
    if not teacher:
        return ""
    if isinstance(teacher, dict) and "test_accuracy" in teacher:
        return f"{100 * teacher['test_accuracy']:.1f}"
    folds = teacher if isinstance(teacher, list) else [teacher]
    return f"{100 * sum(t['dev_accuracy'] for t in folds) / len(folds):.1f} (dev)"


if __name__ == "__main__":
    main()
