"""What every trained model offers (:class:`Predictor`), and :func:`load`, which reads a model
directory and hands it to the loader of its task (text or image)."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch

from .card import Card, load_card


@dataclass(frozen=True, slots=True)
class Prediction:
    label: str
    score: float


@runtime_checkable
class Predictor(Protocol):
    """A trained classifier: its task, labels and card, and a batched ``predict``."""

    task: str  # "text" | "image"
    labels: list[str]
    card: Card | None  # the model card (config.json); None for a model not yet saved

    def predict(self, inputs: Sequence[Any], top_k: int | None = 1) -> list[list[Prediction]]:
        """For every input (a text; an image file), its ``top_k`` labels, most probable first."""
        ...


# task -> "module:function(path, card, device, **options) -> Predictor", imported on use so
# that this module imports neither task (and neither imports the other)
LOADERS = {
    "text": "textcnn.text.classifier:load_text_classifier",
    "image": "textcnn.images.classifier:load_image_classifier",
}


def load(path: str | Path, device: str | torch.device = "cpu", **options) -> Predictor:
    """The model in directory ``path`` (written by ``textcnn train``), on ``device``. Never
    unpickles anything. ``options`` go to the task's loader: for text,
    :class:`~textcnn.text.classifier.TextClassifier`'s ``inference``, ``max_table_mb`` and
    ``half_tables``."""
    path = Path(path)
    card = load_card(path)
    module, _, function = LOADERS[card.task].partition(":")
    return getattr(importlib.import_module(module), function)(path, card, device, **options)
