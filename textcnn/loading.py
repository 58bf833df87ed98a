"""``textcnn.load``: a model directory, read and checked, as the predictor of its task."""

from __future__ import annotations

from pathlib import Path

import torch

from .card import ImageCard, TextCard, load_card
from .images.classifier import load_image_classifier
from .predictor import Predictor
from .text.classifier import load_text_classifier


def load(path: str | Path, device: str | torch.device = "cpu", **options) -> Predictor:
    """The model in directory ``path`` (written by ``textcnn train``), on ``device``: a
    :class:`~textcnn.text.classifier.TextClassifier` or an
    :class:`~textcnn.images.classifier.ImageClassifier`. Never unpickles anything; a
    damaged or tampered directory is a ``ValueError`` that says what is wrong. ``options``
    go to the text loader: ``inference``, ``max_table_mb`` and ``half_tables``."""
    path = Path(path)
    card = load_card(path)
    if isinstance(card, TextCard):
        return load_text_classifier(path, card, device, **options)
    if options:
        raise ValueError(f"{path}: an image model; {', '.join(options)} are text settings")
    assert isinstance(card, ImageCard)  # load_card knows no other task
    return load_image_classifier(path, card, device)
