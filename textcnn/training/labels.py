"""The labels of a training corpus: checked, counted, and made into training targets (class
indices, or for several labels per text :class:`MultiHot` rows), with the weights that
balance them."""

from __future__ import annotations

import logging
from collections import Counter

import torch

from ..text.classifier import TextClassifier
from ..text.corpora import Corpus
from ..text.stream import StreamedCorpus
from .config import TextTrainConfig

log = logging.getLogger(__name__)

MAX_LABELS = 10_000  # labels one model may have
RARE = 5  # a label seen fewer times in training is said to be rare in the log


def check_labels(train: Corpus, config: TextTrainConfig) -> list[str]:
    """The labels of a training corpus, checked: at least two (single-label) or one
    (multi-label), at most :data:`MAX_LABELS`; rare ones are named in the log. No teacher
    for a multi-label corpus."""
    labels = train.label_names()
    if len(labels) > MAX_LABELS:
        raise ValueError(
            f"{train.source}: {len(labels):,} distinct labels; a model takes at most "
            f"{MAX_LABELS:,} (is the label column right? --label-field)"
        )
    if len(labels) < (1 if train.multi_label else 2):
        raise ValueError(f"{train.source}: the training data has only one label ({labels[0]!r})")
    if train.multi_label and config.distill.teacher:
        raise ValueError("a teacher distils single-label corpora only; drop --teacher")
    counts = label_counts(train)
    rare = sorted(label for label in labels if counts[label] < RARE)
    if rare:
        log.warning(
            "%d labels are seen fewer than %d times in training (%s): expect little of them",
            len(rare),
            RARE,
            ", ".join(rare[:10]) + (", ..." if len(rare) > 10 else ""),
        )
    return labels


def label_counts(corpus: Corpus | StreamedCorpus) -> Counter:
    """Texts per label (a multi-label text counts for each of its labels)."""
    if isinstance(corpus, StreamedCorpus):  # counted by its scan
        return Counter(corpus.counts)
    if corpus.multi_label:
        return Counter(label for row in corpus.labels for label in row)
    return Counter(corpus.labels)


def targets_of(
    classifier: TextClassifier, corpus: Corpus, multi_label: bool, split: str = ""
) -> torch.Tensor | MultiHot:
    """Class indices, or (multi-label) the rows' label indices; a label the model was not
    trained on is a ``ValueError``."""
    if not multi_label:
        return classifier.label_ids(corpus.labels, corpus.source + split)
    flat = [label for row in corpus.labels for label in row]
    ids = iter(classifier.label_ids(flat, corpus.source + split).tolist())  # unknown: refused
    rows = [tuple(next(ids) for _ in row) for row in corpus.labels]
    return MultiHot(rows, len(classifier.labels))


def positive_weights(targets: MultiHot) -> torch.Tensor:
    """Per label, negatives / positives (1 to 100): every label's positives weigh as much
    as its negatives in the loss (class_weights = "balanced")."""
    positives = targets.counts().float().clamp(min=1)
    return ((len(targets) - positives) / positives).clamp(1.0, 100.0)


def class_weights(targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    """n / (k * count): every class carries the same total weight."""
    return balancing(torch.bincount(targets, minlength=num_classes))


def balancing(counts: torch.Tensor) -> torch.Tensor:
    """n / (k * count) of the texts per class: every class carries the same total weight."""
    counts = counts.float()
    return counts.sum() / (len(counts) * counts.clamp(min=1))


class MultiHot:
    """Several labels per text, kept as class indices and made 0/1 rows only for the rows
    asked for, so that many labels cost no N x labels matrix."""

    def __init__(self, classes: list[tuple[int, ...]], width: int) -> None:
        self.classes, self.width = classes, width

    def __len__(self) -> int:
        return len(self.classes)

    def __getitem__(self, rows) -> torch.Tensor:
        rows = range(len(self))[rows] if isinstance(rows, slice) else rows
        out = torch.zeros(len(rows), self.width)
        for n, row in enumerate(rows):
            out[n, list(self.classes[row])] = 1.0
        return out

    def dense(self) -> torch.Tensor:
        return self[slice(None)]

    def counts(self) -> torch.Tensor:
        """Texts per class."""
        flat = [c for row in self.classes for c in row]
        return torch.bincount(torch.tensor(flat, dtype=torch.long), minlength=self.width)
