"""What the ``textcnn`` command prints: tables and one-line reports, with rich."""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import torch
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .models import create_model, list_models, model_entry
from .models.summary import Summary

# A wide console when piped, so tables are not cut to 80 columns.
console = Console(width=None if Console().is_terminal else 160)
errors = Console(stderr=True)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """A mistake in the input becomes a one-line message and exit status 1, not a traceback."""
    try:
        yield
    except ValueError as error:
        message = Text.assemble(("error: ", "red"), str(error))  # no markup: paths may hold [ ]
        errors.print(message, soft_wrap=True)
        raise typer.Exit(1) from None


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)


def _fmt(n: float) -> str:
    return f"{n:,.0f}" if float(n).is_integer() else f"{n:,.2f}"


def _shape(values: list) -> str:
    return "×".join(_fmt(v) for v in values)


def parse_input_size(text: str, kind: str, default: tuple[int, ...]) -> tuple[int, ...]:
    """'3,224,224' or '3x224x224'; one number is a sequence length (text) or a square side."""
    try:
        sizes = tuple(int(part) for part in text.replace("x", ",").split(",") if part.strip())
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a list of integers such as 3,224,224") from None
    if not sizes or min(sizes) < 1:
        raise typer.BadParameter(f"{text!r}: sizes must be positive integers")
    if kind == "image" and len(sizes) == 1:
        sizes = (default[0], sizes[0], sizes[0])
    expected = 1 if kind == "text" else 3
    if len(sizes) != expected:
        raise typer.BadParameter(
            f"{text!r}: a {kind} model takes {'a sequence length' if kind == 'text' else 'C,H,W'}"
        )
    return sizes


def print_models(pattern: str) -> None:
    table = Table()
    for column in ("name", "kind", "params", "input", "description"):
        table.add_column(column, justify="right" if column == "params" else "left")
    for name in list_models(pattern):
        entry = model_entry(name)
        with torch.device("meta"):  # count parameters without allocating them
            params = sum(p.numel() for p in create_model(name).parameters())
        table.add_row(
            name, entry.kind, f"{params:,}", _shape(list(entry.input_shape)), entry.description
        )
    console.print(table)


def print_summary(name: str, summary: Summary, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps({"model": name, **summary.to_dict()}, indent=2))
        return
    table = Table(title=f"{name} on input {_shape(summary.input_shape)}")
    for column in ("layer", "type", "output", "params", "MACs", "receptive field", "jump"):
        table.add_column(column, justify="right" if column in ("params", "MACs") else "left")
    for row in summary.rows:
        table.add_row(
            row.name + (" *" if row.cropped else ""),
            row.type,
            _shape(row.output_shape),
            _fmt(row.params),
            _fmt(row.macs),
            _shape(row.receptive_field),
            _shape(row.jump),
        )
    table.add_section()
    total = _fmt(summary.total_params), _fmt(summary.total_macs)
    table.add_row("total", "", _shape(summary.output_shape), *total, "", "")
    console.print(table)
    console.print(f"trainable parameters: {summary.trainable_params:,}")
    if any(row.cropped for row in summary.rows):
        console.print(
            "* the window does not reach the last rows/columns of its input: they are cropped"
        )


NAMES = {"macro_f1": "macro-F1", "micro_f1": "micro-F1", "subset_accuracy": "subset accuracy"}


def print_trained(metrics: dict, model_dir) -> None:
    for split, scores in metrics.items():
        shown = [f"{NAMES.get(k, k)} {v:.4f}" for k, v in scores.items() if k != "examples"]
        console.print(f"{split}: {', '.join(shown)}")
    console.print(f"model written to {model_dir}")


def print_tuned(result: dict) -> None:
    """What `textcnn tune` found: trials, the best settings and score, the model."""
    console.print(
        f"{result['trials']} trials in {result['seconds'] / 60:.1f} min ({result['complete']} "
        f"complete, {result['pruned']} pruned, {result['failed']} failed); best: trial "
        f"{result['best_trial']} (recipe {result['recipe']}), dev {result['metric']} "
        f"{result['dev_score']:.4f}"
    )
    for key, value in result["settings"].items():
        console.print(f"  {key} = {value}")
    if not result["settings"]:
        console.print("  the default settings")
    report = Path(result["model_dir"]).parent / "search"
    console.print(f"model written to {result['model_dir']}; the search's report in {report}")


