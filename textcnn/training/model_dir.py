"""The model directory that training writes, for text and image models alike."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from torch import nn

from .. import __version__
from ..artifacts import (
    CONFIG_FILE,
    FORMAT_VERSION,
    WEIGHTS_FILE,
    atomic_directory,
    save_tensors,
    write_json,
)
from .metrics import plot_confusion_matrix


def model_meta(task: str, architecture: str, name: str) -> dict:
    """The fields every ``config.json`` starts with."""
    return {
        "format_version": FORMAT_VERSION,
        "task": task,
        "architecture": architecture,
        "name": name,
        "textcnn_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def write_model_dir(
    path: Path,
    model: nn.Module,
    meta: dict,
    metrics: dict,
    write_extra: Callable[[Path], None] | None = None,
) -> None:
    """config.json, model.safetensors, metrics.json, confusion.png (and the task's own files,
    e.g. tokenizer.json, from ``write_extra``), all at once: a temporary folder, then a rename."""
    with atomic_directory(path) as tmp:
        save_tensors(model.state_dict(), tmp / WEIGHTS_FILE)
        if write_extra is not None:
            write_extra(tmp)
        write_json(tmp / "metrics.json", metrics)
        shown = metrics.get("test") or metrics.get("dev")
        if shown:
            plot_confusion_matrix(shown, tmp / "confusion.png", f"{path.name} on {shown['data']}")
        write_json(tmp / CONFIG_FILE, {**meta, "metrics": headline(metrics)})


def headline(metrics: dict) -> dict:
    """Accuracy, macro-F1 and size of every evaluated split, for config.json."""
    return {
        split: {"accuracy": r["accuracy"], "macro_f1": r["macro_f1"], "examples": r["examples"]}
        for split, r in metrics.items()
        if isinstance(r, dict) and "accuracy" in r
    }
