"""What a task (text, image) supplies to the training pipeline
(:mod:`textcnn.training.pipeline`): its data, its network and batches, its predictor."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import torch

from ..card import Card
from ..predictor import Predictor
from ..text.corpora import ReaderOptions
from .config import TrainConfig
from .distributed import ONE_PROCESS, World
from .trainer import FitResult


class Dataset(Protocol):
    """Labelled examples of one task (a text corpus, an image set)."""

    source: str

    def __len__(self) -> int: ...

    def subset(self, indices: list[int]) -> Dataset: ...

    def fingerprint(self) -> str:
        """sha256 of the examples and labels, in order."""
        ...


D = TypeVar("D", bound=Dataset)


@dataclass
class Splits(Generic[D]):
    train: D
    dev: D
    test: D | None


@dataclass
class Run:
    """Where and how one fit runs: its folder (checkpoints, metrics.jsonl), whether it
    continues an interrupted fit there, a callback after every epoch, its ranks, and what
    identifies its data (a resumed fit must be given the same)."""

    workdir: Path
    resume: bool = False
    on_epoch_end: Callable[[dict], None] | None = None
    world: World = ONE_PROCESS  # the ranks of a torchrun job; one process without it
    data: dict = field(default_factory=dict)  # {"train": fingerprint, "dev": ...}


@dataclass
class Fitted:
    """A trained network, wrapped as its predictor, with the card of its run (no scores yet)."""

    predictor: Predictor
    card: Card
    result: FitResult


class Task(Protocol):
    """What the pipeline needs from a task."""

    def read(self, config: TrainConfig, spec: str, like: Any = None) -> Dataset:
        """The labelled data named by ``spec`` (a file, a folder, a built-in name); with
        ``like`` (the training data), read to match it (for images its channels and size)."""

    def read_for(self, predictor: Predictor, spec: str, options: ReaderOptions) -> Dataset:
        """Labelled data to evaluate ``predictor`` on, read as it needs (no training settings)."""

    def class_names(self, data: Dataset) -> list[str]:
        """The label of every example, in order (for stratified splits)."""

    def describe(self, splits: Splits) -> str:
        """One line on the data, for the log."""

    def fit(self, config: TrainConfig, train: Dataset, dev: Dataset, run: Run) -> Fitted:
        """Build the network for ``train`` and fit it, the best epoch picked on ``dev``."""

    def examples(self, predictor: Predictor, data: Dataset) -> tuple[Sequence | torch.Tensor, Any]:
        """(inputs for ``predictor.predict_proba``, class indices) of ``data``."""

    def write_files(self, predictor: Predictor, folder: Path) -> None:
        """The task's own files of a model directory (e.g. tokenizer.json)."""

    def finish(self, workdir: Path) -> None:
        """Remove what only an unfinished run needs."""