def print_fold(i: int, fold: dict) -> None:
    console.print(f"fold {i}: accuracy {fold['accuracy']:.4f}")


def print_cv(results: dict[str, dict], folds: int) -> None:
    """One line per cross-validation; with several recipes, a table comparing them."""
    for name, result in results.items():
        console.print(
            f"{name + ': ' if name else ''}{folds}-fold accuracy "
            f"{100 * result['accuracy_mean']:.2f} ± {100 * result['accuracy_std']:.2f} %, "
            f"macro-F1 {result['macro_f1_mean']:.4f}, {result['seconds_per_epoch']:.1f} s/epoch"
        )
    if len(results) > 1:
        table = Table("recipe", "accuracy (%)", "macro-F1", "s/epoch")
        for name, result in results.items():
            accuracy = f"{100 * result['accuracy_mean']:.2f} ± {100 * result['accuracy_std']:.2f}"
            f1 = f"{result['macro_f1_mean']:.4f}"
            table.add_row(name, accuracy, f1, f"{result['seconds_per_epoch']:.1f}")
        console.print(table)


def print_evaluation(report: dict, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    if report.get("multi_label"):
        scores = (
            f"micro-F1 {report['micro_f1']:.4f}, macro-F1 {report['macro_f1']:.4f}, subset "
            f"accuracy {report['subset_accuracy']:.4f}, Hamming loss {report['hamming_loss']:.4f}"
        )
    else:
        scores = f"accuracy {report['accuracy']:.4f}, macro-F1 {report['macro_f1']:.4f}"
    calibration = report["calibration"]
    console.print(
        f"{report['examples']} examples: {scores}; calibration error (ECE) "
        f"{calibration['ece_after']:.4f} (uncalibrated {calibration['ece_before']:.4f})"
    )
    if "abstention" in report:
        a = report["abstention"]
        quality = {k: v for k, v in a.items() if k.endswith("_covered")}
        console.print(
            f"at min score {a['min_score']}: answers {a['coverage']:.1%} of the texts ("
            + ", ".join(f"{k.replace('_covered', '')} {v:.4f} on them" for k, v in quality.items())
            + ")"
        )
    table = Table("label", "precision", "recall", "F1", "support")
    for label, scores in report["per_class"].items():
        table.add_row(
            label,
            f"{scores['precision']:.3f}",
            f"{scores['recall']:.3f}",
            f"{scores['f1']:.3f}",
            str(scores["support"]),
        )
    console.print(table)
    if "confusion_matrix" in report:
        matrix = Table("true \\ predicted", *report["labels"], title="confusion matrix")
        for label, row in zip(report["labels"], report["confusion_matrix"], strict=True):
            matrix.add_row(label, *map(str, row))
        console.print(matrix)


def print_predictions(texts: list, results: list, as_json: bool) -> None:
    for text, result in zip(texts, results, strict=True):
        shown = [{"label": p.label, "score": round(p.score, 6)} for p in result.predictions]
        if as_json:
            line = {"text": str(text), "label": result.label, "predictions": shown}
            typer.echo(json.dumps(line | ({"abstained": True} if result.abstained else {})))
            continue
        scores = ", ".join(f"{p['label']} {p['score']:.3f}" for p in shown)
        typer.echo(f"{'(not sure) ' if result.abstained else ''}{scores}\t{text}")


def print_scored(summary) -> None:
    counts = ", ".join(f"{label} {n}" for label, n in summary.labels.most_common())
    resumed = f" (after {summary.resumed_after} already written)" if summary.resumed_after else ""
    errors.print(
        f"scored {summary.rows} rows{resumed} in {summary.seconds:.1f} s, "
        f"{summary.rows_per_second:,.0f} rows/s; labels: {counts or '-'}"
    )
    if summary.abstained:
        errors.print(f"without a label (under --min-score, or none assigned): {summary.abstained}")
    if summary.read.skipped:
        errors.print(f"skipped bad rows: {dict(summary.read.skipped)}")
