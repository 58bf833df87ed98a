"""What is decided on the dev split once the network is trained: the n-gram channel's weight
(stacking), the temperature that calibrates the scores, and a multi-label model's
threshold per label."""

from __future__ import annotations

import logging
from collections.abc import Iterable

import torch

from ..models import TextCNN
from ..text.classifier import pad_batch
from .calibration import fit_scales, pick_thresholds
from .config import DecisionConfig
from .labels import MultiHot

log = logging.getLogger(__name__)


def chunks(ids: list[list[int]], targets: torch.Tensor | MultiHot, size: int = 512):
    """(padded token ids, targets) of ``size`` texts at a time."""
    for start in range(0, len(ids), size):
        yield pad_batch(ids[start : start + size]), targets[start : start + size]


@torch.no_grad()
def fit_decisions(
    model: TextCNN,
    train: Iterable[tuple[torch.Tensor, torch.Tensor | MultiHot]],
    dev: tuple[list[list[int]], torch.Tensor | MultiHot],
    multi_label: bool,
    decision: DecisionConfig,
) -> tuple[float, float, list[float] | None]:
    """(the n-gram channel's weight, the temperature, the thresholds) from the dev split:
    the channel is counted on the training texts (``train``: padded token ids and targets,
    batch by batch; read only when there is a channel) and weighed against the CNN by stacking
    (:func:`.calibration.fit_scales`: the ratio of the scales of lowest dev log-loss), then
    a temperature is fitted to the mix, and a multi-label model's thresholds are picked on
    the calibrated dev scores."""
    model.eval()
    channel = model.naive_bayes
    if channel is not None:
        channel.fit(train)
    cnn, ngrams = [], []
    for ids, _ in chunks(*dev):
        cnn.append(model.forward_head(model.forward_features(ids)))
        if channel is not None:
            ngrams.append(channel(ids))
    cnn = torch.cat(cnn)
    ngrams = torch.cat(ngrams) if channel is not None else None
    targets = dev[1].dense() if multi_label else dev[1]
    weight = 0.0
    if ngrams is not None:
        a, b = fit_scales(cnn, ngrams, targets, multi_label)
        weight = b / a
        # Multi-label: the weight of lowest log-loss can cost F1 (the channel's log-ratios
        # summed over a text's n-grams are sure of themselves): kept only if dev macro-F1
        # gains. On GoEmotions its weight of 0.167 cost 7 points of test macro-F1 (37.0
        # against 44.1 without it; a CNN trained with class_weights = balanced).
        if multi_label and _macro_f1(cnn + weight * ngrams, targets, decision) <= _macro_f1(
            cnn, targets, decision
        ):
            log.info("n-gram channel off: it does not raise dev macro-F1 (weight %.3g)", weight)
            weight = 0.0
    logits = cnn if ngrams is None else cnn + weight * ngrams
    temperature = 1.0
    if decision.calibrate:
        temperature = 1 / fit_scales(logits, None, targets, multi_label)[0]
    thresholds = None
    if multi_label:
        probabilities = torch.sigmoid(logits / temperature)
        thresholds, _ = pick_thresholds(probabilities, targets, decision.min_support)
    log.info(
        "from dev: n-gram weight %.3g, temperature %.3g; dev %s %.4f",
        weight,
        temperature,
        "micro-F1 at the thresholds" if multi_label else "accuracy",
        _dev_score(logits, targets, thresholds, temperature),
    )
    return weight, temperature, thresholds


def _macro_f1(logits: torch.Tensor, targets: torch.Tensor, decision: DecisionConfig) -> float:
    """Dev macro-F1 of multi-label logits at the thresholds picked on dev for them."""
    probabilities = torch.sigmoid(logits)
    thresholds, _ = pick_thresholds(probabilities, targets, decision.min_support)
    chosen = probabilities >= torch.tensor(thresholds)
    true_pos = (chosen & targets.bool()).sum(0).float()
    return float((2 * true_pos / (chosen.sum(0) + targets.sum(0)).clamp(min=1)).mean())


def _dev_score(logits, targets, thresholds, temperature) -> float:
    if thresholds is None:
        return (logits.argmax(1) == targets).float().mean().item()
    chosen = torch.sigmoid(logits / temperature) >= torch.tensor(thresholds)
    true_pos = (chosen & targets.bool()).sum().item()
    return 2 * true_pos / max(1, chosen.sum().item() + targets.sum().item())
