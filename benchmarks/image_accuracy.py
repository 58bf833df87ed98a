"""Image architectures on Fashion-MNIST: the pooling study and the best model in 30 minutes.

    python benchmarks/image_accuracy.py pooling [--epochs 15]
    python benchmarks/image_accuracy.py best [--arch wrn_16_1] [--epochs 6] [--augment]

``pooling`` trains LeNet-5 once with each pooling (max, avg, stochastic, fractional);
``best`` trains one architecture. Each run is the same as
``textcnn train --task image --arch ARCH --data fashion-mnist ...`` (the command is
printed with the result): 54,000 training images, 6,000 held out for dev, and the
10,000 test images scored once with the model of the best dev epoch. Results go
to ``benchmarks/results/image_accuracy.json`` (merged by run name) and a Markdown table.
Reads the idx files from ``$TEXTCNN_FASHION_MNIST_DIR`` or the Debian package's folder.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

from textcnn.artifacts import read_json
from textcnn.images.data import load_fashion_mnist
from textcnn.training.config import load_config, parse_overrides
from textcnn.training.pipeline import fit_and_save

RESULTS = Path(__file__).parent / "results" / "image_accuracy.json"
POOLINGS = ("max", "avg", "stochastic", "fractional")


def run(name: str, arch: str, workdir: Path, options: dict, settings: dict) -> dict:
    overrides = {
        "task": "image",
        "arch": arch,
        "data": "fashion-mnist",
        "arch_options": options,
        "output": str(workdir / name),
        "progress": False,
        **settings,
    }
    flags = " ".join(f"--arch-option {k}={v}" for k, v in options.items())
    flags += " --augment" if settings.get("augment") else ""
    flags += f" --epochs {settings['epochs']}" if "epochs" in settings else ""
    started = time.perf_counter()
    model_dir = fit_and_save(load_config(overrides=overrides))
    wall = time.perf_counter() - started
    config = read_json(model_dir / "config.json")
    history = [
        json.loads(line) for line in (workdir / name / "metrics.jsonl").read_text().splitlines()
    ]
    return {
        "name": name,
        "arch": arch,
        "options": options,
        "test_accuracy": config["metrics"]["test"]["accuracy"],
        "dev_accuracy": config["metrics"]["dev"]["accuracy"],
        "epochs": config["epochs_run"],
        "best_epoch": config["best_epoch"],
        "seconds_per_epoch": config["seconds_per_epoch"],
        "train_seconds": round(sum(h["seconds"] for h in history), 1),
        "wall_seconds": round(wall, 1),
        "command": f"textcnn train --arch {arch} --data fashion-mnist {flags}".strip(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", choices=["pooling", "best"])
    parser.add_argument("--arch", default="wrn_16_1", help="architecture of `best`")
    parser.add_argument("--option", action="append", default=[], help="KEY=VALUE arch option")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--augment", action="store_true", help="random crop + flip")
    parser.add_argument("--poolings", nargs="*", default=list(POOLINGS))
    args = parser.parse_args()
    try:
        load_fashion_mnist("test")
    except ValueError as error:
        sys.exit(f"skipped: {error}")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = {} if args.epochs is None else {"epochs": args.epochs}
    if args.augment:
        settings["augment"] = True
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        if args.study == "pooling":
            for mode in args.poolings:
                name = f"lenet5-{mode}"
                rows.append(run(name, "lenet5", Path(tmp), {"pool_mode": mode}, settings))
                print(json.dumps(rows[-1]), flush=True)
        else:
            options = parse_overrides([f"--set={pair}" for pair in args.option])
            name = "-".join([args.arch, *(f"{k}={v}" for k, v in options.items())])
            rows.append(run(name, args.arch, Path(tmp), options, settings))
            print(json.dumps(rows[-1]), flush=True)
    saved = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"runs": {}}
    saved["machine"] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
    }
    saved["runs"].update({r["name"]: r for r in rows})
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(saved, indent=2) + "\n")
    print("\n| run | test accuracy (%) | epochs | s/epoch | training time |")
    print("|---|---|---|---|---|")
    for r in saved["runs"].values():
        print(
            f"| {r['name']} | {100 * r['test_accuracy']:.2f} | {r['epochs']} | "
            f"{r['seconds_per_epoch']:.1f} | {r['train_seconds'] / 60:.1f} min |"
        )


if __name__ == "__main__":
    main()
