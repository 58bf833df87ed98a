"""Scores that mean what they say, fitted on the dev split once the network is trained.

- :func:`fit_scales`: the ``a x CNN + b x n-grams`` of lowest dev log-loss (a logistic
  regression on the two logits, softmax or one sigmoid per label, with a weak prior that
  keeps a near 1 on small dev sets). The n-gram channel's
  weight is b / a (Wang & Manning's channel, weighed by stacking) and the temperature is
  1 / a: ``(CNN + (b/a) x n-grams) / (1/a)`` is the fitted mix, scale included. Without
  the channel, b is 0 and this is temperature scaling (Guo et al. 2017).
- :func:`pick_thresholds` (multi-label): per label, the score threshold of best dev F1;
  labels with too few dev positives to pick one take the threshold of best micro-F1 over
  all labels.
- :func:`calibration_report`: expected calibration error (15 equal-width bins) and
  log-loss, before and after; :func:`plot_reliability`: the reliability diagram.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..artifacts import atomic_file

log = logging.getLogger(__name__)
BINS = 15  # equal-width confidence bins of the expected calibration error
MAX_TEMPERATURE = 100.0


def _loss(logits: torch.Tensor, targets: torch.Tensor, multi_label: bool) -> torch.Tensor:
    if multi_label:
        return F.binary_cross_entropy_with_logits(logits, targets.float())
    return F.cross_entropy(logits, targets)


@torch.no_grad()
def fit_scales(
    cnn: torch.Tensor, ngrams: torch.Tensor | None, targets: torch.Tensor, multi_label: bool
) -> tuple[float, float]:
    """(a, b) of lowest dev log-loss for ``a x cnn + b x ngrams`` (b = 0 without n-grams),
    with a kept positive: the calibrated logits are ``a x (cnn + (b / a) x ngrams)``."""
    features = [cnn.float()] + ([ngrams.float()] if ngrams is not None else [])
    log_scales = torch.zeros(len(features), requires_grad=True)  # a = exp(...) > 0
    signs = [1.0] * len(features)
    optimizer = torch.optim.LBFGS([log_scales], max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        with torch.enable_grad():
            scales = log_scales.exp()
            mixed = sum(s * sign * f for s, sign, f in zip(scales, signs, features, strict=True))
            # a standard normal prior on log a: on a dev set the network separates
            # completely, log-loss alone would scale the logits without end
            value = _loss(mixed, targets, multi_label) + log_scales[0] ** 2 / (2 * len(targets))
            value.backward()
        return value

    optimizer.step(closure)
    scales = log_scales.exp().tolist()
    a = min(max(scales[0], 1 / MAX_TEMPERATURE), MAX_TEMPERATURE)
    b = scales[1] if len(scales) > 1 else 0.0
    return a, b


@torch.no_grad()
def pick_thresholds(
    probabilities: torch.Tensor, targets: torch.Tensor, min_support: int
) -> tuple[list[float], float]:
    """(a threshold per label, the global one): each label's threshold of best dev F1 when
    the label has at least ``min_support`` dev positives, else the global threshold (best
    micro-F1 over all labels). A label is assigned at a score of at least its threshold."""
    targets = targets.bool()
    candidates = torch.linspace(0.01, 0.99, 99)
    assigned = probabilities[None, :, :] >= candidates[:, None, None]  # T x N x C
    true_pos = (assigned & targets[None]).sum(1).float()  # T x C
    predicted = assigned.sum(1).float()
    support = targets.sum(0).float()  # C
    f1 = 2 * true_pos / (predicted + support[None]).clamp(min=1)
    micro = 2 * true_pos.sum(1) / (predicted.sum(1) + support.sum()).clamp(min=1)
    overall = float(_middle_of_best(micro[:, None], candidates)[0])
    best = _middle_of_best(f1, candidates)
    thresholds = torch.where(support >= min_support, best, torch.tensor(overall))
    rare = int((support < min_support).sum())
    if rare:
        log.info(
            "%d labels have fewer than %d positives on dev: they take the global threshold %.2f",
            rare,
            min_support,
            overall,
        )
    return [round(float(t), 4) for t in thresholds], overall


def _middle_of_best(scores: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
    """Per column of ``scores`` (candidates x columns), the middle candidate among those
    that reach the column's best: dev data often leave a range of thresholds equally good,
    and its middle keeps a margin on both sides."""
    best = scores >= scores.max(0, keepdim=True).values - 1e-9  # T x C
    positions = torch.arange(len(candidates), dtype=torch.float)[:, None]
    first = torch.where(best, positions, torch.inf).min(0).values
    last = torch.where(best, positions, -torch.inf).max(0).values
    return candidates[((first + last) / 2).long()]


def _confidences(probabilities: torch.Tensor, targets: torch.Tensor, multi_label: bool):
    """(confidence, correct) of every prediction: the top class's probability and whether
    it is right; for multi-label every (text, label) score and whether the label applies."""
    if multi_label:
        return probabilities.flatten(), targets.bool().flatten().float()
    confidence, predicted = probabilities.max(1)
    return confidence, (predicted == targets).float()


def expected_calibration_error(
    probabilities: torch.Tensor, targets: torch.Tensor, multi_label: bool
) -> float:
    """ECE with :data:`BINS` equal-width bins: the frequency-weighted gap between the mean
    confidence of a bin and how often its predictions are right."""
    confidence, correct = _confidences(probabilities, targets, multi_label)
    bins = (confidence * BINS).long().clamp(max=BINS - 1)
    confident = torch.zeros(BINS).index_add_(0, bins, confidence)
    right = torch.zeros(BINS).index_add_(0, bins, correct)
    return float((confident - right).abs().sum() / max(len(confidence), 1))


def log_loss(probabilities: torch.Tensor, targets: torch.Tensor, multi_label: bool) -> float:
    p = probabilities.clamp(1e-12, 1 - 1e-12)
    if multi_label:
        t = targets.float()
        return float(-(t * p.log() + (1 - t) * (1 - p).log()).mean())
    return float(-p.gather(1, targets[:, None]).log().mean())


def calibration_report(
    before: torch.Tensor, after: torch.Tensor, targets: torch.Tensor, multi_label: bool
) -> dict:
    """ECE and log-loss of uncalibrated and calibrated probabilities, and the reliability
    bins of both (for the picture)."""
    return {
        "ece_before": expected_calibration_error(before, targets, multi_label),
        "ece_after": expected_calibration_error(after, targets, multi_label),
        "log_loss_before": log_loss(before, targets, multi_label),
        "log_loss_after": log_loss(after, targets, multi_label),
        "bins": BINS,
        "reliability": {
            "before": _reliability(before, targets, multi_label),
            "after": _reliability(after, targets, multi_label),
        },
    }


def _reliability(probabilities, targets, multi_label) -> list[list[float]]:
    """Per bin: [mean confidence, accuracy, count]."""
    confidence, correct = _confidences(probabilities, targets, multi_label)
    bins = (confidence * BINS).long().clamp(max=BINS - 1)
    rows = []
    for b in range(BINS):
        inside = bins == b
        count = int(inside.sum())
        rows.append(
            [float(confidence[inside].mean()) if count else 0.0,
             float(correct[inside].mean()) if count else 0.0,
             count]
        )  # fmt: skip
    return rows


def plot_reliability(report: dict, path: Path, title: str = "") -> None:
    """The reliability diagram of ``report`` (:func:`calibration_report`) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect")
    for name, colour in (("before", "tab:orange"), ("after", "tab:blue")):
        rows = np.array(report["reliability"][name])
        kept = rows[:, 2] > 0
        ece = report[f"ece_{name}"]
        ax.plot(rows[kept, 0], rows[kept, 1], marker="o", color=colour,
                label=f"{name} calibration (ECE {ece:.3f})")  # fmt: skip
    ax.set_xlabel("confidence")
    ax.set_ylabel("share correct")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(title or "reliability")
    ax.legend(loc="upper left")
    fig.tight_layout()
    with atomic_file(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
