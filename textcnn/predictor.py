"""What every trained model offers: the :class:`Predictor` protocol and its :class:`Prediction`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from .card import Card


@dataclass(frozen=True, slots=True)
class Prediction:
    label: str
    score: float


@runtime_checkable
class Predictor(Protocol):
    """A trained classifier (text or image): its network, labels and card, and a batched
    ``predict`` and ``predict_proba``. Inputs are texts, or image files / a uint8 batch."""

    task: str  # "text" | "image"
    labels: list[str]
    card: Card | None  # the model card (config.json); None for a model not yet saved
    model: nn.Module  # the trained network
    multi_label: bool  # several labels per input (a sigmoid per label)

    @property
    def version(self) -> str:
        """The first 12 hex digits of the weights' sha256."""
        ...

    def predict_proba(self, inputs: Sequence[Any] | Any, calibrated: bool = True) -> torch.Tensor:
        """N x classes probabilities, in input order (divided by the card's temperature
        unless ``calibrated`` is False)."""
        ...

    def assigned(self, probabilities: torch.Tensor) -> torch.Tensor:
        """N x classes: the labels the model gives each input, from its probabilities."""
        ...

    def predict(self, inputs: Sequence[Any], top_k: int | None = 1) -> list[list[Prediction]]:
        """For every input, its labels, most probable first (``top_k`` of them; all when
        None)."""
        ...
