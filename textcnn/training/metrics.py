"""Classification metrics: accuracy, macro-F1, per-class precision/recall/F1, confusion matrix."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..artifacts import atomic_file

MAX_MATRIX_CLASSES = 200  # a confusion matrix is kept up to this many classes (40,000 cells)
MAX_PICTURED_CLASSES = 50  # and drawn up to this many


def _per_class(labels, precision, recall, f1, actual) -> dict:
    """Per label: precision, recall, F1 and support."""
    return {
        label: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(actual[i]),
        }
        for i, label in enumerate(labels)
    }


def confusion_matrix(y_true, y_pred, num_classes: int) -> np.ndarray:
    """Rows are true classes, columns predicted classes."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return matrix


def classification_report(y_true, y_pred, labels: list[str]) -> dict:
    """Accuracy, macro-F1, per-class precision/recall/F1/support and, up to
    :data:`MAX_MATRIX_CLASSES` classes, the confusion matrix (memory grows with its square)."""
    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    k = len(labels)
    true_positives = np.bincount(y_true[y_true == y_pred], minlength=k).astype(float)
    predicted = np.bincount(y_pred, minlength=k)
    actual = np.bincount(y_true, minlength=k)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, true_positives / predicted, 0.0)
        recall = np.where(actual > 0, true_positives / actual, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    total = len(y_true)
    report = {
        "examples": total,
        "accuracy": float(true_positives.sum() / total) if total else 0.0,
        "macro_f1": float(f1.mean()),
        "per_class": _per_class(labels, precision, recall, f1, actual),
        "labels": list(labels),
    }
    if k <= MAX_MATRIX_CLASSES:
        report["confusion_matrix"] = confusion_matrix(y_true, y_pred, k).tolist()
    return report


def plot_confusion_matrix(report: dict, path: Path, title: str = "") -> None:
    """The confusion matrix as a PNG heat map with counts, written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = report["labels"]
    matrix = np.array(report["confusion_matrix"])
    size = max(4.0, 0.7 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    normalised = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    image = ax.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(labels)):
        for j in range(len(labels)):
            colour = "white" if normalised[i, j] > 0.5 else "black"
            ax.text(j, i, str(matrix[i, j]), ha="center", va="center", color=colour)
    ax.set_title(title or f"accuracy {report['accuracy']:.1%}, macro-F1 {report['macro_f1']:.3f}")
    fig.colorbar(image, ax=ax, fraction=0.046, label="share of the true class")
    fig.tight_layout()
    with atomic_file(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def multilabel_report(y_true: np.ndarray, y_pred: np.ndarray, labels: list[str]) -> dict:
    """Several labels per text (``y_true``, ``y_pred``: N x labels, 0/1): micro and macro
    precision/recall/F1, per-label precision/recall/F1/support, subset accuracy (every label
    of a text right) and Hamming loss (the share of (text, label) decisions that are wrong)."""
    y_true, y_pred = np.asarray(y_true, dtype=bool), np.asarray(y_pred, dtype=bool)
    true_positives = (y_true & y_pred).sum(0).astype(float)
    predicted, actual = y_pred.sum(0), y_true.sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, true_positives / predicted, 0.0)
        recall = np.where(actual > 0, true_positives / actual, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    tp, pp, ap = true_positives.sum(), predicted.sum(), actual.sum()
    micro_p, micro_r = (tp / pp if pp else 0.0), (tp / ap if ap else 0.0)
    micro_f1 = 2 * micro_p * micro_r / (micro_p + micro_r) if micro_p + micro_r else 0.0
    return {
        "examples": len(y_true),
        "multi_label": True,
        "macro_f1": float(f1.mean()),
        "micro_f1": float(micro_f1),
        "micro_precision": float(micro_p),
        "micro_recall": float(micro_r),
        "macro_precision": float(precision.mean()),
        "macro_recall": float(recall.mean()),
        "subset_accuracy": float((y_true == y_pred).all(1).mean()) if len(y_true) else 0.0,
        "hamming_loss": float((y_true != y_pred).mean()) if y_true.size else 0.0,
        "per_class": _per_class(labels, precision, recall, f1, actual),
        "labels": list(labels),
    }


def plot_label_f1(report: dict, path: Path, title: str = "") -> None:
    """Each label's F1 as a horizontal bar, with its support: the multi-label counterpart of
    the confusion matrix."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = report["labels"]
    scores = [report["per_class"][label]["f1"] for label in labels]
    support = [report["per_class"][label]["support"] for label in labels]
    fig, ax = plt.subplots(figsize=(6, max(3.0, 0.28 * len(labels) + 1)))
    ax.barh(range(len(labels)), scores, color="tab:blue")
    ax.set_yticks(
        range(len(labels)), [f"{label} ({n})" for label, n in zip(labels, support, strict=True)]
    )
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("F1 (support in brackets)")
    ax.set_title(title or f"macro-F1 {report['macro_f1']:.3f}, micro-F1 {report['micro_f1']:.3f}")
    fig.tight_layout()
    with atomic_file(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def plot_evaluation(report: dict, path: Path, title: str = "") -> None:
    """The picture of an evaluation: the confusion matrix, or a multi-label model's
    per-label F1."""
    plot = plot_label_f1 if report.get("multi_label") else plot_confusion_matrix
    plot(report, path, title)
