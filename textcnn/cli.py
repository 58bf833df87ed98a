"""The ``textcnn`` command: thin shims over the library."""

from __future__ import annotations

import json
from typing import Annotated

import torch
import typer
from rich.console import Console
from rich.table import Table

from .models import create_model, list_models, model_entry
from .summary import Summary, summarize_registered

app = typer.Typer(
    help="Convolutional text and image classifiers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
# A wide console when piped, so tables are not cut to 80 columns.
console = Console(width=None if Console().is_terminal else 160)


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


def parse_settings(pairs: list[str]) -> dict:
    """KEY=VALUE pairs; values are read as JSON when they parse (2, true, [3,4]), else as text."""
    config = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{pair!r} is not KEY=VALUE")
        try:
            config[key] = json.loads(value)
        except json.JSONDecodeError:
            config[key] = value
    return config


def _fmt(n: float) -> str:
    return f"{n:,.0f}" if float(n).is_integer() else f"{n:,.2f}"


def _shape(values: list) -> str:
    return "×".join(_fmt(v) for v in values)


def print_summary(name: str, summary: Summary) -> None:
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
    table.add_row(
        "total",
        "",
        _shape(summary.output_shape),
        _fmt(summary.total_params),
        _fmt(summary.total_macs),
        "",
        "",
    )
    console.print(table)
    console.print(f"trainable parameters: {summary.trainable_params:,}")
    if any(row.cropped for row in summary.rows):
        console.print(
            "* the window does not reach the last rows/columns of its input: they are cropped"
        )


@app.command()
def models(
    pattern: Annotated[str, typer.Argument(help="shell-style filter, e.g. 'resnet*'")] = "*",
) -> None:
    """List the registered models with their kind and parameter count."""
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


@app.command()
def summary(
    name: Annotated[str, typer.Argument(help="a registered model, see `textcnn models`")],
    input_size: Annotated[
        str | None,
        typer.Option(help="C,H,W for images (or one side), a sequence length for text"),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="model setting KEY=VALUE, e.g. --set groups=2 (repeatable)"),
    ] = None,
    depth: Annotated[
        int | None, typer.Option(min=1, help="merge layers to this depth of module names")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON records and totals")] = False,
) -> None:
    """Per layer: output shape, parameters, MACs and receptive field, then totals."""
    try:
        entry = model_entry(name)
        shape = parse_input_size(input_size, entry.kind, entry.input_shape) if input_size else None
        model, result = summarize_registered(name, shape, **parse_settings(set_ or []))
    except (ValueError, TypeError, RuntimeError) as error:
        raise typer.BadParameter(str(error).splitlines()[0]) from None
    if depth is not None:
        result = result.grouped(depth, model)
    if as_json:
        typer.echo(json.dumps({"model": name, **result.to_dict()}, indent=2))
    else:
        print_summary(name, result)


def main() -> None:
    app()
