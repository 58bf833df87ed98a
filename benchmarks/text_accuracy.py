"""Kim (2014) CNN-rand on the sentence benchmarks, with the default settings.

    python benchmarks/text_accuracy.py [mr trec sst2 ...] [--folds 10]

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
TARGET = {"mr": 76.0, "trec": 89.0, "sst2": 78.5}


def run(name: str, folds: int, workdir: Path, settings: dict) -> dict:
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
        result = cross_validate(cfg, folds)
        row = {
            "accuracy": result["accuracy_mean"],
            "std": result["accuracy_std"],
            "seconds_per_epoch": result["seconds_per_epoch"],
            "protocol": f"{folds}-fold CV",
        }
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
            rows.append(run(name, args.folds, Path(tmp), settings))
            print(json.dumps(rows[-1]), flush=True)
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
    ran = {r["command"] for r in rows}  # a rerun replaces its own rows and keeps the others
    rows = [r for r in kept if r["command"] not in ran] + rows
    path.write_text(json.dumps({"machine": machine, "rows": rows}, indent=2) + "\n")
    print("\n| data | protocol | accuracy (%) | Kim CNN-rand | target | s/epoch |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        acc = f"{100 * r['accuracy']:.1f}" + (
            f" ± {100 * r['std']:.1f}" if r["std"] is not None else ""
        )
        print(
            f"| {r['name']} | {r['protocol']} | {acc} | {KIM.get(r['name'], '')} | "
            f"{TARGET.get(r['name'], '')} | {r['seconds_per_epoch']:.1f} |"
        )


if __name__ == "__main__":
    main()
