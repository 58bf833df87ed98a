"""The model card: ``config.json`` of a model directory, as one typed dataclass per task.

:func:`save_card` and :func:`load_card` are the only code that writes or reads it. A card
names its format version and task; a card of another version or task is refused with a
message that says what to do. Version 1 is the format every textcnn release so far has
written, so older model directories load as they are.
"""

from __future__ import annotations

import time
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import ClassVar

from .artifacts import CONFIG_FILE, check_model_dir, read_json, write_json
from .models import TextCNNConfig
from .version import __version__

CARD_VERSION = 1


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass(kw_only=True)
class Card:
    """What every model directory records: what the model is, what it was trained on, how well
    it did. ``settings`` holds every setting the training run was given."""

    task: ClassVar[str]
    architecture: str
    name: str  # the run folder's name
    labels: list[str]
    model: dict  # the architecture's own settings
    settings: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)  # {"train": {"source", "examples", ...}, "dev": ...}
    best_epoch: int = 0
    epochs_run: int = 0
    epoch: int | None = None  # model-last: the epoch its weights are from
    seconds_per_epoch: float = 0.0
    world_size: int = 1  # processes the model was trained by (DDP)
    metrics: dict = field(default_factory=dict)  # headline scores per split
    format_version: int = CARD_VERSION
    textcnn_version: str = __version__
    created: str = field(default_factory=_now)

    def to_dict(self) -> dict:
        return {"format_version": self.format_version, "task": self.task, **asdict(self)}


@dataclass(kw_only=True)
class TextCard(Card):
    task: ClassVar[str] = "text"
    model: TextCNNConfig
    tokenizer: dict = field(default_factory=dict)  # the tokenizer's settings
    vector_coverage: float | None = None  # share of the vocabulary found in the word vectors
    vector_licence: str | None = None  # of a shipped vector source (--vectors glove-6b-50d)
    teacher: dict | None = None  # the teacher it was distilled from: name, licence, scores

    def to_dict(self) -> dict:
        return {**super().to_dict(), "model": self.model.to_dict()}


@dataclass(kw_only=True)
class Preprocessing:
    channels: int
    size: int  # images are resized to size x size
    mean: list[float]  # per channel, of the training images in [0, 1] units
    std: list[float]


@dataclass(kw_only=True)
class ImageCard(Card):
    task: ClassVar[str] = "image"
    preprocessing: Preprocessing


CARDS: dict[str, type[Card]] = {"text": TextCard, "image": ImageCard}


def save_card(card: Card, model_dir: Path) -> None:
    """Write ``model_dir/config.json`` (atomically)."""
    write_json(Path(model_dir) / CONFIG_FILE, card.to_dict())


def load_card(model_dir: str | Path) -> Card:
    """The card of ``model_dir``, checked: version, task, fields and their types."""
    model_dir = check_model_dir(Path(model_dir))
    where = model_dir / CONFIG_FILE
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
    kind = CARDS[task]
    names = {f.name for f in fields(kind)}
    unknown = sorted(set(raw) - names)
    missing = [
        f.name
        for f in fields(kind)
        if f.default is MISSING and f.default_factory is MISSING and f.name not in raw
    ]
    if unknown or missing:
        problem = f"unknown fields {unknown[:5]}" if unknown else f"missing fields {missing}"
        raise ValueError(f"{where}: incomplete or damaged ({problem}); retrain or copy it again")
    try:
        if kind is TextCard:
            raw["model"] = TextCNNConfig(**raw["model"])
        elif kind is ImageCard:
            raw["preprocessing"] = Preprocessing(**raw["preprocessing"])
        card = kind(**raw)
        _check_types(card)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{where}: incomplete or damaged ({error})") from None
    return card


def _check_types(card: Card) -> None:
    """JSON gives any type anywhere: the fields the code relies on are checked here."""
    expected = {
        "architecture": str,
        "name": str,
        "labels": list,
        "settings": dict,
        "data": dict,
        "metrics": dict,
        "best_epoch": int,
        "epochs_run": int,
        "world_size": int,
    }
    for name, kind in expected.items():
        value = getattr(card, name)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ValueError(f"{name} must be of type {kind.__name__}, got {value!r}")
    if not isinstance(card.model, dict | TextCNNConfig):
        raise ValueError(f"model must be an object, got {card.model!r}")
