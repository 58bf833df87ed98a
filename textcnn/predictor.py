"""What every trained model offers: the :class:`Predictor` protocol and its :class:`Prediction`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import torch
from torch import nn

from .card import Card


@dataclass(frozen=True, slots=True)
class Prediction:
    label: str
    score: float


@dataclass(frozen=True)
class Evidence:
    """A span of the original text that won max-pooling for filters voting for the label."""

    text: str
    start: int  # character offsets into the original text
    end: int
    weight: float  # summed contribution to the predicted class's logit


@dataclass(frozen=True)
class Result:
    predictions: list[Prediction]  # most probable first
    truncated: bool  # the text was longer than the model's maximum length
    evidence: list[Evidence] | None = None  # with explain=True: for the top label
    # the labels the model gives the text, most probable first: the top one, or for a
    # multi-label model every label over its threshold (at least min_labels of them)
    assigned: tuple[str, ...] = ()
    abstained: bool = False  # the top score was under min_score: the model is not sure
    # multi-label with explain=True: the spans of every assigned label
    label_evidence: dict[str, list[Evidence]] | None = None

    @property
    def label(self) -> str | None:
        """The answer: the most probable assigned label; None when the model abstained (or,
        multi-label with min_labels 0, assigned none)."""
        return None if self.abstained or not self.assigned else self.assigned[0]


# labels per result: "auto" (the top one; a multi-label model's assigned ones), k, or all
TopK = int | None | Literal["auto"]


def check_top_k(top_k: TopK) -> None:
    if top_k is not None and top_k != "auto" and (isinstance(top_k, bool) or top_k < 1):
        raise ValueError(f"top_k must be 'auto', at least 1, or None, got {top_k!r}")


def assigned_labels(
    probabilities: torch.Tensor, thresholds: Sequence[float] | None = None, min_labels: int = 1
) -> torch.Tensor:
    """N x classes: the labels given each input: its top class, or with ``thresholds`` (a
    multi-label model) every label at or over its threshold and at least ``min_labels`` top
    ones."""
    chosen = torch.zeros_like(probabilities, dtype=torch.bool)
    if thresholds is None:
        return chosen.scatter_(1, probabilities.argmax(1, keepdim=True), True)
    chosen = probabilities >= torch.tensor(thresholds, dtype=probabilities.dtype)
    if min_labels:
        chosen.scatter_(1, probabilities.topk(min_labels, dim=1).indices, True)
    return chosen


def shown_classes(
    probabilities: torch.Tensor, assigned: torch.Tensor, top_k: TopK, multi_label: bool
) -> tuple[list[list[int]], list[list[int]]]:
    """(per input, the classes it is given, most probable first; the classes a result lists
    for ``top_k``: "auto" the given ones of a multi-label model, else the top one, k, or
    None every class)."""
    check_top_k(top_k)
    ranked = probabilities.argsort(dim=1, descending=True, stable=True)
    keep = assigned.gather(1, ranked)
    given = [row[mask].tolist() for row, mask in zip(ranked, keep, strict=True)]
    if top_k == "auto" and multi_label:
        return given, given
    classes = probabilities.shape[1]
    k = classes if top_k is None else 1 if top_k == "auto" else min(top_k, classes)
    return given, probabilities.topk(k, dim=-1).indices.tolist()


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

    def predict(self, inputs: Sequence[Any], top_k: TopK = "auto") -> list[list[Prediction]]:
        """For every input, its labels, most probable first: the answer ("auto"), the
        ``top_k`` most probable, or all (None)."""
        ...

    def classify(
        self, inputs: Sequence[Any], top_k: TopK = "auto", min_score: float | None = None
    ) -> list[Result]:
        """For every input, its predictions, the labels assigned, and whether the model
        abstained (its top score under ``min_score``)."""
        ...
