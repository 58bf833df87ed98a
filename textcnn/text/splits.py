"""Seeded, stratified splits: a dev split and k folds."""

from __future__ import annotations

import random
from collections import defaultdict


def _by_label(labels: list[str], seed: int) -> list[list[int]]:
    """Indices grouped by label (labels in sorted order), each group shuffled with ``seed``."""
    groups: dict[str, list[int]] = defaultdict(list)
    for index, label in enumerate(labels):
        groups[label].append(index)
    rng = random.Random(seed)
    ordered = [groups[label] for label in sorted(groups)]
    for group in ordered:
        rng.shuffle(group)
    return ordered


def stratified_split(
    labels: list[str], fraction: float, seed: int = 0
) -> tuple[list[int], list[int]]:
    """(kept, held_out) indices; ``fraction`` of every label is held out (at least one)."""
    if not 0 < fraction < 1:
        raise ValueError(f"the held-out fraction must be between 0 and 1, got {fraction}")
    kept, held = [], []
    for group in _by_label(labels, seed):
        n = round(len(group) * fraction)
        n = min(max(n, 1), len(group) - 1) if len(group) > 1 else 0
        held += group[:n]
        kept += group[n:]
    return sorted(kept), sorted(held)


def stratified_folds(labels: list[str], k: int, seed: int = 0) -> list[list[int]]:
    """``k`` disjoint folds covering every index, each with about the same label mix."""
    if k < 2:
        raise ValueError(f"cross-validation needs at least 2 folds, got {k}")
    if k > len(labels):
        raise ValueError(f"{k} folds need at least {k} examples, got {len(labels)}")
    folds: list[list[int]] = [[] for _ in range(k)]
    position = 0
    for group in _by_label(labels, seed):
        for index in group:  # deal round-robin, continuing across labels to balance sizes
            folds[position % k].append(index)
            position += 1
    return [sorted(fold) for fold in folds]
