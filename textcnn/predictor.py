"""What every trained model offers: the :class:`Predictor` protocol and its :class:`Prediction`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
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
    ones; a tensor for a tensor, else an array. (NumPy inside: on a few rows, torch's calls
    would cost more than the work.)"""
    p = np.asarray(probabilities)  # a CPU tensor's memory, not a copy
    if thresholds is None:
        chosen = np.zeros(p.shape, dtype=bool)
        chosen[np.arange(len(p)), p.argmax(1)] = True
    else:
        chosen = p >= np.asarray(thresholds, dtype=p.dtype)
        if min_labels:
            top = np.argsort(-p, axis=1, kind="stable")[:, :min_labels]
            np.put_along_axis(chosen, top, True, axis=1)
    return torch.from_numpy(chosen) if isinstance(probabilities, torch.Tensor) else chosen


def shown_classes(
    probabilities: torch.Tensor | np.ndarray, assigned: torch.Tensor | None, top_k: TopK
) -> tuple[list[list[int]], list[list[int]]]:
    """(per input, the classes it is given, most probable first: its top one, or those of
    ``assigned`` (a multi-label model's :func:`assigned_labels`); the classes a result lists
    for ``top_k``: "auto" the given ones, else k, or None every class). Ties go to the
    first class."""
    check_top_k(top_k)
    p = np.asarray(probabilities)
    if assigned is None and top_k == "auto":  # the top class: no sort (argmax: first of ties)
        given = p.argmax(1)[:, None].tolist()
        return given, given
    ranked = np.argsort(-p, axis=1, kind="stable")
    if assigned is None:
        given = ranked[:, :1].tolist()
    else:
        keep = np.asarray(assigned)[np.arange(len(p))[:, None], ranked]
        flat, given, at = ranked[keep].tolist(), [], 0
        for count in keep.sum(1).tolist():
            given.append(flat[at : at + count])
            at += count
    if top_k == "auto":
        return given, given
    classes = p.shape[1]
    k = classes if top_k is None else 1 if top_k == "auto" else min(top_k, classes)
    return given, ranked[:, :k].tolist()


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
