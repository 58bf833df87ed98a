"""What training minimises and what picks the best epoch, per kind of target.

An :class:`Objective` gives the loss of each example (with its weight, so that the loop can
average over a batch split across processes exactly), and a *tally*: statistics of a batch
that add up over batches and processes, from which :meth:`Objective.score` computes the dev
metric (higher is better). The loop (:mod:`.trainer`) knows nothing else of the targets.

- :class:`SingleLabel`: cross-entropy against class indices; accuracy.
- :class:`Distillation`: Tang et al.'s mix of cross-entropy with the gold label and squared
  error to a teacher's logits (targets N x (classes + 1)); accuracy on gold labels.
- :class:`MultiLabel`: a sigmoid per label and binary cross-entropy against 0/1 targets
  N x labels, summed over the labels (``pos_weight`` for rare labels); macro-F1 with each
  label's best threshold, found from score histograms (so it adds up over processes like
  the rest).
"""

from __future__ import annotations

from typing import Protocol

import torch
import torch.nn.functional as F

THRESHOLD_BINS = 100  # score histogram bins per label: thresholds at 0.01 steps


class Objective(Protocol):
    metric: str  # the name of what score() computes

    def loss(
        self, logits: torch.Tensor, targets: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(per-example loss times weight N, the weights N, or None when all are 1)."""

    def tally(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Statistics of a batch (float64) that add up over batches and processes."""

    def score(self, tally: torch.Tensor) -> float:
        """The metric of the summed tallies."""


class SingleLabel:
    metric = "accuracy"

    def __init__(self, class_weights: torch.Tensor | None = None) -> None:
        self.class_weights = class_weights

    def loss(self, logits, targets):
        weights = None if self.class_weights is None else self.class_weights.to(logits.device)
        losses = F.cross_entropy(logits.float(), targets, weight=weights, reduction="none")
        return losses, None if weights is None else weights[targets]

    def tally(self, logits, targets):
        correct = (logits.argmax(1) == targets).sum()
        return torch.stack([correct.double().cpu(), torch.tensor(float(len(targets)))])

    def score(self, tally):
        return float(tally[0] / tally[1].clamp(min=1))


class Distillation(SingleLabel):
    """Training targets N x (classes + 1): the teacher's logits, then the gold class index
    or -1 for a text without one (an augmented or unlabelled text), which takes the soft
    part only. Dev targets are class indices, scored as :class:`SingleLabel`."""

    def __init__(self, hard_weight: float, class_weights: torch.Tensor | None = None) -> None:
        super().__init__(class_weights)
        self.hard_weight = hard_weight

    def loss(self, logits, targets):
        if not targets.is_floating_point():
            return super().loss(logits, targets)
        return distillation_loss(logits, targets, self.class_weights, self.hard_weight), None

    def tally(self, logits, targets):
        if targets.is_floating_point():  # the gold class, else the teacher's
            gold = targets[:, -1].long()
            targets = torch.where(gold >= 0, gold, targets[:, :-1].argmax(1))
        return super().tally(logits, targets)


def distillation_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    class_weights: torch.Tensor | None = None,
    hard_weight: float = 0.5,
) -> torch.Tensor:
    """Per example: ``hard_weight`` x cross-entropy with the gold label (where there is one)
    plus the rest x the mean squared error to the teacher's logits (Tang et al.)."""
    teacher, gold = targets[:, :-1], targets[:, -1].long()
    soft = (logits.float() - teacher).pow(2).mean(-1)
    weights = None if class_weights is None else class_weights.to(logits.device)
    hard = F.cross_entropy(logits.float(), gold.clamp(min=0), weight=weights, reduction="none")
    mixed = hard_weight * hard + (1 - hard_weight) * soft
    return torch.where(gold >= 0, mixed, soft)


class MultiLabel:
    metric = "macro_f1"

    def __init__(self, pos_weight: torch.Tensor | None = None) -> None:
        self.pos_weight = pos_weight

    def loss(self, logits, targets):
        weight = None if self.pos_weight is None else self.pos_weight.to(logits.device)
        losses = F.binary_cross_entropy_with_logits(
            logits.float(), targets.float(), pos_weight=weight, reduction="none"
        )
        # summed over the labels: each label is a two-class problem whose gradient is as
        # large as a single-label model's (their mean made Adadelta crawl: GoEmotions was
        # still climbing at 25 epochs, dev macro-F1 0.448, test 42.8)
        return losses.sum(1), None

    def tally(self, logits, targets):
        """Per label, histograms of the scores of its positives and of its negatives:
        labels x 2 x bins."""
        scores = torch.sigmoid(logits.float()).detach().cpu()
        bins = (scores * THRESHOLD_BINS).long().clamp(max=THRESHOLD_BINS - 1)
        positive = targets.detach().cpu() > 0.5
        labels = scores.shape[1]
        cells = (torch.arange(labels)[None, :] * 2 + positive.long()) * THRESHOLD_BINS + bins
        counts = torch.bincount(cells.flatten(), minlength=labels * 2 * THRESHOLD_BINS)
        return counts.double().view(labels, 2, THRESHOLD_BINS)

    def score(self, tally):
        return float(best_threshold_f1(tally)[0].mean())


def best_threshold_f1(histograms: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(best F1, its threshold) per label from labels x 2 (negatives, positives) x bins
    score histograms; a threshold t assigns the label to scores of at least t."""
    negatives, positives = histograms[:, 0], histograms[:, 1]
    # scores at or above bin b's lower edge: suffix sums
    true_pos = positives.flip(1).cumsum(1).flip(1)
    false_pos = negatives.flip(1).cumsum(1).flip(1)
    support = positives.sum(1, keepdim=True)
    f1 = 2 * true_pos / (true_pos + false_pos + support).clamp(min=1)
    best, index = f1.max(1)
    return best, index.double() / THRESHOLD_BINS
