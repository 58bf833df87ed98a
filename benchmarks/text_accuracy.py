"""Kim (2014) CNN-rand on the sentence benchmarks, with the default settings, or another
route with ``--set`` (``--set teacher=minilm``: the CNN distilled from a fine-tuned MiniLM;
the teacher's own accuracy is reported beside it).

    python benchmarks/text_accuracy.py [mr trec sst2 ...] [--folds 10] [--max-folds N]

``--max-folds N`` runs only the first N of the k folds of MR and Subj (the same splits), for
routes whose folds cost minutes each; the protocol column says so.

Reads ``$TEXTCNN_DATA_DIR`` (default ``../shared/datasets``). Writes
``benchmarks/results/text_accuracy.json`` (a rerun replaces the rows it ran and
keeps the others; runs with ``--set KEY=VALUE`` go to
``text_accuracy_settings.json``) and prints a Markdown table with the test accuracy
(MR: mean ± std over 10 folds) and the median wall time per epoch. Equivalent CLI
commands are printed with each result.
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
from textcnn.cli import parse_settings
from textcnn.training.config import TrainConfig
from textcnn.training.pipeline import cross_validate, fit_and_save

DATA = Path(
    os.environ.get("TEXTCNN_DATA_DIR", Path(__file__).parents[1] / ".." / "shared" / "datasets")
)
KIM = {"mr": 76.1, "trec": 91.2, "sst2": 82.7, "subj": 89.6, "sst5": 45.0}


def run(name: str, folds: int, workdir: Path, settings: dict, max_folds: int | None) -> dict:
    folder = DATA / name
    out = workdir / name
    started = time.perf_counter()
    if (folder / "all.tsv").exists():  # MR, Subj: k-fold cross-validation
        command = f"textcnn cv --data {folder}/all.tsv --folds {folds}"
        cfg = TrainConfig.load(
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
        model_dir = fit_and_save(TrainConfig.load(overrides={**overrides, **settings}))
        config = read_json(model_dir / "config.json")
        row = {
            "accuracy": config["metrics"]["test"]["accuracy"],
            "std": None,
            "seconds_per_epoch": config["seconds_per_epoch"],
            "protocol": "train/dev/test",
            "best_epoch": config["best_epoch"],
            "teacher": config.get("teacher"),
        }
    flags = "".join(f" --set {k}={v}" for k, v in settings.items())
    row.update(
        name=name,
        command=command + flags,
        settings=settings,
        wall_seconds=round(time.perf_counter() - started, 1),
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=["mr", "trec", "sst2"])
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument("--max-folds", type=int, help="run only the first N folds (MR, Subj)")
    parser.add_argument(
        "--set", action="append", default=[], dest="settings", help="KEY=VALUE, not the defaults"
    )
    args = parser.parse_args()
    if not DATA.is_dir():
        sys.exit(f"skipped: no benchmark data at {DATA}; set TEXTCNN_DATA_DIR")
    logging.basicConfig(level=logging.WARNING)
    settings = parse_settings(args.settings)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.names:
            rows.append(run(name, args.folds, Path(tmp), settings, args.max_folds))
            print(json.dumps(rows[-1]), flush=True)
            table = save(rows, settings)  # after every set: a long run keeps what it finished
    print("\n| data | protocol | accuracy (%) | teacher (%) | Kim CNN-rand | s/epoch | wall (s) |")
    print("|---|---|---|---|---|---|---|")
    for r in table:
        acc = f"{100 * r['accuracy']:.1f}" + (
            f" ± {100 * r['std']:.1f}" if r["std"] is not None else ""
        )
        print(
            f"| {r['name']} | {r['protocol']} | {acc} | {teacher_accuracy(r)} | "
            f"{KIM.get(r['name'], '')} | {r['seconds_per_epoch']:.1f} | {r['wall_seconds']} |"
        )


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
