"""A trained model scored on labelled data named by the user, whatever its task."""

from __future__ import annotations

from ..images.data import read_images
from ..predictor import Predictor
from ..text.corpora import ReaderOptions, read_corpus
from .image import evaluate_images
from .text import evaluate


def _text(predictor, data: str, options: ReaderOptions) -> dict:
    return evaluate(predictor, read_corpus(data, options))


def _image(predictor, data: str, options: ReaderOptions) -> dict:
    """A class folder, or ``fashion-mnist`` (its test split); text options do not apply."""
    images = read_images(
        data, "test", predictor.channels, predictor.size, predictor.labels, options.skip_bad_rows
    )
    return evaluate_images(predictor, images)


EVALUATORS = {"text": _text, "image": _image}


def evaluate_data(predictor: Predictor, data: str, options: ReaderOptions) -> dict:
    """Accuracy, macro-F1, per-class scores and confusion matrix of ``predictor`` on ``data``."""
    return EVALUATORS[predictor.task](predictor, data, options)
