"""The model card: ``config.json`` of a model directory, as one typed dataclass per task.

Each card class owns its ``from_dict`` / ``to_dict``; :func:`save_card` and
:func:`load_card` are the only code that writes or reads the file. A card names its format
version and task; a card of another version or task is refused with a message that says
what to do, and every field is checked against its declared type (:mod:`textcnn.typed`).
Version 1 is the format every textcnn release so far has written, so older model
directories load as they are: fields added since have defaults that mean what those
directories meant.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from .artifacts import CONFIG_FILE, check_model_dir, model_file, read_json, write_json
from .images.models import ImageModelConfig
from .models import TextCNNConfig
from .text.tokenizer import TokenizerConfig
from .typed import FieldError, build, to_dict
from .version import __version__

CARD_VERSION = 1


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass(kw_only=True)
class Card:
    """What every model directory records: what the model is, what it was trained on, how well
    it did. ``settings`` holds the settings of the training run that the card does not
    record in a typed field of its own (the network's, the tokenizer's)."""

    task: ClassVar[str]
    architecture: str
    name: str  # the run folder's name
    labels: list[str]
    settings: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)  # {"train": {"source", "examples", ...}, "dev": ...}
    best_epoch: int = 0
    epochs_run: int = 0
    epoch: int | None = None  # model-last: the epoch its weights are from
    seconds_per_epoch: float = 0.0
    world_size: int = 1  # processes the model was trained by (DDP)
    metrics: dict = field(default_factory=dict)  # headline scores per split
    # `textcnn tune`: budget, trials, the winning settings and their score on dev
    search: dict | None = None
    # sha256 of model.safetensors, checked at load; None in cards written before 0.2
    weights_sha256: str | None = None
    # calibration, fitted on dev: logits are divided by it before the softmax (sigmoid);
    # 1 in cards written before 0.2, whose scores are then what they were
    temperature: float = 1.0
    format_version: int = CARD_VERSION
    textcnn_version: str = __version__
    created: str = field(default_factory=_now)

    def to_dict(self) -> dict:
        return {"format_version": self.format_version, "task": self.task, **to_dict(self)}

    @classmethod
    def from_dict(cls, raw: dict) -> Card:
        """The card of ``raw`` (``config.json`` without version and task), every field checked."""
        card = build(cls, raw)
        labels = card.labels
        if not all(labels) or len(set(labels)) != len(labels):
            raise FieldError("labels must be distinct, non-empty strings")
        for name in ("best_epoch", "epochs_run", "world_size"):
            if getattr(card, name) < 0:
                raise FieldError(f"{name} must not be negative")
        if not 0.01 <= card.temperature <= 100:
            raise FieldError(f"temperature must be from 0.01 to 100, got {card.temperature}")
        return card

    @property
    def version(self) -> str:
        """What a served model calls its version: the first 12 hex digits of the weights'
        sha256."""
        return (self.weights_sha256 or "unknown")[:12]


@dataclass(kw_only=True)
class TextCard(Card):
    task: ClassVar[str] = "text"
    model: TextCNNConfig
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)  # max_length lives here
    vector_coverage: float | None = None  # share of the vocabulary found in the word vectors
    vector_licence: str | None = None  # of a shipped vector source (--vectors glove-6b-50d)
    teacher: dict | None = None  # the teacher it was distilled from: name, licence, scores
    # Several labels per text: a sigmoid per label, each assigned at a score of at least its
    # threshold (picked on dev), and every text given at least min_labels top labels.
    multi_label: bool = False
    thresholds: list[float] | None = None
    min_labels: int = 1
    label_separator: str = ","  # joins a text's labels in CSV output

    @classmethod
    def from_dict(cls, raw: dict) -> Card:
        card = super().from_dict(raw)
        if card.multi_label:
            thresholds = card.thresholds or []
            if len(thresholds) != len(card.labels) or not all(0 <= t <= 1 for t in thresholds):
                raise FieldError("a multi-label card needs a threshold in [0, 1] per label")
            if not 0 <= card.min_labels <= len(card.labels):
                raise FieldError(f"min_labels must be 0 to {len(card.labels)}")
        return card


@dataclass(kw_only=True)
class Preprocessing:
    channels: int
    size: int  # images are resized to size x size
    mean: list[float]  # per channel, of the training images in [0, 1] units
    std: list[float]

    def __post_init__(self) -> None:
        if self.channels not in (1, 3) or not 1 <= self.size <= 4096:
            raise ValueError(f"channels must be 1 or 3 and size 1 to 4096, got {self}")
        if len(self.mean) != self.channels or len(self.std) != self.channels:
            raise ValueError("mean and std need one value per channel")
        if min(self.std) <= 0:
            raise ValueError("std must be positive")


@dataclass(kw_only=True)
class ImageCard(Card):
    task: ClassVar[str] = "image"
    model: ImageModelConfig
    preprocessing: Preprocessing

    @classmethod
    def from_dict(cls, raw: dict) -> Card:
        # the architecture's settings are checked against its registered builder
        model = raw.get("model")
        raw = {**raw, "model": {"arch": raw.get("architecture"), "options": model}}
        return super().from_dict(raw)

    def to_dict(self) -> dict:
        return {**super().to_dict(), "model": self.model.options}


CARDS: dict[str, type[Card]] = {"text": TextCard, "image": ImageCard}


def save_card(card: Card, model_dir: Path) -> None:
    """Write ``model_dir/config.json`` (atomically)."""
    write_json(Path(model_dir) / CONFIG_FILE, card.to_dict())


def load_card(model_dir: str | Path) -> Card:
    """The card of ``model_dir``, checked: version, task, fields and their types."""
    model_dir = check_model_dir(Path(model_dir))
    where = model_file(model_dir, CONFIG_FILE)
    raw = read_json(where)
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: not a model card (a JSON object)")
    version = raw.pop("format_version", None)
    if version != CARD_VERSION:
        raise ValueError(
            f"{model_dir}: model format version {version!r} is not supported by this textcnn "
            f"(it reads version {CARD_VERSION}); retrain the model or use a matching textcnn"
        )
    task = raw.pop("task", None)
    if task not in CARDS:
        raise ValueError(
            f"{model_dir}: a model of task {task!r}; this textcnn loads {', '.join(CARDS)} models"
        )
    try:
        return CARDS[task].from_dict(raw)
    except FieldError as error:
        raise ValueError(f"{where}: incomplete or damaged ({error})") from None
